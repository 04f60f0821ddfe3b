package fleet

import (
	"math"
	"testing"
	"time"
)

func TestGPSFilterCheck(t *testing.T) {
	f := NewGPSFilter(GPSFilterConfig{})
	now := time.Date(2026, 9, 14, 8, 0, 0, 0, time.UTC)
	prev := &Fix{Time: now.Add(-10 * time.Second), Lat: 39.9, Lon: 116.4, HDOP: 1}
	// 100 m north of prev
	north100 := 39.9 + 100/111030.0
	tests := []struct {
		name   string
		prev   *Fix
		cur    Fix
		reason string
	}{
		{"first fix", nil, Fix{Time: now, Lat: 39.9, Lon: 116.4, HDOP: 1}, ""},
		{"good move, 36 km/h", prev, Fix{Time: now, Lat: north100, Lon: 116.4, HDOP: 1}, ""},
		{"no time", nil, Fix{Lat: 39.9, Lon: 116.4}, GPSInvalid},
		{"NaN", nil, Fix{Time: now, Lat: math.NaN(), Lon: 116.4}, GPSInvalid},
		{"latitude out of range", nil, Fix{Time: now, Lat: 116.4, Lon: 39.9}, GPSInvalid},
		{"negative hdop", nil, Fix{Time: now, Lat: 39.9, Lon: 116.4, HDOP: -1}, GPSInvalid},
		{"zero", nil, Fix{Time: now, Lat: 0, Lon: 0}, GPSZero},
		{"future", nil, Fix{Time: now.Add(10 * time.Minute), Lat: 39.9, Lon: 116.4}, GPSFuture},
		{"slightly ahead is fine", nil, Fix{Time: now.Add(time.Minute), Lat: 39.9, Lon: 116.4}, ""},
		{"hdop", nil, Fix{Time: now, Lat: 39.9, Lon: 116.4, HDOP: 7.5}, GPSHDOP},
		{"hdop not reported", nil, Fix{Time: now, Lat: 39.9, Lon: 116.4}, ""},
		{"duplicate", prev, *prev, GPSDuplicate},
		{"same time, elsewhere", prev, Fix{Time: prev.Time, Lat: north100, Lon: 116.4}, GPSJump},
		{"jump, 1 km in 10 s", prev, Fix{Time: now, Lat: 39.9 + 1000/111030.0, Lon: 116.4}, GPSJump},
		{"late buffered fix, plausible", prev, Fix{Time: prev.Time.Add(-20 * time.Second), Lat: north100, Lon: 116.4}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, reason := f.Check(tt.prev, tt.cur, now)
			if reason != tt.reason || ok != (tt.reason == "") {
				t.Errorf("got (%v, %q), want %q", ok, reason, tt.reason)
			}
		})
	}
}

func TestGPSTrackRecoversFromABadFirstFix(t *testing.T) {
	tr := NewGPSTrack(NewGPSFilter(GPSFilterConfig{}))
	t0 := time.Date(2026, 9, 14, 8, 0, 0, 0, time.UTC)
	now := t0.Add(time.Hour)
	// A cold start puts the first fix 5 km away; the truck then reports
	// steadily from where it really is.
	type step struct {
		lat    float64
		reason string
	}
	steps := []step{
		{39.95, ""},
		{39.90, GPSJump},
		{39.9001, GPSJump},
		{39.9002, ""}, // three agreeing fixes: the first one was wrong
		{39.9003, ""},
		{39.96, GPSJump}, // a single outlier is still dropped
		{39.9004, ""},
	}
	for i, s := range steps {
		ok, reason := tr.Push(Fix{Time: t0.Add(time.Duration(i) * 5 * time.Second), Lat: s.lat, Lon: 116.4}, now)
		if reason != s.reason || ok != (s.reason == "") {
			t.Errorf("step %d (lat %g): got (%v, %q), want %q", i, s.lat, ok, reason, s.reason)
		}
	}
	if last, _ := tr.Last(); last.Lat != 39.9004 {
		t.Errorf("last accepted: got %g", last.Lat)
	}
}

// TestGPSFilterSet: new limits apply to the next check, defaults filled in,
// while checks run on other goroutines.
func TestGPSFilterSet(t *testing.T) {
	f := NewGPSFilter(GPSFilterConfig{})
	now := time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)
	fix := Fix{Time: now, Lat: 39.9, Lon: 116.4, HDOP: 6}
	if ok, reason := f.Check(nil, fix, now); ok || reason != GPSHDOP {
		t.Fatalf("hdop 6 under the default: %v %q", ok, reason)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 1000 {
			f.Check(nil, fix, now)
		}
	}()
	f.Set(GPSFilterConfig{MaxHDOP: 8})
	<-done
	if ok, _ := f.Check(nil, fix, now); !ok {
		t.Fatal("hdop 6 refused after max_hdop 8 was set")
	}
	if c := f.Config(); c.MaxSpeedKmh != DefaultGPSFilterConfig.MaxSpeedKmh || c.JumpReset != DefaultGPSFilterConfig.JumpReset {
		t.Fatalf("defaults not filled in: %+v", c)
	}
}
