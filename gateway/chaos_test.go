package gateway

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	pahomqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/sanigate/sanigate/cluster"
	"github.com/sanigate/sanigate/internal/influxtest"
	"github.com/sanigate/sanigate/internal/natstest"
	"github.com/sanigate/sanigate/internal/pgtest"
	"github.com/sanigate/sanigate/internal/testenv"
)

// The chaos test of cluster mode, every part a separate process: three
// nats-server nodes, two gateways (edge and writer), two detectors
// (`-roles detect`) filing cases in PostgreSQL, InfluxDB. Forty devices
// publish QoS 1 readings, two a second each, through paho clients that know
// both gateways; six bins overflow and four trucks dump, at times spread
// over the run. Meanwhile one gateway is killed with SIGKILL (its devices
// move to the other; it is started again later on the same spool), then the
// stream leader's NATS node, then the detector that owns the partition of
// the last truck to dump. Afterwards every acknowledged reading is in
// InfluxDB once, and every injected violation is one case, none lost, none
// doubled.
func TestClusterChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("chaos test: several real processes for about two minutes")
	}
	bin := gatewayBinary(t)
	influx := influxtest.Start(t, testDB)
	pg := pgtest.Start(t)
	dsn, err := pg.CreateDB()
	if err != nil {
		t.Fatal(err)
	}
	nc := natstest.Start(t, 3)
	_, js := nc.Connect(t)

	ch := newChaos(t, bin, influx.URL, dsn, nc)
	gwA := ch.process("gateway-a", "edge,writer", "")
	gwB := ch.process("gateway-b", "edge,writer", "")
	det1 := ch.process("detector-1", "detect", "det-1")
	det2 := ch.process("detector-2", "detect", "det-2")
	for _, p := range []*chaosProc{gwA, gwB, det1, det2} {
		p.start(t)
		waitListening(t, p.http) // one after the other: they migrate one database
	}
	natstest.WaitStream(t, js, "READINGS")
	testenv.Eventually(t, 60*time.Second, "each detector to own half the partitions", func() bool {
		return metricOf(det1.http, "sanigate_cluster_partitions_owned") == chaosPartitions/2 &&
			metricOf(det2.http, "sanigate_cluster_partitions_owned") == chaosPartitions/2
	})

	// The fleet: half the devices try gateway A first, half B.
	start := time.Now().Add(-5 * time.Minute).Truncate(time.Second)
	acks := newAckLog()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		wg.Wait()
	}()
	for i, d := range ch.devices {
		brokers := []string{gwA.mqtt, gwB.mqtt}
		if i%2 == 1 {
			brokers = []string{gwB.mqtt, gwA.mqtt}
		}
		wg.Add(1)
		go d.run(brokers, start, acks, stop, &wg)
	}
	total := len(ch.devices) * chaosReadings
	progress := func(what string, frac float64) {
		t.Helper()
		testenv.Eventually(t, 120*time.Second, what, func() bool { return float64(acks.total()) >= frac*float64(total) })
	}

	progress("a quarter of the readings acknowledged", 0.25)
	gwA.kill(t)
	t.Logf("killed gateway A at %d acknowledged", acks.total())
	progress("readings acknowledged through gateway B", 0.35)
	gwA.start(t)
	waitListening(t, gwA.http)
	t.Logf("gateway A started again at %d acknowledged", acks.total())

	progress("45% of the readings acknowledged", 0.45)
	leader := streamLeader(t, js, "READINGS")
	for _, n := range nc.Nodes {
		if n.Name == leader {
			n.Kill()
			t.Logf("killed NATS node %s (the stream leader) at %d acknowledged", n.Name, acks.total())
		}
	}

	progress("60% of the readings acknowledged", 0.6)
	last := ch.devices[len(ch.devices)-1] // the last truck to dump
	p := cluster.Partition(last.id, chaosPartitions)
	owner := partitionOwner(t, js, p)
	victim := map[string]*chaosProc{"det-1": det1, "det-2": det2}[owner]
	if victim == nil {
		t.Fatalf("partition %d of %s is owned by %q, neither detector", p, last.id, owner)
	}
	victim.kill(t)
	t.Logf("killed %s, owner of partition %d (%s), at %d acknowledged", victim.name, p, last.id, acks.total())
	dets := []*chaosProc{det1, det2}

	progress("70% of the readings acknowledged", 0.7)
	victim.start(t)
	waitListening(t, victim.http)
	t.Logf("%s started again at %d acknowledged", victim.name, acks.total())

	// A detector paused (SIGSTOP) past its lease while it owns the partition
	// of the last dump, and resumed: what it raises after it lost the
	// partition is refused by the case store (fencing).
	progress("80% of the readings acknowledged", 0.8)
	owner = partitionOwner(t, js, p)
	paused := map[string]*chaosProc{"det-1": det1, "det-2": det2}[owner]
	if err := paused.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(syncWriter{paused.logs}, "=== paused %s\n", time.Now().Format(time.RFC3339Nano))
	t.Logf("paused %s, owner of partition %d, at %d acknowledged", paused.name, p, acks.total())
	testenv.Eventually(t, 60*time.Second, "another detector to take the paused one's partition", func() bool {
		return partitionOwner(t, js, p) != owner
	})
	time.Sleep(2 * time.Second) // the new owner at work while the old one sleeps
	if err := paused.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(syncWriter{paused.logs}, "=== resumed %s\n", time.Now().Format(time.RFC3339Nano))
	t.Logf("resumed %s at %d acknowledged", paused.name, acks.total())

	wg.Wait()
	close(stop)
	t.Logf("acknowledged %d of %d readings (%d publishes unanswered and sent again)", acks.total(), total, acks.nacks.Load())
	if acks.total() != total {
		t.Fatalf("acknowledged %d readings, want %d: a device gave up", acks.total(), total)
	}

	// Every acknowledged reading in InfluxDB, once.
	testenv.Eventually(t, 90*time.Second, "every acknowledged reading in InfluxDB", func() bool {
		return influx.Count(t, "bin", "fill_pct", "")+influx.Count(t, "truck", "load_kg", "") >= int64(total)
	})
	ch.verifyReadings(t, influx, acks)

	// Every injected violation one case, once detection has read everything.
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for deadline := time.Now().Add(90 * time.Second); ; time.Sleep(250 * time.Millisecond) {
		diff := ch.caseDiff(t, db)
		if len(diff) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 90s the cases are not the injected violations:\n%s\nall cases: %s", strings.Join(diff, "\n"), ch.caseSummary(t, db))
		}
	}
	testenv.Eventually(t, 60*time.Second, "the detectors to have read the whole stream", func() bool {
		return detectionDone(js)
	})
	if diff := ch.caseDiff(t, db); len(diff) > 0 {
		t.Fatalf("cases after detection finished:\n%s", strings.Join(diff, "\n"))
	}
	t.Logf("cases: %s", ch.caseSummary(t, db))
	for _, d := range dets {
		t.Logf("%s: partitions taken %.0f, raises refused as stale (fenced) %.0f, replays of closed cases left out %.0f, "+
			"snapshots saved %.0f, takeovers %.0f, messages read again %.0f",
			d.name, metricOf(d.http, "sanigate_cluster_partitions_taken_total"), metricOf(d.http, "sanigate_case_fenced_total"),
			metricOf(d.http, "sanigate_case_replays_ignored_total"), metricOf(d.http, "sanigate_cluster_snapshots_saved_total"),
			metricOf(d.http, "sanigate_cluster_snapshot_restores_total"), metricOf(d.http, "sanigate_cluster_rebuild_messages_total"))
		for _, l := range strings.Split(d.logs.String(), "\n") {
			if strings.Contains(l, "restored") || strings.Contains(l, "rebuilt") || strings.Contains(l, "=== ") {
				t.Logf("%s: %s", d.name, l)
			}
		}
	}
}

const (
	chaosPartitions = 4
	chaosReadings   = 150 // per device, two a second
	chaosBins       = 32
	chaosTrucks     = 8
)

// chaos is the test's fleet and processes.
type chaos struct {
	t       *testing.T
	bin     string
	base    string // configuration shared by every process
	single  string // the same without the cluster section
	devices []*chaosDevice
	procs   []*chaosProc
}

func newChaos(t *testing.T, bin, influxURL, dsn string, nc *natstest.Cluster) *chaos {
	ch := &chaos{t: t, bin: bin}
	var devs strings.Builder
	devs.WriteString("devices:\n")
	// Bins 1..6 overflow, each at its own time; trucks 1..4 dump.
	for i := 1; i <= chaosBins; i++ {
		id := fmt.Sprintf("bin-%d", i)
		devs.WriteString(strings.Replace(loadDevice(t, id), "category: other", "category: kitchen", 1))
		d := &chaosDevice{id: id, payload: binPayload(-1)}
		if i <= 6 {
			d.payload = binPayload(10 + 18*(i-1))
			d.expect = "bin_overflow"
		}
		ch.devices = append(ch.devices, d)
	}
	for i := 1; i <= chaosTrucks; i++ {
		id := fmt.Sprintf("truck-%d", i)
		h := strings.Replace(loadDevice(t, id), "kind: bin, category: other", "kind: truck, category: kitchen, capacity_kg: 8000", 1)
		devs.WriteString(h)
		d := &chaosDevice{id: id, payload: truckPayload(-1)}
		if i <= 4 {
			d.payload = truckPayload(5 + 25*(i-1))
			d.expect = "illegal_dumping"
		}
		ch.devices = append(ch.devices, d)
	}
	// The last device of the list is the last truck to dump.
	sort.SliceStable(ch.devices, func(i, j int) bool { return ch.devices[i].id != "truck-4" && ch.devices[j].id == "truck-4" })
	common := fmt.Sprintf(`influxdb: {url: %s, bucket: %s, flush_interval: 100ms}
spool: {dir: spool}
%sviolations:
  bin_overflow: {min_duration: 20s, clear_after: 10s}
cases:
  store: {driver: postgres, dsn: %q}
`, influxURL, testDB, demoPlaces(t), dsn)
	ch.single = common + devs.String()
	ch.base = common + fmt.Sprintf(`cluster:
  nats: [%s]
  stream: READINGS
  partitions: %d
  replicas: 3
  duplicate_window: 10m
  ack_timeout: 2s
  lease_ttl: 2s
  snapshot_every: 2s
`, strings.Join(nc.URLList(), ", "), chaosPartitions) + devs.String()
	t.Cleanup(func() {
		if t.Failed() {
			for _, p := range ch.procs {
				t.Logf("--- %s (%s) log tail:\n%s", p.name, p.roles, logTail(p.logs.String(), 5000))
			}
			for _, n := range nc.Nodes {
				t.Logf("--- nats-server %s log tail:\n%s", n.Name, n.LogTail(2000))
			}
		}
	})
	return ch
}

// chaosProc is one gateway process: its configuration, addresses, logs.
type chaosProc struct {
	name, roles string
	config      string
	mqtt, http  string
	logs        *strings.Builder
	cmd         *exec.Cmd
	bin         string
}

// process prepares a gateway process with roles in cluster mode, or alone
// (single-machine mode) when roles is empty.
func (ch *chaos) process(name, roles, detectorID string) *chaosProc {
	t := ch.t
	dir := filepath.Join(t.TempDir(), name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := &chaosProc{name: name, roles: roles, bin: ch.bin, logs: &strings.Builder{},
		mqtt: fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)), http: fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))}
	base := ch.base
	if roles == "" { // single-machine mode: every role, no cluster
		base, p.roles = ch.single, "edge,detect,writer,api"
	}
	cfg := fmt.Sprintf("mqtt: {address: %q}\nhttp: {address: %q}\n", p.mqtt, p.http) + base
	if detectorID != "" {
		cfg = strings.Replace(cfg, "  lease_ttl: 2s\n", "  lease_ttl: 2s\n  detector_id: "+detectorID+"\n", 1)
	}
	p.config = filepath.Join(dir, "sanigate.yaml")
	if err := os.WriteFile(p.config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	ch.procs = append(ch.procs, p)
	t.Cleanup(func() {
		if p.cmd != nil {
			_ = p.cmd.Process.Signal(syscall.SIGTERM)
			done := make(chan struct{})
			go func() { _ = p.cmd.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				_ = p.cmd.Process.Kill()
				<-done
			}
		}
	})
	return p
}

func (p *chaosProc) start(t *testing.T) {
	t.Helper()
	fmt.Fprintf(syncWriter{p.logs}, "=== started %s\n", time.Now().Format(time.RFC3339Nano))
	p.cmd = exec.Command(p.bin, "-config", p.config, "-log-level", "info", "-roles", p.roles)
	p.cmd.Stderr, p.cmd.Stdout = syncWriter{p.logs}, syncWriter{p.logs}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
}

// kill stops the process with SIGKILL, as a crash would.
func (p *chaosProc) kill(t *testing.T) {
	t.Helper()
	_ = p.cmd.Process.Kill()
	_ = p.cmd.Wait()
	p.cmd = nil
	fmt.Fprintf(syncWriter{p.logs}, "=== killed %s\n", time.Now().Format(time.RFC3339Nano))
}

// chaosDevice publishes chaosReadings readings, one second of event time
// apart, two a second of wall time, each sent again until acknowledged, as a
// device buffering what it could not deliver does.
type chaosDevice struct {
	id      string
	payload func(i int, ts time.Time) string
	expect  string // the violation type injected, or ""
}

func (d *chaosDevice) run(brokers []string, start time.Time, acks *ackLog, stop <-chan struct{}, wg *sync.WaitGroup) {
	defer wg.Done()
	var c pahomqtt.Client
	defer func() {
		if c != nil {
			c.Disconnect(100)
		}
	}()
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for i := 0; i < chaosReadings; i++ {
		ts := start.Add(time.Duration(i) * time.Second)
		msg := d.payload(i, ts)
		for tries := 0; ; tries++ {
			if tries > 200 {
				return // the test reports the shortfall
			}
			select {
			case <-stop:
				return
			default:
			}
			if c == nil || !c.IsConnectionOpen() {
				if c != nil {
					c.Disconnect(0)
				}
				c = d.connect(brokers)
				if c == nil {
					time.Sleep(250 * time.Millisecond)
					continue
				}
			}
			tok := c.Publish(topic(d.id, "telemetry"), 1, false, msg)
			if tok.WaitTimeout(10*time.Second) && tok.Error() == nil {
				acks.ack(d.id, ts.UnixNano(), 0)
				break
			}
			acks.nacks.Add(1)
			c.Disconnect(0)
			c = nil
		}
		select {
		case <-stop:
			return
		case <-tick.C:
		}
	}
}

// connect tries the brokers in order.
func (d *chaosDevice) connect(brokers []string) pahomqtt.Client {
	opts := pahomqtt.NewClientOptions().SetClientID(d.id).SetUsername(d.id).SetPassword("pw-" + d.id).
		SetAutoReconnect(false).SetConnectRetry(false).SetCleanSession(true).
		SetConnectTimeout(3 * time.Second).SetWriteTimeout(5 * time.Second)
	for _, b := range brokers {
		opts.AddBroker("tcp://" + b)
	}
	c := pahomqtt.NewClient(opts)
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		return nil
	}
	return c
}

// binPayload is a bin's reading i: fill 30-60 %, and from reading from on
// (when from >= 0) 95 % for 30 readings, then 20 %, an overflow of 30 s of
// event time (the test's min_duration is 20 s).
func binPayload(from int) func(int, time.Time) string {
	return func(i int, ts time.Time) string {
		fill := 30 + float64(i%30)
		switch {
		case from >= 0 && i >= from && i < from+30:
			fill = 95
		case from >= 0 && i >= from+30:
			fill = 20
		}
		return fmt.Sprintf(`{"ts":%d,"fill_pct":%g,"weight_kg":40,"temp_c":18,"battery_pct":80}`, ts.UnixMilli(), fill)
	}
}

// truckPayload is a truck's reading i: parked with the engine off until
// reading from, then a trip of 60 s (one reading a second): it drives east
// for 10 s, parks in farm-north for 40 s and drops 1.5 t with the tipper on,
// drives on for 10 s and parks again. With from < 0 it stays parked.
func truckPayload(from int) func(int, time.Time) string {
	const lat, lon0, step = 39.9935, 116.4845, 0.0000975 // 30 km/h is 8.3 m/s
	return func(i int, ts time.Time) string {
		lon, speed, load, ignition, tipper := lon0, 0.0, 4000.0, false, false
		k := i - from
		switch {
		case from < 0:
			load = 2000
		case k < 0:
		case k < 10:
			lon, speed, ignition = lon0+float64(k)*step, 30, true
		case k < 50:
			lon, ignition = lon0+10*step, true
			switch p := k - 10; {
			case p >= 10 && p < 20:
				load, tipper = 4000-float64(p-9)*150, true
			case p >= 20:
				load = 2500
			}
		case k < 60:
			lon, speed, load, ignition = lon0+float64(k-40)*step, 30, 2500, true
		default:
			lon, load = lon0+20*step, 2500
		}
		return fmt.Sprintf(`{"ts":%d,"lat":%g,"lon":%.7f,"speed_kmh":%g,"heading_deg":90,"hdop":0.8,"load_kg":%g,"ignition":%t,"tipper":%t}`,
			ts.UnixMilli(), lat, lon, speed, load, ignition, tipper)
	}
}

// verifyReadings checks that InfluxDB holds every acknowledged reading of
// every device once, and nothing else of theirs.
func (ch *chaos) verifyReadings(t *testing.T, influx *influxtest.Server, acks *ackLog) {
	t.Helper()
	acks.mu.Lock()
	defer acks.mu.Unlock()
	var problems []string
	for _, d := range ch.devices {
		q := fmt.Sprintf(`SELECT "fill_pct" FROM "bin" WHERE "device"='%s'`, d.id)
		if strings.HasPrefix(d.id, "truck-") {
			q = fmt.Sprintf(`SELECT "load_kg" FROM "truck" WHERE "device"='%s'`, d.id)
		}
		got := map[int64]int{}
		for _, r := range influx.Rows(t, q) {
			ts, _ := r["time"].(json.Number).Int64()
			got[ts]++
		}
		missing, twice, extra := 0, 0, 0
		for ts := range acks.acked[d.id] {
			if got[ts] == 0 {
				missing++
			}
		}
		for ts, n := range got {
			if n > 1 {
				twice++
			}
			if _, ok := acks.acked[d.id][ts]; !ok {
				extra++
			}
		}
		if missing+twice+extra > 0 {
			problems = append(problems, fmt.Sprintf("%s: %d acknowledged, %d missing, %d stored twice, %d never acknowledged",
				d.id, len(acks.acked[d.id]), missing, twice, extra))
		}
	}
	if len(problems) > 0 {
		t.Fatalf("InfluxDB against the acknowledged readings:\n%s", strings.Join(problems, "\n"))
	}
}

// caseDiff compares the cases of the injected types with the injection:
// one case each, none for the other devices.
func (ch *chaos) caseDiff(t *testing.T, db *sql.DB) []string {
	t.Helper()
	got := ch.cases(t, db)
	var diff []string
	for _, d := range ch.devices {
		for _, typ := range []string{"bin_overflow", "illegal_dumping"} {
			want := 0
			if d.expect == typ {
				want = 1
			}
			if n := got[d.id+" "+typ]; n != want {
				diff = append(diff, fmt.Sprintf("%s %s: %d cases, want %d", d.id, typ, n, want))
			}
		}
	}
	return diff
}

func (ch *chaos) cases(t *testing.T, db *sql.DB) map[string]int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rows, err := db.QueryContext(ctx, `SELECT device, type, COUNT(*) FROM cases GROUP BY device, type`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	got := map[string]int{}
	for rows.Next() {
		var dev, typ string
		var n int
		if err := rows.Scan(&dev, &typ, &n); err != nil {
			t.Fatal(err)
		}
		got[dev+" "+typ] = n
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return got
}

func (ch *chaos) caseSummary(t *testing.T, db *sql.DB) string {
	byType := map[string]int{}
	for k, n := range ch.cases(t, db) {
		byType[k[strings.Index(k, " ")+1:]] += n
	}
	var parts []string
	for typ, n := range byType {
		parts = append(parts, fmt.Sprintf("%s %d", typ, n))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

// partitionOwner reads the id of the detector holding partition p's lease.
func partitionOwner(t *testing.T, js jetstream.JetStream, p int) string {
	t.Helper()
	var owner string
	testenv.Eventually(t, 30*time.Second, fmt.Sprintf("an owner of partition %d", p), func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		kv, err := js.KeyValue(ctx, cluster.DefaultLeaseBucket)
		if err != nil {
			return false
		}
		e, err := kv.Get(ctx, fmt.Sprintf("partition.%d", p))
		if err != nil {
			return false
		}
		owner = string(e.Value())
		return owner != ""
	})
	return owner
}

// detectionDone reports whether every partition's detection consumer has
// acknowledged all the stream holds.
func detectionDone(js jetstream.JetStream) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, "READINGS")
	if err != nil {
		return false
	}
	for p := range chaosPartitions {
		c, err := s.Consumer(ctx, fmt.Sprintf("detect-%d", p))
		if err != nil {
			return false
		}
		info, err := c.Info(ctx)
		if err != nil || info.NumPending > 0 || info.NumAckPending > 0 {
			return false
		}
	}
	return true
}

// metricOf reads one metric of a process (summed over labels); -1 when the
// process does not answer.
func metricOf(httpAddr, name string) float64 {
	client := &http.Client{Timeout: 3 * time.Second}
	resp, err := client.Get("http://" + httpAddr + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := parser.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		return -1
	}
	mf, ok := mfs[name]
	if !ok {
		return 0
	}
	v := 0.0
	for _, m := range mf.Metric {
		switch {
		case m.Counter != nil:
			v += m.Counter.GetValue()
		case m.Gauge != nil:
			v += m.Gauge.GetValue()
		}
	}
	return v
}

// logTail is the last n bytes of s.
func logTail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}
