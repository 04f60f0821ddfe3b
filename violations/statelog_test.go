package violations

import (
	"bufio"
	"bytes"
	"context"
	"encoding/gob"
	"errors"
	"io"
	"os"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sanigate/sanigate/fleet"
	"github.com/sanigate/sanigate/telemetry"
	"github.com/sanigate/sanigate/telemetry/spool"
)

// batchDevices reads a state log and returns the device ids of each batch.
func batchDevices(t *testing.T, path string) [][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := bufio.NewReader(f)
	var h stateHeader
	if err := readFrame(r, &h); err != nil {
		t.Fatal(err)
	}
	var out [][]string
	for {
		var b stateBatch
		if err := readFrame(r, &b); err != nil {
			if !errors.Is(err, io.EOF) {
				t.Fatal(err)
			}
			return out
		}
		var ids []string
		for _, stream := range b.Shards {
			dec := gob.NewDecoder(bytes.NewReader(stream))
			for {
				var id string
				if dec.Decode(&id) != nil {
					break
				}
				if err := dec.Decode(&deviceState{}); err != nil {
					t.Fatal(err)
				}
				ids = append(ids, id)
			}
		}
		out = append(out, ids)
	}
}

// TestCheckpointWritesChangedDevices: after the first checkpoint, a batch
// holds only the devices that had readings since the one before.
func TestCheckpointWritesChangedDevices(t *testing.T) {
	dir, state := t.TempDir(), t.TempDir()
	sp, _, err := spool.Open(dir, spool.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	cfg := &fleet.Config{}
	base := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	add := func(dev string, from time.Time, n int) {
		for i := 0; i < n; i++ {
			r := telemetry.Reading{Device: dev, Kind: telemetry.KindToilet, Time: from.Add(time.Duration(i) * time.Minute)}
			r.SetFloat("nh3_mgm3", 0.1)
			if err := sp.Append(telemetry.AppendLine(nil, &r), i == n-1); err != nil {
				t.Fatal(err)
			}
		}
	}
	now := base.Add(4 * time.Minute) // the clock passes none of the readings: ticks change nothing
	e := NewEngine(cfg, DefaultConfig(), nopSink{}, EngineOptions{Shards: 2, StateDir: state, Now: func() time.Time { return now },
		Tick: 5 * time.Millisecond, Checkpoint: 5 * time.Millisecond, Registerer: prometheus.NewRegistry()})
	cons, err := sp.Consumer("detectors")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx, cons) }()
	waitCommitted := func() {
		end := sp.Stats().Bytes
		for i := 0; i < 2000 && cons.Committed() < end; i++ {
			time.Sleep(5 * time.Millisecond)
		}
		if cons.Committed() < end {
			t.Fatalf("cursor %d, want %d", cons.Committed(), end)
		}
	}
	add("wc-1", base, 5)
	add("wc-2", base, 5)
	add("wc-3", base, 5)
	waitCommitted()
	add("wc-2", base.Add(5*time.Minute), 3)
	waitCommitted()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	batches := batchDevices(t, e.statePath(cons))
	if len(batches) < 2 {
		t.Fatalf("batches: %v, want at least two", batches)
	}
	if last := batches[len(batches)-1]; len(last) != 1 || last[0] != "wc-2" {
		t.Errorf("last batch holds %v, want only wc-2: all %v", last, batches)
	}
}

type nopSink struct{}

func (nopSink) Raise(context.Context, Violation) error { return nil }
