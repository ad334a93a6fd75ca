package rules

import (
	"errors"
	"testing"
	"time"
	_ "time/tzdata" // Europe/Berlin on hosts without a zone database
)

func berlin(t testing.TB) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatalf("load Europe/Berlin: %v", err)
	}
	return loc
}

// utcAt parses "2006-01-02 15:04" in UTC; 2025-01-06 is a Monday.
func utcAt(t testing.TB, s string) time.Time { return hoursAt(t, s, time.UTC) }

func hoursAt(t testing.TB, s string, loc *time.Location) time.Time {
	t.Helper()
	v, err := time.ParseInLocation("2006-01-02 15:04", s, loc)
	if err != nil {
		t.Fatalf("parse %q: %v", s, err)
	}
	return v
}

func allWeek(loc *time.Location, start, end time.Duration) BusinessHours {
	return BusinessHours{
		Days:  []time.Weekday{time.Sunday, time.Monday, time.Tuesday, time.Wednesday, time.Thursday, time.Friday, time.Saturday},
		Start: start, End: end, Loc: loc,
	}
}

func TestBusinessHoursAdd(t *testing.T) {
	b := DefaultBusinessHours()
	tests := []struct {
		name, from string
		d          time.Duration
		want       string
	}{
		{"inside the day", "2025-01-06 10:00", 2 * time.Hour, "2025-01-06 12:00"},
		{"ends exactly at closing", "2025-01-10 16:00", time.Hour, "2025-01-10 17:00"},
		{"Friday afternoon spills over the weekend", "2025-01-10 16:30", time.Hour, "2025-01-13 09:30"},
		{"Saturday starts at Monday's opening", "2025-01-11 12:00", time.Hour, "2025-01-13 10:00"},
		{"before opening", "2025-01-06 07:00", 8 * time.Hour, "2025-01-06 17:00"},
		{"after closing", "2025-01-06 18:00", time.Hour, "2025-01-07 10:00"},
		{"two working weeks", "2025-01-06 10:00", 80 * time.Hour, "2025-01-20 10:00"},
		{"a working year", "2025-01-08 10:00", 52 * 40 * time.Hour, "2026-01-07 10:00"},
		{"zero adds nothing", "2025-01-11 12:00", 0, "2025-01-11 12:00"},
		{"negative adds nothing", "2025-01-06 10:00", -time.Hour, "2025-01-06 10:00"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := b.Add(utcAt(t, tt.from), tt.d)
			if want := utcAt(t, tt.want); !got.Equal(want) {
				t.Errorf("Add(%s, %v) = %v, want %v", tt.from, tt.d, got, want)
			}
		})
	}
}

func TestBusinessHoursBetween(t *testing.T) {
	b := DefaultBusinessHours()
	tests := []struct {
		from, to string
		want     time.Duration
	}{
		{"2025-01-10 16:30", "2025-01-13 09:30", time.Hour},
		{"2025-01-11 00:00", "2025-01-12 23:59", 0},
		{"2025-01-06 00:00", "2025-01-13 00:00", 40 * time.Hour},
		{"2025-01-06 12:00", "2025-01-06 10:00", 0},
		{"2025-01-01 00:00", "2026-01-01 00:00", 261 * 8 * time.Hour},
	}
	for _, tt := range tests {
		if got := b.Between(utcAt(t, tt.from), utcAt(t, tt.to)); got != tt.want {
			t.Errorf("Between(%s, %s) = %v, want %v", tt.from, tt.to, got, tt.want)
		}
	}
}

func TestBusinessHoursDST(t *testing.T) {
	loc := berlin(t)
	office := DefaultBusinessHours()
	office.Loc = loc
	// Clocks go forward on Sunday 2025-03-30 and back on Sunday 2025-10-26.
	if got, want := office.Add(hoursAt(t, "2025-03-28 16:00", loc), 2*time.Hour), hoursAt(t, "2025-03-31 10:00", loc); !got.Equal(want) {
		t.Errorf("office hours over the spring change: got %v, want %v", got, want)
	}
	if got, want := office.Add(hoursAt(t, "2025-10-24 16:00", loc), 2*time.Hour), hoursAt(t, "2025-10-27 10:00", loc); !got.Equal(want) {
		t.Errorf("office hours over the autumn change: got %v, want %v", got, want)
	}

	always := allWeek(loc, 0, 24*time.Hour)
	if got, want := always.Add(hoursAt(t, "2025-03-29 12:00", loc), 24*time.Hour), hoursAt(t, "2025-03-30 13:00", loc); !got.Equal(want) {
		t.Errorf("round the clock over the spring change: got %v, want %v", got, want)
	}
	if got := always.Between(hoursAt(t, "2025-03-29 00:00", loc), hoursAt(t, "2025-03-31 00:00", loc)); got != 47*time.Hour {
		t.Errorf("weekend of the spring change holds %v, want 47h", got)
	}
	if got := always.Between(hoursAt(t, "2025-10-25 00:00", loc), hoursAt(t, "2025-10-27 00:00", loc)); got != 49*time.Hour {
		t.Errorf("weekend of the autumn change holds %v, want 49h", got)
	}

	// A night shift from 01:00 to 04:00 loses or gains the changed hour.
	night := allWeek(loc, time.Hour, 4*time.Hour)
	if got := night.Between(hoursAt(t, "2025-03-30 00:00", loc), hoursAt(t, "2025-03-31 00:00", loc)); got != 2*time.Hour {
		t.Errorf("night shift on the spring change holds %v, want 2h", got)
	}
	if got := night.Between(hoursAt(t, "2025-10-26 00:00", loc), hoursAt(t, "2025-10-27 00:00", loc)); got != 4*time.Hour {
		t.Errorf("night shift on the autumn change holds %v, want 4h", got)
	}
}

// TestBusinessHoursLongSpans checks the week skipping against a plain walk
// over every day, across years with DST changes.
func TestBusinessHoursLongSpans(t *testing.T) {
	loc := berlin(t)
	configs := map[string]BusinessHours{
		"office Berlin": {Days: DefaultBusinessHours().Days, Start: 9 * time.Hour, End: 17 * time.Hour, Loc: loc},
		"always Berlin": allWeek(loc, 0, 24*time.Hour),
		"night Berlin":  allWeek(loc, time.Hour, 4*time.Hour),
		"weekend UTC":   {Days: []time.Weekday{time.Saturday, time.Sunday}, Start: 8 * time.Hour, End: 20 * time.Hour},
	}
	from := hoursAt(t, "2024-02-14 11:37", loc)
	for name, b := range configs {
		for _, days := range []int{1, 6, 13, 45, 180, 400, 1000} {
			to := from.AddDate(0, 0, days).Add(5 * time.Hour)
			want := refBetween(b, from, to)
			if got := b.Between(from, to); got != want {
				t.Errorf("%s: Between over %d days = %v, want %v", name, days, got, want)
			}
			if got := b.Add(from, want); !got.Equal(to) && refBetween(b, got, to) != 0 {
				t.Errorf("%s: Add(%v) over %d days = %v, want %v or the last closing before it", name, want, days, got, to)
			}
		}
	}
}

// refBetween sums business time day by day, without skipping.
func refBetween(b BusinessHours, from, to time.Time) time.Duration {
	loc := b.Loc
	if loc == nil {
		loc = time.UTC
	}
	works := map[time.Weekday]bool{}
	for _, d := range b.Days {
		works[d] = true
	}
	var sum time.Duration
	y, m, d := from.In(loc).Date()
	for day := time.Date(y, m, d, 12, 0, 0, 0, loc); !day.After(to.Add(24 * time.Hour)); day = day.AddDate(0, 0, 1) {
		if !works[day.Weekday()] {
			continue
		}
		y, m, d := day.Date()
		open := time.Date(y, m, d, 0, 0, 0, int(b.Start), loc)
		close := time.Date(y, m, d, 0, 0, 0, int(b.End), loc)
		if open.Before(from) {
			open = from
		}
		if close.After(to) {
			close = to
		}
		if close.After(open) {
			sum += close.Sub(open)
		}
	}
	return sum
}

func TestBusinessHoursAddDays(t *testing.T) {
	b := DefaultBusinessHours()
	tests := []struct {
		name, from string
		n          int
		want       string
	}{
		{"Friday 16:30 plus a week of business days", "2025-01-10 16:30", 5, "2025-01-17 16:30"},
		{"Saturday counts from Monday's opening", "2025-01-11 10:00", 5, "2025-01-20 09:00"},
		{"after Friday's closing", "2025-01-10 18:00", 1, "2025-01-14 09:00"},
		{"before Monday's opening", "2025-01-06 08:00", 1, "2025-01-07 09:00"},
		{"ten business days", "2025-01-06 10:00", 10, "2025-01-20 10:00"},
		{"Thursday plus two", "2025-01-09 11:15", 2, "2025-01-13 11:15"},
		{"zero days", "2025-01-11 10:00", 0, "2025-01-11 10:00"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := b.AddDays(utcAt(t, tt.from), tt.n)
			if want := utcAt(t, tt.want); !got.Equal(want) {
				t.Errorf("AddDays(%s, %d) = %v, want %v", tt.from, tt.n, got, want)
			}
		})
	}

	loc := berlin(t)
	b.Loc = loc
	if got, want := b.AddDays(hoursAt(t, "2025-03-28 10:00", loc), 1), hoursAt(t, "2025-03-31 10:00", loc); !got.Equal(want) {
		t.Errorf("one business day over the spring change = %v, want %v (same wall-clock time)", got, want)
	}
	// 02:45 does not exist on the day the clocks go forward; a desk open
	// 02:00 to 03:30 then has its business day end at its closing.
	early := allWeek(loc, 2*time.Hour, 3*time.Hour+30*time.Minute)
	if got, want := early.AddDays(hoursAt(t, "2025-03-29 02:45", loc), 1), hoursAt(t, "2025-03-30 03:30", loc); !got.Equal(want) {
		t.Errorf("one business day into the DST gap = %v, want the closing %v", got, want)
	}
}

func TestBusinessHoursValidate(t *testing.T) {
	bad := map[string]BusinessHours{
		"no days":           {Start: 9 * time.Hour, End: 17 * time.Hour},
		"start after end":   {Days: []time.Weekday{time.Monday}, Start: 17 * time.Hour, End: 9 * time.Hour},
		"empty window":      {Days: []time.Weekday{time.Monday}, Start: 9 * time.Hour, End: 9 * time.Hour},
		"end past midnight": {Days: []time.Weekday{time.Monday}, Start: 9 * time.Hour, End: 25 * time.Hour},
		"negative start":    {Days: []time.Weekday{time.Monday}, Start: -time.Hour, End: 9 * time.Hour},
		"weekday 7":         {Days: []time.Weekday{7}, Start: 9 * time.Hour, End: 17 * time.Hour},
	}
	from := utcAt(t, "2025-01-06 10:00")
	for name, b := range bad {
		if err := b.Validate(); !errors.Is(err, ErrBusinessHours) {
			t.Errorf("%s: Validate() = %v, want ErrBusinessHours", name, err)
		}
		// Nothing can pass in business time: fall back to calendar time rather than hang.
		if got := b.Add(from, 3*time.Hour); !got.Equal(from.Add(3 * time.Hour)) {
			t.Errorf("%s: Add = %v, want calendar %v", name, got, from.Add(3*time.Hour))
		}
		if got := b.AddDays(from, 2); !got.Equal(from.AddDate(0, 0, 2)) {
			t.Errorf("%s: AddDays = %v, want calendar %v", name, got, from.AddDate(0, 0, 2))
		}
	}
	good := []BusinessHours{DefaultBusinessHours(), {Days: []time.Weekday{time.Sunday}, End: 24 * time.Hour}}
	for _, b := range good {
		if err := b.Validate(); err != nil {
			t.Errorf("Validate(%+v) = %v, want nil", b, err)
		}
	}
}

func FuzzBusinessHours(f *testing.F) {
	f.Add(int64(1736503800), int64(time.Hour), uint8(0b0111110), uint16(540), uint16(1020), false)
	f.Add(int64(1743170400), int64(24*time.Hour), uint8(0x7f), uint16(0), uint16(1440), true)
	f.Add(int64(1761300000), int64(400*time.Hour), uint8(0x7f), uint16(60), uint16(240), true)
	f.Add(int64(0), int64(365*24*time.Hour), uint8(1), uint16(1439), uint16(1440), true)
	f.Add(int64(1736503800), int64(time.Hour), uint8(0), uint16(540), uint16(1020), false)
	loc := berlin(f)
	f.Fuzz(func(t *testing.T, sec, d int64, mask uint8, start, end uint16, inBerlin bool) {
		const year = int64(365 * 24 * time.Hour)
		from := time.Unix(sec%(200*365*86400), 0) // 1770 to 2170
		dur := time.Duration(d % year)
		if dur < 0 {
			dur = -dur
		}
		b := BusinessHours{Start: time.Duration(start%1500) * time.Minute, End: time.Duration(end%1500) * time.Minute}
		for wd := range 7 {
			if mask&(1<<wd) != 0 {
				b.Days = append(b.Days, time.Weekday(wd))
			}
		}
		if inBerlin {
			b.Loc = loc
		}
		got := b.Add(from, dur)
		if b.Validate() != nil {
			if !got.Equal(from.Add(dur)) {
				t.Fatalf("invalid %+v: Add = %v, want calendar %v", b, got, from.Add(dur))
			}
			return
		}
		if got.Before(from) {
			t.Fatalf("%+v: Add(%v, %v) = %v, before the start", b, from, dur, got)
		}
		if back := b.Between(from, got); back != dur {
			t.Fatalf("%+v: Between(%v, Add(%v, %v) = %v) = %v", b, from, from, dur, got, back)
		}
		if dur > 0 && refBetween(b, got.Add(-time.Nanosecond), got) != time.Nanosecond {
			t.Fatalf("%+v: Add(%v, %v) = %v, not inside business hours", b, from, dur, got)
		}
		days := int(dur/(24*time.Hour)%300) + 1
		r := b.AddDays(from, days)
		if !r.After(from) {
			t.Fatalf("%+v: AddDays(%v, %d) = %v, not after the start", b, from, days, r)
		}
		if refBetween(b, r.Add(-time.Nanosecond), r.Add(time.Nanosecond)) == 0 {
			t.Fatalf("%+v: AddDays(%v, %d) = %v, outside business hours", b, from, days, r)
		}
	})
}

// TestRoundTheClockCountsTheShortDayOfAMidnightDSTChange proves that spans
// over a week long count the hour lost by a DST change at midnight, under
// a window that ends at 24:00, whichever side of the gap midnight falls on.
func TestRoundTheClockCountsTheShortDayOfAMidnightDSTChange(t *testing.T) {
	for _, c := range []struct{ zone, from, to string }{
		{"America/Santiago", "2025-08-30 12:00", "2025-09-12 12:00"}, // 2025-09-07 00:00 → 01:00
		{"Asia/Beirut", "2025-03-29 12:00", "2025-04-10 12:00"},      // 2025-03-30 00:00 → 01:00
	} {
		loc, err := time.LoadLocation(c.zone)
		if err != nil {
			t.Skip(err)
		}
		always := allWeek(loc, 0, 24*time.Hour)
		from, to := hoursAt(t, c.from, loc), hoursAt(t, c.to, loc)
		if got, want := always.Between(from, to), to.Sub(from); got != want {
			t.Errorf("%s: Between over the change = %v, want %v", c.zone, got, want)
		}
		if got := always.Add(from, to.Sub(from)); !got.Equal(to) {
			t.Errorf("%s: Add over the change = %v, want %v", c.zone, got, to)
		}
	}
}
