package violations

import (
	"github.com/sanigate/sanigate/telemetry"
)

// Measurement is the InfluxDB measurement violations are written to.
const Measurement = "violation"

// States of a violation point, its state tag.
const (
	StateRaised    = "raised"
	StateResolved  = "resolved"
	StateWithdrawn = "withdrawn"
)

// AppendLine appends v to buf in line protocol, in the schema the dashboards
// read. Tags: type, severity, device, kind, state, and district, contractor,
// category, site, route when set. A raised violation is one point in the
// raised series at v.Start, with fields key, summary, duration_s, lat and lon
// (when it has a position), resolved=false, withdrawn=false and count=1i. A resolved one is
// two: its own point in the resolved series at v.End (the same fields but
// count, so that counting "count" counts violations raised), and
// resolved=true merged into the raise point, which keeps the rest of what it
// said when raised. So both are kept, and the raise point says whether the
// violation is still open.
func AppendLine(buf []byte, v *Violation) []byte {
	if !v.Resolved {
		l := startViolation(buf, v, StateRaised)
		violationFields(&l, v)
		l.Bool("resolved", false)
		l.Bool("withdrawn", false)
		l.Int("count", 1)
		return l.End(v.Start)
	}
	l := startViolation(buf, v, StateResolved)
	violationFields(&l, v)
	l.Bool("resolved", true)
	buf = l.End(v.End)
	l = startViolation(buf, v, StateRaised)
	l.Bool("resolved", true)
	return l.End(v.Start)
}

// AppendWithdrawnLine appends the withdrawal of v (late readings no longer
// support it) in line protocol: a point of its own in the withdrawn series
// at v.Start, with fields key, summary (the reason) and withdrawn=true, and
// withdrawn=true merged into the raise point, which keeps the rest of what
// it said. The withdrawn point has no count field, so count("count") counts
// raise points only; `WHERE "withdrawn" = false` leaves withdrawn ones out
// (raise points are written with withdrawn=false, and a re-run that raises
// the key again sets it back).
func AppendWithdrawnLine(buf []byte, v *Violation, reason string) []byte {
	l := startViolation(buf, v, StateWithdrawn)
	l.String("key", v.Key)
	l.String("summary", reason)
	l.Bool("withdrawn", true)
	buf = l.End(v.Start)
	l = startViolation(buf, v, StateRaised)
	l.Bool("withdrawn", true)
	return l.End(v.Start)
}

func startViolation(buf []byte, v *Violation, state string) telemetry.Line {
	l := telemetry.StartLine(buf, Measurement)
	l.Tag("category", v.Category)
	l.Tag("contractor", v.Contractor)
	l.Tag("device", v.Device)
	l.Tag("district", v.District)
	l.Tag("kind", v.Kind)
	l.Tag("route", v.Route)
	l.Tag("severity", v.Severity)
	l.Tag("site", v.Site)
	l.Tag("state", state)
	l.Tag("type", v.Type)
	return l
}

func violationFields(l *telemetry.Line, v *Violation) {
	l.String("key", v.Key)
	l.String("summary", v.Summary)
	l.Float("duration_s", v.End.Sub(v.Start).Seconds())
	if v.HasPos {
		l.Float("lat", v.Lat)
		l.Float("lon", v.Lon)
	}
}

// CoverageMeasurement is the InfluxDB measurement of coverage reports.
const CoverageMeasurement = "coverage"

// AppendCoverageLine appends c as one line of the coverage measurement: time
// is the window's start (a replay overwrites it); tags contractor, device,
// district (when known) and route; float fields fraction, length_m,
// covered_m, brush_off_m and over_speed_m.
func AppendCoverageLine(buf []byte, c *CoverageReport) []byte {
	l := telemetry.StartLine(buf, CoverageMeasurement)
	l.Tag("contractor", c.Contractor)
	l.Tag("device", c.Device)
	l.Tag("district", c.District)
	l.Tag("route", c.Route)
	l.Float("fraction", c.Fraction)
	l.Float("length_m", c.LengthM)
	l.Float("covered_m", c.CoveredM)
	l.Float("brush_off_m", c.BrushOffM)
	l.Float("over_speed_m", c.OverSpeedM)
	return l.End(c.Start)
}
