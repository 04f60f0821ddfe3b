package fleet

import (
	"errors"
	"strings"
	"sync"
	"testing"
)

func TestGeneratedSecret(t *testing.T) {
	secret, hash, err := GenerateSecret()
	if err != nil {
		t.Fatal(err)
	}
	if len(secret) != 22 || !strings.HasPrefix(hash, SecretPrefix) {
		t.Fatalf("secret %q (%d chars), hash %q", secret, len(secret), hash)
	}
	if err := CheckHashFormat(hash); err != nil {
		t.Fatalf("format: %v", err)
	}
	if err := VerifyPassword(hash, secret); err != nil {
		t.Fatalf("right secret: %v", err)
	}
	if err := VerifyPassword(hash, secret[:21]+"x"); !errors.Is(err, ErrBadPassword) {
		t.Fatalf("wrong secret: got %v", err)
	}
	other, hash2, _ := GenerateSecret()
	if other == secret || hash2 == hash {
		t.Fatal("two generated secrets are equal")
	}
	h3, _ := HashSecret(secret)
	if h3 == hash {
		t.Fatal("the same secret hashed twice gave the same hash: no salt")
	}
	if _, err := HashSecret("short"); err == nil {
		t.Fatal("a short secret was hashed with the fast scheme")
	}
	for _, bad := range []string{SecretPrefix, SecretPrefix + "abc", SecretPrefix + "c2FsdHNhbHQ$AAAA", hash[:len(hash)-2]} {
		if CheckHashFormat(bad) == nil {
			t.Errorf("malformed %q accepted", bad)
		}
		if VerifyPassword(bad, secret) == nil {
			t.Errorf("malformed %q verified", bad)
		}
	}
}

// A changed password hash must not let the old password in through the
// cache, and a wrong password must never hit it.
func TestCredentialCache(t *testing.T) {
	secret, hash, _ := GenerateSecret()
	r := NewRegistry([]Device{{ID: "bin-1", Kind: "bin", PasswordHash: hash}})
	if !r.Authenticate("bin-1", secret) || !r.Authenticate("bin-1", secret) {
		t.Fatal("right secret refused")
	}
	if r.Authenticate("bin-1", secret+"x") || r.Authenticate("bin-1", "") {
		t.Fatal("wrong secret accepted after a cached success")
	}
	newSecret, newHash, _ := GenerateSecret()
	r2 := NewRegistry([]Device{{ID: "bin-1", Kind: "bin", PasswordHash: newHash}})
	r2.auth = r.auth // the same cache, as if the hash were replaced in place
	if r2.Authenticate("bin-1", secret) {
		t.Fatal("old secret accepted after the hash changed")
	}
	if !r2.Authenticate("bin-1", newSecret) {
		t.Fatal("new secret refused")
	}
}

func TestDummyHashFollowsTheFleet(t *testing.T) {
	b4, _ := HashPassword("pw-one", 4)
	b5, _ := HashPassword("pw-two", 5)
	b5b, _ := HashPassword("pw-three", 5)
	_, s, _ := GenerateSecret()
	cases := []struct {
		devices []Device
		want    string
	}{
		{[]Device{{ID: "a", PasswordHash: b4}, {ID: "b", PasswordHash: b5}, {ID: "c", PasswordHash: b5b}}, "bcrypt-05"},
		{[]Device{{ID: "a", PasswordHash: s}, {ID: "b", PasswordHash: b5}, {ID: "c", PasswordHash: s}}, "hmac-sha256"},
		{[]Device{{ID: "a", PasswordHash: "$argon2id$v=19$m=1024,t=1,p=1$c2FsdHNhbHRzYWx0$" + argonKeyForTest(t)}}, "$argon2id$v=19$m=1024,t=1,p=1"},
	}
	for _, c := range cases {
		r := NewRegistry(c.devices)
		if r.Authenticate("nobody", "pw-one") {
			t.Fatal("unknown id accepted")
		}
		if got := schemeOf(r.auth.dummy); got != c.want {
			t.Errorf("dummy hash scheme: got %q, want %q", got, c.want)
		}
	}
}

// Concurrent logins of many devices, some wrong, all answered correctly.
func TestAuthenticateConcurrent(t *testing.T) {
	var devs []Device
	secrets := map[string]string{}
	for _, id := range []string{"b1", "b2", "b3", "b4"} {
		s, h, _ := GenerateSecret()
		secrets[id] = s
		devs = append(devs, Device{ID: id, Kind: "bin", PasswordHash: h})
	}
	bh, _ := HashPassword("chosen", 4)
	devs = append(devs, Device{ID: "b5", Kind: "bin", PasswordHash: bh})
	secrets["b5"] = "chosen"
	r := NewRegistry(devs)
	var wg sync.WaitGroup
	errs := make(chan string, 200)
	for i := 0; i < 40; i++ {
		for id, s := range secrets {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if !r.Authenticate(id, s) {
					errs <- "refused " + id
				}
				if r.Authenticate(id, s+"!") {
					errs <- "accepted wrong " + id
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}
