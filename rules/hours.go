package rules

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// ErrBusinessHours is wrapped by every error from BusinessHours.Validate.
var ErrBusinessHours = errors.New("invalid business hours")

// BusinessHours says when the support desk works.
//
// Start and End are wall-clock offsets from local midnight in Loc: 9h means
// 09:00 local time on every working day, DST change days included, and End
// may be 24h for a desk that works until midnight. Each working day holds
// one window [Start, End); business time is the real time elapsed inside
// windows, so a window that spans a DST change is an hour shorter or longer.
// A nil Loc means UTC. Holidays are dates (their year, month and day count,
// whatever their clock time or location) on which the desk does not work
// although they fall on a working day.
type BusinessHours struct {
	Days       []time.Weekday
	Start, End time.Duration
	Loc        *time.Location
	Holidays   []time.Time
}

// AroundTheClock returns hours that never close: every day, 00:00 to 24:00 UTC.
func AroundTheClock() BusinessHours {
	return BusinessHours{
		Days:  []time.Weekday{time.Sunday, time.Monday, time.Tuesday, time.Wednesday, time.Thursday, time.Friday, time.Saturday},
		Start: 0,
		End:   24 * time.Hour,
		Loc:   time.UTC,
	}
}

// DefaultBusinessHours returns Monday to Friday, 09:00 to 17:00 UTC.
func DefaultBusinessHours() BusinessHours {
	return BusinessHours{
		Days:  []time.Weekday{time.Monday, time.Tuesday, time.Wednesday, time.Thursday, time.Friday},
		Start: 9 * time.Hour,
		End:   17 * time.Hour,
		Loc:   time.UTC,
	}
}

// Validate reports a configuration under which business time could never
// pass: no working day, a weekday out of range, or a window that is empty or
// not within one day. A nil Loc is not an error; it means UTC.
func (b BusinessHours) Validate() error {
	if len(b.Days) == 0 {
		return fmt.Errorf("%w: no working days", ErrBusinessHours)
	}
	for _, d := range b.Days {
		if d < time.Sunday || d > time.Saturday {
			return fmt.Errorf("%w: weekday %d out of range", ErrBusinessHours, int(d))
		}
	}
	if b.Start < 0 || b.End > 24*time.Hour {
		return fmt.Errorf("%w: window %v to %v is not within one day", ErrBusinessHours, b.Start, b.End)
	}
	if b.Start >= b.End {
		return fmt.Errorf("%w: start %v is not before end %v", ErrBusinessHours, b.Start, b.End)
	}
	return nil
}

// Add returns the instant at which d of business time has passed since t.
// Counting starts at t when t is inside business hours, else at the next
// opening. When the time runs out exactly at a closing, Add returns that
// closing, not the next opening. For d <= 0 it returns t. Under an invalid
// configuration (see Validate) every hour counts, so Add never hangs.
// The result is expressed in Loc.
func (b BusinessHours) Add(t time.Time, d time.Duration) time.Time {
	t = t.In(b.loc())
	if d <= 0 {
		return t
	}
	if b.Validate() != nil {
		return t.Add(d)
	}
	week := b.week()
	day := civil(t)
	for {
		if open, close, ok := b.window(day); ok && t.Before(close) {
			t = later(t, open)
			if left := close.Sub(t); d <= left {
				return t.Add(d)
			}
			d -= close.Sub(t)
		}
		day = day.AddDate(0, 0, 1)
		// Keep at least one nanosecond for the loop to place in a window.
		if k := b.weeks(day, int64((d-1)/week)); k > 0 {
			day = day.AddDate(0, 0, 7*int(k))
			d -= time.Duration(k) * week
		}
		t = b.at(day, 0)
	}
}

// AddDays returns the instant n business days after t. A business day is a
// working day in Days; the result is the same wall-clock time of day as t,
// n working days later. When t is outside business hours, counting starts
// from the next opening, so Saturday noon plus one business day is Tuesday
// 09:00 under the default hours. For n <= 0 it returns t. Under an invalid
// configuration every calendar day counts. The result is expressed in Loc.
func (b BusinessHours) AddDays(t time.Time, n int) time.Time {
	t = t.In(b.loc())
	if n <= 0 {
		return t
	}
	if b.Validate() != nil {
		return t.AddDate(0, 0, n)
	}
	t, day := b.next(t)
	h, m, s := t.Clock()
	off := time.Duration(h)*time.Hour + time.Duration(m)*time.Minute +
		time.Duration(s)*time.Second + time.Duration(t.Nanosecond())
	mask, per := b.mask()
	if len(b.Holidays) == 0 {
		// Seven days from a working day always hold exactly per working days.
		weeks := (n - 1) / per
		day = day.AddDate(0, 0, 7*weeks)
		n -= weeks * per
	}
	for n > 0 {
		day = day.AddDate(0, 0, 1)
		if mask[day.Weekday()] && !b.holiday(day) {
			n--
		}
	}
	r := b.at(day, off)
	open, close, ok := b.window(day)
	if !ok {
		// A DST change emptied the day's window: take the next opening.
		r, _ = b.next(r)
		return r
	}
	// A time of day in a DST gap can land after the closing.
	return earlier(later(r, open), close)
}

// Between returns the business time in [from, to); zero when to is not
// after from. Under an invalid configuration it is the calendar time. It
// saturates at the largest Duration instead of overflowing.
func (b BusinessHours) Between(from, to time.Time) time.Duration {
	loc := b.loc()
	from, to = from.In(loc), to.In(loc)
	if !from.Before(to) {
		return 0
	}
	if b.Validate() != nil {
		return to.Sub(from)
	}
	week := b.week()
	last := civil(to)
	var sum time.Duration
	for day := civil(from); !day.After(last); {
		if open, close, ok := b.window(day); ok {
			sum += max(0, earlier(close, to).Sub(later(open, from)))
		}
		day = day.AddDate(0, 0, 1)
		// Days strictly before to's day lie wholly inside [from, to).
		whole := (last.Unix() - day.Unix()) / (86400 * 7)
		if k := b.weeks(day, whole); k > 0 {
			if k > int64((math.MaxInt64-sum)/week) {
				return math.MaxInt64
			}
			day = day.AddDate(0, 0, 7*int(k))
			sum += time.Duration(k) * week
		}
	}
	return sum
}

func (b BusinessHours) loc() *time.Location {
	if b.Loc == nil {
		return time.UTC
	}
	return b.Loc
}

// mask returns which weekdays are working days and how many there are.
func (b BusinessHours) mask() (m [7]bool, n int) {
	for _, d := range b.Days {
		if d >= time.Sunday && d <= time.Saturday && !m[d] {
			m[d] = true
			n++
		}
	}
	return m, n
}

// week returns the business time of a week without a change of UTC offset.
func (b BusinessHours) week() time.Duration {
	_, n := b.mask()
	return time.Duration(n) * (b.End - b.Start)
}

// civil returns t's calendar date as midnight UTC, so that days can be
// counted and stepped without DST getting in the way.
func civil(t time.Time) time.Time {
	y, m, d := t.Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// at returns the instant of wall-clock offset off on the civil day in Loc.
func (b BusinessHours) at(day time.Time, off time.Duration) time.Time {
	y, m, d := day.Date()
	return time.Date(y, m, d, 0, 0, 0, int(off), b.loc())
}

// window returns the business window of the civil day, if it is a working day.
func (b BusinessHours) window(day time.Time) (open, close time.Time, ok bool) {
	if mask, _ := b.mask(); !mask[day.Weekday()] || b.holiday(day) {
		return time.Time{}, time.Time{}, false
	}
	open, close = b.at(day, b.Start), b.at(day, b.End)
	return open, close, open.Before(close)
}

// weeks returns how many whole weeks, at most max, starting at the civil
// day contain no change of Loc's UTC offset and no holiday. Each such week
// holds exactly b.week() of business time, which lets long spans be
// skipped in one step.
func (b BusinessHours) weeks(day time.Time, max int64) int64 {
	if max <= 0 {
		return 0
	}
	for _, h := range b.Holidays {
		if h := civil(h); !h.Before(day) {
			max = min(max, (h.Unix()-day.Unix())/(86400*7))
		}
	}
	start, end := b.at(day, 0).ZoneBounds()
	if !civil(start.In(b.loc())).Before(day) {
		// A change at midnight begins this very day, whose window it shortens.
		return 0
	}
	if end.IsZero() {
		return max
	}
	// Stop a day before the change's own day: a window ending at 24:00
	// closes on that day, so a change at midnight shortens the day before.
	days := (civil(end.In(b.loc())).Unix()-day.Unix())/86400 - 1
	return min(max, days/7)
}

// holiday reports whether the civil day is one of the Holidays.
func (b BusinessHours) holiday(day time.Time) bool {
	for _, h := range b.Holidays {
		if civil(h).Equal(day) {
			return true
		}
	}
	return false
}

// next returns t when it lies inside business hours, else the next opening,
// together with the civil day of that window. The configuration must be valid.
func (b BusinessHours) next(t time.Time) (time.Time, time.Time) {
	day := civil(t)
	// A valid configuration has a working day in every week; two weeks
	// bound the search even if DST empties a window, and each holiday
	// can push it one day further.
	for range 15 + len(b.Holidays) {
		if open, close, ok := b.window(day); ok && t.Before(close) {
			return later(t, open), day
		}
		day = day.AddDate(0, 0, 1)
	}
	return t, civil(t)
}

func later(a, b time.Time) time.Time {
	if a.Before(b) {
		return b
	}
	return a
}

func earlier(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
