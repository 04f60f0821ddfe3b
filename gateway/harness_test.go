package gateway

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	pahomqtt "github.com/eclipse/paho.mqtt.golang"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/sanigate/sanigate/fleet"
	"github.com/sanigate/sanigate/internal/influxtest"
)

const testDB = "sanigate_test"

// testDevices is one device of each kind; each one's password is "pw-" + id.
func testDevices(t testing.TB) []fleet.Device {
	t.Helper()
	mk := func(id, kind, cat string, capKG float64) fleet.Device {
		h, err := fleet.HashPassword("pw-"+id, 4)
		if err != nil {
			t.Fatal(err)
		}
		return fleet.Device{ID: id, Kind: kind, Category: cat, Contractor: "greenclean", District: "north",
			CapacityKG: capKG, PasswordHash: h}
	}
	return []fleet.Device{
		mk("bin-1", "bin", "kitchen", 0),
		mk("bin-2", "bin", "recyclable", 0),
		mk("truck-1", "truck", "kitchen", 8000),
		mk("toilet-1", "toilet", "", 0),
		mk("sweeper-1", "sweeper", "", 0),
	}
}

type harness struct {
	t      testing.TB
	influx *influxtest.Server
	cfg    *fleet.Config
	g      *Gateway
	logs   *strings.Builder
	// setup, if set, adjusts the gateway before it starts.
	setup func(*Gateway)
}

// testConfig builds a configuration for devices on loopback ports chosen by the system.
func testConfig(t testing.TB, influxURL string, devices []fleet.Device) *fleet.Config {
	t.Helper()
	return testConfigExtra(t, influxURL, devices, "", "")
}

// testConfigExtra adds raw YAML: more device entries, and top-level sections.
func testConfigExtra(t testing.TB, influxURL string, devices []fleet.Device, moreDevices, sections string) *fleet.Config {
	t.Helper()
	dir := t.TempDir()
	var b strings.Builder
	fmt.Fprintf(&b, "mqtt:\n  address: 127.0.0.1:0\nhttp:\n  address: 127.0.0.1:0\n")
	fmt.Fprintf(&b, "influxdb:\n  url: %s\n  bucket: %s\n  flush_interval: 100ms\n", influxURL, testDB)
	fmt.Fprintf(&b, "spool:\n  dir: spool\n")
	b.WriteString("devices:\n")
	for _, d := range devices {
		fmt.Fprintf(&b, "  - id: %s\n    kind: %s\n    contractor: %s\n    district: %s\n    password_hash: %q\n", d.ID, d.Kind, d.Contractor, d.District, d.PasswordHash)
		if d.Category != "" {
			fmt.Fprintf(&b, "    category: %s\n", d.Category)
		}
		if d.CapacityKG > 0 {
			fmt.Fprintf(&b, "    capacity_kg: %g\n", d.CapacityKG)
		}
	}
	b.WriteString(moreDevices)
	b.WriteString(sections)
	path := filepath.Join(dir, "sanigate.yaml")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := fleet.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func newHarness(t testing.TB, mutate ...func(*fleet.Config)) *harness {
	t.Helper()
	return newHarnessYAML(t, "", "", mutate...)
}

func newHarnessYAML(t testing.TB, moreDevices, sections string, mutate ...func(*fleet.Config)) *harness {
	t.Helper()
	influx := influxtest.Start(t, testDB)
	cfg := testConfigExtra(t, influx.URL, testDevices(t), moreDevices, sections)
	for _, m := range mutate {
		m(cfg)
	}
	h := &harness{t: t, influx: influx, cfg: cfg, logs: &strings.Builder{}}
	h.start()
	return h
}

func (h *harness) start() {
	h.t.Helper()
	log := slog.New(slog.NewTextHandler(syncWriter{h.logs}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	g, err := New(h.cfg, log)
	if err != nil {
		h.t.Fatal(err)
	}
	if h.setup != nil {
		h.setup(g)
	}
	if err := g.Start(context.Background()); err != nil {
		h.t.Fatal(err)
	}
	h.g = g
	h.t.Cleanup(func() { h.stop() })
}

func (h *harness) stop() {
	if h.g != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = h.g.Close(ctx)
		h.g = nil
	}
}

// syncWriter serialises writes into a strings.Builder.
type syncWriter struct{ b *strings.Builder }

var logMu = make(chan struct{}, 1)

func (w syncWriter) Write(p []byte) (int, error) {
	logMu <- struct{}{}
	defer func() { <-logMu }()
	return w.b.Write(p)
}

// connect opens an MQTT 3.1.1 connection as device id with password pw.
func (h *harness) connect(id, pw string) (pahomqtt.Client, error) {
	opts := pahomqtt.NewClientOptions().
		AddBroker("tcp://" + h.g.MQTTAddr()).
		SetClientID(id + "-c").
		SetUsername(id).SetPassword(pw).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetConnectTimeout(5 * time.Second).
		SetWriteTimeout(5 * time.Second).
		SetCleanSession(true)
	c := pahomqtt.NewClient(opts)
	tok := c.Connect()
	if !tok.WaitTimeout(10 * time.Second) {
		return nil, fmt.Errorf("connect timed out")
	}
	if err := tok.Error(); err != nil {
		return nil, err
	}
	return c, nil
}

func (h *harness) mustConnect(id string) pahomqtt.Client {
	h.t.Helper()
	c, err := h.connect(id, "pw-"+id)
	if err != nil {
		h.t.Fatalf("connect %s: %v", id, err)
	}
	h.t.Cleanup(func() { c.Disconnect(100) })
	return c
}

func publish(t testing.TB, c pahomqtt.Client, topic string, qos byte, payload string) {
	t.Helper()
	tok := c.Publish(topic, qos, false, payload)
	if !tok.WaitTimeout(10 * time.Second) {
		t.Fatalf("publish to %s: no PUBACK within 10s", topic)
	}
	if err := tok.Error(); err != nil {
		t.Fatalf("publish to %s: %v", topic, err)
	}
}

func topic(device, channel string) string {
	return "sanigate/v1/devices/" + device + "/" + channel
}

// metrics scrapes /metrics over HTTP.
func (h *harness) metrics() map[string]*dto.MetricFamily {
	h.t.Helper()
	resp, err := http.Get("http://" + h.g.HTTPAddr() + "/metrics")
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	p := expfmt.NewTextParser(model.UTF8Validation)
	mf, err := p.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		h.t.Fatalf("parse /metrics: %v", err)
	}
	return mf
}

// metric returns the value of the series of name whose labels include want.
func (h *harness) metric(name string, want map[string]string) float64 {
	h.t.Helper()
	mf := h.metrics()[name]
	if mf == nil {
		return 0
	}
	var sum float64
	for _, m := range mf.Metric {
		ok := true
		for k, v := range want {
			found := false
			for _, lp := range m.Label {
				if lp.GetName() == k && lp.GetValue() == v {
					found = true
				}
			}
			ok = ok && found
		}
		if !ok {
			continue
		}
		switch {
		case m.Counter != nil:
			sum += m.Counter.GetValue()
		case m.Gauge != nil:
			sum += m.Gauge.GetValue()
		}
	}
	return sum
}

// demoPlaces is the places section of a test configuration: the demo city's
// districts and sites.
func demoPlaces(t testing.TB) string {
	t.Helper()
	demo, err := filepath.Abs("../examples/demo")
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("places:\n  districts: %s\n  sites: %s\n",
		filepath.Join(demo, "districts.geojson"), filepath.Join(demo, "sites.geojson"))
}
