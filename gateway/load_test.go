package gateway

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	pahomqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/sanigate/sanigate/fleet"
	"github.com/sanigate/sanigate/internal/influxtest"
	"github.com/sanigate/sanigate/internal/testenv"
)

// loadDevices returns YAML entries for n bins called load-1..load-n
// (password "pw-" + id), for a configuration's devices list.
func loadDevices(t testing.TB, n int) string {
	t.Helper()
	var b strings.Builder
	for i := 1; i <= n; i++ {
		b.WriteString(loadDevice(t, fmt.Sprintf("load-%d", i)))
	}
	return b.String()
}

func loadDevice(t testing.TB, id string) string {
	t.Helper()
	h, err := fleet.HashPassword("pw-"+id, 4)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("  - {id: %s, kind: bin, category: other, contractor: greenclean, district: south, password_hash: %q}\n", id, h)
}

// ackLog records every reading whose publish was acknowledged.
type ackLog struct {
	mu    sync.Mutex
	acked map[string]map[int64]float64 // device -> ts (ns) -> fill_pct
	sent  atomic.Int64
	nacks atomic.Int64
}

func newAckLog() *ackLog { return &ackLog{acked: map[string]map[int64]float64{}} }

func (a *ackLog) ack(device string, ts int64, v float64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.acked[device] == nil {
		a.acked[device] = map[int64]float64{}
	}
	a.acked[device][ts] = v
}

func (a *ackLog) total() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for _, m := range a.acked {
		n += len(m)
	}
	return n
}

// publisher sends QoS 1 bin readings as device id, one every period, until
// stop is closed. Each reading has its own timestamp; its value is derived
// from its sequence number. Connection loss ends it.
func publisher(addr, id string, period time.Duration, base time.Time, log *ackLog, stop <-chan struct{}, wg *sync.WaitGroup) {
	defer wg.Done()
	opts := pahomqtt.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(id + "-load").
		SetUsername(id).SetPassword("pw-" + id).SetAutoReconnect(false).SetConnectTimeout(5 * time.Second).
		SetWriteTimeout(5 * time.Second).SetMaxResumePubInFlight(100)
	c := pahomqtt.NewClient(opts)
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		return
	}
	defer c.Disconnect(100)
	var inflight sync.WaitGroup
	defer inflight.Wait()
	t := time.NewTicker(period)
	defer t.Stop()
	for seq := 0; ; seq++ {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		if !c.IsConnectionOpen() {
			return
		}
		ts := base.Add(time.Duration(seq) * time.Millisecond)
		v := float64(seq % 101)
		tok := c.Publish(topic(id, "telemetry"), 1, false, fmt.Sprintf(`{"ts":%d,"fill_pct":%g}`, ts.UnixMilli(), v))
		log.sent.Add(1)
		inflight.Add(1)
		go func() {
			defer inflight.Done()
			if tok.WaitTimeout(60*time.Second) && tok.Error() == nil {
				log.ack(id, ts.UnixNano(), v)
			} else {
				log.nacks.Add(1)
			}
		}()
	}
}

// verifyAcked checks that every acknowledged reading is in InfluxDB, once,
// with its value.
func verifyAcked(t *testing.T, influx *influxtest.Server, log *ackLog) {
	t.Helper()
	log.mu.Lock()
	defer log.mu.Unlock()
	missing, wrong := 0, 0
	for device, want := range log.acked {
		rows := influx.Rows(t, fmt.Sprintf(`SELECT "fill_pct" FROM "bin" WHERE "device"='%s'`, device))
		got := map[int64]float64{}
		for _, r := range rows {
			ts, _ := r["time"].(json.Number).Int64()
			v, _ := r["fill_pct"].(json.Number).Float64()
			if _, dup := got[ts]; dup {
				t.Errorf("%s: reading at %d stored twice", device, ts)
			}
			got[ts] = v
		}
		for ts, v := range want {
			g, ok := got[ts]
			switch {
			case !ok:
				missing++
			case g != v:
				wrong++
			}
		}
	}
	if missing > 0 || wrong > 0 {
		t.Errorf("of %d acknowledged readings, %d missing and %d with a wrong value in InfluxDB", log.totalLocked(), missing, wrong)
	}
}

func (a *ackLog) totalLocked() int {
	n := 0
	for _, m := range a.acked {
		n += len(m)
	}
	return n
}

// waitStored waits until InfluxDB holds at least n bin readings of the load devices.
func waitStored(t *testing.T, influx *influxtest.Server, n int, d time.Duration) {
	t.Helper()
	testenv.Eventually(t, d, fmt.Sprintf("%d readings in InfluxDB", n), func() bool {
		return influx.Count(t, "bin", "fill_pct", `"device"=~/^load-/`) >= int64(n)
	})
}
