package violations_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/sanigate/sanigate/violations"
)

// An engine's snapshot, restored into a fresh engine, carries the devices'
// state: a bin over 90 % for 100 minutes before the snapshot overflows 20
// minutes after it, as it does in an engine that saw everything. A
// snapshot of another scope, or a torn one, is refused and changes nothing.
func TestSnapshotRestore(t *testing.T) {
	dc := violations.DefaultConfig()
	full := every("bin-0001", "bin", at(6, 0), 5*time.Minute, 26, func(int) map[string]float64 {
		return map[string]float64{"fill_pct": 95, "battery_pct": 80}
	})
	want := len(opened(run(t, dc, full, at(8, 10), "bin-0001"), violations.BinOverflow))
	if want != 1 {
		t.Fatalf("%d overflows from the whole series, want 1", want)
	}
	ctx := context.Background()
	cfg := loadDemo(t)
	first := violations.NewEngine(cfg, dc, &collector{}, violations.EngineOptions{Shards: 2})
	if err := first.ProcessReadings(ctx, full[:21]); err != nil {
		t.Fatal(err)
	}
	snap, err := first.Snapshot("S/0@1", 21)
	if err != nil {
		t.Fatal(err)
	}

	for _, bad := range []struct {
		name, scope string
		snap        []byte
	}{
		{"another scope", "S/1@1", snap},
		{"torn", "S/0@1", snap[:len(snap)-10]},
		{"garbage", "S/0@1", []byte("not a snapshot at all")},
	} {
		e := violations.NewEngine(cfg, dc, &collector{}, violations.EngineOptions{Shards: 2})
		if _, _, err := e.Restore(bad.scope, bad.snap); !errors.Is(err, violations.ErrSnapshot) {
			t.Errorf("%s: restore error %v, want ErrSnapshot", bad.name, err)
		}
	}

	col := &collector{}
	second := violations.NewEngine(cfg, dc, col, violations.EngineOptions{Shards: 2})
	pos, devices, err := second.Restore("S/0@1", snap)
	if err != nil || pos != 21 || devices == 0 {
		t.Fatalf("restore: position %d, %d devices, %v; want 21, the fleet's devices, nil", pos, devices, err)
	}
	if err := second.ProcessReadings(ctx, full[21:]); err != nil {
		t.Fatal(err)
	}
	var got []violations.Violation
	for _, v := range col.List() {
		if v.Device == "bin-0001" {
			got = append(got, v)
		}
	}
	if n := len(opened(got, violations.BinOverflow)); n != 1 {
		t.Fatalf("%d overflows after the restore, want 1 (%v)", n, got)
	}
}
