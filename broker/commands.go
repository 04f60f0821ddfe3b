package broker

import (
	"bytes"
	"fmt"
	"sync"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// CommandChannel is the topic suffix a device receives commands on, and
// CommandAckChannel the one it answers on (under its own prefix); the
// Handler gets the answers with channel CommandAckChannel.
const (
	CommandChannel    = "cmd"
	CommandAckChannel = "cmd/ack"
)

// maxTrackedCommands bounds the QoS 1 command publishes awaiting a PUBACK
// that the broker remembers; past it, deliveries go unreported.
const maxTrackedCommands = 10000

// deliveryHook reports when a device's session acknowledges (PUBACK) a
// QoS 1 message the gateway published on the device's cmd topic: mochi
// calls OnQosPublish when it puts the message in flight (again on each
// resend after a reconnect) and OnQosComplete with the PUBACK, which
// carries only the packet id; so the message is remembered by client id and
// packet id in between.
type deliveryHook struct {
	mqtt.HookBase
	b         *Broker
	delivered func(device string, payload []byte)

	mu       sync.Mutex
	inflight map[flightKey][]byte
}

type flightKey struct {
	client string
	id     uint16
}

func (d *deliveryHook) ID() string { return "sanigate-command-delivery" }

func (d *deliveryHook) Provides(b byte) bool {
	return bytes.Contains([]byte{mqtt.OnQosPublish, mqtt.OnQosComplete, mqtt.OnQosDropped, mqtt.OnClientExpired}, []byte{b})
}

func (d *deliveryHook) recovered(cl *mqtt.Client) {
	if r := recover(); r != nil {
		d.b.metrics.panics.WithLabelValues("delivery").Inc()
		d.b.log.Error("recovered panic in mqtt hook", "hook", "delivery", "client", cl.ID, "panic", fmt.Sprint(r))
	}
}

// OnQosPublish remembers a command publish put in flight to its device.
func (d *deliveryHook) OnQosPublish(cl *mqtt.Client, pk packets.Packet, _ int64, _ int) {
	defer d.recovered(cl)
	if pk.FixedHeader.Type != packets.Publish || cl.Net.Inline {
		return
	}
	device := string(cl.Properties.Username)
	if device == "" || pk.TopicName != TopicPrefix+device+"/"+CommandChannel {
		return // another topic, or a topic alias: only full command topics count
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.inflight == nil {
		d.inflight = map[flightKey][]byte{}
	}
	k := flightKey{cl.ID, pk.PacketID}
	if _, ok := d.inflight[k]; !ok && len(d.inflight) >= maxTrackedCommands {
		return
	}
	d.inflight[k] = bytes.Clone(pk.Payload)
}

// OnQosComplete reports a PUBACK for a remembered command publish.
func (d *deliveryHook) OnQosComplete(cl *mqtt.Client, pk packets.Packet) {
	defer d.recovered(cl)
	if pk.FixedHeader.Type != packets.Puback {
		return
	}
	d.mu.Lock()
	k := flightKey{cl.ID, pk.PacketID}
	payload, ok := d.inflight[k]
	delete(d.inflight, k)
	d.mu.Unlock()
	if ok {
		d.delivered(string(cl.Properties.Username), payload)
	}
}

// OnQosDropped forgets a message mochi gave up on.
func (d *deliveryHook) OnQosDropped(cl *mqtt.Client, pk packets.Packet) {
	d.mu.Lock()
	delete(d.inflight, flightKey{cl.ID, pk.PacketID})
	d.mu.Unlock()
}

// OnClientExpired forgets an expired session's messages.
func (d *deliveryHook) OnClientExpired(cl *mqtt.Client) {
	d.mu.Lock()
	for k := range d.inflight {
		if k.client == cl.ID {
			delete(d.inflight, k)
		}
	}
	d.mu.Unlock()
}
