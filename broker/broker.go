// Package broker runs the embedded MQTT broker (mochi-mqtt): its listeners,
// device authentication and topic ACL, and the hand-off of each publish to
// telemetry. It decodes no payload.
package broker

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
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
	// TLSAddress is the MQTT over TLS listener's address, opened when TLS is
	// set (default ":8883").
	TLSAddress string
	// TLS serves the TLS listener; with ClientCAs set, a verified client
	// certificate naming a device (CN or DNS SAN) logs it in without a password.
	TLS *tls.Config
	// Known reports whether a device id is registered (certificate logins).
	Known func(device string) bool
	// MaxSubscriptions caps one session's subscriptions (default 16),
	// MaxFilterBytes a filter's length (default 256), MaxSessionExpiry how
	// long a session outlives its connection (default 1h).
	MaxSubscriptions int
	MaxFilterBytes   int
	MaxSessionExpiry time.Duration
	// MaxSessionsPerDevice caps the sessions (client ids) one device holds,
	// connected or kept for a reconnect (default 4).
	MaxSessionsPerDevice int
	// OnLastWill, if set, is called when a device's last connection ends
	// without a DISCONNECT (its last will): the device_offline signal. It
	// is not called for the connections Close ends.
	OnLastWill func(device string)
	// Login throttles failed logins per device id and source address.
	Login LoginLimits
	// OnCommandDelivered, if set, is called with the payload of a QoS 1
	// message published on a device's cmd topic once the device's session
	// acknowledged it (PUBACK), from that connection's goroutine: it must
	// not block.
	OnCommandDelivered func(device string, payload []byte)
}

// Broker is the embedded MQTT broker.
type Broker struct {
	hook      *hook
	srv       *mqtt.Server
	ln        *listener
	tlsLn     *listener
	wsLn      *wsListener
	maxPacket int
	log       *slog.Logger
	metrics   *metrics
	acks      *ackers
	logins    *loginThrottle
	started   atomic.Bool
	// closing is set once Close began: connections ended by the
	// gateway stopping are not their devices' last wills.
	closing atomic.Bool
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
	opts.applyCapDefaults()
	caps.MaximumSessionExpiryInterval = uint32(opts.MaxSessionExpiry / time.Second)
	caps.MaximumMessageExpiryInterval = 24 * 60 * 60
	caps.MaximumQos = 2 // QoS 2: PUBREC once durable (qos2.go)
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
	h := &hook{b: b, auth: opts.Auth, handler: opts.Handler, onWill: opts.OnLastWill, known: opts.Known,
		maxSubs: opts.MaxSubscriptions, maxFilt: opts.MaxFilterBytes, maxSessions: opts.MaxSessionsPerDevice}
	b.hook = h
	if err := srv.AddHook(h, nil); err != nil {
		return nil, fmt.Errorf("broker: %w", err)
	}
	if opts.OnCommandDelivered != nil {
		if err := srv.AddHook(&deliveryHook{b: b, delivered: opts.OnCommandDelivered}, nil); err != nil {
			return nil, fmt.Errorf("broker: %w", err)
		}
	}
	b.ln = &listener{id: "tcp", address: opts.Address, onPanic: b.recoverConn, onAcceptError: b.acceptFailed, connectTimeout: 10 * time.Second}
	if err := srv.AddListener(b.ln); err != nil {
		return nil, fmt.Errorf("broker: listen on %s: %w", opts.Address, err)
	}
	b.maxPacket = opts.MaxPacketBytes
	b.wsLn = &wsListener{listener{id: "ws", onPanic: b.recoverConn}}
	if err := srv.AddListener(b.wsLn); err != nil {
		return nil, fmt.Errorf("broker: websocket: %w", err)
	}
	if opts.TLS != nil {
		if opts.TLSAddress == "" {
			opts.TLSAddress = ":8883"
		}
		b.tlsLn = &listener{id: "tls", address: opts.TLSAddress, tls: opts.TLS, onPanic: b.recoverConn, onAcceptError: b.acceptFailed, connectTimeout: 10 * time.Second}
		if err := srv.AddListener(b.tlsLn); err != nil {
			return nil, fmt.Errorf("broker: listen on %s: %w", opts.TLSAddress, err)
		}
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

// TLSAddr is the TLS listener's address, or "" when there is none.
func (b *Broker) TLSAddr() string {
	if b.tlsLn == nil {
		return ""
	}
	return b.tlsLn.Address()
}

// Problems says which listeners are not accepting connections (for readiness).
func (b *Broker) Problems() []string {
	var ps []string
	for _, l := range []*listener{b.ln, b.tlsLn} {
		if l == nil {
			continue
		}
		if p := l.Problem(); p != "" {
			ps = append(ps, p)
		}
	}
	return ps
}

// acceptFailed counts an accept error and logs it at a bounded rate.
func (b *Broker) acceptFailed(id string, err error) {
	b.metrics.rejected.WithLabelValues("accept_error").Inc()
	b.logLimited("accept_"+id, "mqtt listener: accept failed; retrying", "listener", id, "error", err.Error())
}

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
	b.closing.Store(true)
	// Stop accepting first: devices reconnect the moment they are dropped.
	for _, l := range []*listener{b.ln, b.tlsLn, &b.wsLn.listener} {
		if l != nil {
			l.Close(nil)
		}
	}
	done := make(chan error, 1)
	go func() {
		swept := make(chan struct{})
		stop := make(chan struct{})
		go func() {
			defer close(swept)
			b.disconnectAll(stop)
		}()
		err := b.srv.Close() // waits for every client to end
		close(stop)
		<-swept
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

// disconnectAll disconnects every device client, and again every 100 ms
// until stop: a connection accepted just before its listener closed may
// register after a pass.
func (b *Broker) disconnectAll(stop <-chan struct{}) {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		b.disconnectEach(func(*mqtt.Client) bool { return true }, packets.ErrServerShuttingDown, nil)
		select {
		case <-stop:
			return
		case <-t.C:
		}
	}
}
