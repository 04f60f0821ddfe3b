package gateway

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sanigate/sanigate/broker"
	"github.com/sanigate/sanigate/cases"
)

// commandWork bounds the command answers and deliveries written to the
// case store at once; past it, the publishing connection waits its turn.
const commandWork = 16

// commandTimeout bounds one store write for a command answer or delivery.
const commandTimeout = 10 * time.Second

// commandRouter sends a device's answers on cmd/ack to the case service's
// commands, never to the ingest pipeline: they are not readings. Every
// other channel goes to next.
type commandRouter struct {
	next broker.Handler
	g    *Gateway
	sem  chan struct{}
}

func newCommandRouter(next broker.Handler, g *Gateway) *commandRouter {
	return &commandRouter{next: next, g: g, sem: make(chan struct{}, commandWork)}
}

func (r *commandRouter) HandlePublish(device, channel string, payload []byte, done func(error)) error {
	if channel != broker.CommandAckChannel {
		return r.next.HandlePublish(device, channel, payload, done)
	}
	svc := r.g.cases
	if svc == nil {
		return fmt.Errorf("%w: this gateway keeps no commands", broker.ErrPayloadRejected)
	}
	body := append([]byte(nil), payload...)
	r.run(func() {
		ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
		defer cancel()
		err := svc.HandleCommandAck(ctx, device, body)
		if errors.Is(err, cases.ErrBadRequest) {
			// Counted (sanigate_device_command_acks_refused_total); a device
			// sending garbage must not flood the log.
			r.g.log.Debug("command answer refused", "component", "commands", "device", device, "err", err)
			err = fmt.Errorf("%w: %v", broker.ErrPayloadRejected, err)
		} else if err != nil {
			r.g.log.Warn("command answer not stored", "component", "commands", "device", device, "err", err)
		}
		if done != nil {
			done(err)
		}
	})
	return nil
}

// delivered records that a device's session acknowledged a command.
func (r *commandRouter) delivered(device string, payload []byte) {
	svc := r.g.cases
	if svc == nil {
		return
	}
	r.run(func() {
		ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
		defer cancel()
		if err := svc.CommandDelivered(ctx, device, payload); err != nil {
			r.g.log.Warn("command delivery not stored", "component", "commands", "device", device, "err", err)
		}
	})
}

// run does fn on its own goroutine when a slot is free, else waits for one.
func (r *commandRouter) run(fn func()) {
	r.sem <- struct{}{}
	go func() {
		defer func() { <-r.sem }()
		fn()
	}()
}
