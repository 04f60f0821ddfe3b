package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

var errInternal = errors.New("internal error")

// Channels a device may publish on, under its own TopicPrefix+id+"/";
// cmd/ack answers the commands it receives on cmd.
var publishChannels = map[string]bool{"telemetry": true, "events": true, "status": true, CommandAckChannel: true}

// hook authenticates devices, enforces the topic ACL, and hands publishes to
// the Handler. Every method recovers its own panics: a bug in one message's
// handling costs that message, never the broker.
type hook struct {
	mqtt.HookBase
	b           *Broker
	auth        Authenticator
	handler     Handler
	onWill      func(device string)
	known       func(device string) bool // registered devices, for certificate logins
	maxSubs     int                      // subscriptions one session may hold
	maxFilt     int                      // bytes in one subscription filter
	q2          qos2                     // QoS 2 packet ids per client
	sessions    sessions                 // each device's sessions
	maxSessions int                      // sessions one device may hold

	mu      sync.Mutex
	online  map[*mqtt.Client]*acker // authenticated clients -> their PUBACK sender
	devices map[string]int          // device id -> its open connections
}

func (h *hook) ID() string { return "sanigate-devices" }

func (h *hook) Provides(b byte) bool { return provided[b] }

// provided marks the hook methods mochi calls; it asks for each one on
// every packet.
var provided = func() (p [256]bool) {
	for _, b := range []byte{
		mqtt.OnConnect,
		mqtt.OnConnectAuthenticate,
		mqtt.OnACLCheck,
		mqtt.OnPublish,
		mqtt.OnSessionEstablished,
		mqtt.OnDisconnect,
		mqtt.OnPacketRead,
		mqtt.OnPacketEncode,
		mqtt.OnClientExpired,
	} {
		p[b] = true
	}
	return p
}()

func (h *hook) recovered(where string, cl *mqtt.Client) {
	if r := recover(); r != nil {
		h.b.metrics.panics.WithLabelValues(where).Inc()
		device := ""
		if cl != nil {
			device = string(cl.Properties.Username)
		}
		h.b.log.Error("recovered panic in mqtt hook", "hook", where, "device", device, "panic", fmt.Sprint(r))
	}
}

// OnConnectAuthenticate accepts a client whose username is a registered device
// id and whose password matches that device's hash, unless failed logins have
// throttled the id or the source address (auth.go).
func (h *hook) OnConnectAuthenticate(cl *mqtt.Client, pk packets.Packet) (ok bool) {
	defer h.recovered("connect", cl)
	accept, decided := h.certAuthenticate(cl)
	if !decided {
		device := string(pk.Connect.Username)
		if device == "" || !pk.Connect.PasswordFlag {
			h.b.metrics.authFailures.WithLabelValues("no_credentials").Inc()
			return false
		}
		accept = h.login(device, string(pk.Connect.Password), cl.Net.Remote)
	}
	return accept && h.reserveSession(cl)
}

// reserveSession counts an authenticated client's session before its
// CONNACK, so that the next CONNECT of the device sees it, and so that two
// racing CONNECTs cannot both pass OnConnect's cap.
func (h *hook) reserveSession(cl *mqtt.Client) bool {
	if h.sessions.reserve(string(cl.Properties.Username), cl.ID, h.maxSessions) {
		return true
	}
	h.b.metrics.authFailures.WithLabelValues("too_many_sessions").Inc()
	return false
}

// OnSessionEstablished counts the device as connected.
func (h *hook) OnSessionEstablished(cl *mqtt.Client, pk packets.Packet) {
	defer h.recovered("session", cl)
	h.mu.Lock()
	if h.online == nil {
		h.online = map[*mqtt.Client]*acker{}
	}
	if _, ok := h.online[cl]; !ok {
		h.online[cl] = h.b.acks.add(cl)
		if h.devices == nil {
			h.devices = map[string]int{}
		}
		h.devices[string(cl.Properties.Username)]++
		h.b.metrics.connected.Inc()
	}
	h.mu.Unlock()
	h.sessions.add(string(cl.Properties.Username), cl.ID)
}

// OnDisconnect un-counts the device and counts oversized packets, which mochi
// answers by disconnecting ([MQTT-3.2.2-15]).
func (h *hook) OnDisconnect(cl *mqtt.Client, err error, expire bool) {
	defer h.recovered("disconnect", cl)
	if errors.Is(err, packets.ErrPacketTooLarge) {
		h.b.metrics.rejected.WithLabelValues("too_large").Inc()
		h.b.logLimited("too_large", "mqtt packet over the size limit; client disconnected", "device", string(cl.Properties.Username))
	}
	h.q2.forget(cl)
	if expire && !cl.IsTakenOver() {
		h.sessions.remove(string(cl.Properties.Username), cl.ID)
	}
	h.mu.Lock()
	if _, ok := h.online[cl]; ok {
		delete(h.online, cl)
		id := string(cl.Properties.Username)
		if h.devices[id]--; h.devices[id] <= 0 {
			delete(h.devices, id)
			if err != nil && h.onWill != nil && !h.b.closing.Load() {
				go h.onWill(id)
			}
		}
		h.b.metrics.connected.Dec()
	}
	h.mu.Unlock()
}

// OnACLCheck lets a device publish on its own telemetry, events, status and
// cmd/ack topics and subscribe only under its own prefix (its cmd topic). The gateway's inline client
// is not checked by mochi.
func (h *hook) OnACLCheck(cl *mqtt.Client, topic string, write bool) (ok bool) {
	defer h.recovered("acl", cl)
	if !write && !h.subscriptionAllowed(cl, topic) {
		return false
	}
	rest, own := ownTopic(topic, cl.Properties.Username)
	if !own || (write && !publishChannels[rest]) {
		h.b.metrics.aclDenied.Inc()
		h.b.logLimited("acl", "mqtt topic refused", "device", string(cl.Properties.Username), "topic", topic, "write", write)
		return false
	}
	return true
}

// ownTopic reports whether topic is under device's own prefix
// (TopicPrefix + device + "/"), and what follows it.
func ownTopic(topic string, device []byte) (rest string, ok bool) {
	if len(device) == 0 || !strings.HasPrefix(topic, TopicPrefix) {
		return "", false
	}
	t := topic[len(TopicPrefix):]
	if len(t) <= len(device) || t[len(device)] != '/' || t[:len(device)] != string(device) {
		return "", false
	}
	return t[len(device)+1:], true
}

// subscriptionAllowed applies the caps on filter length and on the number
// of subscriptions a session holds.
func (h *hook) subscriptionAllowed(cl *mqtt.Client, filter string) bool {
	reason := ""
	if h.maxFilt > 0 && len(filter) > h.maxFilt {
		reason = "filter_too_long"
	} else if _, held := cl.State.Subscriptions.Get(filter); !held && h.maxSubs > 0 && cl.State.Subscriptions.Len() >= h.maxSubs {
		reason = "too_many_subscriptions"
	}
	if reason == "" {
		return true
	}
	h.b.metrics.rejected.WithLabelValues(reason).Inc()
	h.b.logLimited(reason, "mqtt subscription over a cap; refused", "device", string(cl.Properties.Username), "reason", reason)
	return false
}

// OnPublish hands an authorised publish to the Handler. mochi sends no
// acknowledgement: a QoS 1 publish takes its place in the client's acker at
// once, and is answered there once its outcome is known (pubackFor).
func (h *hook) OnPublish(cl *mqtt.Client, pk packets.Packet) (out packets.Packet, err error) {
	if cl.Net.Inline {
		return pk, nil
	}
	var (
		a   *acker
		seq uint64
	)
	defer func() {
		if r := recover(); r != nil {
			h.recoveredValue("publish", cl, r)
			if a != nil {
				a.complete(seq, errInternal) // keep the acknowledgement order moving
			}
			out, err = pk, errRejectPacket
		}
	}()
	device := string(cl.Properties.Username)
	channel, own := ownTopic(pk.TopicName, cl.Properties.Username)
	if !own {
		channel = pk.TopicName
	}
	if channel == "status" {
		// Presence: retained and delivered to subscribers; not a reading.
		return pk, nil
	}
	if pk.FixedHeader.Qos == 0 {
		if herr := h.handler.HandlePublish(device, channel, pk.Payload, nil); herr != nil {
			return pk, errRejectPacket
		}
		return pk, errSuccessIgnore
	}
	if pk.FixedHeader.Qos == 2 {
		return pk, h.publishQoS2(cl, device, channel, pk)
	}
	ac := h.ackerOf(cl)
	s := ac.reserve(pk.PacketID)
	a, seq = ac, s // from here on, a recovered panic answers this publish
	if herr := h.handler.HandlePublish(device, channel, pk.Payload, a.doneFunc(seq)); herr != nil {
		a.complete(seq, herr)
	}
	return handled(pk), nil
}

// handled is what mochi gets back for a publish the gateway has taken: the
// acknowledgement is the acker's, so mochi must neither answer it nor route
// or retain it. An ignored QoS 0 copy does exactly nothing there. A rejection
// would do the same, but mochi logs every rejected packet at debug level and
// boxes the whole packet (800 bytes) for that on every publish, enabled or not.
func handled(pk packets.Packet) packets.Packet {
	pk.FixedHeader.Qos, pk.FixedHeader.Retain, pk.Ignore = 0, false, true
	return pk
}

// mochi's verdicts, boxed once: returning a packets.Code as an error would
// allocate on every publish.
var (
	errRejectPacket  error = packets.ErrRejectPacket
	errSuccessIgnore error = packets.CodeSuccessIgnore
)

// ackerOf returns the client's acker; one made for the occasion if the
// session is not counted yet (which mochi does not allow after CONNACK).
func (h *hook) ackerOf(cl *mqtt.Client) *acker {
	h.mu.Lock()
	a := h.online[cl]
	h.mu.Unlock()
	if a == nil {
		a = h.b.acks.add(cl)
	}
	return a
}

func (h *hook) recoveredValue(where string, cl *mqtt.Client, r any) {
	h.b.metrics.panics.WithLabelValues(where).Inc()
	h.b.log.Error("recovered panic in mqtt hook", "hook", where, "device", string(cl.Properties.Username), "panic", fmt.Sprint(r))
}

// levelFloor drops mochi's records below min, and its "publish packet
// error" lines: mochi logs every refused publish with its whole payload at
// error level, while the gateway counts refusals and logs them at a bounded rate.
type levelFloor struct {
	h   slog.Handler
	min slog.Level
}

func (l levelFloor) Enabled(ctx context.Context, lv slog.Level) bool {
	return lv >= l.min && l.h.Enabled(ctx, lv)
}
func (l levelFloor) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == "publish packet error" {
		return nil
	}
	return l.h.Handle(ctx, r)
}
func (l levelFloor) WithAttrs(a []slog.Attr) slog.Handler {
	return levelFloor{h: l.h.WithAttrs(a), min: l.min}
}
func (l levelFloor) WithGroup(n string) slog.Handler {
	return levelFloor{h: l.h.WithGroup(n), min: l.min}
}
