// Package broker runs the embedded MQTT broker (mochi-mqtt): its listeners,
// device authentication and topic ACL, and the hand-off of each publish to
// telemetry. It decodes no payload.
package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync/atomic"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/sanigate/sanigate/telemetry"
)

// TopicPrefix is the root of every device topic:
// sanigate/v1/devices/{device_id}/{telemetry|events|status|cmd}.
const TopicPrefix = "sanigate/v1/devices/"

// Handler receives every authorised publish. HandlePublish is called from the
// publishing client's connection goroutine, concurrently for different
// clients, in each client's order. It returns a refusal at once; otherwise,
// for QoS 1 (done not nil) it calls done once the message is durable (nil) or
// could not be made so, without blocking: done releases the PUBACK.
//
// An error decides the acknowledgement (see pubackFor): ErrPayloadRejected
// for a message refused for its content, ErrFull when storage is full; any
// other error is treated as a transient failure.
type Handler interface {
	HandlePublish(device, channel string, payload []byte, done func(error)) error
}

// Authenticator checks a device's credentials.
type Authenticator interface {
	Authenticate(device, password string) bool
}

// Errors a Handler returns (wrapped is fine) to choose the acknowledgement.
var (
	// ErrPayloadRejected: the message is refused for good. MQTT 5 clients get
	// PUBACK 0x99 (payload format invalid); 3.1.1 clients get a PUBACK, since
	// resending the same bytes cannot succeed.
	ErrPayloadRejected = telemetry.ErrRefused
)

// Options configure a Broker.
type Options struct {
	Address        string // TCP address, default ":1883"
	MaxPacketBytes int    // default 64 KiB
	Auth           Authenticator
	Handler        Handler
	Logger         *slog.Logger
	Registerer     prometheus.Registerer
	// OnLastWill, if set, is called when a device's last connection ends
	// without a DISCONNECT (its last will): the device_offline signal.
	OnLastWill func(device string)
	// Login throttles failed logins per device id and source address.
	Login LoginLimits
}

// Broker is the embedded MQTT broker.
type Broker struct {
	hook    *hook
	srv     *mqtt.Server
	ln      *listener
	log     *slog.Logger
	metrics *metrics
	acks    *ackers
	logins  *loginThrottle
	started atomic.Bool
}

// New builds a broker; Start opens its listener.
func New(opts Options) (*Broker, error) {
	if opts.Auth == nil || opts.Handler == nil {
		return nil, errors.New("broker: Auth and Handler are required")
	}
	if opts.Address == "" {
		opts.Address = ":1883"
	}
	if opts.MaxPacketBytes == 0 {
		opts.MaxPacketBytes = 64 << 10
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Registerer == nil {
		opts.Registerer = prometheus.NewRegistry()
	}
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, err
	}
	caps := mqtt.NewDefaultServerCapabilities()
	caps.MaximumPacketSize = uint32(opts.MaxPacketBytes)
	caps.MaximumSessionExpiryInterval = 24 * 60 * 60
	caps.MaximumMessageExpiryInterval = 24 * 60 * 60
	caps.MaximumQos = 1 // QoS 2 adds a round trip and nothing durable beyond QoS 1 here
	sizeForDevices(caps)
	// mochi logs every client error at warn level; keep its chatter at error.
	mlog := slog.New(levelFloor{h: opts.Logger.Handler(), min: slog.LevelError})
	srv := mqtt.New(&mqtt.Options{
		Capabilities:             caps,
		Logger:                   mlog,
		InlineClient:             true,
		ClientNetReadBufferSize:  clientReadBuffer,
		ClientNetWriteBufferSize: clientWriteBuffer,
	})
	b := &Broker{srv: srv, log: opts.Logger, metrics: m}
	b.acks = newAckers(b)
	b.logins = newLoginThrottle(opts.Login)
	h := &hook{b: b, auth: opts.Auth, handler: opts.Handler, onWill: opts.OnLastWill}
	b.hook = h
	if err := srv.AddHook(h, nil); err != nil {
		return nil, fmt.Errorf("broker: %w", err)
	}
	b.ln = &listener{id: "tcp", address: opts.Address, onPanic: b.recoverConn, connectTimeout: 10 * time.Second}
	if err := srv.AddListener(b.ln); err != nil {
		return nil, fmt.Errorf("broker: listen on %s: %w", opts.Address, err)
	}
	return b, nil
}

// Start begins accepting connections. It returns once the listener is open.
func (b *Broker) Start() error {
	b.acks.start()
	if err := b.srv.Serve(); err != nil {
		return fmt.Errorf("broker: %w", err)
	}
	b.started.Store(true)
	b.log.Info("mqtt broker listening", "address", b.Addr())
	return nil
}

// Addr is the address the broker listens on (with the chosen port when the
// configured one was 0).
func (b *Broker) Addr() string { return b.ln.Address() }

// Publish sends a message from the gateway itself (for example to a crew
// terminal's topic).
func (b *Broker) Publish(topic string, payload []byte, retain bool, qos byte) error {
	return b.srv.Publish(topic, payload, retain, qos)
}

// Online reports whether device has an open, authenticated connection.
func (b *Broker) Online(device string) bool {
	b.hook.mu.Lock()
	defer b.hook.mu.Unlock()
	return b.hook.devices[device] > 0
}

// ConnectedDevices is the number of authenticated device connections.
func (b *Broker) ConnectedDevices() int64 {
	b.hook.mu.Lock()
	defer b.hook.mu.Unlock()
	return int64(len(b.hook.online))
}

// Close stops accepting, disconnects every client and waits for their
// connection goroutines, bounded by ctx.
func (b *Broker) Close(ctx context.Context) error {
	done := make(chan error, 1)
	go func() {
		err := b.srv.Close()
		b.acks.close()
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// recoverConn is called when a connection goroutine panicked (a decoder bug
// reached by a malformed packet, as in mochi-mqtt issue 501). The connection is
// closed and any client left registered on it is removed, so that the process
// and every other client carry on.
func (b *Broker) recoverConn(r any, conn net.Conn) {
	b.metrics.panics.WithLabelValues("connection").Inc()
	b.log.Error("recovered panic in an mqtt connection; connection closed", "remote", conn.RemoteAddr().String(), "panic", fmt.Sprint(r))
	_ = conn.Close()
	for id, cl := range b.srv.Clients.GetAll() {
		if cl.Net.Conn == conn {
			b.srv.UnsubscribeClient(cl)
			b.srv.Clients.Delete(id)
		}
	}
}
