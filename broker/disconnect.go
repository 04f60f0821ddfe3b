package broker

import (
	"github.com/mochi-mqtt/server/v2/packets"
)

// Disconnect closes every connection of device at once (MQTT 5 clients get
// DISCONNECT 0x87, not authorized) and drops the sessions it kept for a
// reconnect: the device was removed or disabled. Its last will, if any, is
// published as for any connection that ends without DISCONNECT. It returns
// the number of connections closed. Other devices' connections are not
// touched.
func (b *Broker) Disconnect(device string) int {
	n := 0
	for _, cl := range b.srv.Clients.GetAll() {
		if string(cl.Properties.Username) != device || cl.Net.Inline {
			continue
		}
		if !cl.Closed() {
			if cl.Properties.ProtocolVersion >= 5 {
				_ = b.srv.DisconnectClient(cl, packets.ErrNotAuthorized)
			} else {
				// MQTT 3.1.1 has no DISCONNECT from the server: close.
				cl.Stop(packets.ErrNotAuthorized)
			}
			n++
			continue
		}
		// A session kept for a reconnect that can no longer come.
		b.srv.UnsubscribeClient(cl)
		b.srv.Clients.Delete(cl.ID)
		b.hook.sessions.remove(device, cl.ID)
	}
	if n > 0 {
		b.log.Info("mqtt device disconnected: no longer registered or disabled", "device", device, "connections", n)
	}
	return n
}
