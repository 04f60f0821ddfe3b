package cluster_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sanigate/sanigate/cluster"
	"github.com/sanigate/sanigate/internal/natstest"
	"github.com/sanigate/sanigate/internal/violationstest"
	"github.com/sanigate/sanigate/telemetry"
	"github.com/sanigate/sanigate/violations"
)

// fenceStore is a sink that keeps the greatest fencing token per scope, as
// the case store does, and records what it accepted and refused.
type fenceStore struct {
	mu       sync.Mutex
	tokens   map[string]uint64
	accepted []string
	refused  []string
}

func (s *fenceStore) check(f violations.Fence) error {
	if s.tokens[f.Scope] > f.Token {
		return fmt.Errorf("%w: %s holds %d, got %d", violations.ErrFenced, f.Scope, s.tokens[f.Scope], f.Token)
	}
	s.tokens[f.Scope] = f.Token
	return nil
}

func (s *fenceStore) Fence(_ context.Context, f violations.Fence) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.check(f)
}

func (s *fenceStore) Raise(ctx context.Context, v violations.Violation) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, ok := violations.FenceFrom(ctx)
	if !ok {
		return fmt.Errorf("raise of %s without a fencing token", v.Key)
	}
	line := fmt.Sprintf("%s %s token %d", v.Type, v.Device, f.Token)
	if err := s.check(f); err != nil {
		s.refused = append(s.refused, line)
		return err
	}
	s.accepted = append(s.accepted, line)
	return nil
}

func (s *fenceStore) lists() ([]string, []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.accepted...), append([]string(nil), s.refused...)
}

// stalledSink holds the first violation raised through it until released,
// as a detector process paused (SIGSTOP, a long GC, a VM migration) between
// deciding and writing would: by the time it writes, its lease is gone.
type stalledSink struct {
	next    *fenceStore
	once    sync.Once
	entered chan struct{}
	release chan struct{}
}

func (s *stalledSink) Fence(ctx context.Context, f violations.Fence) error {
	return s.next.Fence(ctx, f)
}

func (s *stalledSink) Raise(ctx context.Context, v violations.Violation) error {
	s.once.Do(func() {
		close(s.entered)
		<-s.release
	})
	return s.next.Raise(ctx, v)
}

// A detector stalled in the middle of raising a fire loses its lease (its
// key is gone, as when it expired); another detector takes the partition
// over, reads the readings again and raises the fire under a greater token.
// When the stalled one finally writes, the store refuses it: the fire is
// accepted once, from the new owner.
func TestStaleOwnerIsFenced(t *testing.T) {
	nc := natstest.Start(t, 1)
	_, js := nc.Connect(t)
	so := cluster.StreamOptions{Name: "F", Partitions: 1}.WithDefaults()
	if _, err := cluster.EnsureStream(t.Context(), js, so); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now().Truncate(time.Second)
	cfg := violationstest.Demo(t)
	dc := violations.DefaultConfig()
	store := &fenceStore{tokens: map[string]uint64{}}
	run := func(id string, sink violations.Sink) (stop func()) {
		d, err := cluster.NewDetector(cluster.DetectorOptions{
			URLs: nc.URLList(), ID: id, Stream: so, LeaseBucket: "F_OWNERS", StateBucket: "F_STATE",
			LeaseTTL: 2 * time.Second, Lateness: dc.Lateness.D(), Now: func() time.Time { return t0 }, Sink: sink,
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
	stalled := &stalledSink{next: store, entered: make(chan struct{}), release: make(chan struct{})}
	stopA := run("a", stalled)
	waitFor(t, 30*time.Second, "detector a to own the partition", func() bool { return ownersIn(t, js, "F_OWNERS")[0] == "a" })

	const dev = "bin-0001"
	for i := range 22 {
		r := telemetry.Reading{Device: dev, Kind: telemetry.KindBin, Time: t0.Add(time.Duration(i-30) * 5 * time.Minute)}
		for k, v := range map[string]float64{"fill_pct": 40, "temp_c": 15, "tilt_deg": 1, "battery_pct": 80, "contamination_pct": 5, "lat": 39.857, "lon": 116.311} {
			r.SetFloat(k, v)
		}
		if i >= 20 {
			r.SetFloat("temp_c", 75)
		}
		natstest.Publish(t, js, cluster.Subject(so.SubjectPrefix, 0), telemetry.AppendLine(nil, &r), dev+"-"+strconv.Itoa(i))
	}
	select {
	case <-stalled.entered:
	case <-time.After(30 * time.Second):
		t.Fatal("detector a raised nothing")
	}
	// a's lease goes while it is stalled.
	kv, err := js.KeyValue(t.Context(), "F_OWNERS")
	if err != nil {
		t.Fatal(err)
	}
	if err := kv.Delete(t.Context(), "partition.0"); err != nil {
		t.Fatal(err)
	}
	stopB := run("b", store)
	defer stopB()
	waitFor(t, 30*time.Second, "detector b to take the partition over", func() bool { return ownersIn(t, js, "F_OWNERS")[0] == "b" })
	waitFor(t, 30*time.Second, "b to raise the fire", func() bool { acc, _ := store.lists(); return len(acc) > 0 })
	close(stalled.release)
	waitFor(t, 30*time.Second, "a's stale raise to be refused", func() bool { _, ref := store.lists(); return len(ref) > 0 })
	stopA()
	acc, ref := store.lists()
	fires := 0
	for _, l := range acc {
		if l[:len(violations.BinFire)] == violations.BinFire {
			fires++
		}
	}
	if fires != 1 {
		t.Fatalf("accepted %v (refused %v), want the fire once, from b", acc, ref)
	}
	t.Logf("accepted %v; refused %v", acc, ref)
}

// ownersIn reads a lease bucket: partition -> owner id.
func ownersIn(t *testing.T, js jetstream.JetStream, bucket string) map[int]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out := map[int]string{}
	kv, err := js.KeyValue(ctx, bucket)
	if err != nil {
		return out
	}
	if e, err := kv.Get(ctx, "partition.0"); err == nil {
		out[0] = string(e.Value())
	}
	return out
}
