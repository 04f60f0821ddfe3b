package gateway

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/sanigate/sanigate/internal/testenv"
)

// A failing component is restarted with backoff, each restart counted by
// reason and the component reported down meanwhile; a panic is one more
// reason; corrupted state ends it for good, reported down.
func TestSupervisorRestartsFailedComponents(t *testing.T) {
	reg := prometheus.NewRegistry()
	s := newSupervisor(reg, slog.New(slog.DiscardHandler))
	s.backoffMin, s.backoffMax = 20*time.Millisecond, 40*time.Millisecond

	var runs atomic.Int32
	release := make(chan struct{})
	s.start(component{name: "flaky", run: func(ctx context.Context) error {
		switch runs.Add(1) {
		case 1:
			return &fs.PathError{Op: "open", Path: "seg", Err: syscall.EMFILE}
		case 2:
			<-release
			panic("boom")
		}
		<-ctx.Done()
		return nil
	}})
	testenv.Eventually(t, 10*time.Second, "the first failure to show as down", func() bool { return strings.Contains(strings.Join(s.Down(), ";"), "flaky down") })
	close(release)
	testenv.Eventually(t, 10*time.Second, "the third run", func() bool { return runs.Load() == 3 && len(s.Down()) == 0 })
	if got := counterValue(s.restarts.WithLabelValues("flaky", "too_many_open_files")); got != 1 {
		t.Errorf("too_many_open_files restarts: got %v, want 1", got)
	}
	if got := counterValue(s.restarts.WithLabelValues("flaky", "panic")); got != 1 {
		t.Errorf("panic restarts: got %v, want 1", got)
	}

	var corruptRuns atomic.Int32
	s.start(component{name: "state", run: func(context.Context) error {
		corruptRuns.Add(1)
		return fmt.Errorf("snapshot: %w", ErrCorrupt)
	}})
	testenv.Eventually(t, 10*time.Second, "corrupted state to show as down", func() bool { return strings.Contains(strings.Join(s.Down(), ";"), "state down") })
	time.Sleep(100 * time.Millisecond) // several backoffs: it must not have run again
	if n := corruptRuns.Load(); n != 1 {
		t.Errorf("a component with corrupted state ran %d times, want 1", n)
	}

	s.stop("flaky")
	s.stop("state")
	if s.running("flaky") || len(s.Down()) != 0 {
		t.Errorf("after stop: running %v, down %v", s.running("flaky"), s.Down())
	}
}

// A listener that cannot listen names itself and the settings that move it.
func TestListenerInUseNamesTheSetting(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	for _, tc := range []struct{ name, want string }{
		{"http", "http listener cannot listen on " + busy.Addr().String()},
		{"mqtt", "mqtt listener cannot listen on " + busy.Addr().String()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t, "http://127.0.0.1:1", nil)
			if tc.name == "http" {
				cfg.HTTP.Address = busy.Addr().String()
			} else {
				cfg.MQTT.Address = busy.Addr().String()
			}
			g, err := New(cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			err = g.Start(context.Background())
			if err == nil {
				_ = g.Close(context.Background())
				t.Fatal("started on an address in use")
			}
			setting := tc.name + ".address"
			if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), setting) ||
				!errors.Is(err, syscall.EADDRINUSE) {
				t.Errorf("got %q, want it to contain %q and %q and to wrap EADDRINUSE", err, tc.want, setting)
			}
		})
	}
}

func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return -1
	}
	return m.GetCounter().GetValue()
}
