// Package scenario generates simulated fleet days with violations injected
// at known times and places, and writes the ground truth beside the device
// messages, so that detectors can be measured: every injected violation
// found once, and nothing else.
//
// A day covers every device of a configuration (the demo city's 200 bins,
// 10 trucks, 20 toilets and 8 sweepers) with realistic noise: load cells off
// by tens of kilograms and an occasional spike, GPS jitter, jumps and poor
// fixes, tunnels without a fix, traffic lights, sweepers slowing at
// crossings, and near misses of every rule (a legal unload at the plant, a
// bin at 89 %, a short whiff of ammonia), and trackers cut mid-trip (with
// and without an unaccounted load). It can be fed live (each reading
// published at its time), batched (trucks upload an hour at once), with a
// device's span held back and uploaded late (Hold: a backfill after later
// live data, an upload hours late) and with QoS 1 resends (Resend).
package scenario

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/sanigate/sanigate/fleet"
)

// Message is one MQTT publish of a device: its channel ("telemetry" or
// "events", the last part of sanigate/v1/devices/{id}/{channel}) and its JSON
// payload (one object, or an array for a buffered upload).
type Message struct {
	Device    string          `json:"device"`
	Channel   string          `json:"channel"`
	Payload   json.RawMessage `json:"payload"`
	PublishAt time.Time       `json:"publish_at"`
}

// Topic is the MQTT topic the message is published on.
func (m Message) Topic() string { return "sanigate/v1/devices/" + m.Device + "/" + m.Channel }

// Expected is one injected violation: what a detector must raise.
type Expected struct {
	Type   string    `json:"type"`
	Device string    `json:"device"`
	Start  time.Time `json:"start"`
	End    time.Time `json:"end"`
	// Place is the site, route or bin concerned, when there is one.
	Place    string  `json:"place,omitempty"`
	Lat      float64 `json:"lat,omitempty"`
	Lon      float64 `json:"lon,omitempty"`
	Severity string  `json:"severity,omitempty"`
	Note     string  `json:"note"`
}

// Scenario is a generated day.
type Scenario struct {
	Seed uint64
	// From and To bound the simulated span (the local day).
	From, To time.Time
	// Messages are in the order a live fleet publishes them: by time.
	Messages []Message
	// Truth lists the injected violations, by start.
	Truth []Expected
	// NearMisses describes the patterns injected that must not raise.
	NearMisses []string
}

// Generate simulates the fleet of cfg on the local day of day (in the city's
// time zone), deterministically for seed. cfg needs its map (routes and
// sites); the demo configuration (examples/demo/sanigate.yaml) has it.
func Generate(cfg *fleet.Config, seed uint64, day time.Time) (*Scenario, error) {
	if cfg.Map == nil {
		return nil, fmt.Errorf("scenario: the configuration has no map")
	}
	loc := cfg.Location()
	d := day.In(loc)
	from := time.Date(d.Year(), d.Month(), d.Day(), 0, 0, 0, 0, loc)
	g := &gen{cfg: cfg, seed: seed, from: from, to: from.AddDate(0, 0, 1), rng: rand.New(rand.NewPCG(seed, 0x5ca1ab1e)),
		pickups: map[string][]time.Time{}, busy: map[string]bool{}, devs: map[string]*fleet.Device{}}
	for i := range cfg.Devices {
		g.devs[cfg.Devices[i].ID] = &cfg.Devices[i]
	}
	g.trucks()
	g.sweepers()
	g.bins()
	g.toilets()
	sort.SliceStable(g.msgs, func(i, j int) bool { return g.msgs[i].PublishAt.Before(g.msgs[j].PublishAt) })
	sort.SliceStable(g.truth, func(i, j int) bool { return g.truth[i].Start.Before(g.truth[j].Start) })
	return &Scenario{Seed: seed, From: g.from, To: g.to, Messages: g.msgs, Truth: g.truth, NearMisses: g.near}, nil
}

// Live returns the messages as a live fleet publishes them, each at its
// reading's time.
func (s *Scenario) Live() []Message { return s.Messages }

// Batched returns the same readings as trucks that buffer out of coverage
// publish them: each truck's telemetry and events of an hour go in one
// upload (a JSON array) at the end of the hour; other devices stay live.
func (s *Scenario) Batched(every time.Duration) []Message {
	if every <= 0 {
		every = time.Hour
	}
	type key struct {
		dev, ch string
		slot    int64
	}
	groups := map[key][]json.RawMessage{}
	var order []key
	var out []Message
	for _, m := range s.Messages {
		if !isTruck(m.Device) {
			out = append(out, m)
			continue
		}
		k := key{m.Device, m.Channel, int64(m.PublishAt.Sub(s.From) / every)}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], m.Payload)
	}
	for _, k := range order {
		items := groups[k]
		for len(items) > 0 {
			n := min(len(items), 900) // under the codec's limit of readings per message
			b, _ := json.Marshal(items[:n])
			items = items[n:]
			at := s.From.Add(time.Duration(k.slot+1) * every).Add(time.Duration(len(k.dev)) * time.Second)
			out = append(out, Message{Device: k.dev, Channel: k.ch, Payload: b, PublishAt: at})
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].PublishAt.Before(out[j].PublishAt) })
	return out
}

func isTruck(id string) bool { return len(id) > 6 && id[:6] == "truck-" }

// WriteFiles writes the messages as JSON lines (messages.jsonl) and the
// ground truth (truth.json) into dir.
func (s *Scenario) WriteFiles(dir string, msgs []Message) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.Create(filepath.Join(dir, "messages.jsonl"))
	if err != nil {
		return err
	}
	enc := json.NewEncoder(f)
	for _, m := range msgs {
		if err := enc.Encode(m); err != nil {
			f.Close()
			return err
		}
	}
	if err := f.Close(); err != nil {
		return err
	}
	b, err := json.MarshalIndent(struct {
		Seed       uint64     `json:"seed"`
		From       time.Time  `json:"from"`
		To         time.Time  `json:"to"`
		Truth      []Expected `json:"truth"`
		NearMisses []string   `json:"near_misses"`
	}{s.Seed, s.From, s.To, s.Truth, s.NearMisses}, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "truth.json"), b, 0o644)
}

// gen is the state of one generation.
type gen struct {
	cfg      *fleet.Config
	seed     uint64
	from, to time.Time
	rng      *rand.Rand
	devs     map[string]*fleet.Device
	msgs     []Message
	truth    []Expected
	near     []string
	pickups  map[string][]time.Time // bin -> times a truck emptied it
	busy     map[string]bool        // devices kept out of further injections
}

// rngFor gives each device its own stream, fixed by the seed and its id.
func (g *gen) rngFor(id string) *rand.Rand {
	h := fnv.New64a()
	h.Write([]byte(id))
	return rand.New(rand.NewPCG(g.seed, h.Sum64()))
}

func (g *gen) emit(dev, channel string, t time.Time, fields map[string]any) {
	m := make(map[string]any, len(fields)+1)
	for k, v := range fields {
		m[k] = v
	}
	m["ts"] = t.UTC().Format(time.RFC3339Nano)
	b, _ := json.Marshal(m)
	g.msgs = append(g.msgs, Message{Device: dev, Channel: channel, Payload: b, PublishAt: t})
}

func (g *gen) expect(x Expected) { g.truth = append(g.truth, x) }

func round(v float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(v*p) / p
}

func clamp(v, lo, hi float64) float64 { return math.Max(lo, math.Min(hi, v)) }

// point is a WGS-84 position.
type point struct{ Lat, Lon float64 }

func dist(a, b point) float64 { return fleet.DistanceM(a.Lat, a.Lon, b.Lat, b.Lon) }

func lerp(a, b point, f float64) point {
	return point{a.Lat + (b.Lat-a.Lat)*f, a.Lon + (b.Lon-a.Lon)*f}
}

func bearing(a, b point) float64 {
	y := (b.Lon - a.Lon) * math.Cos(a.Lat*math.Pi/180)
	x := b.Lat - a.Lat
	return math.Mod(math.Atan2(y, x)*180/math.Pi+360, 360)
}

// jitter moves p by a Gaussian of sigma metres.
func jitter(r *rand.Rand, p point, sigma float64) point {
	return point{p.Lat + r.NormFloat64()*sigma/110540, p.Lon + r.NormFloat64()*sigma/(111320*math.Cos(p.Lat*math.Pi/180))}
}

func (g *gen) siteCenter(id string) point {
	s, ok := g.cfg.Map.Site(id)
	if !ok {
		return point{}
	}
	if s.RadiusM > 0 {
		return point{s.Center.Lat(), s.Center.Lon()}
	}
	c := s.Area.Bound().Center()
	return point{c.Lat(), c.Lon()}
}

// siteFor is the first site of a disposal kind that accepts category.
func (g *gen) siteFor(category string) string {
	for _, s := range g.cfg.Map.Sites {
		if s.Kind != "farm" && s.Kind != "depot" && s.AcceptsCategory(category) {
			return s.ID
		}
	}
	return ""
}

// free reports whether p lies in no site.
func (g *gen) free(p point) bool { return len(g.cfg.Map.Locate(p.Lat, p.Lon).Sites) == 0 }

// Hold returns msgs with the messages of device published in [from, to)
// held back, as a device out of coverage does, and uploaded delay after to
// in batches (JSON arrays, one per channel, under the codec's limit of
// readings per message), after whatever it published live meanwhile.
func Hold(msgs []Message, device string, from, to time.Time, delay time.Duration) []Message {
	held := map[string][]json.RawMessage{}
	var channels []string
	var out []Message
	for _, m := range msgs {
		if m.Device != device || m.PublishAt.Before(from) || !m.PublishAt.Before(to) {
			out = append(out, m)
			continue
		}
		if _, ok := held[m.Channel]; !ok {
			channels = append(channels, m.Channel)
		}
		held[m.Channel] = append(held[m.Channel], m.Payload)
	}
	at := to.Add(delay)
	for _, ch := range channels {
		items := held[ch]
		for len(items) > 0 {
			n := min(len(items), 900)
			b, _ := json.Marshal(items[:n])
			items = items[n:]
			out = append(out, Message{Device: device, Channel: ch, Payload: b, PublishAt: at})
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].PublishAt.Before(out[j].PublishAt) })
	return out
}

// Resend returns msgs with every nth message published a second time a
// second later, as a device resends a QoS 1 message whose PUBACK it missed.
func Resend(msgs []Message, n int) []Message {
	if n <= 0 {
		return msgs
	}
	out := make([]Message, 0, len(msgs)+len(msgs)/n)
	for i, m := range msgs {
		out = append(out, m)
		if i%n == n-1 {
			again := m
			again.PublishAt = m.PublishAt.Add(time.Second)
			out = append(out, again)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].PublishAt.Before(out[j].PublishAt) })
	return out
}
