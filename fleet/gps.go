package fleet

import (
	"math"
	"sync/atomic"
	"time"
)

// Reasons a GPS fix is filtered out, as GPSFilter.Check reports them. They are
// stable strings, fit for a metric label.
const (
	GPSInvalid   = "invalid"   // not a number, out of range, or without a time
	GPSZero      = "zero"      // (0, 0): a receiver without a fix
	GPSDuplicate = "duplicate" // the same time and position as the previous fix
	GPSHDOP      = "hdop"      // horizontal dilution of precision over the limit
	GPSJump      = "jump"      // implies a speed no vehicle of the kind reaches
	GPSFuture    = "future"    // timestamped ahead of the gateway's clock
)

// Fix is one GPS position of a moving device.
type Fix struct {
	Time     time.Time
	Lat, Lon float64 // WGS-84 degrees
	HDOP     float64 // 0 when the device does not report it
	SpeedKmh float64 // as reported; not used by the filter
}

// GPSFilterConfig holds the limits of the GPS filter; zero fields take the
// defaults of DefaultGPSFilterConfig.
type GPSFilterConfig struct {
	// MaxHDOP drops fixes with a worse (larger) HDOP. Default 5.
	MaxHDOP float64 `yaml:"max_hdop"`
	// MaxSpeedKmh drops a fix whose distance from the previous accepted one
	// implies a faster speed. Default 150 km/h, above any waste truck.
	MaxSpeedKmh float64 `yaml:"max_speed_kmh"`
	// MaxFutureSkew drops fixes stamped further ahead of the gateway's clock.
	// Default 5 minutes.
	MaxFutureSkew Duration `yaml:"max_future_skew"`
	// JumpReset accepts a position after this many consecutive fixes were
	// dropped as jumps from the last accepted one but agree with each other:
	// the earlier fix was the wrong one (a cold start, a tunnel). Default 3.
	JumpReset int `yaml:"jump_reset"`
}

// DefaultGPSFilterConfig is the filter used when nothing is configured.
var DefaultGPSFilterConfig = GPSFilterConfig{MaxHDOP: 5, MaxSpeedKmh: 150, MaxFutureSkew: Duration(5 * time.Minute), JumpReset: 3}

// GPSFilter decides which fixes are good enough for position rules, in the
// spirit of Traccar's filters. The zero value is not ready; use NewGPSFilter.
// A GPSFilter holds only configuration and is safe for concurrent use, Set
// included (a configuration reload); the per-device state lives in GPSTrack.
type GPSFilter struct {
	cfg atomic.Pointer[GPSFilterConfig]
}

// NewGPSFilter returns a filter with cfg, defaults filled in.
func NewGPSFilter(cfg GPSFilterConfig) *GPSFilter {
	f := &GPSFilter{}
	f.Set(cfg)
	return f
}

// Set puts limits cfg in force, defaults filled in, from the next fix on;
// the devices' tracks (their last accepted fixes) are kept.
func (f *GPSFilter) Set(cfg GPSFilterConfig) {
	d := DefaultGPSFilterConfig
	if cfg.MaxHDOP <= 0 {
		cfg.MaxHDOP = d.MaxHDOP
	}
	if cfg.MaxSpeedKmh <= 0 {
		cfg.MaxSpeedKmh = d.MaxSpeedKmh
	}
	if cfg.MaxFutureSkew <= 0 {
		cfg.MaxFutureSkew = d.MaxFutureSkew
	}
	if cfg.JumpReset <= 0 {
		cfg.JumpReset = d.JumpReset
	}
	f.cfg.Store(&cfg)
}

// Config returns the limits in force.
func (f *GPSFilter) Config() GPSFilterConfig { return *f.cfg.Load() }

// Check decides on cur given the last accepted fix of the same device (nil
// for the first) and the gateway's clock. It returns ok, or false and one of
// the GPS* reasons. The checks run in the order invalid, zero, future, hdop,
// duplicate, jump, so a fix is counted under its most basic fault.
func (f *GPSFilter) Check(prev *Fix, cur Fix, now time.Time) (ok bool, reason string) {
	cfg := f.cfg.Load()
	if cur.Time.IsZero() || bad(cur.Lat) || bad(cur.Lon) || bad(cur.HDOP) ||
		cur.Lat < -90 || cur.Lat > 90 || cur.Lon < -180 || cur.Lon > 180 || cur.HDOP < 0 {
		return false, GPSInvalid
	}
	if math.Abs(cur.Lat) < 1e-6 && math.Abs(cur.Lon) < 1e-6 {
		return false, GPSZero
	}
	if cur.Time.After(now.Add(cfg.MaxFutureSkew.D())) {
		return false, GPSFuture
	}
	if cur.HDOP > cfg.MaxHDOP {
		return false, GPSHDOP
	}
	if prev == nil {
		return true, ""
	}
	dist := DistanceM(prev.Lat, prev.Lon, cur.Lat, cur.Lon)
	dt := cur.Time.Sub(prev.Time)
	if dt < 0 {
		dt = -dt // a late fix from a buffered upload: judge it by the same speed
	}
	if dt == 0 {
		if dist < 0.5 {
			return false, GPSDuplicate
		}
		return false, GPSJump // two places at one instant
	}
	if dist/dt.Seconds()*3.6 > cfg.MaxSpeedKmh {
		return false, GPSJump
	}
	return true, ""
}

func bad(x float64) bool { return math.IsNaN(x) || math.IsInf(x, 0) }

// GPSTrack is the filter state of one device: its last accepted fix. It is
// not safe for concurrent use; the goroutine that owns the device owns it.
type GPSTrack struct {
	f       *GPSFilter
	last    Fix
	hasLast bool
	// fixes dropped as jumps in a row, and the latest of them
	jumps    int
	lastJump Fix
}

// NewGPSTrack starts the state of one device.
func NewGPSTrack(f *GPSFilter) *GPSTrack { return &GPSTrack{f: f} }

// Push judges cur against the device's last accepted fix and remembers it
// when accepted. See GPSFilterConfig.JumpReset for how the track recovers
// when the fix it holds was itself wrong.
func (t *GPSTrack) Push(cur Fix, now time.Time) (ok bool, reason string) {
	var prev *Fix
	if t.hasLast {
		prev = &t.last
	}
	ok, reason = t.f.Check(prev, cur, now)
	if reason == GPSJump {
		if t.jumps > 0 {
			if agree, _ := t.f.Check(&t.lastJump, cur, now); agree {
				t.jumps++
			} else {
				t.jumps = 1
			}
		} else {
			t.jumps = 1
		}
		t.lastJump = cur
		if t.jumps < t.f.cfg.Load().JumpReset {
			return false, GPSJump
		}
		ok, reason = true, ""
	}
	if ok {
		t.last, t.hasLast, t.jumps = cur, true, 0
	}
	return ok, reason
}

// Last returns the last accepted fix, if any.
func (t *GPSTrack) Last() (Fix, bool) { return t.last, t.hasLast }
