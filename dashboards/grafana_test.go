package dashboards

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// This file fills queries in the way Grafana's InfluxDB (InfluxQL) data
// source does before it sends them: template variables in the regex form,
// $timeFilter, $__interval, and a panel's relative time override.

// varValue is a variable's current value: every option ("All", which the
// dashboards send as their allValue .*) or a list of chosen values.
type varValue struct {
	all    bool
	values []string
}

// regexEscape escapes what Grafana's kbn.regexEscape escapes.
func regexEscape(s string) string {
	return regexp.MustCompile(`[\\^$*+?.()|\[\]{}/]`).ReplaceAllString(s, `\$0`)
}

// interpolate is Grafana's value for a multi-value variable in InfluxQL: the
// custom all value as it is, one value escaped, several as (a|b).
func (v varValue) interpolate(allValue string) string {
	if v.all {
		return allValue
	}
	esc := make([]string, len(v.values))
	for i, s := range v.values {
		esc[i] = regexEscape(s)
	}
	if len(esc) == 1 {
		return esc[0]
	}
	return "(" + strings.Join(esc, "|") + ")"
}

var varRef = regexp.MustCompile(`\$\{(\w+)(?::\w+)?\}|\[\[(\w+)\]\]|\$(\w+)`)

// panelRange is the time range a panel queries: the dashboard's [from, to],
// or its relative time override ("15m", "7d", "now/d") ending at now, with
// days starting in the dashboard's zone.
func panelRange(timeFrom string, from, now time.Time) (time.Time, time.Time) {
	switch {
	case timeFrom == "":
		return from, now
	case timeFrom == "now/d":
		y, m, d := now.Date()
		return time.Date(y, m, d, 0, 0, 0, 0, now.Location()), now
	default:
		return now.Add(-parseDuration(timeFrom)), now
	}
}

// parseDuration reads Grafana's short durations: 15m, 6h, 7d, 2w.
func parseDuration(s string) time.Duration {
	n, err := strconv.Atoi(s[:len(s)-1])
	if err != nil {
		panic(fmt.Sprintf("duration %q", s))
	}
	unit := map[byte]time.Duration{'s': time.Second, 'm': time.Minute, 'h': time.Hour, 'd': 24 * time.Hour, 'w': 7 * 24 * time.Hour}[s[len(s)-1]]
	return time.Duration(n) * unit
}

// niceIntervals are the steps Grafana rounds a computed interval to.
var niceIntervals = []time.Duration{time.Second, 5 * time.Second, 10 * time.Second, 15 * time.Second, 20 * time.Second,
	30 * time.Second, time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute, 20 * time.Minute,
	30 * time.Minute, time.Hour, 3 * time.Hour, 6 * time.Hour, 12 * time.Hour, 24 * time.Hour}

// interval is $__interval: the range over about a thousand points, rounded
// to a nice step, never below the panel's (or data source's) minimum.
func interval(from, to time.Time, min string) time.Duration {
	raw := to.Sub(from) / 1000
	iv := niceIntervals[len(niceIntervals)-1]
	for _, n := range niceIntervals {
		if n >= raw {
			iv = n
			break
		}
	}
	if min == "" {
		min = "10s" // the provisioned data source's timeInterval
	}
	if m := parseDuration(min); iv < m {
		iv = m
	}
	return iv
}

func formatInterval(d time.Duration) string {
	switch {
	case d%(24*time.Hour) == 0:
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	case d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d%time.Minute == 0:
		return fmt.Sprintf("%dm", d/time.Minute)
	}
	return fmt.Sprintf("%ds", d/time.Second)
}

// expand fills q for a panel querying [from, to] with interval iv.
func expand(q string, vars map[string]varValue, allValues map[string]string, from, to time.Time, iv time.Duration) (string, error) {
	timeFilter := fmt.Sprintf("time >= %dms and time <= %dms", from.UnixMilli(), to.UnixMilli())
	var err error
	out := varRef.ReplaceAllStringFunc(q, func(m string) string {
		sub := varRef.FindStringSubmatch(m)
		name := sub[1] + sub[2] + sub[3]
		switch name {
		case "timeFilter", "__timeFilter":
			return timeFilter
		case "__interval", "interval":
			return formatInterval(iv)
		case "__interval_ms":
			return strconv.FormatInt(iv.Milliseconds(), 10)
		case "__from":
			return strconv.FormatInt(from.UnixMilli(), 10)
		case "__to":
			return strconv.FormatInt(to.UnixMilli(), 10)
		}
		v, ok := vars[name]
		if !ok {
			err = fmt.Errorf("unknown variable $%s in %s", name, q)
			return m
		}
		return v.interpolate(allValues[name])
	})
	return out, err
}

func TestExpandAsGrafana(t *testing.T) {
	loc := time.FixedZone("CST", 8*3600)
	from := time.Date(2026, 11, 27, 0, 0, 0, 0, loc)
	to := from.Add(24 * time.Hour)
	vars := map[string]varValue{
		"district": {all: true},
		"device":   {values: []string{"bin-0001", "bin-0002"}},
		"site":     {values: []string{"kw.plant"}},
	}
	allValues := map[string]string{"district": ".*", "device": ".*", "site": ".*"}
	for _, tc := range []struct{ name, in, want string }{
		{"all", `"district" =~ /^$district$/`, `"district" =~ /^.*$/`},
		{"multi", `"device" =~ /^$device$/`, `"device" =~ /^(bin-0001|bin-0002)$/`},
		{"one escaped", `"site" =~ /^${site}$/`, `"site" =~ /^kw\.plant$/`},
		{"time filter", `WHERE $timeFilter`, fmt.Sprintf(`WHERE time >= %dms and time <= %dms`, from.UnixMilli(), to.UnixMilli())},
		{"interval", `GROUP BY time($__interval)`, `GROUP BY time(2m)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := expand(tc.in, vars, allValues, from, to, interval(from, to, ""))
			if err != nil || got != tc.want {
				t.Errorf("got %q (%v), want %q", got, err, tc.want)
			}
		})
	}
	if a, b := panelRange("now/d", from, to.Add(-time.Second)); !a.Equal(from) || !b.Equal(to.Add(-time.Second)) {
		t.Errorf("now/d: got %v..%v", a, b)
	}
}
