package violations

import (
	"fmt"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/sanigate/sanigate/fleet"
	"github.com/sanigate/sanigate/telemetry"
)

// Duration is a time.Duration written in configuration as "30s", "5m" or "2h"
// (the one configuration duration of the gateway).
type Duration = fleet.Duration

// Config holds the thresholds of every detector, as the `violations:` section
// of sanigate.yaml. DefaultConfig gives the defaults of docs/domain.md; a section
// read by ParseConfig starts from them, so a file names only what it changes.
type Config struct {
	// Lateness is how far out of order one device's readings may arrive
	// and still be sorted into place; each device's readings wait this long
	// before detectors see them. Later readings are counted and dropped.
	Lateness Duration `yaml:"lateness"`
	// UploadDelay is, per device kind, how long a device may hold buffered
	// readings before uploading them (trucks and sweepers out of coverage).
	// Rules fired by the clock rather than by the device's own readings
	// (device offline, a route window that ended) wait this much longer,
	// so that a batched upload yields the same violations as live data.
	UploadDelay map[string]Duration `yaml:"upload_delay"`
	// ClockGrace is how far behind the wall clock the detectors tick a
	// silent device: a reading that arrives later than this after its own
	// time, once the clock has passed it, re-runs its device. Default 2s.
	ClockGrace Duration `yaml:"clock_grace"`
	// ReplayBytes bounds what each device keeps to re-run its detectors
	// over late readings (its marks and recent readings). Default 512 KiB
	// for trucks and sweepers, which go out of coverage and upload late
	// (about 8 h of a truck reporting every 10 s, so that an upload 3 h late
	// after live data still finds a mark before it), and 128 KiB for fixed
	// devices. Set, it applies to every kind.
	ReplayBytes int `yaml:"replay_bytes"`
	// ReplayWindow bounds the same in event time: a device keeps what a
	// re-run needs for readings up to this much older than its newest one.
	// Default 6h, so that a fleet of slow reporters (a bin every 5 min keeps
	// 72 readings) holds a few KiB each, not replay_bytes each.
	ReplayWindow Duration `yaml:"replay_window"`
	// MarkEvery is the event time between two marks of a device's state,
	// where a re-run may start. Default 30m.
	MarkEvery Duration `yaml:"mark_every"`
	// ReadbackQueue is how many devices may wait at once for a read-back:
	// a re-run over late readings older than their replay span, from the
	// device's history in InfluxDB (readback.go). More wait in their shards
	// and are offered again every second. Default 64.
	ReadbackQueue int `yaml:"readback_queue"`
	// LoadSmoothing is the number of samples in the running median of a
	// truck's load_kg: it hides load-cell noise and single-sample spikes.
	LoadSmoothing int `yaml:"load_smoothing"`

	IllegalDumping       IllegalDumpingConfig       `yaml:"illegal_dumping"`
	WrongSite            WrongSiteConfig            `yaml:"wrong_site"`
	Spillage             SpillageConfig             `yaml:"spillage"`
	Overload             OverloadConfig             `yaml:"overload"`
	MissedRoute          MissedRouteConfig          `yaml:"missed_route"`
	SweepingQuality      SweepingQualityConfig      `yaml:"sweeping_quality"`
	MixedCollection      RuleConfig                 `yaml:"mixed_collection"`
	BinOverflow          BinOverflowConfig          `yaml:"bin_overflow"`
	BinFire              BinFireConfig              `yaml:"bin_fire"`
	BinDamaged           BinDamagedConfig           `yaml:"bin_damaged"`
	SortingContamination SortingContaminationConfig `yaml:"sorting_contamination"`
	ToiletOdour          ToiletOdourConfig          `yaml:"toilet_odour"`
	ToiletConsumables    ToiletConsumablesConfig    `yaml:"toilet_consumables"`
	ToiletSafety         ToiletSafetyConfig         `yaml:"toilet_safety"`
	ToiletLeak           ToiletLeakConfig           `yaml:"toilet_leak"`
	ToiletCold           ToiletColdConfig           `yaml:"toilet_cold"`
	DeviceOffline        DeviceOfflineConfig        `yaml:"device_offline"`
	LowBattery           LowBatteryConfig           `yaml:"low_battery"`
	TrackingGap          TrackingGapConfig          `yaml:"tracking_gap"`
	UnaccountedLoad      UnaccountedLoadConfig      `yaml:"unaccounted_load"`
}

// RuleConfig is what every rule has: a switch to turn it off.
type RuleConfig struct {
	Disabled bool `yaml:"disabled"`
}

// IllegalDumpingConfig: a truck's load falls by MinDropKG within Window while
// stopped (under MaxSpeedKmh) outside every site that accepts its category.
type IllegalDumpingConfig struct {
	Disabled    bool     `yaml:"disabled"`
	MinDropKG   float64  `yaml:"min_drop_kg"`
	Window      Duration `yaml:"window"`
	MaxSpeedKmh float64  `yaml:"max_speed_kmh"`
}

// WrongSiteConfig: a load drop (as for illegal dumping) or an unload event
// inside a disposal site that does not accept the truck's category.
type WrongSiteConfig struct {
	Disabled bool `yaml:"disabled"`
	// SiteKinds are the kinds of site where unloading is a wrong-site
	// rather than an illegal dump.
	SiteKinds []string `yaml:"site_kinds"`
}

// SpillageConfig: the load falls by MinDropKG over at least MinDistanceM
// while moving at MinSpeedKmh or faster with the tipper off.
type SpillageConfig struct {
	Disabled     bool    `yaml:"disabled"`
	MinDropKG    float64 `yaml:"min_drop_kg"`
	MinDistanceM float64 `yaml:"min_distance_m"`
	MinSpeedKmh  float64 `yaml:"min_speed_kmh"`
	// Smoothing is the number of samples in the running median used for
	// spillage, longer than LoadSmoothing: a small drop needs a steady level.
	Smoothing int `yaml:"smoothing"`
}

// OverloadConfig: load over capacity x Factor while moving for MinDuration.
type OverloadConfig struct {
	Disabled    bool     `yaml:"disabled"`
	Factor      float64  `yaml:"factor"`
	MinDuration Duration `yaml:"min_duration"`
	// MovingKmh is the speed from which the truck counts as moving.
	MovingKmh float64 `yaml:"moving_kmh"`
	// ClearFactor: the overload ends when the load is under capacity x
	// ClearFactor (hysteresis).
	ClearFactor float64 `yaml:"clear_factor"`
}

// MissedRouteConfig: at the end of a sweeping window, coverage under
// MinCoverage; at the end of a collection window, any bin without a pickup.
type MissedRouteConfig struct {
	Disabled    bool    `yaml:"disabled"`
	MinCoverage float64 `yaml:"min_coverage"`
}

// SweepingQualityConfig: on route with the brush off or too fast for more
// than MaxBadFraction of the length driven along the route.
type SweepingQualityConfig struct {
	Disabled       bool    `yaml:"disabled"`
	MaxBadFraction float64 `yaml:"max_bad_fraction"`
}

// BinOverflowConfig: fill_pct at or over MinFillPct for MinDuration without
// being emptied; major after MajorAfter. It ends under ClearFillPct.
type BinOverflowConfig struct {
	Disabled     bool     `yaml:"disabled"`
	MinFillPct   float64  `yaml:"min_fill_pct"`
	MinDuration  Duration `yaml:"min_duration"`
	MajorAfter   Duration `yaml:"major_after"`
	ClearFillPct float64  `yaml:"clear_fill_pct"`
	// ClearAfter is how long readings must stay under ClearFillPct to end it.
	ClearAfter Duration `yaml:"clear_after"`
}

// BinFireConfig: temp_c at or over MaxTempC, or a rise of MinRiseC within
// RiseWindow, or a fire alarm. It ends under ClearTempC.
type BinFireConfig struct {
	Disabled   bool     `yaml:"disabled"`
	MaxTempC   float64  `yaml:"max_temp_c"`
	MinRiseC   float64  `yaml:"min_rise_c"`
	RiseWindow Duration `yaml:"rise_window"`
	ClearTempC float64  `yaml:"clear_temp_c"`
}

// BinDamagedConfig: tilt_deg at or over MaxTiltDeg for MinDuration, or moved
// more than MaxMoveM from its registered place.
type BinDamagedConfig struct {
	Disabled     bool     `yaml:"disabled"`
	MaxTiltDeg   float64  `yaml:"max_tilt_deg"`
	MinDuration  Duration `yaml:"min_duration"`
	MaxMoveM     float64  `yaml:"max_move_m"`
	ClearTiltDeg float64  `yaml:"clear_tilt_deg"`
	// ClearAfter is how long readings must stay under ClearTiltDeg to end it.
	ClearAfter Duration `yaml:"clear_after"`
}

// SortingContaminationConfig: contamination_pct at or over MinPct on
// Readings readings in a row; it ends after as many under ClearPct.
type SortingContaminationConfig struct {
	Disabled bool    `yaml:"disabled"`
	MinPct   float64 `yaml:"min_pct"`
	Readings int     `yaml:"readings"`
	ClearPct float64 `yaml:"clear_pct"`
}

// ToiletOdourConfig: nh3_mgm3 over the limit of the toilet's class (GB/T
// 17217) or h2s_mgm3 over MaxH2S for MinDuration; it ends when both are
// under the limits for ClearDuration.
type ToiletOdourConfig struct {
	Disabled bool `yaml:"disabled"`
	// MaxNH3 is the ammonia limit per toilet class (1, 2, 3), mg/m3.
	MaxNH3        map[int]float64 `yaml:"max_nh3"`
	MaxH2S        float64         `yaml:"max_h2s"`
	MinDuration   Duration        `yaml:"min_duration"`
	ClearDuration Duration        `yaml:"clear_duration"`
}

// ToiletConsumablesConfig: paper_pct or soap_pct under MinPct; ends when
// both are at or over ClearPct (a refill).
type ToiletConsumablesConfig struct {
	Disabled bool    `yaml:"disabled"`
	MinPct   float64 `yaml:"min_pct"`
	ClearPct float64 `yaml:"clear_pct"`
}

// ToiletSafetyConfig: a help button, or a stall occupied for MaxOccupied.
type ToiletSafetyConfig struct {
	Disabled    bool     `yaml:"disabled"`
	MaxOccupied Duration `yaml:"max_occupied"`
}

// ToiletLeakConfig: water flowing for MinDuration (at least MinLitres) while
// no one is inside, within the night window (city time).
type ToiletLeakConfig struct {
	Disabled    bool     `yaml:"disabled"`
	Window      string   `yaml:"window"`
	MinDuration Duration `yaml:"min_duration"`
	MinLitres   float64  `yaml:"min_litres"`
}

// ToiletColdConfig: temp_c under MinTempC (class 1: MinTempClass1C) for
// MinDuration; it ends ClearMarginC above the limit.
type ToiletColdConfig struct {
	Disabled       bool     `yaml:"disabled"`
	MinTempC       float64  `yaml:"min_temp_c"`
	MinTempClass1C float64  `yaml:"min_temp_class1_c"`
	MinDuration    Duration `yaml:"min_duration"`
	ClearMarginC   float64  `yaml:"clear_margin_c"`
	// ClearAfter is how long readings must stay ClearMarginC above the
	// limit to end it.
	ClearAfter Duration `yaml:"clear_after"`
}

// DeviceOfflineConfig: nothing for Factor x the device's expected interval,
// or its last will.
type DeviceOfflineConfig struct {
	Disabled bool    `yaml:"disabled"`
	Factor   float64 `yaml:"factor"`
}

// LowBatteryConfig: battery_pct under MinPct on two readings in a row; ends
// at or over ClearPct.
type LowBatteryConfig struct {
	Disabled bool    `yaml:"disabled"`
	MinPct   float64 `yaml:"min_pct"`
	ClearPct float64 `yaml:"clear_pct"`
}

// TrackingGapConfig: a truck or sweeper silent for MinSilence or longer
// during a trip: ignition on (for a sweeper without ignition: moving or
// brushing) at both ends, or the ends at least MinDistanceM apart.
type TrackingGapConfig struct {
	Disabled     bool     `yaml:"disabled"`
	MinSilence   Duration `yaml:"min_silence"`
	MinDistanceM float64  `yaml:"min_distance_m"`
	// ResetAfter is the silence from which the load rules start afresh: no
	// running median, stop or drive is carried across it.
	ResetAfter Duration `yaml:"reset_after"`
}

// UnaccountedLoadConfig: a truck's load lower by MinDropKG after a tracking
// gap, with no site accepting its category within reach. A site is within
// reach when the truck could drive from the last position before the gap to
// the site and on to the first position after it at SpeedKmh, with
// UnloadTime to spare: dist(before, site) + dist(site, after) <=
// SpeedKmh x (gap - UnloadTime), an ellipse around the two ends.
type UnaccountedLoadConfig struct {
	Disabled   bool     `yaml:"disabled"`
	MinDropKG  float64  `yaml:"min_drop_kg"`
	SpeedKmh   float64  `yaml:"speed_kmh"`
	UnloadTime Duration `yaml:"unload_time"`
	// Samples is how many load readings on each side of the gap give the
	// load before and after it (their median).
	Samples int `yaml:"samples"`
}

// DefaultConfig returns the thresholds of docs/domain.md's violation table, and
// the engine's defaults for lateness and upload delays.
func DefaultConfig() Config {
	return Config{
		Lateness:      Duration(10 * time.Minute),
		UploadDelay:   map[string]Duration{"truck": Duration(70 * time.Minute), "sweeper": Duration(70 * time.Minute)},
		ClockGrace:    Duration(2 * time.Second),
		ReplayWindow:  Duration(6 * time.Hour),
		MarkEvery:     Duration(30 * time.Minute),
		LoadSmoothing: 5,
		IllegalDumping: IllegalDumpingConfig{
			MinDropKG: 300, Window: Duration(10 * time.Minute), MaxSpeedKmh: 3,
		},
		WrongSite: WrongSiteConfig{SiteKinds: []string{"kitchen_waste_plant", "transfer_station", "landfill",
			"incinerator", "recycling_centre", "hazardous_facility"}},
		Spillage: SpillageConfig{MinDropKG: 50, MinDistanceM: 1000, MinSpeedKmh: 10, Smoothing: 9},
		Overload: OverloadConfig{Factor: 1.05, MinDuration: Duration(2 * time.Minute), MovingKmh: 5, ClearFactor: 1.0},
		MissedRoute: MissedRouteConfig{
			MinCoverage: 0.9,
		},
		SweepingQuality: SweepingQualityConfig{MaxBadFraction: 0.2},
		BinOverflow: BinOverflowConfig{MinFillPct: 90, MinDuration: Duration(2 * time.Hour),
			MajorAfter: Duration(8 * time.Hour), ClearFillPct: 80, ClearAfter: Duration(5 * time.Minute)},
		BinFire: BinFireConfig{MaxTempC: 70, MinRiseC: 15, RiseWindow: Duration(10 * time.Minute), ClearTempC: 50},
		BinDamaged: BinDamagedConfig{MaxTiltDeg: 45, MinDuration: Duration(5 * time.Minute), MaxMoveM: 50,
			ClearTiltDeg: 30},
		SortingContamination: SortingContaminationConfig{MinPct: 20, Readings: 3, ClearPct: 15},
		ToiletOdour: ToiletOdourConfig{MaxNH3: map[int]float64{1: 0.3, 2: 1, 3: 3}, MaxH2S: 0.01,
			MinDuration: Duration(15 * time.Minute), ClearDuration: Duration(30 * time.Minute)},
		ToiletConsumables: ToiletConsumablesConfig{MinPct: 10, ClearPct: 20},
		ToiletSafety:      ToiletSafetyConfig{MaxOccupied: Duration(30 * time.Minute)},
		ToiletLeak:        ToiletLeakConfig{Window: "00:00-05:00", MinDuration: Duration(30 * time.Minute), MinLitres: 5},
		ToiletCold: ToiletColdConfig{MinTempC: 10, MinTempClass1C: 14, MinDuration: Duration(30 * time.Minute),
			ClearMarginC: 1, ClearAfter: Duration(2 * time.Minute)},
		DeviceOffline: DeviceOfflineConfig{Factor: 3},
		LowBattery:    LowBatteryConfig{MinPct: 15, ClearPct: 20},
		TrackingGap: TrackingGapConfig{MinSilence: Duration(10 * time.Minute), MinDistanceM: 500,
			ResetAfter: Duration(2 * time.Minute)},
		UnaccountedLoad: UnaccountedLoadConfig{MinDropKG: 300, SpeedKmh: 30, UnloadTime: Duration(10 * time.Minute), Samples: 5},
	}
}

func init() {
	fleet.RegisterSection("violations", func(d *fleet.Decoder, n *yaml.Node, _ *fleet.Config) any {
		return parseSection(d, n)
	})
}

// FromConfig returns the violations section of a configuration made by
// fleet.Parse, or the defaults when it has none.
func FromConfig(cfg *fleet.Config) Config {
	if c, ok := cfg.Section("violations").(Config); ok {
		return c
	}
	return DefaultConfig()
}

// ParseConfig reads the `violations:` section of the configuration file
// named file (a YAML mapping node; nil or empty gives the defaults) over
// DefaultConfig. Every problem is reported at once as fleet.Problems, each
// with its line: unknown keys (a misspelt threshold is not silently
// ignored), values of the wrong type, settings that cannot work.
func ParseConfig(file string, n *yaml.Node) (Config, error) {
	var ps fleet.Problems
	c := parseSection(fleet.NewDecoder(file, &ps), n)
	return c, ps.Err()
}

func parseSection(d *fleet.Decoder, n *yaml.Node) Config {
	c := DefaultConfig()
	n = fleet.SectionNode(n)
	if n == nil {
		return c
	}
	d.Decode(n, &c, "violations")
	for _, p := range c.check() {
		field, msg, _ := strings.Cut(p, ": ")
		first, _, _ := strings.Cut(field, ",")
		d.Problems.Add(d.File, d.Line("violations."+first), "violations."+field, "%s", msg)
	}
	return c
}

// check reports settings that cannot work.
func (c *Config) check() []string {
	var ps []string
	if c.Lateness < 0 {
		ps = append(ps, "lateness: must not be negative")
	}
	if c.ReadbackQueue < 0 {
		ps = append(ps, "readback_queue: must not be negative")
	}
	if c.LoadSmoothing < 1 || c.Spillage.Smoothing < 1 {
		ps = append(ps, "load_smoothing, spillage.smoothing: at least 1 sample")
	}
	if c.SortingContamination.Readings < 1 {
		ps = append(ps, "sorting_contamination.readings: at least 1")
	}
	if c.DeviceOffline.Factor <= 0 {
		ps = append(ps, "device_offline.factor: must be positive")
	}
	if _, _, err := parseNight(c.ToiletLeak.Window); err != nil {
		ps = append(ps, "toilet_leak.window: "+err.Error())
	}
	return ps
}

// parseNight parses "HH:MM-HH:MM" into offsets from midnight.
func parseNight(s string) (time.Duration, time.Duration, error) {
	a, b, ok := strings.Cut(s, "-")
	if !ok {
		return 0, 0, fmt.Errorf("%q is not HH:MM-HH:MM", s)
	}
	pa, err1 := time.Parse("15:04", strings.TrimSpace(a))
	pb, err2 := time.Parse("15:04", strings.TrimSpace(b))
	if err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("%q is not HH:MM-HH:MM", s)
	}
	start := time.Duration(pa.Hour())*time.Hour + time.Duration(pa.Minute())*time.Minute
	end := time.Duration(pb.Hour())*time.Hour + time.Duration(pb.Minute())*time.Minute
	if end <= start {
		end += 24 * time.Hour
	}
	return start, end, nil
}

func (c *Config) uploadDelay(kind string) time.Duration { return c.UploadDelay[kind].D() }

func (c *Config) replayBytes(kind string) int {
	switch {
	case c.ReplayBytes > 0:
		return c.ReplayBytes
	case kind == telemetry.KindTruck || kind == telemetry.KindSweeper:
		return 512 << 10
	default:
		return 128 << 10
	}
}

func (c *Config) replayWindow() time.Duration {
	if c.ReplayWindow <= 0 {
		return 6 * time.Hour
	}
	return c.ReplayWindow.D()
}

func (c *Config) markEvery() time.Duration {
	if c.MarkEvery <= 0 {
		return 30 * time.Minute
	}
	return c.MarkEvery.D()
}
