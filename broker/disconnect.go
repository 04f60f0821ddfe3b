package broker

import (
	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// Disconnect closes every connection of device at once (MQTT 5 clients get
// DISCONNECT 0x87, not authorized) and drops the sessions it kept for a
// reconnect: the device was removed or disabled. Its last will, if any, is
// published as for any connection that ends without DISCONNECT. It returns
// the number of connections closed. Other devices' connections are not
// touched.
func (b *Broker) Disconnect(device string) int {
	n := b.disconnectEach(func(cl *mqtt.Client) bool { return string(cl.Properties.Username) == device },
		packets.ErrNotAuthorized, func(cl *mqtt.Client) {
			// A session kept for a reconnect that can no longer come.
			b.srv.UnsubscribeClient(cl)
			b.srv.Clients.Delete(cl.ID)
			b.hook.sessions.remove(device, cl.ID)
		})
	if n > 0 {
		b.log.Info("mqtt device disconnected: no longer registered or disabled", "device", device, "connections", n)
	}
	return n
}

// disconnectEach disconnects the device connections match accepts with
// code (a 3.1.1 client gets no DISCONNECT: OnPacketEncode) and returns how
// many it closed; the sessions match accepts that are kept without a
// connection go to kept, when given.
func (b *Broker) disconnectEach(match func(*mqtt.Client) bool, code packets.Code, kept func(*mqtt.Client)) int {
	n := 0
	for _, cl := range b.srv.Clients.GetAll() {
		if cl.Net.Inline || !match(cl) {
			continue
		}
		if !cl.Closed() {
			_ = b.srv.DisconnectClient(cl, code)
			n++
		} else if kept != nil {
			kept(cl)
		}
	}
	return n
}
