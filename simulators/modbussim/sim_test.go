package modbussim_test

import (
	"context"
	"testing"

	"github.com/sanigate/sanigate/drivers/modbus"
	"github.com/sanigate/sanigate/simulators/modbussim"
)

// TestDeterministic: two simulators with one seed go through the same values.
func TestDeterministic(t *testing.T) {
	for _, profile := range modbus.ProfileNames() {
		t.Run(profile, func(t *testing.T) {
			a, err := modbussim.Start(context.Background(), profile, "127.0.0.1:0", modbussim.Options{Seed: 3, Step: -1})
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			b, err := modbussim.Start(context.Background(), profile, "127.0.0.1:0", modbussim.Options{Seed: 3, Step: -1})
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			changed := false
			first := a.Values()
			for i := range 50 {
				a.Step()
				b.Step()
				va, vb := a.Values(), b.Values()
				for k, v := range va {
					if vb[k] != v {
						t.Fatalf("step %d, %s: %+v and %+v", i, k, v, vb[k])
					}
					if first[k] != v {
						changed = true
					}
				}
			}
			if !changed {
				t.Error("values never changed")
			}
		})
	}
}

func TestStartErrors(t *testing.T) {
	if _, err := modbussim.Start(context.Background(), "nope", "127.0.0.1:0", modbussim.Options{}); err == nil {
		t.Error("unknown profile: got no error")
	}
	ctx, cancel := context.WithCancel(context.Background())
	s, err := modbussim.Start(ctx, "", "127.0.0.1:0", modbussim.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	s.Close()
	s.Close()
}
