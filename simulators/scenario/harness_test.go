package scenario_test

import (
	"context"
	"fmt"
	"math"
	"sort"
	"testing"
	"time"

	"github.com/sanigate/sanigate/fleet"
	"github.com/sanigate/sanigate/internal/violationstest"
	"github.com/sanigate/sanigate/simulators/scenario"
	"github.com/sanigate/sanigate/telemetry"
	"github.com/sanigate/sanigate/violations"
)

func loadDemo(t testing.TB) *fleet.Config { return violationstest.Demo(t) }

// collector is a Sink that keeps what it is given.
type collector = violationstest.Collector

type mapPlacer struct{ m *fleet.Places }

func (p mapPlacer) Place(lat, lon float64) (string, []string) {
	l := p.m.Locate(lat, lon)
	return l.District, l.Sites
}

type lineSink struct{ buf []byte }

func (s *lineSink) AppendNotify(rec []byte, done func(error)) error {
	s.buf = append(s.buf[:0], rec...)
	if done != nil {
		done(nil)
	}
	return nil
}

// ingest turns messages into readings through the real ingest pipeline
// (decoding, validation, GPS filters, placing) and the spool's record
// format, handing each message's readings to fn.
func ingest(t testing.TB, cfg *fleet.Config, msgs []scenario.Message, fn func([]telemetry.Reading)) {
	t.Helper()
	var now time.Time
	codec := telemetry.NewCodec()
	codec.Now = func() time.Time { return now }
	sink := &lineSink{}
	p := telemetry.NewPipeline(telemetry.PipelineOptions{Codec: codec, Fleet: fleet.NewRegistry(cfg.Devices),
		Placer: mapPlacer{cfg.Map}, Sink: sink, GPS: fleet.NewGPSFilter(cfg.GPS)})
	for _, m := range msgs {
		now = m.PublishAt.Add(time.Minute)
		if err := p.HandlePublish(m.Device, m.Channel, m.Payload, nil); err != nil {
			t.Fatalf("%s %s at %s: %v", m.Device, m.Channel, m.PublishAt, err)
		}
		rs, err := telemetry.ParseLines(sink.buf)
		if err != nil {
			t.Fatal(err)
		}
		fn(rs)
	}
}

// runScenario feeds msgs to a fresh engine and returns what it raised.
func runScenario(t testing.TB, cfg *fleet.Config, sc *scenario.Scenario, msgs []scenario.Message) ([]violations.Violation, *violations.Engine) {
	t.Helper()
	return runScenarioWith(t, cfg, violations.DefaultConfig(), sc, msgs)
}

// runScenarioWith is runScenario with thresholds dc.
func runScenarioWith(t testing.TB, cfg *fleet.Config, dc violations.Config, sc *scenario.Scenario, msgs []scenario.Message) ([]violations.Violation, *violations.Engine) {
	t.Helper()
	ctx := context.Background()
	col := &collector{}
	eng := violations.NewEngine(cfg, dc, col, violations.EngineOptions{Shards: 3})
	ingest(t, cfg, msgs, func(rs []telemetry.Reading) {
		if err := eng.ProcessReadings(ctx, rs); err != nil {
			t.Fatal(err)
		}
	})
	if err := eng.AdvanceTo(ctx, sc.To); err != nil {
		t.Fatal(err)
	}
	return col.List(), eng
}

// tolerance is how far a raised violation's start may be from the injected
// one's.
const tolerance = 10 * time.Minute

type score struct{ tp, fn, fp int }

// evaluate matches raised violations to the truth: each expected one must be
// raised once (one key), with its start within tolerance, and nothing else.
func evaluate(t *testing.T, truth []scenario.Expected, raised []violations.Violation) map[string]*score {
	t.Helper()
	// The latest unresolved raise of each key (a bin overflow escalates).
	byKey := map[string]violations.Violation{}
	var keys []string
	for _, v := range raised {
		if v.Resolved {
			continue
		}
		if _, ok := byKey[v.Key]; !ok {
			keys = append(keys, v.Key)
		}
		byKey[v.Key] = v
	}
	scores := map[string]*score{}
	for _, typ := range violations.Types {
		scores[typ] = &score{}
	}
	used := map[string]bool{}
	for _, x := range truth {
		var hits []string
		for _, k := range keys {
			v := byKey[k]
			if v.Type != x.Type || v.Device != x.Device || used[k] {
				continue
			}
			if (x.Type == violations.MissedRoute || x.Type == violations.SweepingQuality) && v.Route != x.Place {
				continue
			}
			if d := v.Start.Sub(x.Start); math.Abs(float64(d)) > float64(tolerance) {
				continue
			}
			hits = append(hits, k)
		}
		switch {
		case len(hits) == 0:
			scores[x.Type].fn++
			t.Errorf("missed: %s %s at %s (%s) %s", x.Type, x.Device, x.Start.Format(time.TimeOnly), x.Place, x.Note)
		default:
			scores[x.Type].tp++
			for i, k := range hits {
				used[k] = true
				if i > 0 {
					scores[x.Type].fp++
					t.Errorf("raised twice: %s %s: %s", x.Type, x.Device, k)
				}
			}
			if v := byKey[hits[0]]; x.Severity != "" && v.Severity != x.Severity {
				t.Errorf("%s %s: severity %s, want %s", x.Type, x.Device, v.Severity, x.Severity)
			}
		}
	}
	for _, k := range keys {
		if used[k] {
			continue
		}
		v := byKey[k]
		scores[v.Type].fp++
		t.Errorf("not injected: %s %s %s-%s: %s", v.Type, v.Device, v.Start.Format(time.TimeOnly), v.End.Format(time.TimeOnly), v.Summary)
	}
	return scores
}

func printScores(t *testing.T, title string, scores map[string]*score) {
	t.Helper()
	types := append([]string(nil), violations.Types...)
	sort.Strings(types)
	t.Logf("%s: type                   found missed extra precision recall", title)
	for _, typ := range types {
		s := scores[typ]
		p, r := 1.0, 1.0
		if s.tp+s.fp > 0 {
			p = float64(s.tp) / float64(s.tp+s.fp)
		}
		if s.tp+s.fn > 0 {
			r = float64(s.tp) / float64(s.tp+s.fn)
		}
		t.Logf("%s: %-22s %5d %6d %5d %9.2f %6.2f", title, typ, s.tp, s.fn, s.fp, p, r)
	}
}

// fingerprint is what must agree between live and batched feeding.
func fingerprint(v violations.Violation) string {
	return fmt.Sprintf("%s|%s|%s|%s|%s|%s|%v|%s|%s|%s|%.5f|%.5f", v.Key, v.Type, v.Severity, v.Device,
		v.Start.UTC().Format(time.RFC3339), v.End.UTC().Format(time.RFC3339), v.Resolved, v.Site, v.Route, v.District, v.Lat, v.Lon)
}
