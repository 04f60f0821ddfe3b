package telemetry

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sanigate/sanigate/fleet"
	"github.com/sanigate/sanigate/telemetry/spool"
)

// Sink takes encoded readings (InfluxDB line protocol, one message's lines)
// for durable storage. AppendNotify returns once the record is taken (the
// spool buffers a record with a callback until its group commit writes it);
// when done is not nil it is called later, once, with nil when the record is
// durable or with the error that kept it from being written or synced; it
// must not block.
// A refused record (ErrFull, or an error wrapping it, when there is no room)
// returns the error and done is never called. The spool is the gateway's Sink.
type Sink interface {
	AppendNotify(record []byte, done func(error)) error
}

// Placer tells where a position is: its district and the sites it lies in.
type Placer interface {
	Place(lat, lon float64) (district string, sites []string)
}

// ErrFull is the outcome "storage is full, retry later": what a Sink's
// refusal for lack of room is matched by, and what HandlePublish and Emit
// return (wrapped) then. It is the spool's own error, under one name from the
// spool up to the transports.
var ErrFull = spool.ErrFull

// Pipeline decodes, validates, enriches and stores device messages. It is
// safe for concurrent use: each call works on its own message.
type Pipeline struct {
	codec   *Codec
	fleet   *fleet.Registry
	placer  Placer
	sink    Sink
	isFull  func(error) bool
	metrics *Metrics
	log     *slog.Logger
	limiter *LogLimiter
	bufs    sync.Pool

	accepted sync.Map // acceptedKey -> *acceptedCounters

	gps      *fleet.GPSFilter
	gpsState sync.Map // device id -> *gpsState
	last     sync.Map // device id -> *atomic.Pointer[Reading], its latest telemetry reading
}

// Last returns the latest telemetry reading (by device time) accepted from
// device. The reading must not be modified.
func (p *Pipeline) Last(device string) (*Reading, bool) {
	v, ok := p.last.Load(device)
	if !ok {
		return nil, false
	}
	r := v.(*atomic.Pointer[Reading]).Load()
	return r, r != nil
}

func (p *Pipeline) remember(rs []Reading) {
	var newest *Reading
	for i := range rs {
		if rs[i].Event == "" && (newest == nil || rs[i].Time.After(newest.Time)) {
			newest = &rs[i]
		}
	}
	if newest == nil {
		return
	}
	v, ok := p.last.Load(newest.Device)
	if !ok {
		v, _ = p.last.LoadOrStore(newest.Device, new(atomic.Pointer[Reading]))
	}
	last := v.(*atomic.Pointer[Reading])
	// The readings of a stored message are not touched again (codecs and
	// drivers build each message's readings afresh), so their fields can
	// be shared rather than copied on this hot path.
	r := *newest
	for {
		old := last.Load()
		if old != nil && old.Time.After(r.Time) {
			return // a newer reading is already there
		}
		if last.CompareAndSwap(old, &r) {
			return
		}
	}
}

// gpsState is one moving device's GPS history: its filter track and the
// district of its last good fix.
type gpsState struct {
	mu       sync.Mutex
	track    *fleet.GPSTrack
	district string // where the last accepted fix was placed
	site     string
}

// PipelineOptions configure a Pipeline.
type PipelineOptions struct {
	Codec   *Codec
	Fleet   *fleet.Registry
	Placer  Placer // may be nil
	Sink    Sink
	IsFull  func(error) bool // recognises the Sink's "no room" error; default errors.Is(err, ErrFull)
	Metrics *Metrics
	Logger  *slog.Logger
	// GPS filters positions before they place a reading; nil filters nothing.
	GPS *fleet.GPSFilter
}

// NewPipeline builds a pipeline.
func NewPipeline(o PipelineOptions) *Pipeline {
	if o.Codec == nil {
		o.Codec = NewCodec()
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.IsFull == nil {
		o.IsFull = func(err error) bool { return errors.Is(err, ErrFull) }
	}
	p := &Pipeline{codec: o.Codec, fleet: o.Fleet, placer: o.Placer, sink: o.Sink, isFull: o.IsFull,
		metrics: o.Metrics, log: o.Logger, limiter: NewLogLimiter(10 * time.Second), gps: o.GPS}
	p.bufs.New = func() any { b := make([]byte, 0, 1024); return &b }
	return p
}

// Errors of HandlePublish and Emit, for the transports to choose their answer.
var (
	// ErrRefused wraps a *RejectError: the message is bad and is not stored.
	// Storage being full is ErrFull.
	ErrRefused = errors.New("refused")
)

// HandlePublish ingests one MQTT message from device on channel ("telemetry"
// or "events"). A refusal is returned at once; otherwise, when done is not nil
// it is called once the readings are durable (nil) or could not be made so.
func (p *Pipeline) HandlePublish(device, channel string, payload []byte, done func(error)) error {
	dev, ok := p.fleet.Device(device)
	if !ok {
		return p.refuse(device, "", &RejectError{Reason: ReasonUnknownDevice, Index: -1, Detail: "not registered"})
	}
	var events bool
	switch channel {
	case "telemetry":
	case "events":
		events = true
	default:
		return p.refuse(device, dev.Kind, &RejectError{Reason: ReasonUnknownTopic, Index: -1, Detail: fmt.Sprintf("channel %q", channel)})
	}
	rs, err := p.codec.Decode(device, dev.Kind, events, payload)
	if err != nil {
		var re *RejectError
		if errors.As(err, &re) {
			return p.refuse(device, dev.Kind, re)
		}
		return err
	}
	if re := p.checkRefs(rs); re != nil {
		return p.refuse(device, dev.Kind, re)
	}
	return p.store(dev, rs, done, "mqtt")
}

// checkRefs refuses an event naming a device the fleet does not have: a
// pickup must name a registered bin.
func (p *Pipeline) checkRefs(rs []Reading) *RejectError {
	for i := range rs {
		if rs[i].Event != "pickup" {
			continue
		}
		f, ok := rs[i].Get("bin")
		if !ok {
			continue
		}
		if d, ok := p.fleet.Device(f.Str); !ok || d.Kind != KindBin {
			return &RejectError{Reason: ReasonUnknownDevice, Index: i, Field: "bin", Detail: fmt.Sprintf("%q is not a registered bin", clip(f.Str))}
		}
	}
	return nil
}

// Emit stores readings produced by a driver (Modbus) without waiting for
// durability. Each reading is checked against its kind's schema.
func (p *Pipeline) Emit(rs []Reading) error {
	if len(rs) == 0 {
		return nil
	}
	dev, ok := p.fleet.Device(rs[0].Device)
	if !ok {
		return p.refuse(rs[0].Device, rs[0].Kind, &RejectError{Reason: ReasonUnknownDevice, Index: -1, Detail: "not registered"})
	}
	for i := range rs {
		if rs[i].Device != dev.ID {
			return fmt.Errorf("telemetry: Emit takes one device's readings at a time")
		}
		if err := p.codec.Check(&rs[i], i); err != nil {
			return p.refuse(dev.ID, dev.Kind, err)
		}
	}
	return p.store(dev, rs, nil, "modbus")
}

func (p *Pipeline) refuse(device, kind string, re *RejectError) error {
	if p.metrics != nil {
		p.metrics.MessagesRejected.WithLabelValues(re.Reason, kind).Inc()
	}
	if n, ok := p.limiter.Allow(re.Reason); ok {
		args := []any{"device", device, "kind", kind, "reason", re.Reason, "error", re.Error()}
		if n > 0 {
			args = append(args, "suppressed", n)
		}
		p.log.Warn("message refused", args...)
	}
	return fmt.Errorf("%w: %w", ErrRefused, re)
}

func (p *Pipeline) store(dev *fleet.Device, rs []Reading, done func(error), transport string) error {
	bp := p.bufs.Get().(*[]byte)
	buf := (*bp)[:0]
	for i := range rs {
		p.enrich(dev, &rs[i])
		buf = AppendLine(buf, &rs[i])
	}
	err := p.sink.AppendNotify(buf, done)
	*bp = buf
	if cap(buf) <= 64<<10 {
		p.bufs.Put(bp)
	}
	if err != nil {
		if p.isFull(err) {
			if p.metrics != nil {
				p.metrics.Backpressured.WithLabelValues(transport).Inc()
			}
			if n, ok := p.limiter.Allow("full"); ok {
				p.log.Warn("spool full: pushing back on senders", "device", dev.ID, "transport", transport, "error", err.Error(), "suppressed", n)
			}
			if !errors.Is(err, ErrFull) {
				err = fmt.Errorf("%w: %w", ErrFull, err)
			}
			return fmt.Errorf("telemetry: store %s: %w", dev.ID, err)
		}
		return fmt.Errorf("telemetry: store %s: %w", dev.ID, err)
	}
	p.remember(rs)
	if p.metrics != nil {
		c := p.acceptedCounters(dev.Kind, transport)
		c.messages.Inc()
		c.readings.Add(float64(len(rs)))
	}
	return nil
}

type acceptedKey struct{ kind, transport string }

type acceptedCounters struct{ messages, readings prometheus.Counter }

// acceptedCounters are the accepted messages' and readings' counters of a
// kind and transport, looked up once rather than hashed per message.
func (p *Pipeline) acceptedCounters(kind, transport string) *acceptedCounters {
	k := acceptedKey{kind, transport}
	if c, ok := p.accepted.Load(k); ok {
		return c.(*acceptedCounters)
	}
	c := &acceptedCounters{
		messages: p.metrics.MessagesAccepted.WithLabelValues(kind, transport),
		readings: p.metrics.ReadingsAccepted.WithLabelValues(kind),
	}
	v, _ := p.accepted.LoadOrStore(k, c)
	return v.(*acceptedCounters)
}

// enrich adds the registry's tags and the place of the reading. A position
// the GPS filters refuse does not place the reading: it keeps the district of
// the device's last good fix and is marked with a gps_filter field naming the
// reason, so detectors leave it out while the raw value stays on record.
func (p *Pipeline) enrich(dev *fleet.Device, r *Reading) {
	r.Kind = dev.Kind
	r.Contractor = dev.Contractor
	if dev.Kind == KindBin || dev.Kind == KindTruck {
		r.Category = dev.Category
	}
	r.District = dev.District
	lat, okLat := r.Num("lat")
	lon, okLon := r.Num("lon")
	moving := okLat && okLon && mobile(dev.Kind)
	if !moving {
		// A fixed device is placed where it is registered, whatever position
		// it reports (the raw lat/lon stay on record): a device must not
		// move itself into another district.
		okLat, okLon = false, false
	}
	if !moving && dev.Lat != nil && dev.Lon != nil {
		lat, lon, okLat, okLon = *dev.Lat, *dev.Lon, true, true
	}
	if !okLat || !okLon {
		return
	}
	var st *gpsState
	if moving && r.Event == "" && p.gps != nil {
		v, _ := p.gpsState.LoadOrStore(dev.ID, &gpsState{track: fleet.NewGPSTrack(p.gps)})
		st = v.(*gpsState)
		st.mu.Lock()
		defer st.mu.Unlock()
		fix := fleet.Fix{Time: r.Time, Lat: lat, Lon: lon}
		fix.HDOP, _ = r.Num("hdop")
		fix.SpeedKmh, _ = r.Num("speed_kmh")
		if ok, reason := st.track.Push(fix, time.Now()); !ok {
			if p.metrics != nil {
				p.metrics.GPSFiltered.WithLabelValues(reason).Inc()
			}
			if reason == fleet.GPSDuplicate {
				// The same fix again (a QoS 1 resend): it is placed as the
				// first one was, unmarked, so its line is the same point of
				// the same series and overwrites itself in storage.
				if st.district != "" {
					r.District = st.district
				}
				r.Site = st.site
				return
			}
			r.SetString("gps_filter", reason)
			if st.district != "" {
				r.District = st.district
			}
			return
		}
	}
	if p.placer == nil {
		return
	}
	district, sites := p.placer.Place(lat, lon)
	if district != "" {
		r.District = district
	}
	if len(sites) > 0 {
		r.Site = sites[0]
	}
	if st != nil {
		st.district, st.site = r.District, r.Site
	}
}

// mobile reports whether devices of kind move, and so are placed by the
// positions they report.
func mobile(kind string) bool { return kind == KindTruck || kind == KindSweeper }
