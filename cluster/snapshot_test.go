package cluster_test

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sanigate/sanigate/cluster"
	"github.com/sanigate/sanigate/internal/natstest"
	"github.com/sanigate/sanigate/internal/violationstest"
	"github.com/sanigate/sanigate/telemetry"
	"github.com/sanigate/sanigate/violations"
)

// recordSink records the violations raised.
type recordSink struct {
	mu     sync.Mutex
	raised []violations.Violation
}

func (s *recordSink) Raise(_ context.Context, v violations.Violation) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.raised = append(s.raised, v)
	return nil
}

func (s *recordSink) count(typ string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, v := range s.raised {
		if v.Type == typ && !v.Resolved {
			n++
		}
	}
	return n
}

// counterValue sums a counter family of reg whose labels include want.
func counterValue(t *testing.T, reg *prometheus.Registry, name string, want map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	v := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if w, ok := want[l.GetName()]; ok && w != l.GetValue() {
					continue metrics
				}
			}
			v += m.GetCounter().GetValue()
		}
	}
	return v
}

// A detector hands its partition back (a clean stop) after a bin has been
// over 90 % full for 100 minutes; the next owner, whose time-based replay
// is set to nothing, must learn that from the partition's snapshot to raise
// the overflow when the bin reaches two hours. With the snapshot made
// unreadable, it falls back to the replay (with a warning and a metric) and
// knows only the last reading: no overflow by then.
func TestTakeoverResumesFromSnapshot(t *testing.T) {
	for _, tc := range []struct {
		name      string
		corrupt   bool
		overflows int
		result    string
	}{
		{"from the snapshot", false, 1, "restored"},
		{"snapshot unreadable", true, 0, "unreadable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nc := natstest.Start(t, 1)
			_, js := nc.Connect(t)
			so := cluster.StreamOptions{Name: "S", Partitions: 1}.WithDefaults()
			if _, err := cluster.EnsureStream(t.Context(), js, so); err != nil {
				t.Fatal(err)
			}
			t0 := time.Now().Add(-4 * time.Hour).Truncate(time.Second)
			cfg := violationstest.Demo(t)
			dc := violations.DefaultConfig()
			sink := &recordSink{}
			run := func(id string, reg *prometheus.Registry) (stop func()) {
				d, err := cluster.NewDetector(cluster.DetectorOptions{
					URLs: nc.URLList(), ID: id, Stream: so, LeaseBucket: "S_OWNERS", StateBucket: "S_STATE",
					SnapshotBucket: "S_SNAP", SnapshotEvery: time.Hour, // only the hand-back saves one here
					Replay: time.Nanosecond, LeaseTTL: 2 * time.Second, Lateness: dc.Lateness.D(),
					Now: func() time.Time { return t0 }, Sink: sink, Registerer: reg,
					Engine: func(_ int, s violations.Sink) *violations.Engine {
						return violations.NewEngine(cfg, dc, s, violations.EngineOptions{Shards: 1})
					},
				})
				if err != nil {
					t.Fatal(err)
				}
				ctx, cancel := context.WithCancel(context.Background())
				done := make(chan struct{})
				go func() { defer close(done); _ = d.Run(ctx) }()
				return func() { cancel(); <-done }
			}
			const dev = "bin-0001"
			publish := func(from, to int) uint64 {
				var last uint64
				for i := from; i < to; i++ {
					r := telemetry.Reading{Device: dev, Kind: telemetry.KindBin, Time: t0.Add(time.Duration(i) * 5 * time.Minute)}
					for k, v := range map[string]float64{"fill_pct": 95, "temp_c": 15, "tilt_deg": 1, "battery_pct": 80, "lat": 39.857, "lon": 116.311} {
						r.SetFloat(k, v)
					}
					last = natstest.Publish(t, js, cluster.Subject(so.SubjectPrefix, 0), telemetry.AppendLine(nil, &r), dev+"-"+strconv.Itoa(i))
				}
				return last
			}
			acked := func(seq uint64) func() bool {
				return func() bool {
					c, err := js.Consumer(t.Context(), "S", "detect-0")
					if err != nil {
						return false
					}
					info, err := c.Info(t.Context())
					return err == nil && info.AckFloor.Stream >= seq
				}
			}

			regA := prometheus.NewRegistry()
			stopA := run("a", regA)
			waitFor(t, 30*time.Second, "detector a to own the partition", func() bool { return ownersIn(t, js, "S_OWNERS")[0] == "a" })
			seq := publish(0, 21) // 100 minutes over 90 %
			waitFor(t, 30*time.Second, "a to acknowledge the readings", acked(seq))
			stopA()
			if n := counterValue(t, regA, "sanigate_cluster_snapshots_saved_total", nil); n != 1 {
				t.Fatalf("a saved %v snapshots on handing back, want 1", n)
			}
			if tc.corrupt {
				obj, err := js.ObjectStore(t.Context(), "S_SNAP")
				if err != nil {
					t.Fatal(err)
				}
				if _, err := obj.PutBytes(t.Context(), "partition-0", []byte("not a snapshot")); err != nil {
					t.Fatal(err)
				}
			}

			regB := prometheus.NewRegistry()
			stopB := run("b", regB)
			defer stopB()
			waitFor(t, 30*time.Second, "detector b to own the partition", func() bool { return ownersIn(t, js, "S_OWNERS")[0] == "b" })
			seq = publish(21, 26) // two hours over 90 % at reading 24
			waitFor(t, 30*time.Second, "b to acknowledge the readings", acked(seq))
			if got := sink.count(violations.BinOverflow); got != tc.overflows {
				t.Fatalf("%d overflows raised, want %d", got, tc.overflows)
			}
			if n := counterValue(t, regB, "sanigate_cluster_snapshot_restores_total", map[string]string{"result": tc.result}); n != 1 {
				t.Fatalf("restores with result %s: %v, want 1", tc.result, n)
			}
			rebuilt := counterValue(t, regB, "sanigate_cluster_rebuild_messages_total", nil)
			if !tc.corrupt && rebuilt != 0 {
				t.Errorf("b read %v messages again after the snapshot, want none", rebuilt)
			}
			t.Logf("%s: b read %v messages again; overflows %d", tc.name, rebuilt, sink.count(violations.BinOverflow))
		})
	}
}
