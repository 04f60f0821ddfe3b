package fleet

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// DefaultTimezone is the city time zone used when none is configured.
const DefaultTimezone = "Asia/Shanghai"

// CityLocation loads a time zone by name ("" means DefaultTimezone). When the
// host has no zone database, Asia/Shanghai falls back to a fixed UTC+8 zone,
// which is exact: China has kept no daylight saving time since 1991.
func CityLocation(name string) (*time.Location, error) {
	if name == "" {
		name = DefaultTimezone
	}
	loc, err := time.LoadLocation(name)
	if err != nil && (name == "Asia/Shanghai" || name == "PRC" || name == "Asia/Chongqing") {
		return time.FixedZone("CST", 8*3600), nil
	}
	return loc, err
}

// Window is a daily span of local clock time, such as 05:00-08:00. End is
// after Start; a window that crosses midnight (22:00-02:00) has End beyond
// 24h. The zero Window is empty.
type Window struct {
	Start time.Duration // since local midnight
	End   time.Duration // since the same midnight; may exceed 24h
}

// ParseWindow parses "HH:MM-HH:MM". "24:00" is allowed as an end; an end
// earlier than the start means the window runs past midnight.
func ParseWindow(s string) (Window, error) {
	a, b, ok := strings.Cut(strings.TrimSpace(s), "-")
	if !ok {
		return Window{}, fmt.Errorf("%q is not a window like 05:00-08:00", s)
	}
	start, err := parseClock(a)
	if err != nil {
		return Window{}, fmt.Errorf("window %q: %w", s, err)
	}
	end, err := parseClock(b)
	if err != nil {
		return Window{}, fmt.Errorf("window %q: %w", s, err)
	}
	if start == 24*time.Hour {
		return Window{}, fmt.Errorf("window %q: a window cannot start at 24:00", s)
	}
	if end == start {
		return Window{}, fmt.Errorf("window %q is empty", s)
	}
	if end < start {
		end += 24 * time.Hour
	}
	return Window{Start: start, End: end}, nil
}

func parseClock(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	var h, m int
	if n, err := fmt.Sscanf(s, "%d:%d", &h, &m); n != 2 || err != nil || len(s) < 4 || len(s) > 5 {
		return 0, fmt.Errorf("%q is not a clock time HH:MM", s)
	}
	if h < 0 || m < 0 || m > 59 || h > 24 || (h == 24 && m != 0) {
		return 0, fmt.Errorf("%q is not a clock time HH:MM", s)
	}
	return time.Duration(h)*time.Hour + time.Duration(m)*time.Minute, nil
}

// String formats the window as it is written in configuration.
func (w Window) String() string {
	clock := func(d time.Duration) string {
		d %= 24 * time.Hour
		if d == 0 && w.End == 24*time.Hour {
			return "24:00"
		}
		return fmt.Sprintf("%02d:%02d", int(d/time.Hour), int(d%time.Hour/time.Minute))
	}
	return clock(w.Start) + "-" + clock(w.End)
}

// on returns the window's span starting on the local date of day.
func (w Window) on(day time.Time) (time.Time, time.Time) {
	y, m, d := day.Date()
	loc := day.Location()
	// time.Date normalises minutes beyond the day, and is right on days with
	// a daylight-saving change, unlike adding durations to midnight.
	start := time.Date(y, m, d, 0, int(w.Start/time.Minute), 0, 0, loc)
	end := time.Date(y, m, d, 0, int(w.End/time.Minute), 0, 0, loc)
	return start, end
}

// ParseWeekday parses mon..sun (or the full English name), in any case.
func ParseWeekday(s string) (time.Weekday, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	for d := time.Sunday; d <= time.Saturday; d++ {
		full := strings.ToLower(d.String())
		if s == full || s == full[:3] {
			return d, nil
		}
	}
	return 0, fmt.Errorf("%q is not a weekday (mon, tue, wed, thu, fri, sat, sun)", s)
}

// Schedule is a window repeated on some weekdays in a time zone: a sweeping
// route's 05:00-08:00 every day, or a collection on Mon, Wed and Fri.
type Schedule struct {
	Window Window
	// Days the window starts on; empty means every day. A window that runs
	// past midnight belongs to the day it starts on.
	Days []time.Weekday
	Loc  *time.Location
}

func (s Schedule) loc() *time.Location {
	if s.Loc == nil {
		return time.UTC
	}
	return s.Loc
}

func (s Schedule) onDay(d time.Weekday) bool {
	if len(s.Days) == 0 {
		return true
	}
	for _, x := range s.Days {
		if x == d {
			return true
		}
	}
	return false
}

// Occurrence returns the span of the window that contains t, if any.
func (s Schedule) Occurrence(t time.Time) (start, end time.Time, ok bool) {
	t = t.In(s.loc())
	// The window may have started today or, when it crosses midnight, yesterday.
	for back := 0; back <= int(s.Window.End/(24*time.Hour)); back++ {
		day := t.AddDate(0, 0, -back)
		if !s.onDay(day.Weekday()) {
			continue
		}
		a, b := s.Window.on(day)
		if !t.Before(a) && t.Before(b) {
			return a, b, true
		}
	}
	return time.Time{}, time.Time{}, false
}

// Active reports whether t falls inside an occurrence of the window.
func (s Schedule) Active(t time.Time) bool {
	_, _, ok := s.Occurrence(t)
	return ok
}

// Next returns the first occurrence that ends after t: the current one when t
// is inside a window, otherwise the next to start. ok is false only for a
// schedule with no valid window.
func (s Schedule) Next(t time.Time) (start, end time.Time, ok bool) {
	if s.Window.End <= s.Window.Start {
		return time.Time{}, time.Time{}, false
	}
	if a, b, in := s.Occurrence(t); in {
		return a, b, true
	}
	t = t.In(s.loc())
	for i := 0; i <= 7; i++ {
		day := t.AddDate(0, 0, i)
		if !s.onDay(day.Weekday()) {
			continue
		}
		a, b := s.Window.on(day)
		if a.After(t) || a.Equal(t) {
			return a, b, true
		}
	}
	return time.Time{}, time.Time{}, false
}

// CalendarConfig is the working calendar as written in sanigate.yaml.
//
//	calendar:
//	  working_hours: "09:00-12:00,13:00-18:00"   # default 09:00-18:00
//	  weekends: [sat, sun]                       # default [sat, sun]; [] for none
//	  holidays: [2026-10-01..2026-10-07]         # dates or inclusive ranges
//	  workdays: [2026-09-27, 2026-10-10]         # make-up working days (调休)
type CalendarConfig struct {
	WorkingHours string   `yaml:"working_hours"`
	Weekends     []string `yaml:"weekends"`
	Holidays     []string `yaml:"holidays"`
	Workdays     []string `yaml:"workdays"`
}

// Calendar answers working-time questions in the city's time zone: the
// deadlines of cases counted in working hours. It is read-only once built
// and safe for concurrent use.
type Calendar struct {
	loc      *time.Location
	hours    []Window // sorted, disjoint, within one day
	weekends [7]bool
	holidays map[civilDate]bool
	workdays map[civilDate]bool
}

type civilDate struct {
	y int
	m time.Month
	d int
}

func dateOf(t time.Time) civilDate {
	y, m, d := t.Date()
	return civilDate{y, m, d}
}

// Build checks the configuration and returns the calendar in loc (nil means
// DefaultTimezone). Its error is Problems, with fields relative to the
// calendar section ("holidays[2]"); the caller prefixes its section path and
// file, and fills in the lines it knows.
func (c CalendarConfig) Build(loc *time.Location) (*Calendar, error) {
	if loc == nil {
		var err error
		if loc, err = CityLocation(""); err != nil {
			return nil, err
		}
	}
	var ps Problems
	cal := &Calendar{loc: loc, holidays: map[civilDate]bool{}, workdays: map[civilDate]bool{}}
	cal.setHours(c.WorkingHours, &ps)
	cal.setWeekends(c.Weekends, &ps)
	addDates(&ps, "holidays", c.Holidays, loc, cal.holidays)
	addDates(&ps, "workdays", c.Workdays, loc, cal.workdays)
	for d := range cal.workdays {
		if cal.holidays[d] {
			ps.Add("", 0, "workdays", "%04d-%02d-%02d is listed both as a holiday and as a working day", d.y, d.m, d.d)
		}
	}
	if err := ps.Err(); err != nil {
		return nil, err
	}
	return cal, nil
}

// setHours parses the working hours (default 09:00-18:00) into sorted
// windows within one day, adding to ps what is wrong with them.
func (cal *Calendar) setHours(hours string, ps *Problems) {
	if strings.TrimSpace(hours) == "" {
		hours = "09:00-18:00"
	}
	for _, part := range strings.Split(hours, ",") {
		w, err := ParseWindow(part)
		if err != nil {
			ps.Add("", 0, "working_hours", "%v", err)
			continue
		}
		if w.End > 24*time.Hour {
			ps.Add("", 0, "working_hours", "%q runs past midnight; split it into windows within one day", strings.TrimSpace(part))
			continue
		}
		cal.hours = append(cal.hours, w)
	}
	sort.Slice(cal.hours, func(i, j int) bool { return cal.hours[i].Start < cal.hours[j].Start })
	for i := 1; i < len(cal.hours); i++ {
		if cal.hours[i].Start < cal.hours[i-1].End {
			ps.Add("", 0, "working_hours", "windows %s and %s overlap", cal.hours[i-1], cal.hours[i])
		}
	}
}

// setWeekends parses the weekend days (default Saturday and Sunday),
// adding to ps what is wrong with them.
func (cal *Calendar) setWeekends(weekends []string, ps *Problems) {
	if weekends == nil {
		weekends = []string{"sat", "sun"}
	}
	for i, s := range weekends {
		d, err := ParseWeekday(s)
		if err != nil {
			ps.Add("", 0, fmt.Sprintf("weekends[%d]", i), "%v", err)
			continue
		}
		cal.weekends[d] = true
	}
	allWeekend := true
	for _, w := range cal.weekends {
		allWeekend = allWeekend && w
	}
	if allWeekend {
		ps.Add("", 0, "weekends", "every day of the week is a weekend")
	}
}

// addDates parses the dates and date ranges of list (the field named
// field) in loc and marks every day they cover in into, adding to ps what
// is wrong with them.
func addDates(ps *Problems, field string, list []string, loc *time.Location, into map[civilDate]bool) {
	for i, s := range list {
		f := fmt.Sprintf("%s[%d]", field, i)
		a, b, isRange := strings.Cut(strings.TrimSpace(s), "..")
		from, err := time.ParseInLocation(time.DateOnly, strings.TrimSpace(a), loc)
		if err != nil {
			ps.Add("", 0, f, "%q is not a date YYYY-MM-DD (or a range YYYY-MM-DD..YYYY-MM-DD)", s)
			continue
		}
		to := from
		if isRange {
			if to, err = time.ParseInLocation(time.DateOnly, strings.TrimSpace(b), loc); err != nil || to.Before(from) {
				ps.Add("", 0, f, "%q is not a date range YYYY-MM-DD..YYYY-MM-DD with its end after its start", s)
				continue
			}
			if to.Sub(from) > 366*24*time.Hour {
				ps.Add("", 0, f, "%q spans more than a year", s)
				continue
			}
		}
		for d := from; !d.After(to); d = d.AddDate(0, 0, 1) {
			into[dateOf(d)] = true
		}
	}
}

// Location is the calendar's time zone.
func (c *Calendar) Location() *time.Location { return c.loc }

// IsWorkingDay reports whether the local date of t is a working day: a listed
// make-up working day, or a day that is neither a weekend nor a holiday.
func (c *Calendar) IsWorkingDay(t time.Time) bool {
	t = t.In(c.loc)
	d := dateOf(t)
	if c.workdays[d] {
		return true
	}
	if c.holidays[d] {
		return false
	}
	return !c.weekends[t.Weekday()]
}

// AddWorkingTime returns the instant at which d of working time has passed
// since start. A deadline that ends exactly at the close of a working period
// is that close, not the next opening. d <= 0 returns start.
func (c *Calendar) AddWorkingTime(start time.Time, d time.Duration) time.Time {
	if d <= 0 {
		return start
	}
	t := start.In(c.loc)
	day := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, c.loc)
	// Build rejects a week without working days, so this ends; the bound is
	// a guard against a calendar built by hand.
	for i := 0; i < 400*366; i++ {
		if c.IsWorkingDay(day) {
			for _, w := range c.hours {
				a, b := w.on(day)
				if b.Before(t) || b.Equal(t) {
					continue
				}
				if a.Before(t) {
					a = t
				}
				span := b.Sub(a)
				if span >= d {
					return a.Add(d)
				}
				d -= span
			}
		}
		day = day.AddDate(0, 0, 1)
	}
	return time.Time{}
}

// WorkingTimeBetween returns the working time between a and b; it is negative
// when b is before a.
func (c *Calendar) WorkingTimeBetween(a, b time.Time) time.Duration {
	if b.Before(a) {
		return -c.WorkingTimeBetween(b, a)
	}
	a, b = a.In(c.loc), b.In(c.loc)
	var sum time.Duration
	for day := time.Date(a.Year(), a.Month(), a.Day(), 0, 0, 0, 0, c.loc); day.Before(b); day = day.AddDate(0, 0, 1) {
		if !c.IsWorkingDay(day) {
			continue
		}
		for _, w := range c.hours {
			s, e := w.on(day)
			if s.Before(a) {
				s = a
			}
			if e.After(b) {
				e = b
			}
			if e.After(s) {
				sum += e.Sub(s)
			}
		}
	}
	return sum
}
