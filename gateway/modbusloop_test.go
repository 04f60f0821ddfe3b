package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sanigate/sanigate/internal/testenv"
	"github.com/sanigate/sanigate/simulators/modbussim"
	"github.com/sanigate/sanigate/telemetry"
)

// readyProblems returns /readyz's status and problems.
func readyProblems(t *testing.T, h *harness) (int, []string) {
	t.Helper()
	resp, err := http.Get("http://" + h.g.HTTPAddr() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Problems []string `json:"problems"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body.Problems
}

// A panic in one Modbus device's polling loop is recovered: the restart is
// counted as component modbus/<device> with reason panic, /readyz reports
// the loop down while it waits to restart, and the device's readings keep
// reaching InfluxDB afterwards.
func TestModbusDeviceLoopPanicIsSupervised(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	toilet, err := modbussim.Start(ctx, "toilet_controller", "127.0.0.1:0", modbussim.Options{Seed: 1, Step: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer toilet.Close()

	// The third batch of the toilet's readings panics inside its loop.
	var batches atomic.Int32
	tap := func(rs []telemetry.Reading) {
		if len(rs) > 0 && rs[0].Device == "toilet-m01" && batches.Add(1) == 3 {
			panic("injected fault in the toilet's polling loop")
		}
	}
	emitTap.Store(&tap)
	defer emitTap.Store(nil)

	more := "  - {id: toilet-m01, kind: toilet, class: 1, contractor: greenclean, district: north, transport: modbus}\n"
	sections := fmt.Sprintf(`modbus:
  devices:
    - {id: toilet-m01, kind: toilet, transport: tcp, address: %q, unit_id: 1, poll_interval: 200ms, timeout: 150ms, profile: toilet_controller, backoff_min: 3s, backoff_max: 6s}
`, toilet.Addr())
	h := newHarnessYAML(t, more, sections)

	restarts := map[string]string{"component": "modbus/toilet-m01", "reason": "panic"}
	testenv.Eventually(t, 15*time.Second, "the loop to be reported down in /readyz", func() bool {
		code, problems := readyProblems(t, h)
		return code == http.StatusServiceUnavailable && strings.Contains(strings.Join(problems, ";"), "modbus/toilet-m01 down")
	})
	if got := h.metric("sanigate_component_restarts_total", restarts); got != 1 {
		t.Errorf("restarts of modbus/toilet-m01: got %v, want 1", got)
	}
	before := h.influx.Count(t, "toilet", "nh3_mgm3", `"device"='toilet-m01'`)
	testenv.Eventually(t, 20*time.Second, "readings after the restart", func() bool {
		return h.influx.Count(t, "toilet", "nh3_mgm3", `"device"='toilet-m01'`) >= before+3
	})
	_, problems := readyProblems(t, h)
	if strings.Contains(strings.Join(problems, ";"), "modbus/") {
		t.Errorf("after the restart /readyz still reports: %v", problems)
	}
	if got := h.metric("sanigate_component_restarts_total", restarts); got != 1 {
		t.Errorf("restarts of modbus/toilet-m01 after it ran again: got %v, want 1", got)
	}
	if got := h.metric("sanigate_modbus_loop_restarts_total", map[string]string{"device": "toilet-m01", "reason": "panic"}); got != 1 {
		t.Errorf("sanigate_modbus_loop_restarts_total: got %v, want 1", got)
	}
}
