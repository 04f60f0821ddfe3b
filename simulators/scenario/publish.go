package scenario

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	pahomqtt "github.com/eclipse/paho.mqtt.golang"
)

// PublishOptions configure Publish.
type PublishOptions struct {
	Broker   string              // host:port of the gateway's MQTT listener
	Password func(string) string // a device's password
	// Skip leaves out the messages of some devices (those polled over Modbus).
	Skip func(device string) bool
	// Window is how many QoS 1 messages a device has in flight; default 32.
	Window int
}

// PublishStats counts what Publish sent and had acknowledged.
type PublishStats struct {
	Sent, Acked, Failed int64
}

// Publish sends messages over MQTT as their devices, each device on its own
// connection with its own credentials, in the order given, with QoS 1, as
// fast as acknowledgements allow: a day replayed into a gateway. It returns
// once every message is acknowledged or has failed.
func Publish(ctx context.Context, msgs []Message, o PublishOptions) (PublishStats, error) {
	if o.Window <= 0 {
		o.Window = 32
	}
	byDevice := map[string][]Message{}
	var order []string
	for _, m := range msgs {
		if o.Skip != nil && o.Skip(m.Device) {
			continue
		}
		if _, ok := byDevice[m.Device]; !ok {
			order = append(order, m.Device)
		}
		byDevice[m.Device] = append(byDevice[m.Device], m)
	}
	var st struct{ sent, acked, failed atomic.Int64 }
	var wg sync.WaitGroup
	errs := make(chan error, len(order))
	sem := make(chan struct{}, 32) // devices replaying at once
	for _, id := range order {
		wg.Add(1)
		go func(id string, ms []Message) {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			defer func() { <-sem }()
			opts := pahomqtt.NewClientOptions().AddBroker("tcp://" + o.Broker).SetClientID("replay-" + id).
				SetUsername(id).SetPassword(o.Password(id)).SetCleanSession(true).SetAutoReconnect(false).
				SetConnectTimeout(10 * time.Second).SetWriteTimeout(10 * time.Second)
			c := pahomqtt.NewClient(opts)
			if tok := c.Connect(); !tok.WaitTimeout(15*time.Second) || tok.Error() != nil {
				errs <- fmt.Errorf("scenario: connect %s: %v", id, tok.Error())
				return
			}
			defer c.Disconnect(250)
			window := make(chan pahomqtt.Token, o.Window)
			wait := func(tok pahomqtt.Token) {
				if tok.WaitTimeout(60*time.Second) && tok.Error() == nil {
					st.acked.Add(1)
				} else {
					st.failed.Add(1)
				}
			}
			for _, m := range ms {
				if ctx.Err() != nil {
					break
				}
				if len(window) == cap(window) {
					wait(<-window)
				}
				window <- c.Publish(m.Topic(), 1, false, []byte(m.Payload))
				st.sent.Add(1)
			}
			close(window)
			for tok := range window {
				wait(tok)
			}
		}(id, byDevice[id])
	}
	wg.Wait()
	close(errs)
	stats := PublishStats{Sent: st.sent.Load(), Acked: st.acked.Load(), Failed: st.failed.Load()}
	return stats, <-errs
}
