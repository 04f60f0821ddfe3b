// Package violations turns readings into violations: one detector per type of
// docs/domain.md, each stateful per device and driven by event time. It writes to
// no storage and sends no notification; what it raises goes to a Sink.
package violations

import (
	"context"
	"time"
)

// Types of violation (docs/domain.md).
const (
	IllegalDumping       = "illegal_dumping"
	WrongSite            = "wrong_site"
	Spillage             = "spillage"
	Overload             = "overload"
	MissedRoute          = "missed_route"
	SweepingQuality      = "sweeping_quality"
	MixedCollection      = "mixed_collection"
	BinOverflow          = "bin_overflow"
	BinFire              = "bin_fire"
	BinDamaged           = "bin_damaged"
	SortingContamination = "sorting_contamination"
	ToiletOdour          = "toilet_odour"
	ToiletConsumables    = "toilet_consumables"
	ToiletSafety         = "toilet_safety"
	ToiletLeak           = "toilet_leak"
	ToiletCold           = "toilet_cold"
	DeviceOffline        = "device_offline"
	LowBattery           = "low_battery"
	TrackingGap          = "tracking_gap"
	UnaccountedLoad      = "unaccounted_load"
)

// Types lists every violation type.
var Types = []string{IllegalDumping, WrongSite, Spillage, Overload, MissedRoute, SweepingQuality, MixedCollection,
	BinOverflow, BinFire, BinDamaged, SortingContamination, ToiletOdour, ToiletConsumables, ToiletSafety, ToiletLeak,
	ToiletCold, DeviceOffline, LowBattery, TrackingGap, UnaccountedLoad}

// Severities, from least to most urgent.
const (
	Minor    = "minor"
	Major    = "major"
	Critical = "critical"
)

// Violation is what a detector raises: a problem the readings prove.
type Violation struct {
	// Key is stable for the same occurrence: a replay of the same readings
	// yields the same key, so storing or filing twice merges.
	Key      string
	Type     string
	Severity string
	Device   string
	Kind     string // the device's kind
	// Start and End bound the time span the evidence covers (event time).
	Start, End time.Time
	// Position of the violation, when it has one.
	Lat, Lon float64
	HasPos   bool
	// Geometry is GeoJSON for violations with a shape (uncovered route
	// pieces); empty otherwise.
	Geometry   []byte
	District   string
	Contractor string
	Category   string
	Site       string // the site it happened in, if any
	Route      string // the route concerned, for missed_route and sweeping_quality
	// Place identifies a fixed place for violations keyed by place rather
	// than device (a bin's position, a route).
	Place string
	// Summary is one human sentence; Evidence holds the proving readings.
	Summary  string
	Evidence []Evidence
	// Resolved is set when a detector sees the condition end (the bin was
	// emptied, the odour fell below the limit for 30 min, the device came
	// back): it lets a case be verified by data.
	Resolved bool
}

// Evidence is one reading (or computed figure) that proves a violation.
type Evidence struct {
	Time   time.Time          `json:"time"`
	Device string             `json:"device,omitempty"`
	Event  string             `json:"event,omitempty"`
	Fields map[string]float64 `json:"fields,omitempty"`
	Text   map[string]string  `json:"text,omitempty"`
	Note   string             `json:"note,omitempty"`
}

// Sink receives violations. Raise is called from detector goroutines,
// concurrently for different devices, and from the read-back worker
// (readback.go), possibly for a device whose shard is raising too (an older
// span of it); it may block (that slows detection, never ingest). The cases
// package fills this seam.
type Sink interface {
	Raise(ctx context.Context, v Violation) error
}

// Withdrawer is implemented by a Sink that can take back a violation it was
// given: late readings re-ran the device and no longer support it. v is the
// violation as raised (without its evidence); reason is one human sentence.
// Withdraw is called from detector goroutines like Raise, and at most once
// per key and re-run.
type Withdrawer interface {
	Withdraw(ctx context.Context, v Violation, reason string) error
}

// CoverageReport is how well one sweeper covered one sweeping route in one
// window, for the dashboards: written whether or not it was a violation.
type CoverageReport struct {
	Route, Device, Contractor, District string
	Start, End                          time.Time
	// Fraction of the route covered (0..1), the route's length, the
	// length covered with the brush on at or under the sweeping speed, and
	// the distances driven along the route with the brush off and too fast.
	Fraction, LengthM, CoveredM, BrushOffM, OverSpeedM float64
}

// CoverageSink is implemented by a Sink that also takes coverage reports.
type CoverageSink interface {
	Coverage(ctx context.Context, c CoverageReport) error
}
