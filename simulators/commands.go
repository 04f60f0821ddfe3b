package simulators

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	pahomqtt "github.com/eclipse/paho.mqtt.golang"
)

// Responder answers the gateway's commands for one simulated device: it
// takes them from the device's cmd topic and answers on cmd/ack with the
// command's id and "ok" or "failed". set_interval changes how often the
// device reports (sent on Interval); open_lid and reset_counter are taken
// as done; fetch_firmware is acknowledged without downloading anything.
type Responder struct {
	id  string
	log *slog.Logger
	// Interval receives each new reporting interval (the latest wins).
	Interval chan time.Duration
	// Answered counts the answers published.
	Answered atomic.Int64
}

// NewResponder makes the responder of device id.
func NewResponder(id string, log *slog.Logger) *Responder {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Responder{id: id, log: log, Interval: make(chan time.Duration, 1)}
}

// commandMsg is the part of a command the simulator reads.
type commandMsg struct {
	CommandID int64           `json:"command_id"`
	Type      string          `json:"type"`
	Params    json.RawMessage `json:"params"`
	Deadline  time.Time       `json:"deadline"`
}

type commandAck struct {
	CommandID int64  `json:"command_id"`
	Status    string `json:"status"`
	Detail    string `json:"detail,omitempty"`
}

// Subscribe subscribes c to the device's cmd topic with QoS 1; call it from
// the client's on-connect handler so that it holds after a reconnect.
func (r *Responder) Subscribe(c pahomqtt.Client) pahomqtt.Token {
	return c.Subscribe(TopicPrefix+r.id+"/cmd", 1, r.handle)
}

func (r *Responder) handle(c pahomqtt.Client, m pahomqtt.Message) {
	var cmd commandMsg
	if err := json.Unmarshal(m.Payload(), &cmd); err != nil || cmd.CommandID <= 0 {
		return // a crew notification or garbage: nothing to answer
	}
	if !cmd.Deadline.IsZero() && time.Now().After(cmd.Deadline) {
		r.log.Info("command past its deadline; ignored", "device", r.id, "command", cmd.CommandID)
		return
	}
	status, detail := "ok", ""
	if err := r.apply(cmd); err != nil {
		status, detail = "failed", err.Error()
	}
	b, _ := json.Marshal(commandAck{CommandID: cmd.CommandID, Status: status, Detail: detail})
	// Not waited for here: paho delivers messages on one goroutine.
	c.Publish(TopicPrefix+r.id+"/cmd/ack", 1, false, b)
	r.Answered.Add(1)
	r.log.Info("command answered", "device", r.id, "command", cmd.CommandID, "type", cmd.Type, "status", status)
}

func (r *Responder) apply(cmd commandMsg) error {
	switch cmd.Type {
	case "set_interval":
		var p struct {
			Seconds int `json:"seconds"`
		}
		if err := json.Unmarshal(cmd.Params, &p); err != nil || p.Seconds < 1 {
			return fmt.Errorf("bad interval")
		}
		select { // keep only the latest
		case <-r.Interval:
		default:
		}
		r.Interval <- time.Duration(p.Seconds) * time.Second
		return nil
	case "open_lid", "reset_counter":
		return nil
	case "fetch_firmware":
		return nil // a simulated device has no firmware to replace
	}
	return fmt.Errorf("unknown command %q", cmd.Type)
}
