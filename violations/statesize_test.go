package violations

import (
	"bytes"
	"context"
	"encoding/gob"
	"math"
	"testing"
	"time"

	"github.com/sanigate/sanigate/fleet"
	"github.com/sanigate/sanigate/telemetry"
)

// truckStateBound is the most a truck's encoded state may take, whatever its
// reporting rate: the stop history, the stretch's points and the medians
// are bounded by the window slots, not by the number of readings.
const truckStateBound = 12 << 10

// truckHourState feeds one truck an hour of readings every step, alternating
// ten minutes driving and ten stopped with a noisy load that never drops
// enough for a violation, and returns the largest and the last gob-encoded
// size of its state (as the engine's snapshots encode it).
func truckHourState(t *testing.T, step time.Duration) (most, last int) {
	t.Helper()
	d := newDeviceState("truck-rate", telemetry.KindTruck)
	dc := DefaultConfig()
	e := &env{ctx: context.Background(), dc: &dc, cfg: &fleet.Config{}, state: d}
	start := time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)
	lat, lon := 39.935, 116.40
	var buf bytes.Buffer
	for off := time.Duration(0); off < time.Hour; off += step {
		speed := 30.0
		if (off/(10*time.Minute))%2 == 1 {
			speed = 0
		}
		lon += speed / 3.6 * step.Seconds() / (111320 * math.Cos(lat*math.Pi/180))
		// Noise of ±15 kg at several periods: the smoothed load moves every
		// reading, so no two readings of a slot are alike.
		x := off.Seconds()
		load := 6000 + 10*math.Sin(x/7) + 5*math.Sin(x*1.3)
		r := telemetry.Reading{Device: d.ID, Kind: d.Kind, Time: start.Add(off)}
		r.SetFloat("lat", lat)
		r.SetFloat("lon", lon)
		r.SetFloat("speed_kmh", speed)
		r.SetFloat("load_kg", load)
		r.SetBool("ignition", true)
		d.handle(e, &r)
		if off%time.Minute == 0 {
			buf.Reset()
			if err := gob.NewEncoder(&buf).Encode(d); err != nil {
				t.Fatal(err)
			}
			most, last = max(most, buf.Len()), buf.Len()
		}
	}
	return most, last
}

// TestTruckStateBounded: a truck at 1 and at 10 readings a second for an
// hour keeps its encoded state under a fixed bound.
func TestTruckStateBounded(t *testing.T) {
	for _, step := range []time.Duration{time.Second, 100 * time.Millisecond} {
		t.Run(step.String(), func(t *testing.T) {
			most, last := truckHourState(t, step)
			t.Logf("every %s: state at most %d bytes, %d at the end", step, most, last)
			if most > truckStateBound {
				t.Errorf("state reached %d bytes, want at most %d", most, truckStateBound)
			}
		})
	}
}

// sweeperHourState drives a sweeper an hour along a route window at step,
// brushing at 8 km/h with a stop and the brush off now and then, and returns
// the gob-encoded size of its state at the end and its track's length.
func sweeperHourState(t *testing.T, step time.Duration) (size, points int) {
	t.Helper()
	d := newDeviceState("sweeper-rate", telemetry.KindSweeper)
	start := time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)
	rt := &fleet.SweepingRoute{ID: "route-1", MaxSpeedKmh: 12}
	d.Sweeper.Routes = map[string]*sweepRun{rt.ID: {Start: start, End: start.Add(2 * time.Hour)}}
	dc := DefaultConfig()
	e := &env{ctx: context.Background(), dc: &dc, cfg: &fleet.Config{}, state: d, sweep: []*fleet.SweepingRoute{rt}}
	lat, lon := 39.935, 116.40
	for off := time.Duration(0); off < time.Hour; off += step {
		speed, brush := 8.0, true
		switch m := off % (10 * time.Minute); {
		case m >= 8*time.Minute && m < 9*time.Minute:
			speed = 0
		case m >= 9*time.Minute:
			brush = false
		}
		lon += speed / 3.6 * step.Seconds() / (111320 * math.Cos(lat*math.Pi/180))
		r := telemetry.Reading{Device: d.ID, Kind: d.Kind, Time: start.Add(off)}
		r.SetFloat("lat", lat)
		r.SetFloat("lon", lon)
		r.SetFloat("speed_kmh", speed)
		r.SetBool("brush_on", brush)
		d.handle(e, &r)
	}
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(d); err != nil {
		t.Fatal(err)
	}
	return buf.Len(), len(d.Sweeper.Routes[rt.ID].Track)
}

// TestSweeperTrackRateIndependent: the track of a route window grows with
// the road driven, not with the reporting rate.
func TestSweeperTrackRateIndependent(t *testing.T) {
	slow, slowPts := sweeperHourState(t, time.Second)
	fast, fastPts := sweeperHourState(t, 100*time.Millisecond)
	t.Logf("an hour of sweeping: %d bytes (%d points) at 1/s, %d bytes (%d points) at 10/s", slow, slowPts, fast, fastPts)
	if fast > slow*5/4 {
		t.Errorf("state at 10 readings/s is %d bytes, over 1.25 times the %d at 1/s", fast, slow)
	}
}
