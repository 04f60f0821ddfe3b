package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/sanigate/sanigate/cases"
	"github.com/sanigate/sanigate/cluster"
	"github.com/sanigate/sanigate/internal/natstest"
	"github.com/sanigate/sanigate/internal/testenv"
	"github.com/sanigate/sanigate/telemetry"
)

// clusterGateway writes a configuration for the gateway binary in cluster
// mode on fixed loopback ports and returns its path and addresses.
func clusterGateway(t *testing.T, nc *natstest.Cluster, devices int) (config, mqttAddr, httpAddr string) {
	t.Helper()
	mqttAddr = fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	httpAddr = fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	sections := fmt.Sprintf("cluster:\n  nats: [%s]\n  stream: READINGS\n  partitions: 8\n  replicas: 3\n  duplicate_window: 10m\n  window: 256\n  ack_timeout: 2s\n",
		strings.Join(nc.URLList(), ", "))
	// No writer role here, so InfluxDB is never asked.
	cfg := testConfigExtra(t, "http://127.0.0.1:1", testDevices(t), loadDevices(t, devices), sections)
	yaml, err := os.ReadFile(cfg.File)
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(yaml), "address: 127.0.0.1:0\nhttp:\n  address: 127.0.0.1:0", "address: "+mqttAddr+"\nhttp:\n  address: "+httpAddr, 1)
	if err := os.WriteFile(cfg.File, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfg.File, mqttAddr, httpAddr
}

func startEdge(t *testing.T, bin, config string) *process {
	t.Helper()
	p := &process{cmd: exec.Command(bin, "-config", config, "-log-level", "warn", "-roles", "edge"), logs: &strings.Builder{}}
	p.cmd.Stderr = syncWriter{p.logs}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.cmd.Process.Kill(); _ = p.cmd.Wait() })
	return p
}

// scrape reads one process's /metrics.
func scrape(t *testing.T, httpAddr string) map[string]float64 {
	t.Helper()
	resp, err := http.Get("http://" + httpAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := parser.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for name, mf := range mfs {
		for _, m := range mf.Metric {
			switch {
			case m.Counter != nil:
				out[name] += m.Counter.GetValue()
			case m.Gauge != nil:
				out[name] += m.Gauge.GetValue()
			case m.Histogram != nil:
				h := m.Histogram
				out[name+"_count"] += float64(h.GetSampleCount())
				out[name+"_sum"] += h.GetSampleSum()
				for _, q := range []float64{0.5, 0.99} {
					out[fmt.Sprintf("%s_p%g", name, q*100)] = bucketQuantile(h.GetSampleCount(), h.Bucket, q)
				}
			}
		}
	}
	return out
}

// bucketQuantile is the upper bound of the bucket holding quantile q.
func bucketQuantile(total uint64, buckets []*dto.Bucket, q float64) float64 {
	want := uint64(q * float64(total))
	for _, b := range buckets {
		if b.GetCumulativeCount() >= want {
			return b.GetUpperBound()
		}
	}
	return 0
}

// streamReadings reads the stream and returns, per device and reading time,
// how many times the reading is stored, and the number of distinct ids.
func streamReadings(t *testing.T, js jetstream.JetStream, stream string) (map[string]map[int64]int, int, int) {
	t.Helper()
	msgs := natstest.Messages(t, js, stream)
	got := map[string]map[int64]int{}
	ids := map[string]bool{}
	for _, m := range msgs {
		ids[m.Header.Get(jetstream.MsgIDHeader)] = true
		rs, err := telemetry.ParseLines(m.Data)
		if err != nil || len(rs) == 0 {
			t.Fatalf("seq %d: unreadable reading %q: %v", m.Seq, m.Data, err)
		}
		r := rs[0]
		if want := cluster.Subject(cluster.DefaultSubjectPrefix, cluster.Partition(r.Device, 8)); m.Subject != want {
			t.Errorf("seq %d: %s on %s, want %s", m.Seq, r.Device, m.Subject, want)
		}
		if got[r.Device] == nil {
			got[r.Device] = map[int64]int{}
		}
		got[r.Device][r.Time.UnixNano()]++
	}
	return got, len(msgs), len(ids)
}

// The gateway, a real process in cluster mode with the edge role, under
// QoS 1 load while the stream's leader node is killed with SIGKILL: every
// acknowledged reading reaches the stream, once. Then the gateway is killed
// too, its forwarding cursor removed and the gateway started again: it sends
// its whole spool again, and the stream drops every copy by message id.
func TestClusterForwardingSurvivesNodeLoss(t *testing.T) {
	bin := gatewayBinary(t)
	nc := natstest.Start(t, 3)
	_, js := nc.Connect(t)
	const devices = 8
	config, mqttAddr, httpAddr := clusterGateway(t, nc, devices)
	p := startEdge(t, bin, config)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("gateway log:\n%s", p.logs.String())
		}
	})
	waitListening(t, mqttAddr)
	natstest.WaitStream(t, js, "READINGS")

	log := newAckLog()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	base := time.Now().Add(-time.Hour).Truncate(time.Second)
	started := time.Now()
	for i := 1; i <= devices; i++ {
		wg.Add(1)
		go publisher(mqttAddr, fmt.Sprintf("load-%d", i), 2*time.Millisecond, base, log, stop, &wg)
	}
	testenv.Eventually(t, 30*time.Second, "some acknowledged load", func() bool { return log.total() > 3000 })
	leader := streamLeader(t, js, "READINGS")
	var killed *natstest.Node
	for _, n := range nc.Nodes {
		if n.Name == leader {
			killed = n
		}
	}
	if killed == nil {
		t.Fatalf("stream leader %q is none of the nodes", leader)
	}
	killedAt := time.Now()
	killed.Kill()
	atKill := scrape(t, httpAddr)["sanigate_cluster_forwarded_total"]
	if code := getStatus(t, "http://"+httpAddr+"/readyz/edge"); code != http.StatusOK {
		t.Errorf("/readyz/edge answers %d with one NATS node down, want 200 (the spool holds)", code)
	}
	before := log.total()
	testenv.Eventually(t, 60*time.Second, "forwarding to resume", func() bool {
		return scrape(t, httpAddr)["sanigate_cluster_forwarded_total"] > atKill+500
	})
	resumed := time.Since(killedAt)
	testenv.Eventually(t, 60*time.Second, "acknowledged load after the kill", func() bool { return log.total() > before+3000 })
	close(stop)
	wg.Wait()
	elapsed := time.Since(started)
	acked := log.total()
	testenv.Eventually(t, 60*time.Second, "the forwarder to catch up", func() bool {
		m := scrape(t, httpAddr)
		return m["sanigate_cluster_forward_lag_bytes"] == 0 && m["sanigate_cluster_forwarded_total"] >= float64(acked)
	})
	m := scrape(t, httpAddr)
	t.Logf("killed node %s (the stream leader) after %d acknowledged; %d acknowledged in %s (%.0f/s), %d sent, %d not acknowledged",
		leader, before, acked, elapsed.Round(time.Millisecond), float64(acked)/elapsed.Seconds(), log.sent.Load(), log.nacks.Load())
	t.Logf("forwarding went on (500 more acknowledged by the stream) %s after the kill", resumed.Round(10*time.Millisecond))
	t.Logf("forwarded %.0f, errors %.0f; publish to ack p50 <= %gs p99 <= %gs; spool append to ack p50 <= %gs p99 <= %gs",
		m["sanigate_cluster_forwarded_total"], m["sanigate_cluster_forward_errors_total"],
		m["sanigate_cluster_forward_ack_seconds_p50"], m["sanigate_cluster_forward_ack_seconds_p99"],
		m["sanigate_cluster_forward_delay_seconds_p50"], m["sanigate_cluster_forward_delay_seconds_p99"])

	got, total, distinct := streamReadings(t, js, "READINGS")
	checkOnce(t, log, got, total, distinct)

	// The gateway killed, its cursor lost: a full replay adds nothing.
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	_ = p.cmd.Wait()
	if err := os.Remove(filepath.Join(filepath.Dir(config), "spool", "cursor-cluster")); err != nil {
		t.Fatal(err)
	}
	p2 := startEdge(t, bin, config)
	waitListening(t, httpAddr)
	testenv.Eventually(t, 60*time.Second, "the replay", func() bool {
		m := scrape(t, httpAddr)
		return m["sanigate_cluster_forward_lag_bytes"] == 0 && m["sanigate_cluster_forward_duplicates_total"] >= float64(total)
	})
	m = scrape(t, httpAddr)
	t.Logf("replay after restart: %.0f sent again, %.0f dropped as duplicates", m["sanigate_cluster_forwarded_total"], m["sanigate_cluster_forward_duplicates_total"])
	got2, total2, distinct2 := streamReadings(t, js, "READINGS")
	if total2 != total {
		t.Errorf("the stream holds %d messages after the replay, %d before", total2, total)
	}
	checkOnce(t, log, got2, total2, distinct2)
	_ = p2.cmd.Process.Signal(syscall.SIGTERM)
}

// checkOnce asserts every acknowledged reading is stored once and nothing twice.
func checkOnce(t *testing.T, log *ackLog, got map[string]map[int64]int, total, distinct int) {
	t.Helper()
	log.mu.Lock()
	defer log.mu.Unlock()
	missing := 0
	for dev, readings := range log.acked {
		for ts := range readings {
			if got[dev][ts] == 0 {
				missing++
			}
		}
	}
	var twice []string
	for dev, m := range got {
		for ts, n := range m {
			if n > 1 {
				twice = append(twice, fmt.Sprintf("%s@%d x%d", dev, ts, n))
			}
		}
	}
	sort.Strings(twice)
	if missing > 0 || len(twice) > 0 || distinct != total {
		t.Fatalf("of %d acknowledged readings %d are missing from the stream; %d stored more than once %v; %d messages with %d distinct ids",
			log.totalLocked(), missing, len(twice), twice[:min(len(twice), 5)], total, distinct)
	}
	if total < log.totalLocked() {
		t.Fatalf("stream holds %d messages, fewer than %d acknowledged", total, log.totalLocked())
	}
}

func streamLeader(t *testing.T, js jetstream.JetStream, name string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Cluster == nil {
		t.Fatal("stream has no cluster information")
	}
	return info.Cluster.Leader
}

// clusterLoop is a gateway with every role in cluster mode, set up for the
// whole loop of TestWholeLoopThroughTheGateway (units, dispatch, tokens, a
// webhook receiver), and what checkLoop needs.
type clusterLoop struct {
	h       *harness
	places  string
	cluster string
	secret  []byte
	mu      sync.Mutex
	got     []map[string]any
	sigErrs []error
}

func newClusterLoop(t *testing.T, nc *natstest.Cluster) *clusterLoop {
	t.Helper()
	l := &clusterLoop{secret: []byte("north-webhook-secret")}
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		l.mu.Lock()
		defer l.mu.Unlock()
		if err := cases.VerifySignature(l.secret, r.Header, body, time.Now(), 5*time.Minute); err != nil {
			l.sigErrs = append(l.sigErrs, err)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var m map[string]any
		_ = json.Unmarshal(body, &m)
		l.got = append(l.got, m)
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(rcv.Close)
	demo, _ := filepath.Abs("../examples/demo")
	l.places = fmt.Sprintf("places:\n  districts: %s\n  sites: %s\n", filepath.Join(demo, "districts.geojson"), filepath.Join(demo, "sites.geojson"))
	l.cluster = fmt.Sprintf("cluster:\n  nats: [%s]\n  partitions: 4\n  lease_ttl: 2s\n", strings.Join(nc.URLList(), ", "))
	casesYAML := fmt.Sprintf(`cases:
  units:
    - {id: city-office, name: City office}
    - {id: enforcement-north, name: North enforcement bureau, webhook_url: %q, secret: %q, escalation: city-office}
  dispatch:
    default_unit: city-office
    rules: [{type: illegal_dumping, district: north, unit: enforcement-north}]
  outbox: {retry_min: 100ms, retry_max: 1s, poll: 100ms}
  tokens:
    - {name: office, role: city, token_hash: %q}
    - {name: north-crew, role: unit, unit: enforcement-north, token_hash: %q}
`, rcv.URL+"/hook", l.secret, cases.HashToken("city-token"), cases.HashToken("north-token"))
	l.h = newHarnessYAML(t, "", l.places+casesYAML+l.cluster)
	if l.h.g.Forwarder() == nil || l.h.g.ClusterDetector() == nil || l.h.g.Detectors() != nil {
		t.Fatal("cluster mode runs the forwarder and the partition detector, not the local detectors")
	}
	testenv.Eventually(t, 30*time.Second, "the detector to own the partitions", func() bool { return len(l.h.g.ClusterDetector().Owned()) == 4 })
	return l
}

func (l *clusterLoop) check(t *testing.T) {
	t.Helper()
	checkLoop(t, l.h, l.secret, &l.mu, &l.got, &l.sigErrs)
}

// The whole loop of TestWholeLoopThroughTheGateway in cluster mode: the
// gateway forwards the truck's readings to a stream on three nats-server
// nodes, its detector owns the partitions and raises the dumping from the
// stream, and the case goes through dispatch, webhook and closure as alone.
func TestWholeLoopInClusterMode(t *testing.T) {
	nc := natstest.Start(t, 3)
	l := newClusterLoop(t, nc)
	c := l.h.mustConnect("truck-1")
	start := time.Now().Add(-90 * time.Minute).Truncate(time.Second)
	publish(t, c, topic("truck-1", "telemetry"), 1, dumpingTrip(start))
	l.check(t)
	if n := l.h.metric("sanigate_cluster_forwarded_total", nil); n < 1 {
		t.Errorf("forwarded %v readings, want the trip", n)
	}
	if n := l.h.metric("sanigate_cluster_detect_readings_total", nil); n < 120 {
		t.Errorf("the detector processed %v readings, want the trip's 120", n)
	}
	if n := l.h.metric("sanigate_cluster_partitions_owned", nil); n != 4 {
		t.Errorf("partitions owned %v, want 4", n)
	}

	// A device that drops its connection without DISCONNECT: its last will
	// goes through the stream to its partition's detector.
	if n := l.h.metric("sanigate_violations_total", map[string]string{"type": "device_offline"}); n != 0 {
		t.Fatalf("%v device_offline before the drop", n)
	}
	conn, err := net.Dial("tcp", l.h.g.MQTTAddr())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Write(mqttConnect(4, "bin-1", "pw-bin-1")); err != nil {
		t.Fatal(err)
	}
	connack := make([]byte, 4)
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(conn, connack); err != nil || connack[3] != 0 {
		t.Fatalf("connect: %v %x", err, connack)
	}
	conn.Close()
	// Other devices may go offline by the clock meanwhile: look for bin-1's.
	testenv.Eventually(t, 60*time.Second, "device_offline of bin-1 from the last will", func() bool {
		return len(l.h.influx.Rows(t, `SELECT "key" FROM "forever"."violation" WHERE "type" = 'device_offline' AND "device" = 'bin-1'`)) >= 1
	})
}

// A truck uploads the first half of its trip, up to the middle of the dump,
// through one gateway, and the rest through another (an edge and writer
// process, as behind a load balancer after a reconnect): the detector,
// reading both from the stream, raises the dump as one case. With only the
// first half, no case is raised (checked by hand: the test then times out).
func TestDeviceMovesBetweenGatewaysMidDump(t *testing.T) {
	nc := natstest.Start(t, 3)
	l := newClusterLoop(t, nc)
	cfg2 := testConfigExtra(t, l.h.influx.URL, testDevices(t), "", l.places+l.cluster)
	g2, err := New(cfg2, nil)
	if err != nil {
		t.Fatal(err)
	}
	g2.Roles = Roles{RoleEdge, RoleWriter}
	if err := g2.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = g2.Close(context.Background()) })
	h2 := &harness{t: t, influx: l.h.influx, cfg: cfg2, g: g2, logs: &strings.Builder{}}

	var points []json.RawMessage
	if err := json.Unmarshal([]byte(dumpingTrip(time.Now().Add(-90*time.Minute).Truncate(time.Second))), &points); err != nil {
		t.Fatal(err)
	}
	half := func(ps []json.RawMessage) string {
		parts := make([]string, len(ps))
		for i, p := range ps {
			parts[i] = string(p)
		}
		return "[" + join(parts, ",") + "]"
	}
	const mid = 45 // the trip parks from point 30; the tipper is on from 40 to 49
	c1 := l.h.mustConnect("truck-1")
	publish(t, c1, topic("truck-1", "telemetry"), 1, half(points[:mid]))
	c1.Disconnect(100)
	c2 := h2.mustConnect("truck-1")
	publish(t, c2, topic("truck-1", "telemetry"), 1, half(points[mid:]))
	testenv.Eventually(t, 30*time.Second, "the second gateway to forward its half", func() bool {
		return h2.metric("sanigate_cluster_forwarded_total", nil) >= 1 && h2.metric("sanigate_cluster_forward_lag_bytes", nil) == 0
	})
	l.check(t)
}

func getStatus(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// A process without the edge role tells a load balancer not to send devices.
func TestEdgeReadiness(t *testing.T) {
	for _, tc := range []struct {
		roles Roles
		ready bool
	}{{nil, true}, {Roles{RoleEdge}, true}, {Roles{RoleDetect, RoleWriter}, false}} {
		g := &Gateway{Roles: tc.roles}
		if got := len(g.EdgeReady()) == 0; got != tc.ready {
			t.Errorf("roles %v: edge ready %v, want %v (%v)", tc.roles, got, tc.ready, g.EdgeReady())
		}
	}
}
