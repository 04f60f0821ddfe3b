package cluster

import (
	"bytes"
	"slices"

	"github.com/sanigate/sanigate/fleet"
	"github.com/sanigate/sanigate/telemetry"
)

// SelectReadings is the Select for spool records in line protocol, as the
// pipeline writes them: a record is one device message, forwarded when its
// first line is a reading of a device kind or a device event. Derived records
// (violations, coverage, case events and KPIs) stay local.
func SelectReadings(data []byte) (string, bool) {
	line := data
	if i := bytes.IndexByte(data, '\n'); i >= 0 {
		line = data[:i]
	}
	rs, err := telemetry.ParseLines(line)
	if err != nil || len(rs) == 0 || rs[0].Device == "" {
		return "", false
	}
	r := rs[0]
	if r.Event == "" && !slices.Contains(fleet.Kinds, r.Kind) {
		return "", false
	}
	return r.Device, true
}
