package broker

import (
	"context"
	"strings"
	"testing"
	"time"
)

type nobody struct{}

func (nobody) Authenticate(string, string) bool { return false }

type dropAll struct{}

func (dropAll) HandlePublish(string, string, []byte, func(error)) error { return nil }

// A listener whose socket is gone stops accepting; the broker says so,
// for readiness, instead of staying silent.
func TestDeadListenerReported(t *testing.T) {
	b, err := New(Options{Address: "127.0.0.1:0", Auth: nobody{}, Handler: dropAll{}})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = b.Close(ctx)
	})
	if ps := b.Problems(); len(ps) != 0 {
		t.Fatalf("fresh broker: problems %v", ps)
	}
	b.ln.mu.Lock()
	_ = b.ln.ln.Close()
	b.ln.mu.Unlock()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if ps := b.Problems(); len(ps) == 1 && strings.Contains(ps[0], "stopped accepting") {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("dead listener not reported: %v", b.Problems())
}
