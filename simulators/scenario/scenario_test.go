package scenario_test

import (
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/sanigate/sanigate/simulators/scenario"
	"github.com/sanigate/sanigate/violations"
)

// days are in the past (the GPS filters refuse fixes from the future): a
// Sunday, a Monday and a Wednesday, for the routes that run on weekdays.
var days = map[uint64]time.Time{
	1: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC),
	2: time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC),
	3: time.Date(2026, 3, 4, 12, 0, 0, 0, time.UTC),
}

func TestScenarioDays(t *testing.T) {
	cfg := loadDemo(t)
	seeds := []uint64{1, 2, 3}
	if testing.Short() {
		seeds = seeds[:1]
	}
	for _, seed := range seeds {
		day := days[seed]
		t.Run(fmt.Sprintf("seed%d-%s", seed, day.Format("Mon")), func(t *testing.T) {
			sc, err := scenario.Generate(cfg, seed, day)
			if err != nil {
				t.Fatal(err)
			}
			types := map[string]bool{}
			for _, x := range sc.Truth {
				types[x.Type] = true
			}
			if len(types) < len(violations.Types) {
				t.Errorf("only %d types injected: %v", len(types), types)
			}
			live, _ := runScenario(t, cfg, sc, sc.Live())
			printScores(t, fmt.Sprintf("seed %d, %s", seed, day.Format("Mon 2006-01-02")), evaluate(t, sc.Truth, live))
			a := fingerprints(live)
			if seed == seeds[0] { // batched feeding is compared on the first seed: it costs a run
				batched, eng := runScenario(t, cfg, sc, sc.Batched(time.Hour))
				if eng.Late() != 0 {
					t.Errorf("%d readings counted late in batched uploads", eng.Late())
				}
				if b := fingerprints(batched); strings.Join(a, "\n") != strings.Join(b, "\n") {
					t.Errorf("live and batched differ:\nlive:\n%s\nbatched:\n%s", strings.Join(a, "\n"), strings.Join(b, "\n"))
				}
			}
			// Resends, backfills after live data and uploads hours late,
			// with the default thresholds: each device is judged in its own
			// event time, so the verdicts are those of the live feed.
			msgs, notes := lateFeed(sc)
			t.Logf("held back: %s", strings.Join(notes, "; "))
			late, eng := runScenario(t, cfg, sc, msgs)
			printScores(t, "late and repeated", evaluate(t, sc.Truth, late))
			if eng.Late() != 0 {
				t.Errorf("%d readings counted late", eng.Late())
			}
			if c := fingerprints(late); strings.Join(a, "\n") != strings.Join(c, "\n") {
				t.Errorf("live and late differ:\nlive:\n%s\nlate:\n%s", strings.Join(a, "\n"), strings.Join(c, "\n"))
			}
		})
	}
}

// lateFeed is the live day with QoS 1 resends of every kind (one message in
// 37 published twice) and, for every truck with an injected violation, the
// hour around its first one held back: uploaded 29 minutes after the hour
// ends (a backfill after later live data) or 3 hours after it (out of
// coverage for long), in turns.
func lateFeed(sc *scenario.Scenario) ([]scenario.Message, []string) {
	msgs := scenario.Resend(sc.Live(), 37)
	first := map[string]time.Time{}
	var trucks []string
	for _, x := range sc.Truth {
		if !strings.HasPrefix(x.Device, "truck-") {
			continue
		}
		if _, ok := first[x.Device]; !ok {
			first[x.Device] = x.Start
			trucks = append(trucks, x.Device)
		}
	}
	sort.Strings(trucks)
	var notes []string
	for i, dev := range trucks {
		from := first[dev].Add(-20 * time.Minute)
		delay := 29 * time.Minute
		if i%2 == 1 {
			delay = 3 * time.Hour
		}
		msgs = scenario.Hold(msgs, dev, from, from.Add(time.Hour), delay)
		notes = append(notes, fmt.Sprintf("%s %s-%s +%s", dev, from.Format("15:04"), from.Add(time.Hour).Format("15:04"), delay))
	}
	return msgs, notes
}

func fingerprints(vs []violations.Violation) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = fingerprint(v)
	}
	sort.Strings(out)
	return out
}
