package broker

import (
	"testing"
	"time"

	pahomqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sanigate/sanigate/fleet"
)

// channels records the channel of every publish handed to the Handler.
type channels chan string

func (c channels) HandlePublish(device, channel string, _ []byte, done func(error)) error {
	c <- device + " " + channel
	if done != nil {
		done(nil)
	}
	return nil
}

// A QoS 1 message on a device's cmd topic is reported delivered with the
// device's PUBACK; the device may answer on its own cmd/ack topic, and not
// on another device's.
func TestCommandDeliveryAndAckTopic(t *testing.T) {
	var devs []fleet.Device
	pw := map[string]string{}
	for _, id := range []string{"bin-1", "bin-2"} {
		s, h, _ := fleet.GenerateSecret()
		pw[id] = s
		devs = append(devs, fleet.Device{ID: id, Kind: "bin", PasswordHash: h})
	}
	got := make(channels, 8)
	delivered := make(chan string, 8)
	b, err := New(Options{Address: "127.0.0.1:0", Auth: fleet.NewRegistry(devs), Handler: got,
		OnCommandDelivered: func(device string, payload []byte) { delivered <- device + " " + string(payload) }})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	defer b.Close(t.Context())
	dial := func(id string, onMsg pahomqtt.MessageHandler) pahomqtt.Client {
		c := pahomqtt.NewClient(pahomqtt.NewClientOptions().AddBroker("tcp://" + b.Addr()).SetClientID(id + "-c").
			SetUsername(id).SetPassword(pw[id]).SetAutoReconnect(false).SetConnectTimeout(5 * time.Second).
			SetDefaultPublishHandler(onMsg))
		if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("connect %s: %v", id, tok.Error())
		}
		t.Cleanup(func() { c.Disconnect(100) })
		return c
	}
	recv := make(chan string, 8)
	c1 := dial("bin-1", func(_ pahomqtt.Client, m pahomqtt.Message) { recv <- m.Topic() + " " + string(m.Payload()) })
	if tok := c1.Subscribe(TopicPrefix+"bin-1/cmd", 1, nil); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	if err := b.Publish(TopicPrefix+"bin-1/cmd", []byte(`{"command_id":1}`), false, 1); err != nil {
		t.Fatal(err)
	}
	wait := func(ch chan string, want, what string) {
		t.Helper()
		select {
		case s := <-ch:
			if s != want {
				t.Fatalf("%s: got %q, want %q", what, s, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: nothing", what)
		}
	}
	wait(recv, TopicPrefix+`bin-1/cmd {"command_id":1}`, "device received")
	wait(delivered, `bin-1 {"command_id":1}`, "delivery")

	if tok := c1.Publish(TopicPrefix+"bin-1/cmd/ack", 1, false, `{}`); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("ack: %v", tok.Error())
	}
	wait(got, "bin-1 cmd/ack", "handler")

	// bin-2 may not answer on bin-1's topic: refused by the ACL (which
	// closes a 3.1.1 connection), never handed to the Handler.
	c2 := dial("bin-2", nil)
	c2.Publish(TopicPrefix+"bin-1/cmd/ack", 1, false, `{}`).WaitTimeout(2 * time.Second)
	for i := 0; i < 400 && testutil.ToFloat64(b.metrics.aclDenied) < 1; i++ {
		time.Sleep(25 * time.Millisecond)
	}
	if n := testutil.ToFloat64(b.metrics.aclDenied); n != 1 {
		t.Fatalf("ACL refusals: %v, want 1", n)
	}
	if tok := c1.Publish(TopicPrefix+"bin-1/cmd/ack", 1, false, `{}`); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("ack: %v", tok.Error())
	}
	wait(got, "bin-1 cmd/ack", "handler after the refused publish")
	if len(recv) != 0 || len(delivered) != 0 {
		t.Fatalf("unexpected messages: %d received, %d deliveries", len(recv), len(delivered))
	}
}
