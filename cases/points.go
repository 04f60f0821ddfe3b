package cases

import (
	"context"
	"sort"
	"strconv"
	"strings"
	"time"
)

// event is a case lifecycle event, emitted after its transaction commits.
type event struct {
	action string
	c      Case
	at     time.Time
}

// The InfluxDB schema the dashboards read:
//
//	case      time = the event; tags type, severity, district, unit, action (filed, dispatched, accepted,
//	          handled, closed, rejected, transferred, deferred, overdue, reworked, reopened);
//	          fields case_id (string), count=1i, overdue (bool), elapsed_s (float, seconds since filing)
//	case_kpi  time = the start of the day in the city zone; tags unit, district, period=day;
//	          fields due, closed, closed_on_time, reworked, extended, open, overdue, recurrences (integers),
//	          closure_rate, on_time_rate, rework_rate, extension_rate (0..1), mean_accept_s, mean_close_s
//
// Empty tags are left out. A rewritten case_kpi point (same day, unit and
// district) replaces the previous one.

// emit runs after a commit: it wakes the outbox worker (a notification
// queued in the transaction is visible now, not before), counts the events
// and writes them as `case` points.
func (s *Service) emit(ctx context.Context, evs []event) {
	s.wake()
	if len(evs) == 0 {
		return
	}
	var b strings.Builder
	for _, e := range evs {
		s.metrics.transitions.WithLabelValues(e.action).Inc()
		elapsed := 0.0
		if !e.c.FiledAt.IsZero() {
			elapsed = e.at.Sub(e.c.FiledAt).Seconds()
		}
		writePoint(&b, "case", map[string]string{
			"type": e.c.Type, "severity": e.c.Severity, "district": e.c.District, "unit": e.c.Unit, "action": e.action,
		}, []field{
			{"case_id", strconv.Quote(strconv.FormatInt(e.c.ID, 10))},
			{"count", "1i"},
			{"overdue", strconv.FormatBool(e.c.Overdue)},
			{"elapsed_s", fmtFloat(elapsed)},
		}, e.at)
	}
	s.writeLines(ctx, b.String())
}

func (s *Service) writeLines(ctx context.Context, lines string) {
	if s.points == nil || lines == "" {
		return
	}
	if err := s.points.WriteLines(ctx, []byte(lines)); err != nil {
		s.metrics.pointErrors.Inc()
		s.log.Warn("case points not written", "err", err)
	}
}

type field struct{ key, value string }

// writePoint appends one line of InfluxDB line protocol. Tags are sorted
// (as InfluxDB stores them) and empty tags left out (InfluxDB refuses them).
func writePoint(b *strings.Builder, measurement string, tags map[string]string, fields []field, t time.Time) {
	b.WriteString(escape(measurement, false))
	keys := make([]string, 0, len(tags))
	for k, v := range tags {
		if v != "" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		b.WriteByte(',')
		b.WriteString(escape(k, true))
		b.WriteByte('=')
		b.WriteString(escape(tags[k], true))
	}
	for i, f := range fields {
		if i == 0 {
			b.WriteByte(' ')
		} else {
			b.WriteByte(',')
		}
		b.WriteString(escape(f.key, true))
		b.WriteByte('=')
		b.WriteString(f.value)
	}
	b.WriteByte(' ')
	b.WriteString(strconv.FormatInt(t.UnixNano(), 10))
	b.WriteByte('\n')
}

// escape escapes a measurement (commas, spaces) or a tag key, tag value or
// field key (also equals signs).
func escape(s string, tag bool) string {
	if !strings.ContainsAny(s, ", =\\\n") {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == ',' || r == ' ' || (tag && r == '=') || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// fmtFloat formats a float field; integral values keep a decimal point so
// InfluxDB types the field as a float, not an integer, from the first point.
func fmtFloat(f float64) string {
	s := strconv.FormatFloat(f, 'f', -1, 64)
	if !strings.ContainsAny(s, ".eE") {
		s += ".0"
	}
	return s
}
