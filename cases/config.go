package cases

import (
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/sanigate/sanigate/fleet"
	"github.com/sanigate/sanigate/violations"
)

// Config is the `cases:` section of sanigate.yaml.
//
//	cases:
//	  store: {driver: sqlite, path: cases.db}     # or {driver: postgres, dsn_env: SANIGATE_CASES_DSN}
//	  units:
//	    - {id: enforcement-east, name: East enforcement bureau, webhook_url: "https://...", secret_file: east.secret,
//	       mqtt_topic: sanigate/v1/devices/term-east/cmd, escalation: city-office}
//	  dispatch:
//	    default_unit: city-office
//	    rules: [{type: illegal_dumping, district: east, unit: enforcement-east}]
//	  deadlines:
//	    - {type: illegal_dumping, severity: critical, accept: 1h, close: 8h, working_time: true}
//	  tokens:
//	    - {name: east-bureau, role: unit, unit: enforcement-east, token_hash: "sha256:..."}
type Config struct {
	Store     StoreConfig      `yaml:"store"`
	Units     []UnitConfig     `yaml:"units"`
	Dispatch  DispatchConfig   `yaml:"dispatch"`
	Deadlines []DeadlineConfig `yaml:"deadlines"`
	Tokens    []TokenConfig    `yaml:"tokens"`
	Outbox    OutboxConfig     `yaml:"outbox"`
	// CheckInterval is how often deadlines are checked and the case_kpi
	// points rewritten (default 1m).
	CheckInterval time.Duration `yaml:"check_interval"`
}

// Store drivers.
const (
	SQLite   = "sqlite"
	Postgres = "postgres"
)

// StoreConfig chooses the case store.
type StoreConfig struct {
	// Driver is sqlite (default) or postgres.
	Driver string `yaml:"driver"`
	// Path is the SQLite file (default cases.db, relative to the
	// configuration's folder).
	Path string `yaml:"path"`
	// DSN is the PostgreSQL connection string; DSNEnv names an environment
	// variable holding it instead (a DSN with a password is a secret).
	DSN    string `yaml:"dsn"`
	DSNEnv string `yaml:"dsn_env"`
	// RegistryPoll is how often a gateway checks the device registry in the
	// store for changes made elsewhere: by another gateway sharing it, or
	// by `sanigate device`. Default 5s; at least 100ms.
	RegistryPoll time.Duration `yaml:"registry_poll"`
}

// DefaultRegistryPoll is the registry poll when none is set.
const DefaultRegistryPoll = 5 * time.Second

// Secret is a secret written inline in configuration. It prints as
// [redacted], so logging a Config cannot leak it.
type Secret string

// String hides the secret.
func (Secret) String() string { return "[redacted]" }

// GoString hides the secret from %#v.
func (Secret) GoString() string { return `"[redacted]"` }

// MarshalJSON hides the secret.
func (Secret) MarshalJSON() ([]byte, error) { return []byte(`"[redacted]"`), nil }

// UnitConfig is a responsible unit (enforcement bureau, contractor, toilet
// operator, district office) and its notification channels.
type UnitConfig struct {
	ID   string `yaml:"id"`
	Name string `yaml:"name"`
	// Contractor is the contractor name devices carry, when the unit is
	// one: a unit token sees the devices of its contractor.
	Contractor string `yaml:"contractor"`
	// WebhookURL receives notifications as signed JSON POSTs; the secret
	// comes from Secret, SecretFile or SecretEnv (exactly one).
	WebhookURL string `yaml:"webhook_url"`
	Secret     Secret `yaml:"secret"`
	SecretFile string `yaml:"secret_file"`
	SecretEnv  string `yaml:"secret_env"`
	// MQTTTopic is the crew terminals' topic on the embedded broker, such
	// as sanigate/v1/devices/{terminal-id}/cmd.
	MQTTTopic string `yaml:"mqtt_topic"`
	// Escalation is the unit notified when one of this unit's cases misses
	// a deadline (default: dispatch.escalation_unit).
	Escalation string `yaml:"escalation"`
	// Robots are chat group robots (DingTalk, WeCom, Feishu) that get the
	// same notifications, as Chinese text.
	Robots []RobotConfig `yaml:"robots"`
}

// DispatchConfig maps (violation type, district) to the responsible unit.
type DispatchConfig struct {
	// DefaultUnit takes what no rule matches.
	DefaultUnit string `yaml:"default_unit"`
	// EscalationUnit is notified of missed deadlines of units that name no
	// escalation of their own.
	EscalationUnit string         `yaml:"escalation_unit"`
	Rules          []DispatchRule `yaml:"rules"`
}

// DispatchRule sends cases of Type in District to Unit. An empty or "*"
// type or district matches any; a rule naming both wins over one naming
// the type only, which wins over one naming the district only.
type DispatchRule struct {
	Type     string `yaml:"type"`
	District string `yaml:"district"`
	Unit     string `yaml:"unit"`
}

// DeadlineConfig sets the deadlines of cases of Type and Severity (empty or
// "*" matches any; the most specific rule wins). Accept counts from
// dispatch (and restarts on transfer), Close from filing. With WorkingTime
// they are working time on the city calendar, else wall time.
type DeadlineConfig struct {
	Type        string        `yaml:"type"`
	Severity    string        `yaml:"severity"`
	Accept      time.Duration `yaml:"accept"`
	Close       time.Duration `yaml:"close"`
	WorkingTime bool          `yaml:"working_time"`
}

// Roles of API tokens.
const (
	RoleCity     = "city"     // every case
	RoleDistrict = "district" // the cases of one district
	RoleUnit     = "unit"     // the cases dispatched to one unit
)

// TokenConfig is an API bearer token, stored as its SHA-256 hash
// ("sha256:" and 64 hex digits; HashToken makes one). Tokens are long random
// strings, so a plain hash is enough: there is nothing to guess.
type TokenConfig struct {
	// Name is the holder, recorded as the actor of every action.
	Name      string `yaml:"name"`
	Role      string `yaml:"role"`
	District  string `yaml:"district"`
	Unit      string `yaml:"unit"`
	TokenHash string `yaml:"token_hash"`
	// Admin lets a city token administer the gateway: reload the
	// configuration, add, disable and rotate devices.
	Admin bool `yaml:"admin"`
}

// OutboxConfig tunes notification delivery.
type OutboxConfig struct {
	// RetryMin and RetryMax bound the exponential backoff between attempts
	// (default 2s and 5m): a receiver back after an outage hears within
	// RetryMax.
	RetryMin time.Duration `yaml:"retry_min"`
	RetryMax time.Duration `yaml:"retry_max"`
	// Poll is how often the outbox is scanned besides the wake-up after each
	// enqueue (default 1s).
	Poll time.Duration `yaml:"poll"`
	// Timeout bounds one delivery attempt (default 10s).
	Timeout time.Duration `yaml:"timeout"`
}

// Default deadlines when no rule matches.
const (
	DefaultAcceptDeadline = 2 * time.Hour
	DefaultCloseDeadline  = 24 * time.Hour
)

func (c *Config) applyDefaults() {
	if c.Store.Driver == "" {
		c.Store.Driver = SQLite
	}
	if c.Store.Driver == SQLite && c.Store.Path == "" {
		c.Store.Path = "cases.db"
	}
	if c.Outbox.RetryMin <= 0 {
		c.Outbox.RetryMin = 2 * time.Second
	}
	if c.Outbox.RetryMax <= 0 {
		c.Outbox.RetryMax = 5 * time.Minute
	}
	if c.Outbox.RetryMax < c.Outbox.RetryMin {
		c.Outbox.RetryMax = c.Outbox.RetryMin
	}
	if c.Outbox.Poll <= 0 {
		c.Outbox.Poll = time.Second
	}
	if c.Outbox.Timeout <= 0 {
		c.Outbox.Timeout = 10 * time.Second
	}
	if c.CheckInterval <= 0 {
		c.CheckInterval = time.Minute
	}
}

func wild(s string) bool { return s == "" || s == "*" }

// Validate reports every mistake in the section at once; fields are relative
// to the section ("units[2].webhook_url"), for the caller to prefix with
// "cases." and place on a line.
func (c Config) Validate() fleet.Problems {
	var ps fleet.Problems
	add := func(field, format string, args ...any) { ps.Add("", 0, field, format, args...) }
	c.validateStore(add)
	units := c.validateUnits(add)
	c.validateDispatch(units, add)
	c.validateDeadlines(add)
	c.validateTokens(units, add)
	if c.Outbox.RetryMin < 0 || c.Outbox.RetryMax < 0 {
		add("outbox", "backoff durations cannot be negative")
	}
	return ps
}

// addFunc reports a problem at a field of the section.
type addFunc func(field, format string, args ...any)

func (c Config) validateStore(add addFunc) {
	switch c.Store.Driver {
	case "", SQLite:
	case Postgres:
		if c.Store.DSN == "" && c.Store.DSNEnv == "" {
			add("store.dsn", "the postgres driver needs dsn or dsn_env")
		}
	default:
		add("store.driver", "%q is not a store driver (sqlite, postgres)", c.Store.Driver)
	}
	if p := c.Store.RegistryPoll; p != 0 && p < 100*time.Millisecond {
		add("store.registry_poll", "%s is too short (100ms at least)", p)
	}
}

// validateUnits checks the units and returns the set of their ids.
func (c Config) validateUnits(add addFunc) map[string]bool {
	units := map[string]bool{}
	for i, u := range c.Units {
		f := fmt.Sprintf("units[%d]", i)
		if u.ID == "" {
			add(f+".id", "a unit needs an id")
		} else if units[u.ID] {
			add(f+".id", "unit %q is defined twice", u.ID)
		}
		units[u.ID] = true
		if u.WebhookURL != "" {
			if p, err := url.Parse(u.WebhookURL); err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
				add(f+".webhook_url", "%q is not an http(s) URL", u.WebhookURL)
			}
			n := 0
			for _, s := range []string{string(u.Secret), u.SecretFile, u.SecretEnv} {
				if s != "" {
					n++
				}
			}
			if n != 1 {
				add(f+".secret_file", "a webhook needs exactly one of secret, secret_file, secret_env to sign with")
			}
		} else if u.Secret != "" || u.SecretFile != "" || u.SecretEnv != "" {
			add(f+".webhook_url", "a webhook secret is set but no webhook_url")
		}
		if u.MQTTTopic != "" && (strings.ContainsAny(u.MQTTTopic, "+#") || strings.HasPrefix(u.MQTTTopic, "$")) {
			add(f+".mqtt_topic", "%q is not a topic to publish on (no wildcards, no $ topics)", u.MQTTTopic)
		}
		validateRobots(add, f, u.Robots)
	}
	for i, u := range c.Units {
		if u.Escalation != "" && !units[u.Escalation] {
			add(fmt.Sprintf("units[%d].escalation", i), "unknown unit %q", u.Escalation)
		}
	}
	return units
}

func (c Config) validateDispatch(units map[string]bool, add addFunc) {
	if c.Dispatch.DefaultUnit != "" && !units[c.Dispatch.DefaultUnit] {
		add("dispatch.default_unit", "unknown unit %q", c.Dispatch.DefaultUnit)
	}
	if c.Dispatch.DefaultUnit == "" && len(c.Units) > 0 {
		add("dispatch.default_unit", "set a default unit for cases no rule matches")
	}
	if c.Dispatch.EscalationUnit != "" && !units[c.Dispatch.EscalationUnit] {
		add("dispatch.escalation_unit", "unknown unit %q", c.Dispatch.EscalationUnit)
	}
	seenRule := map[[2]string]bool{}
	for i, r := range c.Dispatch.Rules {
		f := fmt.Sprintf("dispatch.rules[%d]", i)
		if !wild(r.Type) && !slices.Contains(violations.Types, r.Type) {
			add(f+".type", "%q is not a violation type", r.Type)
		}
		if !units[r.Unit] {
			add(f+".unit", "unknown unit %q", r.Unit)
		}
		k := [2]string{norm(r.Type), norm(r.District)}
		if seenRule[k] {
			add(f, "a rule for type %q and district %q is already given", r.Type, r.District)
		}
		seenRule[k] = true
	}
}

func (c Config) validateDeadlines(add addFunc) {
	seenDL := map[[2]string]bool{}
	for i, d := range c.Deadlines {
		f := fmt.Sprintf("deadlines[%d]", i)
		if !wild(d.Type) && !slices.Contains(violations.Types, d.Type) {
			add(f+".type", "%q is not a violation type", d.Type)
		}
		if !wild(d.Severity) && d.Severity != violations.Minor && d.Severity != violations.Major && d.Severity != violations.Critical {
			add(f+".severity", "%q is not a severity (minor, major, critical)", d.Severity)
		}
		if d.Accept <= 0 {
			add(f+".accept", "set a positive deadline to accept, such as 2h")
		}
		if d.Close <= 0 {
			add(f+".close", "set a positive deadline to close, such as 24h")
		}
		k := [2]string{norm(d.Type), norm(d.Severity)}
		if seenDL[k] {
			add(f, "deadlines for type %q and severity %q are already given", d.Type, d.Severity)
		}
		seenDL[k] = true
	}
}

func (c Config) validateTokens(units map[string]bool, add addFunc) {
	names := map[string]bool{}
	hashes := map[string]bool{}
	for i, t := range c.Tokens {
		f := fmt.Sprintf("tokens[%d]", i)
		if t.Name == "" {
			add(f+".name", "a token needs the name of its holder")
		} else if names[t.Name] {
			add(f+".name", "token holder %q is listed twice", t.Name)
		}
		names[t.Name] = true
		switch t.Role {
		case RoleCity:
		case RoleDistrict:
			if t.District == "" {
				add(f+".district", "a district token needs its district")
			}
		case RoleUnit:
			if !units[t.Unit] {
				add(f+".unit", "unknown unit %q", t.Unit)
			}
		default:
			add(f+".role", "%q is not a role (city, district, unit)", t.Role)
		}
		if t.Admin && t.Role != RoleCity {
			add(f+".admin", "only a city token may administer the gateway")
		}
		h, ok := parseTokenHash(t.TokenHash)
		if !ok {
			add(f+".token_hash", "not a token hash \"sha256:\" + 64 hex digits (a plain token is never accepted here)")
		} else if hashes[h] {
			add(f+".token_hash", "the same token is listed twice")
		}
		hashes[h] = true
	}
}

func norm(s string) string {
	if s == "*" {
		return ""
	}
	return s
}

func parseTokenHash(s string) (string, bool) {
	h := strings.TrimPrefix(strings.TrimSpace(s), "sha256:")
	if len(h) != 64 {
		return "", false
	}
	if _, err := hex.DecodeString(h); err != nil {
		return "", false
	}
	return strings.ToLower(h), true
}

// secret returns the unit's webhook secret from the setting, the file
// (relative to dir) or the environment.
func (u UnitConfig) secret(dir string, getenv func(string) string) ([]byte, error) {
	switch {
	case u.Secret != "":
		return []byte(u.Secret), nil
	case u.SecretFile != "":
		p := u.SecretFile
		if !filepath.IsAbs(p) && dir != "" {
			p = filepath.Join(dir, p)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("unit %s: webhook secret file: %w", u.ID, err)
		}
		s := strings.TrimSpace(string(b))
		if s == "" {
			return nil, fmt.Errorf("unit %s: webhook secret file %s is empty", u.ID, u.SecretFile)
		}
		return []byte(s), nil
	case u.SecretEnv != "":
		s := getenv(u.SecretEnv)
		if s == "" {
			return nil, fmt.Errorf("unit %s: environment variable %s (webhook secret) is not set", u.ID, u.SecretEnv)
		}
		return []byte(s), nil
	}
	return nil, nil
}
