package violations_test

import (
	"context"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sanigate/sanigate/simulators/scenario"
	"github.com/sanigate/sanigate/telemetry"
	"github.com/sanigate/sanigate/telemetry/spool"
	"github.com/sanigate/sanigate/violations"
)

// stream is three hours of three toilets, one record per reading, with an
// odour episode, a cold spell and a silence crossing the middle.
func stream() []telemetry.Reading {
	var rs []telemetry.Reading
	rs = append(rs, toiletDay("toilet-02", at(10, 0), 180, func(i int, f map[string]float64) {
		if i >= 20 && i < 50 {
			f["nh3_mgm3"] = 1.5
		}
	})...)
	rs = append(rs, toiletDay("toilet-03", at(10, 0), 180, func(i int, f map[string]float64) {
		if i >= 50 && i < 100 {
			f["temp_c"] = 8
		}
	})...)
	for _, r := range toiletDay("toilet-05", at(10, 0), 180, nil) {
		if m := r.Time.Sub(at(10, 0)).Minutes(); m < 60 || m >= 80 {
			rs = append(rs, r)
		}
	}
	sort.SliceStable(rs, func(i, j int) bool { return rs[i].Time.Before(rs[j].Time) })
	return rs
}

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

// runUntil runs the engine on the spool until its cursor reaches end.
func runUntil(t *testing.T, e *violations.Engine, sp *spool.Spool, end int64) {
	t.Helper()
	cons, err := sp.Consumer("detectors")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx, cons) }()
	deadline := time.Now().Add(20 * time.Second)
	for cons.Committed() < end && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(30 * time.Millisecond) // let the clock tick once more
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if cons.Committed() < end {
		t.Fatalf("cursor at %d, want %d", cons.Committed(), end)
	}
}

func TestRunResumesAfterRestart(t *testing.T) {
	cfg := loadDemo(t)
	dc := violations.DefaultConfig()
	rs := stream()
	half := at(11, 30)

	// Only the devices fed are watched: the rest of the fleet, never heard
	// from, would be flagged offline from the clock's first tick, which
	// comes at other times here and in the runs.
	fed := map[string]bool{}
	for _, r := range rs {
		fed[r.Device] = true
	}
	watch := func(id string) bool { return fed[id] }

	// The reference: everything at once, through ProcessReadings.
	ref := &collector{}
	e := violations.NewEngine(cfg, dc, ref, violations.EngineOptions{Watch: watch})
	if err := e.ProcessReadings(context.Background(), rs); err != nil {
		t.Fatal(err)
	}
	if err := e.AdvanceTo(context.Background(), at(12, 59).Add(-dc.ClockGrace.D())); err != nil {
		t.Fatal(err)
	}

	dir, state := t.TempDir(), t.TempDir()
	sp, _, err := spool.Open(dir, spool.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	var end int64
	appendUntil := func(stop time.Time) {
		for len(rs) > 0 && rs[0].Time.Before(stop) {
			// Wait for the disk only on the last of the batch: one sync.
			last := len(rs) == 1 || !rs[1].Time.Before(stop)
			if err := sp.Append(telemetry.AppendLine(nil, &rs[0]), last); err != nil {
				t.Fatal(err)
			}
			rs = rs[1:]
		}
		end = sp.Stats().Bytes
	}
	col := &collector{}
	clk := &clock{t: half}
	opts := violations.EngineOptions{Shards: 3, StateDir: state, Now: clk.now, Tick: 5 * time.Millisecond, Checkpoint: 10 * time.Millisecond,
		Registerer: prometheus.NewRegistry(), Watch: watch}
	appendUntil(half)
	runUntil(t, violations.NewEngine(cfg, dc, col, opts), sp, end)
	first := len(col.List())
	appendUntil(at(13, 0))
	clk.t = at(12, 59)
	runUntil(t, violations.NewEngine(cfg, dc, col, opts), sp, end)
	if first == 0 || len(col.List()) == first {
		t.Errorf("raised %d before the restart and %d after: want some of each", first, len(col.List())-first)
	}
	got, want := fingerprints(col.List()), fingerprints(ref.List())
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("across a restart:\n%s\nall at once:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func fingerprints(vs []violations.Violation) []string {
	var out []string
	for _, v := range vs {
		out = append(out, v.Key+" "+v.Severity+" "+v.End.UTC().Format(time.RFC3339)+" "+map[bool]string{true: "resolved", false: "open"}[v.Resolved])
	}
	sort.Strings(out)
	return out
}

func TestMetrics(t *testing.T) {
	cfg := loadDemo(t)
	reg := prometheus.NewRegistry()
	e := violations.NewEngine(cfg, violations.DefaultConfig(), &collector{}, violations.EngineOptions{Registerer: reg,
		MaxAge: 20 * time.Minute})
	ctx := context.Background()
	if err := e.ProcessReadings(ctx, toiletDay("toilet-02", at(10, 0), 60, nil)); err != nil {
		t.Fatal(err)
	}
	// Older than MaxAge behind what the device passed: left out.
	if err := e.ProcessReadings(ctx, toiletDay("toilet-02", at(9, 0), 1, nil)); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	late := 0.0
	for _, mf := range mfs {
		if mf.GetName() == "sanigate_violation_late_readings_total" {
			for _, m := range mf.GetMetric() {
				late += m.GetCounter().GetValue()
			}
		}
	}
	if late != 1 {
		t.Errorf("sanigate_violation_late_readings_total = %g, want 1", late)
	}
}

// BenchmarkEngine measures detector CPU per reading over a simulated day of
// the demo fleet (decoding excluded).
func BenchmarkEngine(b *testing.B) {
	cfg := loadDemo(b)
	sc, err := scenario.Generate(cfg, 1, time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	if err != nil {
		b.Fatal(err)
	}
	var now time.Time
	codec := telemetry.NewCodec()
	codec.Now = func() time.Time { return now }
	kinds := map[string]string{}
	for _, d := range cfg.Devices {
		kinds[d.ID] = d.Kind
	}
	var batches [][]telemetry.Reading
	n := 0
	for _, m := range sc.Messages {
		now = m.PublishAt.Add(time.Minute)
		rs, err := codec.Decode(m.Device, kinds[m.Device], m.Channel == "events", m.Payload)
		if err != nil {
			b.Fatal(err)
		}
		batches = append(batches, rs)
		n += len(rs)
	}
	ctx := context.Background()
	b.ResetTimer()
	for b.Loop() {
		e := violations.NewEngine(cfg, violations.DefaultConfig(), &collector{}, violations.EngineOptions{Shards: 1})
		for _, rs := range batches {
			if err := e.ProcessReadings(ctx, rs); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/reading")
}
