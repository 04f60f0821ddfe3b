package violations

import (
	"strconv"

	"github.com/sanigate/sanigate/telemetry"
)

// Measurement is the InfluxDB measurement violations are written to.
const Measurement = "violation"

// AppendLine appends v as one InfluxDB line protocol line (with a trailing
// newline) to buf, in nanosecond precision, in the schema the dashboards
// read: time is v.Start; tags type, severity, device, kind, and district,
// contractor, category, site, route when set; fields key, summary,
// duration_s, lat and lon (when the violation has a position), resolved and
// count=1i.
func AppendLine(buf []byte, v *Violation) []byte {
	buf = append(buf, Measurement...)
	if v.Category != "" {
		buf = appendTag(buf, "category", v.Category)
	}
	if v.Contractor != "" {
		buf = appendTag(buf, "contractor", v.Contractor)
	}
	buf = appendTag(buf, "device", v.Device)
	if v.District != "" {
		buf = appendTag(buf, "district", v.District)
	}
	buf = appendTag(buf, "kind", v.Kind)
	if v.Route != "" {
		buf = appendTag(buf, "route", v.Route)
	}
	buf = appendTag(buf, "severity", v.Severity)
	if v.Site != "" {
		buf = appendTag(buf, "site", v.Site)
	}
	buf = appendTag(buf, "type", v.Type)
	buf = append(buf, " key="...)
	buf = telemetry.AppendQuoted(buf, v.Key)
	buf = append(buf, ",summary="...)
	buf = telemetry.AppendQuoted(buf, v.Summary)
	buf = append(buf, ",duration_s="...)
	buf = strconv.AppendFloat(buf, v.End.Sub(v.Start).Seconds(), 'g', -1, 64)
	if v.HasPos {
		buf = append(buf, ",lat="...)
		buf = strconv.AppendFloat(buf, v.Lat, 'g', -1, 64)
		buf = append(buf, ",lon="...)
		buf = strconv.AppendFloat(buf, v.Lon, 'g', -1, 64)
	}
	buf = append(buf, ",resolved="...)
	buf = strconv.AppendBool(buf, v.Resolved)
	buf = append(buf, ",count=1i "...)
	buf = strconv.AppendInt(buf, v.Start.UnixNano(), 10)
	return append(buf, '\n')
}

// Tags are written sorted by key, as InfluxDB prefers.
func appendTag(buf []byte, k, v string) []byte { return telemetry.AppendTag(buf, k, v) }

// CoverageMeasurement is the InfluxDB measurement of coverage reports.
const CoverageMeasurement = "coverage"

// AppendCoverageLine appends c as one line of the coverage measurement: time
// is the window's start (a replay overwrites it); tags contractor, device,
// district (when known) and route; float fields fraction, length_m,
// covered_m, brush_off_m and over_speed_m.
func AppendCoverageLine(buf []byte, c *CoverageReport) []byte {
	buf = append(buf, CoverageMeasurement...)
	if c.Contractor != "" {
		buf = appendTag(buf, "contractor", c.Contractor)
	}
	buf = appendTag(buf, "device", c.Device)
	if c.District != "" {
		buf = appendTag(buf, "district", c.District)
	}
	buf = appendTag(buf, "route", c.Route)
	for i, f := range []struct {
		name string
		v    float64
	}{{"fraction", c.Fraction}, {"length_m", c.LengthM}, {"covered_m", c.CoveredM}, {"brush_off_m", c.BrushOffM}, {"over_speed_m", c.OverSpeedM}} {
		if i == 0 {
			buf = append(buf, ' ')
		} else {
			buf = append(buf, ',')
		}
		buf = append(buf, f.name...)
		buf = append(buf, '=')
		buf = strconv.AppendFloat(buf, f.v, 'g', -1, 64)
	}
	buf = append(buf, ' ')
	buf = strconv.AppendInt(buf, c.Start.UnixNano(), 10)
	return append(buf, '\n')
}
