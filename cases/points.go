package cases

import (
	"context"
	"strconv"
	"time"

	"github.com/sanigate/sanigate/telemetry"
)

// event is a case lifecycle event, emitted after its transaction commits.
type event struct {
	action string
	c      Case
	at     time.Time
}

// The InfluxDB schema the dashboards read, written with telemetry's line
// encoder (empty tags are left out):
//
//	case      time = the event; tags type, severity, district, unit, action (filed, dispatched, accepted,
//	          handled, closed, rejected, transferred, deferred, overdue, reworked, reopened);
//	          fields case_id (string), count=1i, overdue (bool), elapsed_s (float, seconds since filing)
//	case_kpi  time = the start of the day in the city zone; tags unit, district, period=day;
//	          fields due, closed, closed_on_time, reworked, extended, open, overdue, recurrences (integers),
//	          closure_rate, on_time_rate, rework_rate, extension_rate (0..1), mean_accept_s, mean_close_s
//
// A rewritten case_kpi point (same day, unit and district) replaces the
// previous one.

// emit runs after a commit: it wakes the outbox worker (a notification
// queued in the transaction is visible now, not before), counts the events
// and writes them as `case` points.
func (s *Service) emit(ctx context.Context, evs []event) {
	s.wake()
	if len(evs) == 0 {
		return
	}
	var buf []byte
	for _, e := range evs {
		s.metrics.transitions.WithLabelValues(e.action).Inc()
		buf = appendCasePoint(buf, e)
	}
	s.writeLines(ctx, buf)
}

// appendCasePoint appends the `case` point of one lifecycle event.
func appendCasePoint(buf []byte, e event) []byte {
	elapsed := 0.0
	if !e.c.FiledAt.IsZero() {
		elapsed = e.at.Sub(e.c.FiledAt).Seconds()
	}
	l := telemetry.StartLine(buf, "case")
	l.Tag("action", e.action)
	l.Tag("district", e.c.District)
	l.Tag("severity", e.c.Severity)
	l.Tag("type", e.c.Type)
	l.Tag("unit", e.c.Unit)
	l.String("case_id", strconv.FormatInt(e.c.ID, 10))
	l.Int("count", 1)
	l.Bool("overdue", e.c.Overdue)
	l.Float("elapsed_s", elapsed)
	return l.End(e.at)
}

func (s *Service) writeLines(ctx context.Context, lines []byte) {
	if s.points == nil || len(lines) == 0 {
		return
	}
	if err := s.points.WriteLines(ctx, lines); err != nil {
		s.metrics.pointErrors.Inc()
		s.log.Warn("case points not written", "err", err)
	}
}
