package modbus

import (
	"context"
	"time"

	"github.com/sanigate/sanigate/telemetry"
)

// PollDevice polls the i-th device once, outside its schedule, for tests and
// benchmarks that drive polls one by one. It must not overlap Run.
func (p *Poller) PollDevice(ctx context.Context, i int) (*telemetry.Reading, string) {
	p.mu.Lock()
	dv := p.devices[i]
	p.mu.Unlock()
	return p.read(ctx, dv, time.Now())
}

// CloseDevices closes the connections PollDevice opened.
func (p *Poller) CloseDevices() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, dv := range p.devices {
		dv.closeSession()
	}
}

// Golden compares got with the golden file at path, or rewrites it under -update.
var Golden = golden

// SetLoopHook makes f run at the top of every poll of every device, until
// the returned function is called; a test makes one device's loop fail with it.
func SetLoopHook(f func(device string)) (reset func()) {
	testLoopHook.Store(&f)
	return func() { testLoopHook.Store(nil) }
}
