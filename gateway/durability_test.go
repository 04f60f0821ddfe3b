package gateway

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	pahomqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/sanigate/sanigate/fleet"
	"github.com/sanigate/sanigate/internal/influxtest"
	"github.com/sanigate/sanigate/internal/testenv"
)

// InfluxDB stopped for a while under steady QoS 1 load, then started again:
// every acknowledged reading is in InfluxDB exactly once.
func TestInfluxOutageLosesNothing(t *testing.T) {
	const devices = 8
	h := newHarnessYAML(t, loadDevices(t, devices), "")
	log := newAckLog()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	base := time.Now().Add(-time.Hour).Truncate(time.Second)
	for i := 1; i <= devices; i++ {
		wg.Add(1)
		go publisher(h.g.MQTTAddr(), fmt.Sprintf("load-%d", i), 5*time.Millisecond, base, log, stop, &wg)
	}
	time.Sleep(1 * time.Second)
	h.influx.Stop()
	testenv.Eventually(t, 10*time.Second, "/readyz to report InfluxDB down", func() bool {
		resp, err := http.Get("http://" + h.g.HTTPAddr() + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusServiceUnavailable
	})
	ackedDuringOutageStart := log.total()
	time.Sleep(3 * time.Second)
	ackedDuringOutage := log.total() - ackedDuringOutageStart
	if err := h.influx.Restart(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1 * time.Second)
	close(stop)
	wg.Wait()
	if ackedDuringOutage == 0 {
		t.Fatal("no publish was acknowledged while InfluxDB was down: ingest must not depend on it")
	}
	waitStored(t, h.influx, log.total(), 60*time.Second)
	verifyAcked(t, h.influx, log)
	t.Logf("sent %d, acknowledged %d (%d during the outage), not acknowledged %d", log.sent.Load(), log.total(), ackedDuringOutage, log.nacks.Load())
	if got := h.metric("sanigate_writer_retries_total", nil); got == 0 {
		t.Error("no writer retries counted during the outage")
	}
}

// buildGateway compiles cmd/sanigate once per test binary.
var (
	buildOnce sync.Once
	buildPath string
	buildErr  error
)

func gatewayBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "sanigate-bin-")
		if err != nil {
			buildErr = err
			return
		}
		buildPath = filepath.Join(dir, "sanigate")
		out, err := exec.Command("go", "build", "-o", buildPath, "../cmd/sanigate").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildPath
}

// process runs the gateway binary on a configuration.
type process struct {
	cmd  *exec.Cmd
	logs *strings.Builder
}

func startProcess(t *testing.T, bin, config string) *process {
	t.Helper()
	p := &process{cmd: exec.Command(bin, "-config", config, "-log-level", "warn"), logs: &strings.Builder{}}
	p.cmd.Stderr = syncWriter{p.logs}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.cmd.Process.Kill(); _ = p.cmd.Wait() })
	return p
}

func waitListening(t *testing.T, addr string) {
	t.Helper()
	testenv.Eventually(t, 15*time.Second, addr+" to listen", func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
}

// The gateway, run as a real process, killed with SIGKILL in the middle of
// QoS 1 load and started again: every reading it had acknowledged reaches InfluxDB.
func TestKillNineLosesNothingAcknowledged(t *testing.T) {
	bin := gatewayBinary(t)
	influx := influxtest.Start(t, testDB)
	const devices = 8
	mqttAddr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	httpAddr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	cfg := testConfigExtra(t, influx.URL, testDevices(t), loadDevices(t, devices), "")
	yaml, _ := os.ReadFile(cfg.File)
	text := strings.Replace(string(yaml), "address: 127.0.0.1:0\nhttp:\n  address: 127.0.0.1:0", "address: "+mqttAddr+"\nhttp:\n  address: "+httpAddr, 1)
	os.WriteFile(cfg.File, []byte(text), 0o600)

	p := startProcess(t, bin, cfg.File)
	waitListening(t, mqttAddr)
	log := newAckLog()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	base := time.Now().Add(-time.Hour).Truncate(time.Second)
	for i := 1; i <= devices; i++ {
		wg.Add(1)
		go publisher(mqttAddr, fmt.Sprintf("load-%d", i), 2*time.Millisecond, base, log, stop, &wg)
	}
	testenv.Eventually(t, 20*time.Second, "some acknowledged load", func() bool { return log.total() > 2000 })
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = p.cmd.Wait()
	close(stop)
	wg.Wait() // the publishers end with their connections
	acked := log.total()
	t.Logf("killed after %d acknowledged of %d sent", acked, log.sent.Load())

	p2 := startProcess(t, bin, cfg.File)
	waitListening(t, httpAddr)
	waitStored(t, influx, acked, 60*time.Second)
	verifyAcked(t, influx, log)
	_ = p2.cmd.Process.Signal(syscall.SIGTERM)
}

// The spool's quota reached during an outage: MQTT 5 publishers get PUBACK
// 0x97, MQTT 3.1.1 publishers get no PUBACK; nothing acknowledged is lost;
// ingest recovers by itself once InfluxDB is back and the spool drains.
func TestQuotaPushesBackAndRecovers(t *testing.T) {
	h := newHarnessYAML(t, loadDevices(t, 2), "", func(c *fleet.Config) {
		c.Spool.MaxBytes = 1 << 20
		c.Spool.SegmentBytes = 64 << 10
	})
	h.influx.Stop()
	ctx := context.Background()

	v5 := connectV5(t, h, "load-1-v5", "load-1")
	// Large buffered uploads fill the 1 MiB quota quickly.
	base := time.Now().Add(-2 * time.Hour).Truncate(time.Second)
	batch := func(dev string, n int) []byte {
		var parts []string
		for i := 0; i < 40; i++ {
			parts = append(parts, fmt.Sprintf(`{"ts":%d,"fill_pct":%d,"weight_kg":12.5,"temp_c":20,"battery_pct":90}`, base.Add(time.Duration(n*40+i)*time.Millisecond).UnixMilli(), (n*40+i)%101))
		}
		return []byte("[" + strings.Join(parts, ",") + "]")
	}
	acked := 0
	var quotaCode byte
	for n := 0; n < 2000; n++ {
		pr, err := v5.Publish(ctx, &paho.Publish{QoS: 1, Topic: topic("load-1", "telemetry"), Payload: batch("load-1", n)})
		if err != nil {
			if pr != nil {
				quotaCode = pr.ReasonCode
			}
			break
		}
		acked++
	}
	if quotaCode != 0x97 {
		t.Fatalf("after %d acknowledged uploads: got reason code %#x, want 0x97 (quota exceeded)", acked, quotaCode)
	}
	// /readyz and the metrics say so.
	resp, err := http.Get("http://" + h.g.HTTPAddr() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("/readyz with a full spool: got %d, want 503", resp.StatusCode)
	}
	if got := h.metric("sanigate_spool_full", nil); got != 1 {
		t.Errorf("sanigate_spool_full: got %v, want 1", got)
	}
	if got := h.metric("sanigate_messages_backpressured_total", nil); got < 1 {
		t.Errorf("sanigate_messages_backpressured_total: got %v", got)
	}
	if !strings.Contains(h.logs.String(), "spool full") {
		t.Errorf("no log line about the full spool")
	}

	// An MQTT 3.1.1 publisher gets no PUBACK, keeps the message, and resends
	// it after reconnecting once the spool has room again.
	store := pahomqtt.NewMemoryStore()
	o := pahomqtt.NewClientOptions().AddBroker("tcp://" + h.g.MQTTAddr()).SetClientID("load-2-v3").
		SetUsername("load-2").SetPassword("pw-load-2").SetCleanSession(false).SetStore(store).
		SetAutoReconnect(false).SetWriteTimeout(5 * time.Second)
	v3 := pahomqtt.NewClient(o)
	if tok := v3.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("3.1.1 connect: %v", tok.Error())
	}
	held := fmt.Sprintf(`{"ts":%d,"fill_pct":77}`, base.Add(-time.Minute).UnixMilli())
	tok := v3.Publish(topic("load-2", "telemetry"), 1, false, held)
	if tok.WaitTimeout(2 * time.Second) {
		t.Fatalf("3.1.1 publish to a full spool was answered (err %v); want no PUBACK", tok.Error())
	}
	v3.Disconnect(50)

	// InfluxDB returns; the spool drains; ingest resumes by itself.
	if err := h.influx.Restart(); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 60*time.Second, "the spool to drain", func() bool { return h.metric("sanigate_spool_full", nil) == 0 })
	pr, err := v5.Publish(ctx, &paho.Publish{QoS: 1, Topic: topic("load-1", "telemetry"), Payload: batch("load-1", 5000)})
	if err != nil {
		t.Fatalf("after draining: %v (%v)", err, pr)
	}
	v3 = pahomqtt.NewClient(o) // same session and store: it resends the held message
	if tok := v3.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("3.1.1 reconnect: %v", tok.Error())
	}
	defer v3.Disconnect(50)
	want := int64((acked + 1) * 40)
	testenv.Eventually(t, 60*time.Second, "every acknowledged reading and the resent one", func() bool {
		return h.influx.Count(t, "bin", "fill_pct", `"device"='load-1'`) == want &&
			h.influx.Count(t, "bin", "fill_pct", `"device"='load-2'`) == 1
	})
}

// A spool folder with a torn tail and a corrupt segment: the gateway starts,
// reports what it cut or quarantined, and delivers everything else.
func TestSpoolRepairedAtStart(t *testing.T) {
	h := newHarnessYAML(t, loadDevices(t, 1), "", func(c *fleet.Config) { c.Spool.SegmentBytes = 64 << 10 })
	h.influx.Stop()
	c := h.mustConnect("load-1")
	base := time.Now().Add(-time.Hour).Truncate(time.Second)
	const total = 3000
	for i := 0; i < total; i++ {
		publish(t, c, topic("load-1", "telemetry"), 1, fmt.Sprintf(`{"ts":%d,"fill_pct":%d,"weight_kg":10,"temp_c":20,"battery_pct":90,"tilt_deg":1}`, base.Add(time.Duration(i)*time.Millisecond).UnixMilli(), i%101))
	}
	c.Disconnect(50)
	h.stop()
	dir := h.cfg.Resolve(h.cfg.Spool.Dir)
	segs, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
	if len(segs) < 3 {
		t.Fatalf("want at least 3 segments, got %d", len(segs))
	}
	// Corrupt the middle of the second segment and tear the last one.
	data, _ := os.ReadFile(segs[1])
	data[len(data)/2] ^= 0x5a
	os.WriteFile(segs[1], data, 0o640)
	f, _ := os.OpenFile(segs[len(segs)-1], os.O_WRONLY|os.O_APPEND, 0)
	f.Write([]byte{100, 0, 0, 0, 9, 9, 9})
	f.Close()

	if err := h.influx.Restart(); err != nil {
		t.Fatal(err)
	}
	h.logs.Reset()
	h.start()
	rec := h.g.Recovery()
	if rec.TornTail != 7 || len(rec.Quarantined) != 1 || rec.LostBytes == 0 {
		t.Fatalf("recovery: %+v", rec)
	}
	for _, want := range []string{"torn record", "quarantine"} {
		if !strings.Contains(h.logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, h.logs.String())
		}
	}
	// Everything but the corrupt segment's tail arrives.
	perSegment := total / len(segs)
	testenv.Eventually(t, 30*time.Second, "the surviving readings", func() bool {
		n := h.influx.Count(t, "bin", "fill_pct", "")
		return n >= int64(total-perSegment-10) && n < total
	})
	// And new readings flow.
	c = h.mustConnect("load-1")
	publish(t, c, topic("load-1", "telemetry"), 1, fmt.Sprintf(`{"ts":%d,"fill_pct":5}`, base.Add(-time.Minute).UnixMilli()))
	testenv.Eventually(t, 10*time.Second, "a new reading", func() bool {
		return len(h.influx.Rows(t, fmt.Sprintf(`SELECT * FROM "bin" WHERE time = %d`, base.Add(-time.Minute).UnixNano()))) == 1
	})
}

// A full disk under the spool is treated like a full quota: publishers are
// pushed back, nothing acknowledged is lost, and ingest resumes once the
// writer has freed space.
func TestDiskFullPushesBackAndRecovers(t *testing.T) {
	disk := testenv.SmallDisk(t, 512<<10)
	h := newHarnessYAML(t, loadDevices(t, 1), "", func(c *fleet.Config) {
		c.Spool.Dir = filepath.Join(disk, "spool")
		c.Spool.SegmentBytes = 64 << 10  // the quota (2 GiB) is far beyond the disk
		c.Spool.MinFreeBytes = 160 << 10 // headroom for the detectors' snapshot and derived records
	})
	h.influx.Stop()
	ctx := context.Background()
	v5 := connectV5(t, h, "load-1-disk", "load-1")
	base := time.Now().Add(-2 * time.Hour).Truncate(time.Second)
	upload := func(n int) []byte {
		var parts []string
		for i := 0; i < 20; i++ {
			parts = append(parts, fmt.Sprintf(`{"ts":%d,"fill_pct":%d,"weight_kg":12.5}`, base.Add(time.Duration(n*20+i)*time.Millisecond).UnixMilli(), (n*20+i)%101))
		}
		return []byte("[" + strings.Join(parts, ",") + "]")
	}
	acked, code := 0, byte(0)
	for n := 0; n < 5000; n++ {
		pr, err := v5.Publish(ctx, &paho.Publish{QoS: 1, Topic: topic("load-1", "telemetry"), Payload: upload(n)})
		if err != nil {
			if pr != nil {
				code = pr.ReasonCode
			}
			break
		}
		acked++
	}
	if code != 0x97 || acked == 0 {
		t.Fatalf("after %d acknowledged uploads: reason code %#x, want 0x97", acked, code)
	}
	if !strings.Contains(h.logs.String(), "disk nearly full") {
		t.Errorf("the log does not say the disk is full:\n%s", h.logs.String())
	}
	if err := h.influx.Restart(); err != nil {
		t.Fatal(err)
	}
	want := int64(acked * 20)
	testenv.Eventually(t, 60*time.Second, "every acknowledged reading", func() bool {
		return h.influx.Count(t, "bin", "fill_pct", `"device"='load-1'`) == want
	})
	// Space is back: ingest resumes by itself.
	testenv.Eventually(t, 30*time.Second, "a publish to be accepted again", func() bool {
		pr, err := v5.Publish(ctx, &paho.Publish{QoS: 1, Topic: topic("load-1", "telemetry"), Payload: upload(9000)})
		if err != nil {
			t.Logf("publish: %v %+v %+v", err, pr, h.g.spool.Stats())
		}
		return err == nil
	})
}

// connectV5 opens an MQTT 5 connection as device id (password "pw-" + id),
// closed at the end of the test.
func connectV5(t *testing.T, h *harness, clientID, id string) *paho.Client {
	t.Helper()
	conn, err := net.Dial("tcp", h.g.MQTTAddr())
	if err != nil {
		t.Fatal(err)
	}
	c := paho.NewClient(paho.ClientConfig{Conn: conn})
	t.Cleanup(func() { _ = c.Disconnect(&paho.Disconnect{}) })
	if _, err := c.Connect(context.Background(), &paho.Connect{ClientID: clientID, Username: id, UsernameFlag: true,
		Password: []byte("pw-" + id), PasswordFlag: true, KeepAlive: 30, CleanStart: true}); err != nil {
		t.Fatal(err)
	}
	return c
}
