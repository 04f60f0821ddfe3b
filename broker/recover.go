package broker

import (
	"errors"
	"fmt"
	"net"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
)

// errConnPanic is the disconnect reason of a connection whose goroutine panicked.
var errConnPanic = errors.New("connection goroutine panicked")

// recoverConn is called when a connection goroutine panicked (a decoder bug
// reached by a malformed packet, as in mochi-mqtt issue 501). mochi's own
// end-of-connection work was skipped by the panic, so it is done here: the
// connection is closed, the client's will is sent (it was checked against
// the ACL at CONNECT), the disconnect hook runs (presence, the PUBACK sender,
// the offline signal), and the client and its session are removed. The
// process and every other client carry on.
func (b *Broker) recoverConn(r any, conn net.Conn) {
	b.metrics.panics.WithLabelValues("connection").Inc()
	b.logLimitedError("conn_panic", "recovered panic in an mqtt connection; connection closed", "remote", conn.RemoteAddr().String(), "panic", fmt.Sprint(r))
	_ = conn.Close()
	cl := b.hook.clientOn(conn)
	if cl == nil {
		for _, c := range b.srv.Clients.GetAll() {
			if c.Net.Conn == conn {
				cl = c
			}
		}
	}
	if cl == nil {
		return // panicked before CONNECT was accepted
	}
	cl.Stop(errConnPanic)
	if w := cl.Properties.Will; w.Flag == 1 && w.TopicName != "" {
		cl.Properties.Will.Flag = 0
		if err := b.srv.Publish(w.TopicName, w.Payload, w.Retain, min(w.Qos, 1)); err != nil {
			b.log.Warn("mqtt will after a panic not sent", "client", cl.ID, "error", err)
		}
	}
	b.hook.OnDisconnect(cl, errConnPanic, true)
	cl.ClearInflights()
	// A newer connection with the same client id may already have taken the
	// session over; its subscriptions are left alone.
	if cur, ok := b.srv.Clients.Get(cl.ID); ok && cur == cl {
		b.srv.UnsubscribeClient(cl)
		b.srv.Clients.Delete(cl.ID)
	}
}

// clientOn is the authenticated client on conn, if any.
func (h *hook) clientOn(conn net.Conn) *mqtt.Client {
	h.mu.Lock()
	defer h.mu.Unlock()
	for cl := range h.online {
		if cl.Net.Conn == conn {
			return cl
		}
	}
	return nil
}

func (o *Options) applyCapDefaults() {
	if o.MaxSubscriptions == 0 {
		o.MaxSubscriptions = 16
	}
	if o.MaxFilterBytes == 0 {
		o.MaxFilterBytes = 256
	}
	if o.MaxSessionsPerDevice == 0 {
		o.MaxSessionsPerDevice = 4
	}
	if o.MaxSessionExpiry == 0 {
		o.MaxSessionExpiry = time.Hour
	}
}
