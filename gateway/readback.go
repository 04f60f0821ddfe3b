package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/sanigate/sanigate/telemetry"
	"github.com/sanigate/sanigate/telemetry/spool"
	"github.com/sanigate/sanigate/violations"
)

// influxReadback reads a device's stored readings and violations back from
// InfluxDB with InfluxQL (the 1.x /query endpoint, which 2.x and 3.x also
// answer), for the detectors' re-runs of spans older than their memory. It
// is a violations.History.
//
// Readings reach InfluxDB through the spool and the writer, so a read-back
// first waits until the writer has committed everything the spool held when
// it was asked (settle): readings and violations still in flight are then in
// the answer. The detectors also merge what a device holds in memory.
type influxReadback struct {
	url, bucket, token string
	route              func(measurement string) string // the writer's: "" for the bucket itself
	client             *http.Client
	sp                 *spool.Spool
	writer             *spool.Consumer
	settle             time.Duration
}

// errWriterBehind is returned while the writer has not caught up with the
// spool: the read-back is tried again later.
var errWriterBehind = errors.New("the InfluxDB writer has not caught up with the spool")

// maxReadbackBytes bounds one answer, and maxReadbackRows the readings of
// one read-back (10 h of a truck reporting every second is 36,000): what one
// read-back holds in memory is bounded whatever a device uploaded. A span
// denser than that is refused, and its readings are counted late.
const (
	maxReadbackBytes = 24 << 20
	maxReadbackRows  = 50000
)

// waitWriter waits, at most settle, until the writer has committed what the
// spool holds now.
func (h *influxReadback) waitWriter(ctx context.Context) error {
	if h.sp == nil || h.writer == nil {
		return nil
	}
	end := h.sp.Stats().End
	deadline := time.Now().Add(h.settle)
	for h.writer.Committed() < end {
		if time.Now().After(deadline) {
			return fmt.Errorf("%w: %d bytes behind", errWriterBehind, end-h.writer.Committed())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return nil
}

// from is the qualified name of measurement m: the database and retention
// policy the writer sends it to.
func (h *influxReadback) from(m string) string {
	b := ""
	if h.route != nil {
		b = h.route(m)
	}
	if b == "" {
		b = h.bucket
	}
	db, rp, _ := strings.Cut(b, "/")
	return quoteIdent(db) + "." + optIdent(rp) + "." + quoteIdent(m)
}

func optIdent(s string) string {
	if s == "" {
		return "" // db..m: the default policy
	}
	return quoteIdent(s)
}

// series is one series of an InfluxQL answer.
type series struct {
	Name    string            `json:"name"`
	Tags    map[string]string `json:"tags"`
	Columns []string          `json:"columns"`
	Values  [][]any           `json:"values"`
}

// query runs q (one or more statements) and returns the series of all its
// results, times in nanoseconds.
func (h *influxReadback) query(ctx context.Context, q string) ([]series, error) {
	db, _, _ := strings.Cut(h.bucket, "/")
	form := url.Values{"db": {db}, "q": {q}, "epoch": {"ns"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(h.url, "/")+"/query", strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if h.token != "" {
		req.Header.Set("Authorization", "Token "+h.token)
	}
	resp, err := h.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("influxdb query: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		err := fmt.Errorf("influxdb query: %s: %s", resp.Status, body)
		if resp.StatusCode >= 400 && resp.StatusCode < 500 && resp.StatusCode != http.StatusTooManyRequests {
			err = fmt.Errorf("%w: %w", violations.ErrHistoryRefused, err)
		}
		return nil, err
	}
	var out struct {
		Results []struct {
			Error  string   `json:"error"`
			Series []series `json:"series"`
		} `json:"results"`
		Error string `json:"error"`
	}
	dec := json.NewDecoder(io.LimitReader(resp.Body, maxReadbackBytes))
	dec.UseNumber()
	if err := dec.Decode(&out); err != nil {
		return nil, fmt.Errorf("%w: influxdb query (answers over %d MiB are cut): %w", violations.ErrHistoryRefused, maxReadbackBytes>>20, err)
	}
	if out.Error != "" {
		return nil, fmt.Errorf("%w: influxdb query: %s", violations.ErrHistoryRefused, out.Error)
	}
	var all []series
	for _, r := range out.Results {
		if r.Error != "" {
			return nil, fmt.Errorf("%w: influxdb query: %s", violations.ErrHistoryRefused, r.Error)
		}
		all = append(all, r.Series...)
	}
	return all, nil
}

func (h *influxReadback) where(device string, from, to time.Time) string {
	return fmt.Sprintf(`"device" = %s AND time >= %d AND time <= %d`, quoteString(device), from.UnixNano(), to.UnixNano())
}

// After implements violations.History: the kind's first n readings after t.
func (h *influxReadback) After(ctx context.Context, device, kind string, t time.Time, n int) ([]telemetry.Reading, error) {
	q := fmt.Sprintf(`SELECT * FROM %s WHERE "device" = %s AND time > %d GROUP BY * ORDER BY time LIMIT %d`,
		h.from(kind), quoteString(device), t.UnixNano(), n)
	all, err := h.query(ctx, q)
	if err != nil {
		return nil, err
	}
	rs := readingsOf(all, device, kind)
	sort.SliceStable(rs, func(a, b int) bool { return rs[a].Time.Before(rs[b].Time) })
	return rs[:min(n, len(rs))], nil
}

// Readings implements violations.History: the kind's measurement and the
// device's events, each row back into a reading (numbers as floats, which is
// how the detectors read them).
func (h *influxReadback) Readings(ctx context.Context, device, kind string, from, to time.Time) ([]telemetry.Reading, error) {
	if err := h.waitWriter(ctx); err != nil {
		return nil, err
	}
	w := h.where(device, from, to)
	q := fmt.Sprintf(`SELECT * FROM %s WHERE %s GROUP BY * LIMIT %d; SELECT * FROM %s WHERE %s GROUP BY * LIMIT %d`,
		h.from(kind), w, maxReadbackRows+1, h.from(telemetry.MeasurementEvent), w, maxReadbackRows+1)
	all, err := h.query(ctx, q)
	if err != nil {
		return nil, err
	}
	rs := readingsOf(all, device, kind)
	if len(rs) > maxReadbackRows {
		return nil, fmt.Errorf("%w: %s has more than %d readings from %s to %s", violations.ErrHistoryRefused,
			device, maxReadbackRows, from.UTC().Format(time.RFC3339), to.UTC().Format(time.RFC3339))
	}
	return rs, nil
}

// readingsOf turns the rows of readings and events back into readings.
func readingsOf(all []series, device, kind string) []telemetry.Reading {
	var out []telemetry.Reading
	for _, s := range all {
		for _, row := range s.Values {
			r := telemetry.Reading{Device: device, Kind: kind, District: s.Tags["district"], Contractor: s.Tags["contractor"],
				Category: s.Tags["category"], Site: s.Tags["site"]}
			if s.Name == telemetry.MeasurementEvent {
				r.Event = s.Tags["event"]
			}
			ok := false
			for i, c := range s.Columns {
				if i >= len(row) || row[i] == nil {
					continue
				}
				if c == "time" {
					r.Time, ok = nsTime(row[i])
					continue
				}
				switch v := row[i].(type) {
				case json.Number:
					f, err := v.Float64()
					if err == nil {
						r.Fields = append(r.Fields, telemetry.Field{Name: c, Type: telemetry.Float, Num: f})
					}
				case bool:
					r.SetBool(c, v)
				case string:
					r.Fields = append(r.Fields, telemetry.Field{Name: c, Type: telemetry.String, Str: v})
				}
			}
			if ok {
				out = append(out, r)
			}
		}
	}
	return out
}

func nsTime(v any) (time.Time, bool) {
	n, ok := v.(json.Number)
	if !ok {
		return time.Time{}, false
	}
	ns, err := n.Int64()
	if err != nil {
		return time.Time{}, false
	}
	return time.Unix(0, ns).UTC(), true
}

// Raised implements violations.History: the raise points of the device's
// violations, less those withdrawn since.
func (h *influxReadback) Raised(ctx context.Context, device string, from, to time.Time) ([]violations.Violation, error) {
	q := fmt.Sprintf(`SELECT * FROM %s WHERE %s AND "state" = %s GROUP BY *`,
		h.from(violations.Measurement), h.where(device, from, to), quoteString(violations.StateRaised))
	all, err := h.query(ctx, q)
	if err != nil {
		return nil, err
	}
	var out []violations.Violation
	for _, s := range all {
		for _, row := range s.Values {
			v := violations.Violation{Device: device, Type: s.Tags["type"], Severity: s.Tags["severity"], Kind: s.Tags["kind"],
				District: s.Tags["district"], Contractor: s.Tags["contractor"], Category: s.Tags["category"],
				Site: s.Tags["site"], Route: s.Tags["route"]}
			var lat, lon *float64
			withdrawn, ok := false, false
			for i, c := range s.Columns {
				if i >= len(row) || row[i] == nil {
					continue
				}
				switch c {
				case "time":
					v.Start, ok = nsTime(row[i])
				case "key":
					v.Key, _ = row[i].(string)
				case "summary":
					v.Summary, _ = row[i].(string)
				case "resolved":
					v.Resolved, _ = row[i].(bool)
				case "withdrawn":
					withdrawn, _ = row[i].(bool)
				case "duration_s", "lat", "lon":
					n, _ := row[i].(json.Number)
					f, err := n.Float64()
					if err != nil {
						continue
					}
					switch c {
					case "duration_s":
						v.End = v.Start.Add(time.Duration(f * float64(time.Second)))
					case "lat":
						lat = &f
					case "lon":
						lon = &f
					}
				}
			}
			if !ok || v.Key == "" || withdrawn {
				continue
			}
			if v.End.Before(v.Start) {
				v.End = v.Start
			}
			if lat != nil && lon != nil {
				v.Lat, v.Lon, v.HasPos = *lat, *lon, true
			}
			out = append(out, v)
		}
	}
	return out, nil
}
