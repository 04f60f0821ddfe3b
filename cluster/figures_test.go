package cluster_test

import (
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sanigate/sanigate/cluster"
	"github.com/sanigate/sanigate/internal/natstest"
	"github.com/sanigate/sanigate/telemetry"
)

// TestForwardLatencyFigures measures what cluster mode adds to a reading's
// path at a steady rate: the time from the spool's fsync (when the device
// gets its PUBACK) to the reading being stored in a stream replicated on
// three nodes. It runs when SANIGATE_CLUSTER_FIGURES is rate:duration, for
// example 2000:10s.
func TestForwardLatencyFigures(t *testing.T) {
	spec := os.Getenv("SANIGATE_CLUSTER_FIGURES")
	if spec == "" {
		t.Skip("set SANIGATE_CLUSTER_FIGURES=rate:duration (for example 2000:10s) to measure")
	}
	rateS, durS, _ := strings.Cut(spec, ":")
	rate, err := strconv.Atoi(rateS)
	if err != nil || rate <= 0 {
		t.Fatalf("SANIGATE_CLUSTER_FIGURES: bad rate %q", rateS)
	}
	dur, err := time.ParseDuration(durS)
	if err != nil {
		t.Fatalf("SANIGATE_CLUSTER_FIGURES: %v", err)
	}
	nc := natstest.Start(t, 3)
	_, js := nc.Connect(t)
	sp := openSpool(t, t.TempDir())
	cons, err := sp.Consumer("cluster")
	if err != nil {
		t.Fatal(err)
	}
	so := cluster.StreamOptions{Name: "F", Replicas: 3}.WithDefaults()
	if _, err := cluster.EnsureStream(t.Context(), js, so); err != nil {
		t.Fatal(err)
	}
	natstest.WaitStream(t, js, "F")
	r := startForwarderWindow(t, cons, nc.URLList(), so, 1024)

	var mu sync.Mutex
	synced := map[string]time.Time{} // msg id -> fsync done
	base := time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	perTick := max(rate/100, 1)
	n := 0
	for end := time.Now().Add(dur); time.Now().Before(end); {
		<-tick.C
		for range perTick {
			dev := fmt.Sprintf("bin-%03d", n%200)
			rec := telemetry.AppendLine(nil, &telemetry.Reading{Device: dev, Kind: telemetry.KindBin, Time: base.Add(time.Duration(n) * time.Millisecond),
				Fields: []telemetry.Field{{Name: "fill_pct", Type: telemetry.Float, Num: float64(n % 100)}}})
			id := cluster.MsgID(dev, rec)
			if err := sp.AppendNotify(rec, func(error) {
				now := time.Now()
				mu.Lock()
				synced[id] = now
				mu.Unlock()
			}); err != nil {
				t.Fatal(err)
			}
			n++
		}
	}
	waitCaughtUp(t, cons)
	r.stop()
	msgs := natstest.Messages(t, js, "F")
	if len(msgs) != n {
		t.Fatalf("stream holds %d readings, %d appended", len(msgs), n)
	}
	var added, whole []time.Duration
	mu.Lock()
	for _, m := range msgs {
		s, ok := synced[m.Header.Get(jetstream.MsgIDHeader)]
		if !ok {
			t.Fatalf("seq %d: unknown message id", m.Seq)
		}
		app, _ := strconv.ParseInt(m.Header.Get(cluster.AppendedHeader), 10, 64)
		added = append(added, m.Stored.Sub(s))
		whole = append(whole, m.Stored.Sub(time.Unix(0, app)))
	}
	mu.Unlock()
	q := func(ds []time.Duration, p float64) time.Duration {
		sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
		return ds[min(int(p*float64(len(ds))), len(ds)-1)]
	}
	t.Logf("%d readings at %d/s for %s, replicas 3: fsync (PUBACK) to stored in the stream p50 %s p99 %s max %s; append to stored p50 %s p99 %s",
		n, rate, dur, q(added, 0.5), q(added, 0.99), q(added, 1), q(whole, 0.5), q(whole, 0.99))
}
