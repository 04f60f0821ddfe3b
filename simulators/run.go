package simulators

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	pahomqtt "github.com/eclipse/paho.mqtt.golang"
)

// TopicPrefix is the root of device topics.
const TopicPrefix = "sanigate/v1/devices/"

// RunOptions configure Run.
type RunOptions struct {
	Broker   string              // host:port of the gateway's MQTT listener
	Password func(string) string // a device's password
	Every    time.Duration       // how often each device reports; default 5s
	QoS      byte                // default 1
	Logger   *slog.Logger
}

// Stats counts what the simulated fleet sent.
type Stats struct {
	Published, Acked, Failed atomic.Int64
}

// Run connects every device over MQTT with its own credentials and has it
// report every opts.Every until ctx ends; each device answers the gateway's
// commands (Responder). Devices connect one after another
// to spare the broker a storm; a device whose connection drops reconnects.
func Run(ctx context.Context, devices []Device, opts RunOptions, stats *Stats) error {
	if opts.Every <= 0 {
		opts.Every = 5 * time.Second
	}
	if opts.QoS == 0 {
		opts.QoS = 1
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if stats == nil {
		stats = &Stats{}
	}
	var wg sync.WaitGroup
	for i, d := range devices {
		resp := NewResponder(d.ID(), opts.Logger)
		c, err := connect(ctx, opts, d.ID(), resp)
		if err != nil {
			return fmt.Errorf("simulator %s: %w", d.ID(), err)
		}
		wg.Add(1)
		// Spread the devices over the period so reports do not come in waves.
		offset := time.Duration(int64(opts.Every) * int64(i) / int64(len(devices)))
		go func(d Device, c pahomqtt.Client, resp *Responder) {
			defer wg.Done()
			defer c.Disconnect(250)
			select {
			case <-ctx.Done():
				return
			case <-time.After(offset):
			}
			t := time.NewTicker(opts.Every)
			defer t.Stop()
			for {
				for _, m := range d.Step(time.Now()) {
					stats.Published.Add(1)
					tok := c.Publish(TopicPrefix+d.ID()+"/"+m.Channel, opts.QoS, false, m.Payload)
					go func() {
						if tok.WaitTimeout(30*time.Second) && tok.Error() == nil {
							stats.Acked.Add(1)
						} else {
							stats.Failed.Add(1)
						}
					}()
				}
				select {
				case <-ctx.Done():
					return
				case every := <-resp.Interval:
					t.Reset(every) // set_interval from the gateway
				case <-t.C:
				}
			}
		}(d, c, resp)
	}
	wg.Wait()
	return nil
}

func connect(ctx context.Context, opts RunOptions, id string, resp *Responder) (pahomqtt.Client, error) {
	o := pahomqtt.NewClientOptions().
		AddBroker("tcp://"+opts.Broker).
		SetClientID(id).
		SetUsername(id).
		SetPassword(opts.Password(id)).
		SetCleanSession(false).
		SetAutoReconnect(true).
		SetMaxReconnectInterval(10*time.Second).
		SetConnectTimeout(10*time.Second).
		SetKeepAlive(30*time.Second).
		SetWill(TopicPrefix+id+"/status", "offline", 1, true).
		SetOnConnectHandler(func(c pahomqtt.Client) {
			c.Publish(TopicPrefix+id+"/status", 1, true, "online")
			resp.Subscribe(c)
		})
	c := pahomqtt.NewClient(o)
	for attempt := 0; ; attempt++ {
		tok := c.Connect()
		tok.WaitTimeout(15 * time.Second)
		if tok.Error() == nil && c.IsConnected() {
			return c, nil
		}
		if attempt >= 20 {
			return nil, fmt.Errorf("cannot connect to %s: %v", opts.Broker, tok.Error())
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}
