package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	pahomqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/sanigate/sanigate/fleet"
	"github.com/sanigate/sanigate/internal/influxtest"
	"github.com/sanigate/sanigate/internal/testenv"
)

// TestWriterSurvivesDescriptorExhaustion runs the built gateway under a low
// descriptor limit (prlimit), exhausts its descriptors with idle TCP
// connections, publishes readings (a component that must open a file then
// fails with "too many open files": the writer opening a segment or its
// cursor, the detectors their state log), frees the descriptors, and shows
// that /readyz said a component was down, that the writer's restart was
// counted (it cannot persist its cursor, or open a segment), and
// that the readings, and new ones, reach InfluxDB.
func TestWriterSurvivesDescriptorExhaustion(t *testing.T) {
	prlimit, err := exec.LookPath("prlimit")
	if err != nil {
		testenv.Missing(t, "prlimit", "install util-linux")
	}
	influx := influxtest.Start(t, "sanigate_fd")
	dir := t.TempDir()
	bin := buildGateway(t, dir)
	hash, err := fleet.HashPassword("pw", 4)
	if err != nil {
		t.Fatal(err)
	}
	mqttAddr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	httpAddr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	cfg := fmt.Sprintf(`mqtt: {address: %q}
http: {address: %q}
influxdb: {url: %q, bucket: sanigate_fd, flush_interval: 100ms}
devices:
  - {id: bin-1, kind: bin, category: kitchen, password_hash: %q}
`, mqttAddr, httpAddr, influx.URL, hash)
	path := filepath.Join(dir, "sanigate.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	const limit = 128
	var logs syncBuffer
	cmd := exec.Command(prlimit, fmt.Sprintf("--nofile=%d:%d", limit, limit), bin, "-config", path)
	cmd.Stderr, cmd.Stdout = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
		if t.Failed() {
			es, _ := os.ReadDir(filepath.Join(dir, "spool"))
			for _, e := range es {
				info, _ := e.Info()
				t.Logf("spool: %s %d", e.Name(), info.Size())
			}
			t.Logf("gateway log:\n%s", tail(logs.String(), 6000))
		}
	})
	// One keep-alive connection to the gateway's HTTP server, opened before
	// the descriptors run out, so /readyz can be read while they are.
	web := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1, MaxConnsPerHost: 1}, Timeout: 5 * time.Second}
	testenv.Eventually(t, 30*time.Second, "the gateway to answer /healthz", func() bool {
		_, err := get(web, "http://"+httpAddr+"/healthz")
		return err == nil
	})
	dev := connectDevice(t, mqttAddr)
	base := time.Now().Add(-time.Hour).Truncate(time.Second)

	// One reading first, so that the writer has its segment open and a
	// connection to InfluxDB: what it cannot do once the descriptors are
	// gone is persist its cursor, which it does at most once a second.
	publishFill(t, dev, base.Add(-time.Minute), 1, 11)
	testenv.Eventually(t, 30*time.Second, "the first reading in InfluxDB", func() bool {
		return influx.Count(t, "bin", "fill_pct", "") == 1
	})
	time.Sleep(1500 * time.Millisecond)
	hog := exhaust(t, httpAddr, cmd.Process.Pid, limit)
	t.Logf("exhausted: %d descriptors open", openFiles(cmd.Process.Pid))
	publishFill(t, dev, base, 300, 0)
	testenv.Eventually(t, 60*time.Second, "/readyz to report the writer down", func() bool {
		body, _ := get(web, "http://"+httpAddr+"/readyz")
		return strings.Contains(body, "writer down: ")
	})
	hog.release()

	testenv.Eventually(t, 90*time.Second, "every component back and the readings in InfluxDB", func() bool {
		body, err := get(web, "http://"+httpAddr+"/readyz")
		return err == nil && !strings.Contains(body, " down: ") && influx.Count(t, "bin", "fill_pct", "") == 301
	})
	publishFill(t, dev, base.Add(30*time.Minute), 1, 77)
	testenv.Eventually(t, 30*time.Second, "a reading published after the descriptors were freed in InfluxDB", func() bool {
		return influx.Count(t, "bin", "fill_pct", "fill_pct = 77") == 1
	})
	metrics, err := get(web, "http://"+httpAddr+"/metrics")
	if err != nil {
		t.Fatal(err)
	}
	want := `{component="writer",reason="too_many_open_files"}`
	if !strings.Contains(grepLines(metrics, "sanigate_component_restarts_total{"), want) {
		t.Errorf("/metrics lacks %s:\n%s", want, grepLines(metrics, "sanigate_component"))
	}
	t.Logf("restarts:\n%s", grepLines(metrics, "sanigate_component_restarts_total{"))
}

// hog holds idle TCP connections to the gateway until its descriptors are
// all in use, and keeps some waiting in the accept queue, so that each one
// the gateway frees (it drops connections that never log in) is taken again.
type hog struct {
	mu    sync.Mutex
	conns []net.Conn
	stop  chan struct{}
	done  chan struct{}
}

// buildGateway builds this command into dir and returns the binary's path.
func buildGateway(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "sanigate")
	build := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return bin
}

func exhaust(t *testing.T, addr string, pid, limit int) *hog {
	h := &hog{stop: make(chan struct{}), done: make(chan struct{})}
	dial := func(n int) {
		for i := 0; i < n; i++ {
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err != nil {
				return
			}
			h.mu.Lock()
			h.conns = append(h.conns, c)
			h.mu.Unlock()
		}
	}
	dial(limit + 32)
	testenv.Eventually(t, 30*time.Second, "the gateway's descriptors to run out", func() bool { return openFiles(pid) >= limit-1 })
	go func() {
		defer close(h.done)
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for rounds := 0; rounds < 1500; rounds++ {
			select {
			case <-h.stop:
				return
			case <-tick.C:
				dial(4) // replace those the gateway dropped
			}
		}
	}()
	return h
}

func (h *hog) release() {
	close(h.stop)
	<-h.done
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, c := range h.conns {
		c.Close()
	}
	h.conns = nil
}

func openFiles(pid int) int {
	es, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return 0
	}
	return len(es)
}

func connectDevice(t *testing.T, addr string) pahomqtt.Client {
	opts := pahomqtt.NewClientOptions().AddBroker("tcp://" + addr).SetClientID("bin-1-fd").
		SetUsername("bin-1").SetPassword("pw").SetAutoReconnect(false).SetConnectRetry(false).
		SetConnectTimeout(5 * time.Second).SetWriteTimeout(5 * time.Second).SetCleanSession(true)
	c := pahomqtt.NewClient(opts)
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return c
}

// publishFill publishes n bin readings one second apart from at, as one
// buffered upload, QoS 1.
func publishFill(t *testing.T, c pahomqtt.Client, at time.Time, n int, fill float64) {
	var b strings.Builder
	b.WriteByte('[')
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"ts":%d,"fill_pct":%g,"weight_kg":41,"temp_c":9.5,"battery_pct":80}`, at.Add(time.Duration(i)*time.Second).UnixMilli(), fill)
	}
	b.WriteByte(']')
	tok := c.Publish("sanigate/v1/devices/bin-1/telemetry", 1, false, b.String())
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publish: no PUBACK (%v)", tok.Error())
	}
}

func get(c *http.Client, u string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "", err
	}
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func grepLines(s, word string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, word) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// syncBuffer is a bytes.Buffer safe for the process's two output streams.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
