package fleet

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func shanghai(t testing.TB) *time.Location {
	t.Helper()
	loc, err := CityLocation("")
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// testCalendar: Mon-Fri 09:00-12:00 and 13:00-18:00 (8 h a day); National
// Day 2026-10-01..07 (Thu to Wed) off; Sunday 2026-09-27 and Saturday
// 2026-10-10 are make-up working days (调休).
func testCalendar(t testing.TB) *Calendar {
	t.Helper()
	cal, err := CalendarConfig{
		WorkingHours: "09:00-12:00, 13:00-18:00",
		Holidays:     []string{"2026-10-01..2026-10-07"},
		Workdays:     []string{"2026-09-27", "2026-10-10"},
	}.Build(shanghai(t))
	if err != nil {
		t.Fatal(err)
	}
	return cal
}

func TestAddWorkingTime(t *testing.T) {
	cal := testCalendar(t)
	loc := shanghai(t)
	at := func(s string) time.Time {
		tm, err := time.ParseInLocation("2006-01-02 15:04", s, loc)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	tests := []struct {
		name  string
		start string
		d     time.Duration
		want  string
	}{
		{"within the morning", "2026-09-14 09:30", 2 * time.Hour, "2026-09-14 11:30"},
		{"over lunch", "2026-09-14 11:00", 2 * time.Hour, "2026-09-14 14:00"},
		{"ends at closing, not next opening", "2026-09-14 17:00", time.Hour, "2026-09-14 18:00"},
		{"after hours starts next morning", "2026-09-14 20:00", time.Hour, "2026-09-15 10:00"},
		{"before opening", "2026-09-14 07:00", 30 * time.Minute, "2026-09-14 09:30"},
		{"across a weekend", "2026-09-18 17:00", 2 * time.Hour, "2026-09-21 10:00"},
		{"from a Saturday", "2026-09-19 10:00", 8 * time.Hour, "2026-09-21 18:00"},
		{"make-up Sunday counts", "2026-09-26 10:00", time.Hour, "2026-09-27 10:00"},
		{"across the holiday week", "2026-09-30 17:00", 2 * time.Hour, "2026-10-08 10:00"},
		{"make-up Saturday after the holiday", "2026-10-09 17:00", 2 * time.Hour, "2026-10-10 10:00"},
		{"three working days", "2026-09-28 09:00", 24 * time.Hour, "2026-09-30 18:00"},
		{"zero", "2026-09-19 10:00", 0, "2026-09-19 10:00"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := at(tt.start)
			got := cal.AddWorkingTime(start, tt.d)
			if want := at(tt.want); !got.Equal(want) {
				t.Errorf("AddWorkingTime(%s, %v) = %s, want %s", tt.start, tt.d, got.In(loc).Format("2006-01-02 15:04 Mon"), tt.want)
			}
			if tt.d > 0 {
				if back := cal.WorkingTimeBetween(start, got); back != tt.d {
					t.Errorf("WorkingTimeBetween(%s, %s) = %v, want %v", tt.start, tt.want, back, tt.d)
				}
			}
		})
	}
	// The same instant given in UTC gives the same answer.
	u := at("2026-09-18 17:00").UTC()
	if got := cal.AddWorkingTime(u, 2*time.Hour); !got.Equal(at("2026-09-21 10:00")) {
		t.Errorf("from UTC: got %v", got)
	}
}

func TestWorkingTimeBetween(t *testing.T) {
	cal := testCalendar(t)
	loc := shanghai(t)
	day := func(y int, m time.Month, d, h int) time.Time { return time.Date(y, m, d, h, 0, 0, 0, loc) }
	tests := []struct {
		name string
		a, b time.Time
		want time.Duration
	}{
		{"a week of five days", day(2026, 9, 14, 0), day(2026, 9, 21, 0), 40 * time.Hour},
		{"weekend only", day(2026, 9, 19, 0), day(2026, 9, 21, 0), 0},
		{"holiday week with its make-up days", day(2026, 9, 26, 0), day(2026, 10, 12, 0), (1 + 3 + 2 + 1) * 8 * time.Hour},
		{"reversed", day(2026, 9, 15, 10), day(2026, 9, 15, 9), -time.Hour},
		{"lunch excluded", day(2026, 9, 15, 11), day(2026, 9, 15, 14), 2 * time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := cal.WorkingTimeBetween(tt.a, tt.b); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestCalendarDefaultsAndProblems(t *testing.T) {
	cal, err := CalendarConfig{}.Build(nil)
	if err != nil {
		t.Fatal(err)
	}
	loc := shanghai(t)
	mon := time.Date(2026, 9, 14, 9, 0, 0, 0, loc)
	if got := cal.AddWorkingTime(mon, 9*time.Hour); !got.Equal(mon.Add(9 * time.Hour)) {
		t.Errorf("default 09:00-18:00: got %v", got)
	}
	if cal.IsWorkingDay(mon.AddDate(0, 0, 5)) {
		t.Error("default: Saturday is a working day")
	}

	_, err = CalendarConfig{
		WorkingHours: "09:00-18:00,17:00-19:00,22:00-01:00",
		Weekends:     []string{"sat", "sunday", "caturday"},
		Holidays:     []string{"2026-10-01", "2026-13-01", "2026-10-07..2026-10-01"},
		Workdays:     []string{"2026-10-01"},
	}.Build(loc)
	var ps Problems
	if !errors.As(err, &ps) {
		t.Fatalf("got %v, want Problems", err)
	}
	var got []string
	for _, p := range ps {
		got = append(got, p.String())
	}
	want := []string{
		`working_hours: "22:00-01:00" runs past midnight; split it into windows within one day`,
		`working_hours: windows 09:00-18:00 and 17:00-19:00 overlap`,
		`weekends[2]: "caturday" is not a weekday (mon, tue, wed, thu, fri, sat, sun)`,
		`holidays[1]: "2026-13-01" is not a date YYYY-MM-DD (or a range YYYY-MM-DD..YYYY-MM-DD)`,
		`holidays[2]: "2026-10-07..2026-10-01" is not a date range YYYY-MM-DD..YYYY-MM-DD with its end after its start`,
		`workdays: 2026-10-01 is listed both as a holiday and as a working day`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestSchedule(t *testing.T) {
	loc := shanghai(t)
	night, err := ParseWindow("22:00-02:00")
	if err != nil {
		t.Fatal(err)
	}
	morning, _ := ParseWindow("05:00-08:00")
	weekdays := []time.Weekday{time.Monday, time.Tuesday, time.Wednesday, time.Thursday, time.Friday}
	at := func(d, h, m int) time.Time { return time.Date(2026, 9, d, h, m, 0, 0, loc) } // 2026-09-14 is a Monday
	tests := []struct {
		name       string
		s          Schedule
		t          time.Time
		active     bool
		start, end time.Time // of Next
	}{
		{"daily, inside", Schedule{Window: morning, Loc: loc}, at(14, 6, 0), true, at(14, 5, 0), at(14, 8, 0)},
		{"daily, end is exclusive", Schedule{Window: morning, Loc: loc}, at(14, 8, 0), false, at(15, 5, 0), at(15, 8, 0)},
		{"night, after midnight belongs to the day before", Schedule{Window: night, Days: weekdays, Loc: loc}, at(19, 1, 0), true, at(18, 22, 0), at(19, 2, 0)},
		{"night, Saturday evening is off", Schedule{Window: night, Days: weekdays, Loc: loc}, at(19, 23, 0), false, at(21, 22, 0), at(22, 2, 0)},
		{"night, Sunday after midnight is off", Schedule{Window: night, Days: weekdays, Loc: loc}, at(20, 1, 0), false, at(21, 22, 0), at(22, 2, 0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.s.Active(tt.t); got != tt.active {
				t.Errorf("Active = %v, want %v", got, tt.active)
			}
			a, b, ok := tt.s.Next(tt.t)
			if !ok || !a.Equal(tt.start) || !b.Equal(tt.end) {
				t.Errorf("Next = %v..%v %v, want %v..%v", a, b, ok, tt.start, tt.end)
			}
		})
	}
	for _, bad := range []string{"", "05:00", "5-8", "08:00-08:00", "24:00-02:00", "10:60-11:00"} {
		if _, err := ParseWindow(bad); err == nil {
			t.Errorf("ParseWindow(%q) succeeded", bad)
		}
	}
	if w, err := ParseWindow("18:00-24:00"); err != nil || w.String() != "18:00-24:00" {
		t.Errorf("18:00-24:00: got %v %v", w, err)
	}
}
