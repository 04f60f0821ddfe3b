package fleet

import (
	"fmt"
	"testing"
)

// BenchmarkAuthenticate compares what a login costs: a cached reconnect, a
// generated secret verified afresh, and a wrong password for a known and an
// unknown id (these two must cost the same), per scheme.
//
//	go test ./fleet -run '^$' -bench Authenticate -benchtime 20x
func BenchmarkAuthenticate(b *testing.B) {
	secret, sh, _ := GenerateSecret()
	bh, _ := HashPassword("chosen-password", 6)
	for _, c := range []struct{ scheme, hash, pw string }{{"hmac-sha256", sh, secret}, {"bcrypt-06", bh, "chosen-password"}} {
		r := NewRegistry([]Device{{ID: "bin-1", Kind: "bin", PasswordHash: c.hash}})
		r.Authenticate("nobody", "x") // make the dummy hash outside the timing
		b.Run(c.scheme+"/cached", func(b *testing.B) {
			for b.Loop() {
				if !r.Authenticate("bin-1", c.pw) {
					b.Fatal("refused")
				}
			}
		})
		b.Run(c.scheme+"/known-wrong", func(b *testing.B) {
			for i := 0; b.Loop(); i++ {
				if r.Authenticate("bin-1", fmt.Sprint("guess-", i)) {
					b.Fatal("accepted")
				}
			}
		})
		b.Run(c.scheme+"/unknown", func(b *testing.B) {
			for i := 0; b.Loop(); i++ {
				if r.Authenticate(fmt.Sprint("bin-x", i), "guess") {
					b.Fatal("accepted")
				}
			}
		})
	}
}
