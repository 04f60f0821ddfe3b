package gateway

import (
	"context"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sanigate/sanigate/internal/influxtest"
	"github.com/sanigate/sanigate/internal/testenv"
)

const emfileChildEnv = "SANIGATE_TEST_EMFILE_INFLUX"

// Exhausting the process's file descriptors makes the MQTT listener's
// accepts fail; readiness says so, and once descriptors are free again
// devices connect as before. The gateway runs in a child process whose
// descriptor limit is lowered, so that nothing else in the test binary is
// starved.
func TestAcceptSurvivesDescriptorExhaustion(t *testing.T) {
	if url := os.Getenv(emfileChildEnv); url != "" {
		exhaustDescriptors(t, url)
		return
	}
	influx := influxtest.Start(t, testDB)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestAcceptSurvivesDescriptorExhaustion$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), emfileChildEnv+"="+influx.URL)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: TestAcceptSurvivesDescriptorExhaustion") {
		t.Fatalf("child gateway: %v\n%s", err, out)
	}
	t.Logf("child gateway:\n%s", out)
}

// exhaustDescriptors runs in the child process.
func exhaustDescriptors(t *testing.T, influxURL string) {
	h := &harness{t: t, cfg: testConfig(t, influxURL, testDevices(t)), logs: &strings.Builder{}}
	h.start()
	addr := h.g.MQTTAddr()

	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	var orig syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &orig); err != nil {
		t.Fatal(err)
	}
	low := orig
	low.Cur = uint64(len(fds) + 40)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low); err != nil {
		t.Fatal(err)
	}
	restore := func() { _ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &orig) }
	defer restore()

	// Dial until no descriptor is left, then keep one connection waiting in
	// the backlog, which the listener cannot accept.
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			_ = c.Close()
		}
	}()
	for range 200 {
		c, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			break
		}
		conns = append(conns, c)
	}
	if len(conns) == 0 || len(conns) == 200 {
		t.Fatalf("dialled %d connections; want the limit to stop the dialling", len(conns))
	}
	failing := func() bool { return strings.Contains(strings.Join(h.g.Ready(), ";"), "accepts failing") }
	for i := 0; i < 50 && !failing(); i++ {
		_ = conns[len(conns)-1].Close()
		conns = conns[:len(conns)-1]
		if c, err := net.DialTimeout("tcp", addr, 2*time.Second); err == nil {
			conns = append(conns, c)
		}
		time.Sleep(100 * time.Millisecond)
	}
	testenv.Eventually(t, 10*time.Second, "readiness to report failing accepts", failing)
	t.Logf("while exhausted: %v", h.g.Ready())

	for _, c := range conns {
		_ = c.Close()
	}
	conns = nil
	restore()

	c := h.mustConnect("bin-1")
	publish(t, c, topic("bin-1", "telemetry"), 1, `{"ts":"`+time.Now().Add(-time.Second).UTC().Format(time.RFC3339Nano)+`","fill_pct":42}`)
	testenv.Eventually(t, 10*time.Second, "readiness to clear the listener", func() bool { return !failing() })
	logs := h.logs.String()
	if n := strings.Count(logs, "accept failed"); n < 1 || n > 3 {
		t.Errorf("accept failure log lines: got %d, want between 1 and 3 (bounded rate); logs:\n%s", n, logs)
	}
	if got := h.metric("sanigate_mqtt_packets_rejected_total", map[string]string{"reason": "accept_error"}); got < 1 {
		t.Errorf("accept errors counted: got %v, want >= 1", got)
	}
}
