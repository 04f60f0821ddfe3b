package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/sanigate/sanigate/internal/testenv"
	"github.com/sanigate/sanigate/simulators/modbussim"
	"github.com/sanigate/sanigate/telemetry"
)

// Modbus readings reach InfluxDB through the same path as MQTT readings, with
// the same measurement and tags.
func TestModbusReadingsReachInfluxDB(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	toilet, err := modbussim.Start(ctx, "toilet_controller", "127.0.0.1:0", modbussim.Options{Seed: 1, Step: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer toilet.Close()
	bridge, err := modbussim.Start(ctx, "weighbridge", "127.0.0.1:0", modbussim.Options{Seed: 2, Step: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer bridge.Close()
	for name, v := range map[string]float64{"nh3_mgm3": 0.75, "h2s_mgm3": 0.005, "temp_c": 19.5, "paper_pct": 44} {
		if err := toilet.SetField(name, telemetry.Field{Name: name, Type: telemetry.Float, Num: v}); err != nil {
			t.Fatal(err)
		}
	}
	more := `  - {id: toilet-m01, kind: toilet, class: 1, contractor: greenclean, district: north, transport: modbus}
  - {id: weighbridge-01, kind: weighbridge, contractor: greenclean, district: south, transport: modbus}
`
	sections := fmt.Sprintf(`modbus:
  devices:
    - {id: toilet-m01, kind: toilet, transport: tcp, address: %q, unit_id: 1, poll_interval: 200ms, timeout: 150ms, profile: toilet_controller}
    - {id: weighbridge-01, kind: weighbridge, transport: tcp, address: %q, unit_id: 1, poll_interval: 200ms, timeout: 150ms, profile: weighbridge, site: kw-plant}
`, toilet.Addr(), bridge.Addr())
	h := newHarnessYAML(t, more, sections)

	// The same kind over MQTT, for comparing measurement and tags.
	c := h.mustConnect("toilet-1")
	publish(t, c, topic("toilet-1", "telemetry"), 1, fmt.Sprintf(`{"ts":%q,"nh3_mgm3":0.2}`, time.Now().Add(-time.Second).UTC().Format(time.RFC3339Nano)))

	testenv.Eventually(t, 15*time.Second, "modbus toilet readings", func() bool {
		return h.influx.Count(t, "toilet", "nh3_mgm3", `"device"='toilet-m01'`) >= 3 && h.influx.Count(t, "toilet", "nh3_mgm3", `"device"='toilet-1'`) == 1
	})
	rows := h.influx.Rows(t, `SELECT * FROM "toilet" WHERE "device"='toilet-m01' LIMIT 1`)
	r := rows[0]
	for name, want := range map[string]float64{"nh3_mgm3": 0.75, "h2s_mgm3": 0.005, "temp_c": 19.5, "paper_pct": 44} {
		n, _ := r[name].(json.Number).Float64()
		if math.Abs(n-want) > 1e-6 {
			t.Errorf("%s: got %v, want %v", name, n, want)
		}
	}
	if r["contractor"] != "greenclean" || r["district"] != "north" {
		t.Errorf("modbus toilet tags: got %v", r)
	}
	// Same tag keys and field types as the MQTT toilet: InfluxDB would refuse
	// a field whose type differs, so both being stored proves the types agree.
	keys, err := h.influx.Query(`SHOW TAG KEYS FROM "toilet"`)
	if err != nil {
		t.Fatal(err)
	}
	var tagKeys []string
	for _, v := range keys[0].Values {
		tagKeys = append(tagKeys, fmt.Sprint(v[0]))
	}
	if fmt.Sprint(tagKeys) != "[contractor device district]" {
		t.Errorf("toilet tag keys: got %v", tagKeys)
	}
	if got := h.metric("sanigate_messages_accepted_total", map[string]string{"kind": "toilet", "transport": "modbus"}); got < 3 {
		t.Errorf("accepted modbus toilet messages: got %v", got)
	}
	if got := h.g.Poller().LastSuccess("toilet-m01"); got.IsZero() {
		t.Error("no last success for the polled toilet")
	}
	// The weighbridge reports its weighings as events, tagged with its site.
	testenv.Eventually(t, 10*time.Second, "a weighing event", func() bool {
		return len(h.influx.Rows(t, `SELECT * FROM "forever"."event" WHERE "event"='weighing'`)) >= 1
	})
	ev := h.influx.Rows(t, `SELECT * FROM "forever"."event" WHERE "event"='weighing'`)[0]
	if ev["device"] != "weighbridge-01" || ev["kind"] != "weighbridge" || ev["site"] != "kw-plant" {
		t.Errorf("weighing event: got %v", ev)
	}
}
