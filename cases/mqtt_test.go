package cases

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	pahomqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/sanigate/sanigate/broker"
)

type terminalAuth struct{}

func (terminalAuth) Authenticate(device, password string) bool {
	return device == "term-green" && password == "crew-pass"
}

type ignorePublishes struct{}

func (ignorePublishes) HandlePublish(device, channel string, payload []byte, done func(error)) error {
	if done != nil {
		done(nil)
	}
	return nil
}

// A crew terminal, connected to the embedded broker as a device, receives
// the dispatch on its own cmd topic.
func TestCrewTerminalGetsDispatchOverMQTT(t *testing.T) {
	b, err := broker.New(broker.Options{Address: "127.0.0.1:0", Auth: terminalAuth{}, Handler: ignorePublishes{}})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = b.Close(ctx)
	})

	got := make(chan Notification, 4)
	opts := pahomqtt.NewClientOptions().AddBroker("tcp://" + b.Addr()).SetClientID("term-green").
		SetUsername("term-green").SetPassword("crew-pass").SetConnectTimeout(5 * time.Second)
	cl := pahomqtt.NewClient(opts)
	if tok := cl.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	t.Cleanup(func() { cl.Disconnect(100) })
	topic := broker.TopicPrefix + "term-green/cmd"
	if tok := cl.Subscribe(topic, 1, func(_ pahomqtt.Client, m pahomqtt.Message) {
		var n Notification
		if err := json.Unmarshal(m.Payload(), &n); err == nil {
			got <- n
		}
	}); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}

	cfg := testConfig(StoreConfig{Driver: SQLite, Path: t.TempDir() + "/c.db"}, "http://127.0.0.1:1/x")
	cfg.Units[1].MQTTTopic = topic
	e := newEnv(t, cfg, Deps{Publisher: b})
	ctx := context.Background()
	if err := e.svc.Raise(ctx, binOverflow("m1", e.clock.Now(), false)); err != nil {
		t.Fatal(err)
	}
	if n, err := e.svc.DeliverDue(ctx); err != nil || n != 1 {
		t.Fatalf("deliver: %d, %v", n, err)
	}
	select {
	case n := <-got:
		if n.Event != "dispatched" || n.Unit != "greenclean" || n.Case.Device != "bin-0042" || n.Case.Type != "bin_overflow" {
			t.Fatalf("terminal got %+v", n)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the terminal got nothing")
	}
	page, _ := e.svc.List(ctx, System, Filter{})
	ds, _ := e.svc.Deliveries(ctx, page.Cases[0].ID)
	if len(ds) != 1 || ds[0].Channel != ChannelMQTT || ds[0].DeliveredAt.IsZero() || len(ds[0].Attempts) != 1 {
		t.Fatalf("delivery record: %+v", ds)
	}
}

// Open refuses a unit with a topic when there is no broker to publish on.
func TestMQTTTopicNeedsPublisher(t *testing.T) {
	cfg := testConfig(StoreConfig{Driver: SQLite, Path: t.TempDir() + "/c.db"}, "http://127.0.0.1:1/x")
	cfg.Units[1].MQTTTopic = "sanigate/v1/devices/term-green/cmd"
	if _, err := Open(context.Background(), cfg, Deps{Getenv: func(string) string { return webhookSecret }}); err == nil {
		t.Fatal("Open accepted an mqtt_topic without a publisher")
	}
}
