package cluster_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sanigate/sanigate/cluster"
	"github.com/sanigate/sanigate/internal/natstest"
	"github.com/sanigate/sanigate/telemetry"
	"github.com/sanigate/sanigate/telemetry/spool"
	"github.com/sanigate/sanigate/violations"
)

// fill appends n readings spread over devices, with a violation record
// (which stays local) after every tenth, and returns the readings' msg ids.
func fill(t *testing.T, sp *spool.Spool, from, n, devices int) map[string]string {
	t.Helper()
	ids := map[string]string{}
	base := time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)
	for i := from; i < from+n; i++ {
		dev := fmt.Sprintf("bin-%03d", i%devices)
		r := telemetry.Reading{Device: dev, Kind: telemetry.KindBin, Time: base.Add(time.Duration(i) * time.Second),
			Fields: []telemetry.Field{{Name: "fill_pct", Type: telemetry.Float, Num: float64(i % 100)}}}
		rec := telemetry.AppendLine(nil, &r)
		if err := sp.Append(rec, true); err != nil {
			t.Fatal(err)
		}
		ids[cluster.MsgID(dev, rec)] = dev
		if i%10 == 9 {
			v := violations.Violation{Key: fmt.Sprintf("k%d", i), Type: "overflow", Device: dev, Severity: "minor", Start: r.Time, End: r.Time}
			if err := sp.Append(violations.AppendLine(nil, &v), true); err != nil {
				t.Fatal(err)
			}
		}
	}
	return ids
}

type running struct {
	f      *cluster.Forwarder
	reg    *prometheus.Registry
	cancel context.CancelFunc
	wg     sync.WaitGroup
	err    error
}

func startForwarder(t *testing.T, cons *spool.Consumer, urls []string, so cluster.StreamOptions) *running {
	t.Helper()
	return startForwarderWindow(t, cons, urls, so, 64)
}

func startForwarderWindow(t testing.TB, cons *spool.Consumer, urls []string, so cluster.StreamOptions, window int) *running {
	t.Helper()
	r := &running{reg: prometheus.NewRegistry()}
	f, err := cluster.NewForwarder(cons, cluster.ForwarderOptions{
		URLs: urls, Stream: so, Select: cluster.SelectReadings, Window: window,
		AckTimeout: 2 * time.Second, Registerer: r.reg,
	})
	if err != nil {
		t.Fatal(err)
	}
	r.f = f
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	r.wg.Add(1)
	go func() { defer r.wg.Done(); r.err = f.Run(ctx) }()
	t.Cleanup(r.stop)
	return r
}

func (r *running) stop() {
	r.cancel()
	r.wg.Wait()
}

// waitCaughtUp waits until the consumer has committed everything synced.
func waitCaughtUp(t testing.TB, cons *spool.Consumer) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for cons.Lag() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("forwarder still %d bytes behind after 60s", cons.Lag())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// checkStream asserts the stream holds exactly the readings in want, once
// each, on the subject of their device's partition.
func checkStream(t *testing.T, js jetstream.JetStream, so cluster.StreamOptions, want map[string]string) {
	t.Helper()
	msgs := natstest.Messages(t, js, so.Name)
	seen := map[string]bool{}
	for _, m := range msgs {
		id := m.Header.Get(jetstream.MsgIDHeader)
		dev, ok := want[id]
		if !ok {
			t.Errorf("seq %d: unexpected message id %q (%q)", m.Seq, id, m.Data)
			continue
		}
		if seen[id] {
			t.Errorf("seq %d: message id %s stored twice", m.Seq, id)
		}
		seen[id] = true
		if got, exp := m.Subject, cluster.Subject(so.SubjectPrefix, cluster.Partition(dev, so.Partitions)); got != exp {
			t.Errorf("seq %d: subject %s, want %s", m.Seq, got, exp)
		}
		if got, exp := cluster.MsgID(dev, m.Data), id; got != exp {
			t.Errorf("seq %d: data does not hash to its id", m.Seq)
		}
	}
	if len(msgs) != len(want) || len(seen) != len(want) {
		t.Fatalf("stream holds %d messages (%d distinct ids), want %d", len(msgs), len(seen), len(want))
	}
}

func openSpool(t testing.TB, dir string) *spool.Spool {
	t.Helper()
	sp, _, err := spool.Open(dir, spool.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sp.Close() })
	return sp
}

// TestForwardOncePerReading sends readings through one node: every reading
// is stored once on its partition's subject, derived records stay local, and
// a replay of the whole spool (a lost cursor) adds nothing.
func TestForwardOncePerReading(t *testing.T) {
	nc := natstest.Start(t, 1)
	_, js := nc.Connect(t)
	dir := t.TempDir()
	sp := openSpool(t, dir)
	cons, err := sp.Consumer("cluster")
	if err != nil {
		t.Fatal(err)
	}
	so := cluster.StreamOptions{Name: "R", Partitions: 8}.WithDefaults()
	want := fill(t, sp, 0, 500, 37)
	r := startForwarder(t, cons, nc.URLList(), so)
	waitCaughtUp(t, cons)
	for id, dev := range fill(t, sp, 500, 500, 37) {
		want[id] = dev
	}
	waitCaughtUp(t, cons)
	checkStream(t, js, so, want)
	if got := value(t, r.reg, "sanigate_cluster_forwarded_total"); got != 1000 {
		t.Errorf("forwarded_total %v, want 1000", got)
	}
	r.stop()
	if r.err != nil {
		t.Fatal(r.err)
	}

	// A lost cursor (a consumer new to the spool reads it from the start):
	// everything is sent again, and the stream drops it all.
	again, err := sp.Consumer("again")
	if err != nil {
		t.Fatal(err)
	}
	if again.Lag() == 0 {
		t.Fatal("a new consumer has nothing to replay")
	}
	r2 := startForwarder(t, again, nc.URLList(), so)
	waitCaughtUp(t, again)
	r2.stop()
	checkStream(t, js, so, want)
	if got := value(t, r2.reg, "sanigate_cluster_forward_duplicates_total"); got != 1000 {
		t.Errorf("duplicates_total %v after a full replay, want 1000", got)
	}
}

// TestForwardHoldsWhileNATSIsDown starts with the only node down: the cursor
// stays put, and everything goes once the node is back.
func TestForwardHoldsWhileNATSIsDown(t *testing.T) {
	nc := natstest.Start(t, 1)
	_, js := nc.Connect(t)
	sp := openSpool(t, t.TempDir())
	cons, err := sp.Consumer("cluster")
	if err != nil {
		t.Fatal(err)
	}
	so := cluster.StreamOptions{Name: "R", Partitions: 4}.WithDefaults()
	want := fill(t, sp, 0, 200, 5)
	r := startForwarder(t, cons, nc.URLList(), so)
	waitCaughtUp(t, cons)

	nc.Nodes[0].Kill()
	for id, dev := range fill(t, sp, 200, 300, 5) {
		want[id] = dev
	}
	held := cons.Committed()
	time.Sleep(500 * time.Millisecond)
	if cons.Committed() != held || cons.Lag() == 0 {
		t.Fatalf("cursor moved to %d (from %d, lag %d) while NATS was down", cons.Committed(), held, cons.Lag())
	}
	if r.f.Connected() {
		t.Error("forwarder says it is connected while the only node is down")
	}
	if err := nc.Nodes[0].Restart(); err != nil {
		t.Fatal(err)
	}
	waitCaughtUp(t, cons)
	checkStream(t, js, so, want)
}

// value is the value of the counter or gauge called name in reg.
func value(t testing.TB, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) > 0 {
			m := mf.GetMetric()[0]
			return m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}
