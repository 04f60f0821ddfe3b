package broker

import (
	"context"
	"strings"
	"testing"
	"time"

	pahomqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/sanigate/sanigate/fleet"
)

func TestLoginThrottleBackoff(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	th := newLoginThrottle(LoginLimits{DeviceFailures: 3, AddressFailures: 10, Backoff: time.Second, MaxBackoff: 8 * time.Second})
	th.now = func() time.Time { return now }
	for i := 0; i < 3; i++ {
		if by := th.blocked("bin-1", "10.0.0.1"); by != "" {
			t.Fatalf("failure %d: blocked by %s before the allowance is used", i, by)
		}
		th.failed("bin-1", "10.0.0.1")
	}
	if by := th.blocked("bin-1", "10.0.0.1"); by != "" {
		t.Fatalf("blocked by %s after exactly the allowed failures", by)
	}
	// Each failure beyond the allowance doubles the backoff, up to the cap.
	for i, want := range []time.Duration{1, 2, 4, 8, 8} {
		th.failed("bin-1", "10.0.0.1")
		if th.blocked("bin-1", "10.0.0.2") != "device" {
			t.Fatalf("extra failure %d: device not blocked", i)
		}
		now = now.Add(want*time.Second - time.Millisecond)
		if th.blocked("bin-1", "10.0.0.2") != "device" {
			t.Fatalf("extra failure %d: device open before %v", i, want*time.Second)
		}
		now = now.Add(time.Millisecond)
		if by := th.blocked("bin-1", "10.0.0.2"); by != "" {
			t.Fatalf("extra failure %d: still blocked by %s after %v", i, by, want*time.Second)
		}
	}
	// Another device from another address is not affected; a success clears the device.
	if th.blocked("bin-2", "10.0.0.2") != "" {
		t.Fatal("another device blocked")
	}
	th.succeeded("bin-1")
	th.failed("bin-1", "10.0.0.3")
	if th.blocked("bin-1", "10.0.0.3") != "" {
		t.Fatal("a success did not clear the device's failures")
	}
	// The address has 8 failures now; three more from any ids close it.
	th.failed("x", "10.0.0.1")
	th.failed("y", "10.0.0.1")
	if th.blocked("bin-9", "10.0.0.1") != "" {
		t.Fatal("address blocked within its allowance")
	}
	th.failed("z", "10.0.0.1")
	if th.blocked("bin-9", "10.0.0.1") != "address" {
		t.Fatal("address not blocked after its allowance")
	}
}

func TestLoginThrottleBounded(t *testing.T) {
	th := newLoginThrottle(LoginLimits{MaxTracked: 10, MaxBackoff: time.Minute})
	now := time.Unix(1_000_000, 0)
	th.now = func() time.Time { return now }
	for i := 0; i < 100; i++ {
		th.failed(strings.Repeat("x", i+1), "10.0.0.1")
	}
	if n := len(th.entries); n > 10 {
		t.Fatalf("%d entries, want at most 10", n)
	}
	now = now.Add(2 * time.Minute)
	th.failed("fresh", "10.0.0.9")
	if th.entries["dfresh"] == nil {
		t.Fatal("stale entries not pruned to make room")
	}
}

// startBroker runs a broker with the real device registry on a free
// loopback port.
func startBroker(t testing.TB, reg *fleet.Registry, lim LoginLimits) (*Broker, *prometheus.Registry) {
	t.Helper()
	pr := prometheus.NewRegistry()
	b, err := New(Options{Address: "127.0.0.1:0", Auth: reg, Handler: discard{}, Registerer: pr, Login: lim})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = b.Close(ctx)
	})
	return b, pr
}

// discard stores nothing; these tests publish nothing.
type discard struct{}

func (discard) HandlePublish(string, string, []byte, func(error)) error { return nil }

func connect(addr, id, pw string) error {
	c := pahomqtt.NewClient(pahomqtt.NewClientOptions().AddBroker("tcp://" + addr).
		SetClientID(id + "-t").SetUsername(id).SetPassword(pw).
		SetProtocolVersion(4).SetAutoReconnect(false).SetConnectRetry(false).SetConnectTimeout(5 * time.Second))
	tok := c.Connect()
	if !tok.WaitTimeout(10 * time.Second) {
		return context.DeadlineExceeded
	}
	if err := tok.Error(); err != nil {
		return err
	}
	c.Disconnect(0)
	return nil
}

// Failed logins close a device id to logins, then its right password is
// refused too until the backoff ends; an unknown id goes the same way.
func TestLoginThrottledPerDevice(t *testing.T) {
	secret, hash, _ := fleet.GenerateSecret()
	bh, _ := fleet.HashPassword("chosen-password", 4)
	reg := fleet.NewRegistry([]fleet.Device{{ID: "bin-1", Kind: "bin", PasswordHash: hash}, {ID: "bin-2", Kind: "bin", PasswordHash: bh}})
	b, pr := startBroker(t, reg, LoginLimits{DeviceFailures: 2, AddressFailures: 1000, Backoff: time.Hour})
	for _, id := range []string{"bin-1", "bin-404"} {
		for i := 0; i < 4; i++ {
			if err := connect(b.Addr(), id, "guess"); err == nil {
				t.Fatalf("%s: wrong password accepted", id)
			}
		}
	}
	if err := connect(b.Addr(), "bin-1", secret); err == nil {
		t.Fatal("bin-1: right secret accepted while throttled")
	}
	if err := connect(b.Addr(), "bin-2", "chosen-password"); err != nil {
		t.Fatalf("bin-2, not throttled: %v", err)
	}
	// Per id: two failures allowed, the third starts the backoff, the
	// fourth is refused unverified; then bin-1's right secret is too.
	if got := testutil.ToFloat64(b.metrics.loginsThrottled.WithLabelValues("device")); got != 3 {
		t.Errorf("throttled by device: got %v, want 3", got)
	}
	if got := testutil.ToFloat64(b.metrics.authFailures.WithLabelValues("bad_credentials")); got != 6 {
		t.Errorf("bad credentials: got %v, want 6", got)
	}
	if n, err := testutil.GatherAndCount(pr, "sanigate_mqtt_logins_throttled_total"); err != nil || n == 0 {
		t.Errorf("metric not exposed: %d, %v", n, err)
	}
}

// Guesses spread over many ids close the source address.
func TestLoginThrottledPerAddress(t *testing.T) {
	secret, hash, _ := fleet.GenerateSecret()
	reg := fleet.NewRegistry([]fleet.Device{{ID: "bin-1", Kind: "bin", PasswordHash: hash}})
	b, _ := startBroker(t, reg, LoginLimits{DeviceFailures: 1000, AddressFailures: 3, Backoff: time.Hour})
	for _, id := range []string{"bin-7", "bin-8", "bin-9"} {
		if err := connect(b.Addr(), id, "guess"); err == nil {
			t.Fatalf("%s accepted", id)
		}
	}
	if err := connect(b.Addr(), "bin-1", secret); err != nil {
		t.Fatalf("bin-1 refused before the address's allowance is used: %v", err)
	}
	if err := connect(b.Addr(), "bin-10", "guess"); err == nil {
		t.Fatal("bin-10 accepted")
	}
	if err := connect(b.Addr(), "bin-1", secret); err == nil {
		t.Fatal("bin-1 accepted from a throttled address")
	}
	if got := testutil.ToFloat64(b.metrics.loginsThrottled.WithLabelValues("address")); got != 1 {
		t.Errorf("throttled by address: got %v, want 1", got)
	}
}
