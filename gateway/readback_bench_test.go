package gateway

import (
	"bytes"
	"context"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sanigate/sanigate/fleet"
	"github.com/sanigate/sanigate/internal/influxtest"
	"github.com/sanigate/sanigate/telemetry"
	"github.com/sanigate/sanigate/violations"
)

// benchTruck is a truck driving at 30 km/h, reporting every 5 s from t0 for
// span, as readings.
func benchTruck(t0 time.Time, span time.Duration) []telemetry.Reading {
	var out []telemetry.Reading
	lon := 116.30
	for t := t0; t.Before(t0.Add(span)); t = t.Add(5 * time.Second) {
		r := telemetry.Reading{Device: "truck-01", Kind: telemetry.KindTruck, Time: t, District: "south", Category: "kitchen"}
		r.SetFloat("lat", 39.80)
		r.SetFloat("lon", lon)
		r.SetFloat("speed_kmh", 30)
		r.SetFloat("heading_deg", 90)
		r.SetFloat("hdop", 0.8)
		r.SetFloat("load_kg", 3000)
		r.SetBool("ignition", true)
		r.SetBool("tipper", false)
		out = append(out, r)
		lon += 0.0005
	}
	return out
}

// writeLines writes line protocol straight to InfluxDB's 1.x write endpoint.
func writeLines(tb testing.TB, s *influxtest.Server, lines []byte) {
	tb.Helper()
	u := s.URL + "/write?" + url.Values{"db": {s.Database}, "precision": {"ns"}}.Encode()
	resp, err := http.Post(u, "text/plain", bytes.NewReader(lines))
	if err != nil {
		tb.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		tb.Fatalf("write: %s", resp.Status)
	}
}

// BenchmarkReadback measures what re-judging a span older than the
// detectors' memory costs: a truck's 3 h of readings every 5 s (2,160) read
// back from a real InfluxDB ("query"), and the whole read-back a late
// reading in the middle of those 3 h sets off: the queries, the merge with
// what the device holds in memory, the fresh re-run and the reconciliation
// ("rerun").
func BenchmarkReadback(b *testing.B) {
	s := influxtest.Start(b, "bench")
	t0 := time.Date(2026, 3, 2, 6, 0, 0, 0, time.UTC)
	rs := benchTruck(t0, 3*time.Hour)
	var lines []byte
	for i := range rs {
		lines = telemetry.AppendLine(lines, &rs[i])
	}
	writeLines(b, s, lines)
	hist := &influxReadback{url: s.URL, bucket: s.Database, client: &http.Client{Timeout: 30 * time.Second}}
	ctx := context.Background()

	b.Run("query", func(b *testing.B) {
		n := 0
		for b.Loop() {
			got, err := hist.Readings(ctx, "truck-01", telemetry.KindTruck, t0, t0.Add(3*time.Hour))
			if err != nil {
				b.Fatal(err)
			}
			n = len(got)
		}
		if n != len(rs) {
			b.Fatalf("read back %d readings, wrote %d", n, len(rs))
		}
		b.ReportMetric(float64(n), "readings/op")
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/reading")
	})

	b.Run("rerun", func(b *testing.B) {
		cfg := &fleet.Config{Devices: []fleet.Device{{ID: "truck-01", Kind: telemetry.KindTruck, Category: "kitchen", CapacityKG: 8000}}}
		dc := violations.DefaultConfig()
		dc.ReplayWindow = fleet.Duration(10 * time.Minute)
		dc.MarkEvery = fleet.Duration(2 * time.Minute)
		live := rs[len(rs)-360:] // the last 30 min, in memory
		late := rs[len(rs)/2]
		late.Fields = append([]telemetry.Field(nil), late.Fields...)
		late.SetFloat("load_kg", 2990) // a correction of a stored reading
		var reg *prometheus.Registry
		for b.Loop() {
			b.StopTimer()
			reg = prometheus.NewRegistry()
			e := violations.NewEngine(cfg, dc, discardSink{}, violations.EngineOptions{Shards: 1, History: hist, Registerer: reg})
			if err := e.ProcessReadings(ctx, live); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			if err := e.ProcessReadings(ctx, []telemetry.Reading{late}); err != nil {
				b.Fatal(err)
			}
			if e.Late() != 0 {
				b.Fatal("the late reading was left out")
			}
		}
		if n := registryCounter(b, reg, "sanigate_violation_readbacks_total"); n != 1 {
			b.Fatalf("read-backs: %g, want 1 (the late reading was re-run from memory?)", n)
		}
		b.ReportMetric(registryCounter(b, reg, "sanigate_violation_readback_readings_total"), "readings-read-back/op")
	})
}

// discardSink takes violations and keeps nothing.
type discardSink struct{}

func (discardSink) Raise(context.Context, violations.Violation) error { return nil }

func (discardSink) Withdraw(context.Context, violations.Violation, string) error { return nil }

// registryCounter reads a counter from a registry, 0 when absent.
func registryCounter(tb testing.TB, reg *prometheus.Registry, name string) float64 {
	tb.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		tb.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) > 0 {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	return 0
}
