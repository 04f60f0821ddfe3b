package scenario_test

import (
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/sanigate/sanigate/simulators/scenario"
	"github.com/sanigate/sanigate/violations"
)

// day is a Sunday in the past: the GPS filters refuse fixes from the future.
var day = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func TestScenarioDays(t *testing.T) {
	cfg := loadDemo(t)
	seeds := []uint64{1, 2, 3}
	if testing.Short() {
		seeds = seeds[:1]
	}
	for _, seed := range seeds {
		t.Run(strings.ReplaceAll(time.Duration(seed).String(), "ns", ""), func(t *testing.T) {
			sc, err := scenario.Generate(cfg, seed, day)
			if err != nil {
				t.Fatal(err)
			}
			types := map[string]bool{}
			for _, x := range sc.Truth {
				types[x.Type] = true
			}
			if len(types) < 18 {
				t.Errorf("only %d types injected: %v", len(types), types)
			}
			live, _ := runScenario(t, cfg, sc, sc.Live())
			printScores(t, "live", evaluate(t, sc.Truth, live))
			if seed != seeds[0] {
				return // batched feeding is compared on the first seed: it costs a second run
			}
			batched, eng := runScenario(t, cfg, sc, sc.Batched(time.Hour))
			if eng.Late() != 0 {
				t.Errorf("%d readings counted late in batched uploads", eng.Late())
			}
			a, b := fingerprints(live), fingerprints(batched)
			if strings.Join(a, "\n") != strings.Join(b, "\n") {
				t.Errorf("live and batched differ:\nlive:\n%s\nbatched:\n%s", strings.Join(a, "\n"), strings.Join(b, "\n"))
			}
		})
	}
}

func fingerprints(vs []violations.Violation) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = fingerprint(v)
	}
	sort.Strings(out)
	return out
}
