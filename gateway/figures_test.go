package gateway

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"sort"
	"sync"
	"testing"
	"time"

	pahomqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/sanigate/sanigate/cluster"
	"github.com/sanigate/sanigate/internal/influxtest"
	"github.com/sanigate/sanigate/internal/natstest"
	"github.com/sanigate/sanigate/internal/pgtest"
	"github.com/sanigate/sanigate/internal/testenv"
)

// TestClusterFigures measures, with real processes on this machine, the
// figures of cluster mode (`make bench-cluster`; it runs only when
// SANIGATE_CLUSTER_FIGURES is set, and asserts nothing about speed):
//
//   - PUBACK to case: a bin reports 75 °C twice (a fire, raised on the
//     second reading); the time from its PUBACK to the case's filing in
//     PostgreSQL (filed_at), alone (one process, every role) and in
//     cluster mode (an edge and writer gateway, two detectors);
//   - detection failover: the owner of the bin's partition is killed with
//     SIGKILL and the bin reports the fire at once; the time from the kill
//     to the case's filing by the new owner (lease_ttl 2s here);
//   - throughput: forty devices publishing QoS 1 readings as fast as the
//     gateways acknowledge them for 10 s, through one gateway and through
//     two; readings acknowledged per second, and end to end (acknowledged,
//     forwarded to the stream and written to InfluxDB).
func TestClusterFigures(t *testing.T) {
	if os.Getenv("SANIGATE_CLUSTER_FIGURES") == "" {
		t.Skip("set SANIGATE_CLUSTER_FIGURES=1 (make bench-cluster) to measure")
	}
	bin := gatewayBinary(t)
	influx := influxtest.Start(t, testDB)
	pg := pgtest.Start(t)
	nc := natstest.Start(t, 3)
	_, js := nc.Connect(t)
	db := func(dsn string) *sql.DB {
		d, err := sql.Open("pgx", dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		return d
	}
	newDSN := func() string {
		dsn, err := pg.CreateDB()
		if err != nil {
			t.Fatal(err)
		}
		return dsn
	}
	dev := 1 // the next bin to catch fire

	// PUBACK to case, alone.
	dsnAlone := newDSN()
	alone := newChaos(t, bin, influx.URL, dsnAlone, nc)
	single := alone.process("alone", "", "")
	single.start(t)
	waitListening(t, single.http)
	var soloLat []latency
	for range 12 {
		soloLat = append(soloLat, fireToCase(t, single.mqtt, db(dsnAlone), fmt.Sprintf("bin-%d", dev)))
		dev++
	}
	single.kill(t)

	// PUBACK to case, cluster mode.
	dsn := newDSN()
	ch := newChaos(t, bin, influx.URL, dsn, nc)
	gwA := ch.process("gateway-a", "edge,writer", "")
	gwB := ch.process("gateway-b", "edge,writer", "")
	det1 := ch.process("detector-1", "detect", "det-1")
	det2 := ch.process("detector-2", "detect", "det-2")
	for _, p := range []*chaosProc{gwA, gwB, det1, det2} {
		p.start(t)
		waitListening(t, p.http)
	}
	natstest.WaitStream(t, js, "READINGS")
	shared := func() bool {
		return metricOf(det1.http, "sanigate_cluster_partitions_owned") == chaosPartitions/2 &&
			metricOf(det2.http, "sanigate_cluster_partitions_owned") == chaosPartitions/2
	}
	testenv.Eventually(t, 60*time.Second, "each detector to own half the partitions", shared)
	cases := db(dsn)
	var clusterLat []latency
	for range 12 {
		clusterLat = append(clusterLat, fireToCase(t, gwA.mqtt, cases, fmt.Sprintf("bin-%d", dev)))
		dev++
	}

	// Failover: kill the owner of the next bin's partition, then the fire.
	dets := map[string]*chaosProc{"det-1": det1, "det-2": det2}
	var failover []time.Duration
	for range 3 {
		id := fmt.Sprintf("bin-%d", dev)
		dev++
		victim := dets[partitionOwner(t, js, cluster.Partition(id, chaosPartitions))]
		killed := time.Now()
		victim.kill(t)
		fireToCase(t, gwA.mqtt, cases, id)
		failover = append(failover, caseFiled(t, cases, id).Sub(killed))
		victim.start(t)
		waitListening(t, victim.http)
		testenv.Eventually(t, 60*time.Second, "the detectors to share the partitions again", shared)
	}

	// Throughput: one gateway, then two.
	one := throughput(t, influx, []*chaosProc{gwA, gwB}, ch.devices, []string{gwA.mqtt}, time.Now().Add(-3*time.Hour))
	two := throughput(t, influx, []*chaosProc{gwA, gwB}, ch.devices, []string{gwA.mqtt, gwB.mqtt}, time.Now().Add(-2*time.Hour))

	t.Logf("reading to case filed, alone:        %s", latencies(soloLat))
	t.Logf("reading to case filed, cluster mode: %s", latencies(clusterLat))
	t.Logf("detection failover, SIGKILL of the partition's owner to the case filed by the next (lease_ttl 2s): %s", quantiles(failover))
	t.Logf("one gateway:  %.0f readings/s acknowledged, %.0f/s end to end (%d readings)", one.acked, one.e2e, one.n)
	t.Logf("two gateways: %.0f readings/s acknowledged, %.0f/s end to end (%d readings)", two.acked, two.e2e, two.n)
}

// fireToCase publishes a 75 °C reading of bin id through the broker at addr
// and returns the time from its publish and PUBACK to its case's filing.
func fireToCase(t *testing.T, addr string, db *sql.DB, id string) latency {
	t.Helper()
	d := &chaosDevice{id: id}
	var c pahomqtt.Client
	testenv.Eventually(t, 30*time.Second, id+" connected", func() bool { c = d.connect([]string{addr}); return c != nil })
	defer c.Disconnect(50)
	now := time.Now()
	var sent time.Time
	for _, at := range []time.Time{now.Add(-time.Second), now} { // a fire is two hot readings
		sent = time.Now()
		tok := c.Publish(topic(id, "telemetry"), 1, false,
			fmt.Sprintf(`{"ts":%d,"fill_pct":40,"temp_c":75,"battery_pct":80}`, at.UnixMilli()))
		if !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
			t.Fatalf("%s: no PUBACK (%v)", id, tok.Error())
		}
	}
	acked := time.Now()
	filed := caseFiled(t, db, id)
	return latency{fromPublish: filed.Sub(sent), fromAck: filed.Sub(acked)}
}

// latency is the time from a reading's publish, and from its PUBACK, to
// its case's filing (filed_at, in milliseconds).
type latency struct{ fromPublish, fromAck time.Duration }

func latencies(ls []latency) string {
	var p, a []time.Duration
	for _, l := range ls {
		p, a = append(p, l.fromPublish), append(a, l.fromAck)
	}
	return fmt.Sprintf("from the publish %s; from the PUBACK %s", quantiles(p), quantiles(a))
}

// caseFiled waits for the bin_fire case of id and returns when it was filed.
func caseFiled(t *testing.T, db *sql.DB, id string) time.Time {
	t.Helper()
	var filed int64
	testenv.Eventually(t, 60*time.Second, "the fire case of "+id, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return db.QueryRowContext(ctx, `SELECT filed_at FROM cases WHERE device = $1 AND type = 'bin_fire'`, id).Scan(&filed) == nil
	})
	return time.UnixMilli(filed)
}

type rate struct {
	n          int
	acked, e2e float64
}

// throughput runs the devices against brokers (spread evenly) for 10 s,
// each publishing QoS 1 readings with up to 20 awaiting their PUBACK, and
// returns readings per second acknowledged, and per second until every
// acknowledged one is forwarded and in InfluxDB.
func throughput(t *testing.T, influx *influxtest.Server, gws []*chaosProc, devs []*chaosDevice, brokers []string, base time.Time) rate {
	t.Helper()
	base = base.Truncate(time.Second)
	const span = 10 * time.Second
	acks := newAckLog()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	start := time.Now()
	n := 0
	for i, d := range devs {
		if d.id[:4] != "bin-" {
			continue
		}
		n++
		wg.Add(1)
		go flood(brokers[i%len(brokers)], d.id, base, acks, stop, &wg)
	}
	time.Sleep(span)
	close(stop)
	wg.Wait()
	acked := acks.total()
	ackRate := float64(acked) / time.Since(start).Seconds()
	where := fmt.Sprintf(`time >= %d AND time < %d`, base.UnixNano(), base.Add(time.Hour).UnixNano())
	testenv.Eventually(t, 5*time.Minute, "every acknowledged reading forwarded and in InfluxDB", func() bool {
		for _, g := range gws {
			if metricOf(g.http, "sanigate_cluster_forward_lag_bytes") != 0 {
				return false
			}
		}
		return influx.Count(t, "bin", "fill_pct", where) >= int64(acked)
	})
	return rate{n: acked, acked: ackRate, e2e: float64(acked) / time.Since(start).Seconds()}
}

// flood publishes QoS 1 readings of id as fast as they are acknowledged,
// with up to 20 awaiting their PUBACK, until stop is closed.
func flood(addr, id string, base time.Time, acks *ackLog, stop <-chan struct{}, wg *sync.WaitGroup) {
	defer wg.Done()
	d := &chaosDevice{id: id}
	c := d.connect([]string{addr})
	if c == nil {
		return
	}
	defer c.Disconnect(100)
	window := make(chan struct{}, 20)
	var inflight sync.WaitGroup
	defer inflight.Wait()
	for seq := 0; ; seq++ {
		select {
		case <-stop:
			return
		case window <- struct{}{}:
		}
		ts := base.Add(time.Duration(seq) * time.Millisecond)
		tok := c.Publish(topic(id, "telemetry"), 1, false, fmt.Sprintf(`{"ts":%d,"fill_pct":%d}`, ts.UnixMilli(), seq%80))
		inflight.Add(1)
		go func() {
			defer inflight.Done()
			defer func() { <-window }()
			if tok.WaitTimeout(30*time.Second) && tok.Error() == nil {
				acks.ack(id, ts.UnixNano(), 0)
			}
		}()
	}
}

// quantiles formats p50, p90 and the maximum of ds.
func quantiles(ds []time.Duration) string {
	if len(ds) == 0 {
		return "no samples"
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	q := func(p float64) time.Duration { return s[min(int(p*float64(len(s))), len(s)-1)] }
	ms := func(d time.Duration) string { return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond)) }
	return fmt.Sprintf("p50 %s, p90 %s, max %s (%d samples)", ms(q(0.5)), ms(q(0.9)), ms(s[len(s)-1]), len(s))
}
