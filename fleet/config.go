package fleet

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Config is the whole of sanigate.yaml after defaults are applied.
type Config struct {
	City      CityConfig          `yaml:"city"`
	MQTT      MQTTConfig          `yaml:"mqtt"`
	HTTP      HTTPConfig          `yaml:"http"`
	InfluxDB  InfluxConfig        `yaml:"influxdb"`
	Spool     SpoolConfig         `yaml:"spool"`
	Ingest    IngestConfig        `yaml:"ingest"`
	Places    PlacesConfig        `yaml:"places"`
	Devices   []Device            `yaml:"devices"`
	Intervals map[string]Duration `yaml:"intervals"`
	Calendar  CalendarConfig      `yaml:"calendar"`
	GPS       GPSFilterConfig     `yaml:"gps"`
	Coverage  CoverageOptions     `yaml:"coverage"`
	Cluster   ClusterConfig       `yaml:"cluster"`
	Console   ConsoleConfig       `yaml:"console"`

	// Modbus is the raw modbus section; drivers/modbus parses it so that its
	// register vocabulary stays with the driver.
	Modbus yaml.Node `yaml:"modbus"`
	// Cases is the raw cases section (store, units, dispatch, deadlines,
	// tokens); the cases package parses it.
	Cases yaml.Node `yaml:"cases"`
	// Violations is the raw violations section (detector thresholds); the
	// violations package parses it.
	Violations yaml.Node `yaml:"violations"`

	// File is the path the configuration was loaded from; relative paths in
	// it (GeoJSON files, the spool folder) are resolved against its folder.
	File string `yaml:"-"`
	// Pos maps a field path ("devices[3].kind") to its line in File.
	Pos map[string]int `yaml:"-"`

	// Map is the city's places and routes, loaded from the files Places
	// names (nil when none are named).
	Map *Places `yaml:"-"`
	// WorkCalendar is the city's working calendar, for deadlines.
	WorkCalendar *Calendar `yaml:"-"`

	// sections holds the decoded sections other packages own, by name.
	sections map[string]any
}

// CityConfig holds settings that belong to the city as a whole.
type CityConfig struct {
	Name     string `yaml:"name"`
	Timezone string `yaml:"timezone"`
}

// MQTTConfig configures the embedded broker.
type MQTTConfig struct {
	Address        string `yaml:"address"`
	MaxPacketBytes int    `yaml:"max_packet_bytes"`
	// TLSAddress is the MQTT over TLS listener, used when TLSCertFile is set
	// (default ":8883").
	TLSAddress string `yaml:"tls_address"`
	// TLSCertFile and TLSKeyFile are PEM files, re-read when they change.
	TLSCertFile string `yaml:"tls_cert_file"`
	TLSKeyFile  string `yaml:"tls_key_file"`
	// ClientCAFile, when set, makes the TLS listener ask for client
	// certificates signed by these CAs; a device presenting one whose CN or a
	// DNS SAN is its id needs no password.
	ClientCAFile string `yaml:"client_ca_file"`
	// MaxSubscriptions caps the subscriptions one client session holds (default 16).
	MaxSubscriptions int `yaml:"max_subscriptions"`
	// MaxFilterBytes caps the length of a subscription filter (default 256).
	MaxFilterBytes int `yaml:"max_filter_bytes"`
	// MaxSessionExpiry caps how long a session outlives its connection (default 1h).
	MaxSessionExpiry Duration `yaml:"max_session_expiry"`
	// MaxSessionsPerDevice caps the sessions (client ids) one device holds,
	// connected or kept for a reconnect (default 4).
	MaxSessionsPerDevice int `yaml:"max_sessions_per_device"`
}

// HTTPConfig configures the HTTP server for /metrics, /healthz, /readyz and the API.
type HTTPConfig struct {
	Address string `yaml:"address"`
	// TLSAddress is the HTTPS listener (API and MQTT over WebSocket at
	// /mqtt), used when TLSCertFile is set (default ":8443").
	TLSAddress  string `yaml:"tls_address"`
	TLSCertFile string `yaml:"tls_cert_file"`
	TLSKeyFile  string `yaml:"tls_key_file"`
	// ReadTimeout bounds reading a whole request, body included (default 30s);
	// WriteTimeout bounds writing its response (default 60s); IdleTimeout
	// closes an idle keep-alive connection (default 60s).
	ReadTimeout  Duration `yaml:"read_timeout"`
	WriteTimeout Duration `yaml:"write_timeout"`
	IdleTimeout  Duration `yaml:"idle_timeout"`
	// MaxBodyBytes caps a request body on every route (default 1 MiB).
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
}

// InfluxConfig is the InfluxDB connection. For InfluxDB 1.8 the bucket is
// "database/retention-policy" (or just the database) and the token is
// "user:password" or empty; for 2.x and 3.x it is the bucket and an API token.
type InfluxConfig struct {
	URL           string   `yaml:"url"`
	Org           string   `yaml:"org"`
	Bucket        string   `yaml:"bucket"`
	Token         string   `yaml:"token"`
	TokenFile     string   `yaml:"token_file"`
	BatchSize     int      `yaml:"batch_size"`
	FlushInterval Duration `yaml:"flush_interval"`
	Timeout       Duration `yaml:"timeout"`
	// Compression of write requests: "auto" (the default: gzip, unless
	// InfluxDB is on this machine, where compressing costs CPU and saves
	// nothing), "gzip" or "none".
	Compression string `yaml:"compression"`
	// Retention is the retention layout the gateway keeps on InfluxDB 1.x.
	Retention RetentionConfig `yaml:"retention"`
}

// SpoolConfig configures the durable log between ingest and its consumers.
type SpoolConfig struct {
	Dir          string   `yaml:"dir"`
	MaxBytes     int64    `yaml:"max_bytes"`
	SegmentBytes int64    `yaml:"segment_bytes"`
	SyncDelay    Duration `yaml:"sync_delay"`
	SyncRecords  int      `yaml:"sync_records"`
	// MinFreeBytes is the disk headroom the spool keeps: below it, ingest is
	// pushed back as when the quota is reached (default 64 MiB; -1 disables).
	MinFreeBytes int64 `yaml:"min_free_bytes"`
}

// IngestConfig bounds what ingest accepts.
type IngestConfig struct {
	// MaxFutureSkew is how far ahead of the gateway's clock a device's
	// timestamp may be before the reading is refused.
	MaxFutureSkew Duration `yaml:"max_future_skew"`
	// MaxAge refuses readings older than this (buffered uploads included).
	MaxAge Duration `yaml:"max_age"`
	// MaxReadings is the most readings one message may carry.
	MaxReadings int `yaml:"max_readings"`
}

// PlacesConfig names the GeoJSON files of the city's map.
type PlacesConfig struct {
	Districts        string `yaml:"districts"`
	Sites            string `yaml:"sites"`
	SweepingRoutes   string `yaml:"sweeping_routes"`
	CollectionRoutes string `yaml:"collection_routes"`
	// Bounds is the city's [west, south, east, north] box; features outside
	// it are reported (it catches swapped coordinates).
	Bounds []float64 `yaml:"bounds"`
	// FarKm: without Bounds, a feature this far from the others' median
	// centre is reported when swapping its coordinates would bring it home.
	FarKm float64 `yaml:"far_km"`
}

// Device is one registered device.
type Device struct {
	ID           string   `yaml:"id"`
	Kind         string   `yaml:"kind"`
	Category     string   `yaml:"category"`
	Contractor   string   `yaml:"contractor"`
	District     string   `yaml:"district"`
	CapacityKG   float64  `yaml:"capacity_kg"`
	Class        int      `yaml:"class"`
	Interval     Duration `yaml:"interval"`
	PasswordHash string   `yaml:"password_hash"`
	// Transport is how the device reaches the gateway: mqtt (the default)
	// or modbus (polled; it needs no password).
	Transport string   `yaml:"transport"`
	Lat       *float64 `yaml:"lat"`
	Lon       *float64 `yaml:"lon"`

	// PreviousPasswordHash is the hash a rotation replaced; it is accepted
	// until PreviousUntil (the rotation's grace period). Set by the device
	// registry in the case store, never read from the file.
	PreviousPasswordHash string    `yaml:"-" json:"-"`
	PreviousUntil        time.Time `yaml:"-" json:"-"`
}

// Device kinds and sorting categories known to the gateway.
var (
	Kinds      = []string{"bin", "truck", "toilet", "sweeper", "weighbridge"}
	Categories = []string{"kitchen", "recyclable", "hazardous", "other"}
)

// DefaultIntervals are the expected reporting intervals per kind.
var DefaultIntervals = map[string]time.Duration{
	"bin":     5 * time.Minute,
	"truck":   10 * time.Second,
	"toilet":  time.Minute,
	"sweeper": 10 * time.Second,
	// A weighbridge is polled; its interval is the poll interval's bound.
	"weighbridge": time.Minute,
}

// ErrNoConfig is returned by Load when the file does not exist.
var ErrNoConfig = errors.New("configuration file not found")

var deviceIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// Load reads, decodes, defaults and validates the configuration at path.
// Every problem is reported at once, as Problems.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%w: %s", ErrNoConfig, path)
		}
		return nil, fmt.Errorf("read configuration: %w", err)
	}
	return Parse(path, data, os.Getenv)
}

// Parse decodes a configuration held in memory; file names it in problems and
// anchors its relative paths. getenv supplies SANIGATE_* overrides (it may be nil).
func Parse(file string, data []byte, getenv func(string) string) (*Config, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		var ps Problems
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		msg = lineInErr.ReplaceAllString(msg, "")
		msg = strings.TrimLeft(msg, ": ")
		ps.Add(file, yamlErrLine(err), "", "%s", msg)
		return nil, ps
	}
	var ps Problems
	d := NewDecoder(file, &ps)
	cfg := &Config{File: file, Pos: d.Pos}
	if len(root.Content) > 0 {
		d.Decode(&root, cfg, "")
	}
	if getenv != nil {
		applyEnv(cfg, getenv, &ps)
	}
	cfg.applyDefaults()
	cfg.validate(&ps)
	cfg.loadMap(&ps)
	cfg.parseSections(d)
	if err := ps.Err(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// loadMap loads the places and builds the calendar, adding their problems.
func (c *Config) loadMap(ps *Problems) {
	cal, err := c.Calendar.Build(c.Location())
	var cps Problems
	if errors.As(err, &cps) {
		for _, p := range cps {
			path := join("calendar", p.Field)
			*ps = append(*ps, Problem{File: c.File, Line: c.line(path), Field: path, Msg: p.Msg})
		}
	} else if err != nil {
		ps.Add(c.File, c.line("calendar"), "calendar", "%v", err)
	}
	c.WorkCalendar = cal
	pc := c.Places
	if pc.Districts == "" && pc.Sites == "" && pc.SweepingRoutes == "" && pc.CollectionRoutes == "" {
		return
	}
	m, err := loadPlacesFor(c, LoadOptions{CityBounds: pc.Bounds, FarKm: pc.FarKm})
	var mps Problems
	switch {
	case errors.As(err, &mps):
		*ps = append(*ps, mps...)
	case err != nil:
		ps.Add(c.File, c.line("places"), "places", "%v", err)
	default:
		c.Map = m
	}
}

var lineInErr = regexp.MustCompile(`line (\d+):?`)

func yamlErrLine(err error) int {
	m := lineInErr.FindStringSubmatch(err.Error())
	if m == nil {
		return 0
	}
	var n int
	fmt.Sscan(m[1], &n)
	return n
}

// Env variables that override the file; flags override both (in cmd).
var envOverrides = map[string]func(*Config, string) error{
	"SANIGATE_MQTT_ADDRESS":    func(c *Config, v string) error { c.MQTT.Address = v; return nil },
	"SANIGATE_HTTP_ADDRESS":    func(c *Config, v string) error { c.HTTP.Address = v; return nil },
	"SANIGATE_INFLUXDB_URL":    func(c *Config, v string) error { c.InfluxDB.URL = v; return nil },
	"SANIGATE_INFLUXDB_BUCKET": func(c *Config, v string) error { c.InfluxDB.Bucket = v; return nil },
	"SANIGATE_INFLUXDB_ORG":    func(c *Config, v string) error { c.InfluxDB.Org = v; return nil },
	"SANIGATE_INFLUXDB_TOKEN":  func(c *Config, v string) error { c.InfluxDB.Token = v; return nil },
	"SANIGATE_SPOOL_DIR":       func(c *Config, v string) error { c.Spool.Dir = v; return nil },
	"SANIGATE_CONSOLE_OIDC_CLIENT_SECRET": func(c *Config, v string) error {
		c.Console.OIDC.ClientSecret, c.Console.OIDC.ClientSecretFile = v, ""
		return nil
	},
}

func applyEnv(c *Config, getenv func(string) string, ps *Problems) {
	for name, set := range envOverrides {
		if v := getenv(name); v != "" {
			if err := set(c, v); err != nil {
				ps.Add("environment", 0, name, "%v", err)
			}
		}
	}
}

func (c *Config) applyDefaults() {
	if c.City.Timezone == "" {
		c.City.Timezone = "Asia/Shanghai"
	}
	if c.MQTT.Address == "" {
		c.MQTT.Address = ":1883"
	}
	if c.MQTT.MaxPacketBytes == 0 {
		c.MQTT.MaxPacketBytes = 64 << 10
	}
	if c.HTTP.Address == "" {
		c.HTTP.Address = ":8080"
	}
	c.applyEdgeDefaults()
	c.applyConsoleDefaults()
	if c.InfluxDB.URL == "" {
		c.InfluxDB.URL = "http://127.0.0.1:8086"
	}
	if c.InfluxDB.Bucket == "" {
		c.InfluxDB.Bucket = "sanigate"
	}
	if c.InfluxDB.BatchSize == 0 {
		c.InfluxDB.BatchSize = 5000
	}
	if c.InfluxDB.FlushInterval == 0 {
		c.InfluxDB.FlushInterval = Duration(time.Second)
	}
	if c.InfluxDB.Timeout == 0 {
		c.InfluxDB.Timeout = Duration(10 * time.Second)
	}
	if c.Spool.Dir == "" {
		c.Spool.Dir = "spool"
	}
	if c.Spool.MaxBytes == 0 {
		c.Spool.MaxBytes = 2 << 30
	}
	if c.Spool.SegmentBytes == 0 {
		c.Spool.SegmentBytes = 16 << 20
	}
	if c.Spool.SyncDelay == 0 {
		c.Spool.SyncDelay = Duration(2 * time.Millisecond)
	}
	if c.Spool.SyncRecords == 0 {
		c.Spool.SyncRecords = 512
	}
	if c.Ingest.MaxFutureSkew == 0 {
		c.Ingest.MaxFutureSkew = Duration(5 * time.Minute)
	}
	if c.Ingest.MaxAge == 0 {
		c.Ingest.MaxAge = Duration(30 * 24 * time.Hour)
	}
	if c.Ingest.MaxReadings == 0 {
		c.Ingest.MaxReadings = 1000
	}
	if c.Intervals == nil {
		c.Intervals = map[string]Duration{}
	}
	for k, v := range DefaultIntervals {
		if _, ok := c.Intervals[k]; !ok {
			c.Intervals[k] = Duration(v)
		}
	}
	for i := range c.Devices {
		d := &c.Devices[i]
		if d.Interval == 0 {
			d.Interval = c.Intervals[d.Kind]
		}
		if d.Kind == "toilet" && d.Class == 0 {
			d.Class = 2
		}
	}
}

// line returns the line of path, or of its closest enclosing path that has one.
func (c *Config) line(path string) int { return lineOf(c.Pos, path) }

func (c *Config) validate(ps *Problems) {
	decodeFailed := map[string]bool{}
	for _, p := range *ps {
		decodeFailed[p.Field] = true
	}
	add := func(path, format string, args ...any) {
		if decodeFailed[path] {
			return // already reported as unreadable
		}
		ps.Add(c.File, c.line(path), path, format, args...)
	}
	if _, err := time.LoadLocation(c.City.Timezone); err != nil {
		add("city.timezone", "unknown time zone %q", c.City.Timezone)
	}
	c.validateEdge(add)
	c.validateConsole(add)
	for _, a := range []struct{ path, addr string }{{"mqtt.address", c.MQTT.Address}, {"http.address", c.HTTP.Address}} {
		if _, _, err := net.SplitHostPort(a.addr); err != nil {
			add(a.path, "%q is not a host:port address", a.addr)
		}
	}
	if c.MQTT.MaxPacketBytes < 1024 || c.MQTT.MaxPacketBytes > 256<<20 {
		add("mqtt.max_packet_bytes", "must be between 1024 and 268435456, got %d", c.MQTT.MaxPacketBytes)
	}
	if u, err := url.Parse(c.InfluxDB.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		add("influxdb.url", "%q is not an http(s) URL", c.InfluxDB.URL)
	}
	if c.InfluxDB.BatchSize < 1 || c.InfluxDB.BatchSize > 100000 {
		add("influxdb.batch_size", "must be between 1 and 100000, got %d", c.InfluxDB.BatchSize)
	}
	if c.InfluxDB.FlushInterval < 0 {
		add("influxdb.flush_interval", "must be positive")
	}
	switch c.InfluxDB.Compression {
	case "", "auto", "gzip", "none":
	default:
		add("influxdb.compression", "must be auto, gzip or none, got %q", c.InfluxDB.Compression)
	}
	if c.InfluxDB.Token != "" && c.InfluxDB.TokenFile != "" {
		add("influxdb.token_file", "set token or token_file, not both")
	}
	if c.Spool.MaxBytes < 1<<20 {
		add("spool.max_bytes", "must be at least 1048576 (1 MiB), got %d", c.Spool.MaxBytes)
	}
	if c.Spool.SegmentBytes < 64<<10 || c.Spool.SegmentBytes > c.Spool.MaxBytes/4 {
		add("spool.segment_bytes", "must be between 65536 and a quarter of spool.max_bytes (space is freed a segment at a time), got %d", c.Spool.SegmentBytes)
	}
	if c.Spool.SyncDelay < 0 || c.Spool.SyncDelay.D() > time.Second {
		add("spool.sync_delay", "must be between 0 and 1s")
	}
	if c.Spool.SyncRecords < 1 {
		add("spool.sync_records", "must be at least 1")
	}
	for k := range c.Intervals {
		if !contains(Kinds, k) {
			add("intervals."+k, "unknown device kind %q (known: %s)", k, strings.Join(Kinds, ", "))
		}
	}
	seen := map[string]int{}
	for i, d := range c.Devices {
		c.validateDevice(i, d, seen, add)
	}
}

// validateDevice checks one entry of devices:; seen maps the ids met so far
// to their index.
func (c *Config) validateDevice(i int, d Device, seen map[string]int, add func(path, format string, args ...any)) {
	p := fmt.Sprintf("devices[%d]", i)
	switch {
	case d.ID == "":
		add(p+".id", "missing")
	case !deviceIDPattern.MatchString(d.ID):
		add(p+".id", "%q may hold only letters, digits, '.', '_' and '-' (at most 64), and start with a letter or digit", d.ID)
	default:
		if j, dup := seen[d.ID]; dup {
			add(p+".id", "%q is already used by devices[%d] (line %d)", d.ID, j, c.line(fmt.Sprintf("devices[%d]", j)))
		}
		seen[d.ID] = i
	}
	if !contains(Kinds, d.Kind) {
		add(p+".kind", "%q is not a device kind (known: %s)", d.Kind, strings.Join(Kinds, ", "))
	}
	switch d.Kind {
	case "bin", "truck":
		if !contains(Categories, d.Category) {
			add(p+".category", "%q is not a sorting category (known: %s)", d.Category, strings.Join(Categories, ", "))
		}
	default:
		if d.Category != "" {
			add(p+".category", "only bins and trucks have a sorting category")
		}
	}
	if d.Kind == "truck" && d.CapacityKG <= 0 {
		add(p+".capacity_kg", "a truck needs its rated capacity in kg")
	}
	if d.Kind != "truck" && d.CapacityKG != 0 {
		add(p+".capacity_kg", "only trucks have a rated capacity")
	}
	if d.Kind == "toilet" && (d.Class < 1 || d.Class > 3) {
		add(p+".class", "a toilet class is 1, 2 or 3 (GB/T 17217), got %d", d.Class)
	}
	if contains(Kinds, d.Kind) && d.Interval < Duration(time.Second) {
		add(p+".interval", "must be at least 1s")
	}
	switch d.Transport {
	case "", "mqtt", "modbus":
	default:
		add(p+".transport", "%q is not a transport (mqtt or modbus)", d.Transport)
	}
	if d.Kind == "weighbridge" && d.Transport != "modbus" {
		add(p+".transport", "a weighbridge is polled over Modbus: set transport: modbus")
	}
	if d.PasswordHash == "" && d.Transport == "modbus" {
		// Polled devices do not log in.
	} else if d.PasswordHash == "" {
		add(p+".password_hash", "missing: generate one with `sanigate hash-password`")
	} else if err := CheckHashFormat(d.PasswordHash); err != nil {
		add(p+".password_hash", "%v", err)
	}
	if (d.Lat == nil) != (d.Lon == nil) {
		add(p+".lat", "set both lat and lon, or neither")
	}
	if d.Lat != nil && (*d.Lat < -90 || *d.Lat > 90) {
		add(p+".lat", "%g is not a latitude", *d.Lat)
	}
	if d.Lon != nil && (*d.Lon < -180 || *d.Lon > 180) {
		add(p+".lon", "%g is not a longitude", *d.Lon)
	}
}

// Resolve returns path relative to the folder of the configuration file.
func (c *Config) Resolve(path string) string {
	if path == "" || filepath.IsAbs(path) || c.File == "" {
		return path
	}
	return filepath.Join(filepath.Dir(c.File), path)
}

// InfluxToken returns the InfluxDB token from the file or the setting.
func (c *Config) InfluxToken() (string, error) {
	if c.InfluxDB.TokenFile == "" {
		return c.InfluxDB.Token, nil
	}
	b, err := os.ReadFile(c.Resolve(c.InfluxDB.TokenFile))
	if err != nil {
		return "", fmt.Errorf("influxdb.token_file: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// Location returns the city's time zone.
func (c *Config) Location() *time.Location {
	loc, err := time.LoadLocation(c.City.Timezone)
	if err != nil {
		return time.UTC
	}
	return loc
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Gzip reports whether write requests to InfluxDB are gzip-compressed: as
// configured, or under "auto" when InfluxDB is not on a loopback address.
func (c InfluxConfig) Gzip() bool {
	switch c.Compression {
	case "gzip":
		return true
	case "none":
		return false
	}
	u, err := url.Parse(c.URL)
	if err != nil {
		return true
	}
	host := u.Hostname()
	if host == "localhost" {
		return false
	}
	ip := net.ParseIP(host)
	return ip == nil || !ip.IsLoopback()
}

// CheckDevice fills a device's defaults (its kind's interval, a toilet's
// class) as Load does and checks it alone, as devices added through the
// device registry are: every problem at once, fields named "device.kind".
func (c *Config) CheckDevice(d *Device) error {
	if d.Interval == 0 {
		if c != nil {
			d.Interval = c.Intervals[d.Kind]
		}
		if d.Interval == 0 {
			d.Interval = Duration(DefaultIntervals[d.Kind])
		}
	}
	if d.Kind == "toilet" && d.Class == 0 {
		d.Class = 2
	}
	var ps Problems
	one := &Config{}
	one.validateDevice(0, *d, map[string]int{}, func(path, format string, args ...any) {
		ps.Add("", 0, "device"+strings.TrimPrefix(path, "devices[0]"), format, args...)
	})
	return ps.Err()
}
