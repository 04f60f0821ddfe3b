package scenario

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	pahomqtt "github.com/eclipse/paho.mqtt.golang"
)

// PublishOptions configure Play.
type PublishOptions struct {
	Broker   string              // host:port of the gateway's MQTT listener
	Password func(string) string // a device's password
	// Skip leaves out the messages of some devices (those polled over Modbus).
	Skip func(device string) bool
	// CatchUp is how much faster than real time messages whose time has
	// passed are replayed (default 1440: a day in a minute). Messages are
	// sent in time order across all devices, so the detectors' watermark
	// never overtakes a device that is still being replayed.
	CatchUp float64
	// Now is the clock (default time.Now): a message is due at its
	// PublishAt once that has passed.
	Now func() time.Time
	// From leaves out messages published before it: a gateway's detectors
	// take readings only within their bounded lateness of the clock, so a
	// day joined in the middle starts a few minutes back, not at midnight.
	From time.Time
}

// PublishStats counts what Play sent and had acknowledged.
type PublishStats struct {
	Sent, Acked, Failed atomic.Int64
}

// Play sends messages over MQTT as their devices, each device on its own
// connection with its own credentials, with QoS 1, in the order given (by
// time). Messages from the past are replayed at CatchUp times real time;
// messages from the future wait for their time, so a scenario of today runs
// live. It returns when all are sent and acknowledged, or ctx ends.
func Play(ctx context.Context, msgs []Message, o PublishOptions, st *PublishStats) error {
	if o.CatchUp <= 0 {
		o.CatchUp = 1440
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if st == nil {
		st = &PublishStats{}
	}
	clients := deviceClients{}
	defer clients.disconnect()
	var pending sync.WaitGroup
	var clock replayClock
	for _, m := range msgs {
		if (o.Skip != nil && o.Skip(m.Device)) || m.PublishAt.Before(o.From) {
			continue
		}
		if ctx.Err() != nil {
			break
		}
		clock.wait(ctx, m.PublishAt, o)
		if ctx.Err() != nil {
			break
		}
		c, err := clients.get(m.Device, o)
		if err != nil {
			return err
		}
		tok := c.Publish(m.Topic(), 1, false, []byte(m.Payload))
		st.Sent.Add(1)
		pending.Add(1)
		go func() {
			defer pending.Done()
			if tok.WaitTimeout(60*time.Second) && tok.Error() == nil {
				st.Acked.Add(1)
			} else {
				st.Failed.Add(1)
			}
		}()
	}
	if ctx.Err() != nil {
		// Stopping: what is still unacknowledged stays in the devices'
		// sessions; do not wait for a gateway that may be gone.
		return ctx.Err()
	}
	pending.Wait()
	return nil
}

// deviceClients holds one MQTT connection per device, made on first use.
type deviceClients map[string]pahomqtt.Client

// get returns the connection of device id, connecting it with its own
// credentials and a persistent session if it has none yet.
func (clients deviceClients) get(id string, o PublishOptions) (pahomqtt.Client, error) {
	if c, ok := clients[id]; ok {
		return c, nil
	}
	opts := pahomqtt.NewClientOptions().AddBroker("tcp://" + o.Broker).SetClientID(id + "-scenario").
		SetUsername(id).SetPassword(o.Password(id)).SetCleanSession(false).SetAutoReconnect(true).
		SetConnectTimeout(10 * time.Second).SetWriteTimeout(10 * time.Second).SetKeepAlive(30 * time.Second)
	c := pahomqtt.NewClient(opts)
	if tok := c.Connect(); !tok.WaitTimeout(15*time.Second) || tok.Error() != nil {
		return nil, fmt.Errorf("scenario: connect %s: %v", id, tok.Error())
	}
	clients[id] = c
	return c, nil
}

// disconnect closes every connection, all at once, each given 250 ms to
// finish its work, and waits at most disconnectWait in all: a client caught reconnecting (the
// gateway stopping too) may wait in Disconnect for its attempt to end, and
// one after another, hundreds of them kept a stopping simulator for minutes.
func (clients deviceClients) disconnect() {
	var wg sync.WaitGroup
	for _, c := range clients {
		wg.Go(func() { c.Disconnect(250) })
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(disconnectWait):
	}
}

// disconnectWait bounds how long Play waits for its clients to disconnect.
const disconnectWait = 3 * time.Second

// replayClock paces Play: messages from the future wait for their time;
// a run of messages from the past is replayed at CatchUp times real time.
type replayClock struct {
	pace  time.Time // wall time at which the replay clock started
	first time.Time // the publish time of the run's first message
}

// wait waits until the message published at at is due, or ctx ends.
func (rc *replayClock) wait(ctx context.Context, at time.Time, o PublishOptions) {
	now := o.Now()
	if at.After(now) {
		// Live: wait for the message's own time.
		select {
		case <-ctx.Done():
		case <-time.After(at.Sub(now)):
		}
		rc.pace = time.Time{}
		return
	}
	// Catching up: keep CatchUp times real time.
	if rc.pace.IsZero() {
		rc.pace, rc.first = time.Now(), at
	}
	due := rc.pace.Add(time.Duration(float64(at.Sub(rc.first)) / o.CatchUp))
	if d := time.Until(due); d > time.Millisecond {
		select {
		case <-ctx.Done():
		case <-time.After(d):
		}
	}
}
