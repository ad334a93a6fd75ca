package rules

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"
)

const oneDay = 24 * time.Hour

var replyAt = time.Date(2025, 1, 6, 10, 0, 0, 0, time.UTC)

// sweep runs the lifecycle at each instant in turn, as a periodic job would,
// and returns the steps taken (the mails sent) and the final clock.
func sweep(l Lifecycle, c Clock, nows ...time.Time) ([]Step, Clock) {
	var steps []Step
	for _, now := range nows {
		var s Step
		s, c = l.Next(c, now)
		if s != StepNone {
			steps = append(steps, s)
		}
	}
	return steps, c
}

// hourly returns every hour from a to b inclusive.
func hourly(a, b time.Time) []time.Time {
	var ts []time.Time
	for t := a; !t.After(b); t = t.Add(time.Hour) {
		ts = append(ts, t)
	}
	return ts
}

func TestLifecycleSequence(t *testing.T) {
	l := DefaultLifecycle()
	c := AgentReplied(Clock{Status: StatusNew}, replyAt)
	checks := []struct {
		after  time.Duration
		want   Step
		status Status
	}{
		{3*oneDay - time.Minute, StepNone, StatusOpen},
		{3 * oneDay, StepRemind, StatusOpen},
		{3 * oneDay, StepNone, StatusOpen},
		{5 * oneDay, StepNone, StatusOpen},
		{7*oneDay - time.Minute, StepNone, StatusOpen},
		{7 * oneDay, StepWaiting, StatusWaiting},
		{10 * oneDay, StepNone, StatusWaiting},
		{14*oneDay - time.Minute, StepNone, StatusWaiting},
		{14 * oneDay, StepClose, StatusClosed},
		{14 * oneDay, StepNone, StatusClosed},
		{60 * oneDay, StepNone, StatusClosed},
	}
	for _, ck := range checks {
		var got Step
		got, c = l.Next(c, replyAt.Add(ck.after))
		if got != ck.want || c.Status != ck.status {
			t.Fatalf("at +%v: step %q status %q, want %q %q", ck.after, got, c.Status, ck.want, ck.status)
		}
	}
}

func TestLifecycleReplies(t *testing.T) {
	l := DefaultLifecycle()
	c := AgentReplied(Clock{Status: StatusNew}, replyAt)
	steps, c := sweep(l, c, hourly(replyAt, replyAt.Add(5*oneDay))...)
	if !slices.Equal(steps, []Step{StepRemind}) {
		t.Fatalf("first five days: %v, want one reminder", steps)
	}

	// The customer answers on day 5: nothing more goes out, however long the agents take.
	c = CustomerReplied(c, replyAt.Add(5*oneDay))
	if c.Status != StatusOpen {
		t.Fatalf("after the customer's reply status is %q, want open", c.Status)
	}
	if steps, _ := sweep(l, c, hourly(replyAt.Add(5*oneDay), replyAt.Add(40*oneDay))...); steps != nil {
		t.Fatalf("after the customer's reply: %v, want nothing", steps)
	}

	// An agent answers on day 6: a new wait with its own reminder, from day 6.
	c = AgentReplied(c, replyAt.Add(6*oneDay))
	steps, c = sweep(l, c, hourly(replyAt.Add(6*oneDay), replyAt.Add(9*oneDay-time.Hour))...)
	if steps != nil {
		t.Fatalf("days 6 to 9: %v, want nothing before the new wait is 3 days old", steps)
	}
	steps, c = sweep(l, c, hourly(replyAt.Add(9*oneDay), replyAt.Add(40*oneDay))...)
	if !slices.Equal(steps, []Step{StepRemind, StepWaiting, StepClose}) || c.Status != StatusClosed {
		t.Fatalf("after the new wait: %v, status %q; want remind, waiting, close", steps, c.Status)
	}

	// The customer writes to the closed ticket: it opens again with no clock.
	c = CustomerReplied(c, replyAt.Add(41*oneDay))
	if c.Status != StatusOpen || !c.AwaitingSince.IsZero() {
		t.Fatalf("closed ticket after the customer's reply: %+v, want open and not awaiting", c)
	}
}

func TestLifecycleOnHold(t *testing.T) {
	l := DefaultLifecycle()
	c := AgentReplied(Clock{Status: StatusNew}, replyAt)
	c = SetStatus(c, StatusOnHold, replyAt.Add(2*oneDay))
	c = AgentReplied(c, replyAt.Add(3*oneDay)) // an update to the customer does not lift the hold
	if steps, _ := sweep(l, c, hourly(replyAt, replyAt.Add(30*oneDay))...); steps != nil {
		t.Fatalf("on hold: %v, want nothing", steps)
	}
	if due := l.Due(c); !due.IsZero() {
		t.Fatalf("on hold: Due = %v, want never", due)
	}

	// Back to open and answered again: the clock runs from that reply.
	c = SetStatus(c, StatusOpen, replyAt.Add(30*oneDay))
	c = AgentReplied(c, replyAt.Add(31*oneDay))
	if step, _ := l.Next(c, replyAt.Add(34*oneDay)); step != StepRemind {
		t.Fatalf("3 days after the reply that followed the hold: %q, want remind", step)
	}
}

// TestLifecycleCatchUp covers a sweep that did not run for a while: the
// ticket gets the mail for the state it should be in now, and only that.
func TestLifecycleCatchUp(t *testing.T) {
	l := DefaultLifecycle()
	fresh := AgentReplied(Clock{Status: StatusNew}, replyAt)
	reminded := fresh
	reminded.Reminded = true
	tests := []struct {
		name   string
		c      Clock
		silent time.Duration
		want   []Step
		status Status
	}{
		{"20 days silent", fresh, 20 * oneDay, []Step{StepClose}, StatusClosed},
		{"20 days silent, reminded", reminded, 20 * oneDay, []Step{StepClose}, StatusClosed},
		{"8 days silent, never reminded", fresh, 8 * oneDay, []Step{StepWaiting}, StatusWaiting},
		{"8 days silent, reminded", reminded, 8 * oneDay, []Step{StepWaiting}, StatusWaiting},
		{"4 days silent", fresh, 4 * oneDay, []Step{StepRemind}, StatusOpen},
		{"2 days silent", fresh, 2 * oneDay, nil, StatusOpen},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := replyAt.Add(tt.silent)
			// Sweeping twice at the same instant, as after a crash between
			// applying the step and recording that it ran, sends nothing more.
			steps, c := sweep(l, tt.c, now, now, now.Add(time.Minute))
			if !slices.Equal(steps, tt.want) || c.Status != tt.status {
				t.Errorf("steps %v status %q, want %v %q", steps, c.Status, tt.want, tt.status)
			}
		})
	}
}

func TestLifecycleResolved(t *testing.T) {
	l := DefaultLifecycle()
	c := AgentReplied(Clock{Status: StatusNew}, replyAt)
	c = SetStatus(c, StatusResolved, replyAt.Add(time.Hour))
	resolved := replyAt.Add(time.Hour)

	steps, closed := sweep(l, c, hourly(resolved, resolved.Add(7*oneDay-time.Hour))...)
	if steps != nil {
		t.Fatalf("first week after resolution: %v, want nothing (no reminders on resolved tickets)", steps)
	}
	steps, closed = sweep(l, closed, hourly(resolved.Add(7*oneDay), resolved.Add(30*oneDay))...)
	if !slices.Equal(steps, []Step{StepClose}) || closed.Status != StatusClosed {
		t.Fatalf("after a week resolved: %v status %q, want one close", steps, closed.Status)
	}

	// The customer replies before the week is out: no automatic close.
	c = CustomerReplied(c, resolved.Add(3*oneDay))
	if steps, _ := sweep(l, c, hourly(resolved.Add(3*oneDay), resolved.Add(30*oneDay))...); steps != nil || c.Status != StatusOpen {
		t.Fatalf("resolved then answered: %v status %q, want open and nothing sent", steps, c.Status)
	}
}

func TestLifecycleDue(t *testing.T) {
	l := DefaultLifecycle()
	c := AgentReplied(Clock{Status: StatusNew}, replyAt)
	for _, want := range []struct {
		due  time.Duration
		step Step
	}{{3 * oneDay, StepRemind}, {7 * oneDay, StepWaiting}, {14 * oneDay, StepClose}} {
		due := l.Due(c)
		if !due.Equal(replyAt.Add(want.due)) {
			t.Fatalf("Due = %v, want +%v for %q", due, want.due, want.step)
		}
		var step Step
		step, c = l.Next(c, due)
		if step != want.step {
			t.Fatalf("Next at Due = %q, want %q", step, want.step)
		}
	}
	if due := l.Due(c); !due.IsZero() {
		t.Fatalf("closed: Due = %v, want never", due)
	}
	r := SetStatus(c, StatusResolved, replyAt.Add(20*oneDay))
	if due := l.Due(r); !due.Equal(replyAt.Add(27 * oneDay)) {
		t.Fatalf("resolved: Due = %v, want a week after resolution", due)
	}
}

func TestLifecycleConfig(t *testing.T) {
	// No reminders configured: the first mail is the waiting notice.
	l := DefaultLifecycle()
	l.RemindAfter = 0
	l.WaitingAfter = 2 * oneDay
	c := AgentReplied(Clock{Status: StatusNew}, replyAt)
	steps, _ := sweep(l, c, hourly(replyAt, replyAt.Add(20*oneDay))...)
	if !slices.Equal(steps, []Step{StepWaiting, StepClose}) {
		t.Fatalf("without reminders: %v, want waiting then close", steps)
	}
}

// TestLifecycleStops: the wait stops the SLA clock when the ticket turns
// waiting, or closes when waiting is off or comes later; nothing stops it
// otherwise.
func TestLifecycleStops(t *testing.T) {
	l := DefaultLifecycle()
	c := AgentReplied(Clock{Status: StatusNew}, replyAt)
	if at := l.Stops(c); !at.Equal(replyAt.Add(7 * oneDay)) {
		t.Errorf("open: stops at %v, want the waiting step", at)
	}
	l.CloseAfter = 2 * oneDay
	if at := l.Stops(c); !at.Equal(replyAt.Add(2 * oneDay)) {
		t.Errorf("closing before the waiting step: stops at %v, want the close", at)
	}
	l.WaitingAfter, l.CloseAfter = 0, 14*oneDay
	if at := l.Stops(c); !at.Equal(replyAt.Add(14 * oneDay)) {
		t.Errorf("without waiting: stops at %v, want the close", at)
	}
	for _, c := range []Clock{{Status: StatusOpen}, SetStatus(c, StatusWaiting, replyAt), {Status: StatusOnHold}, SetStatus(c, StatusResolved, replyAt)} {
		if at := l.Stops(c); !at.IsZero() {
			t.Errorf("%+v: stops at %v, want never", c, at)
		}
	}
}

func TestSetStatusWaiting(t *testing.T) {
	l := DefaultLifecycle()
	// An agent marks a ticket waiting by hand: the customer is reminded
	// once, and it still closes on its own.
	c := SetStatus(Clock{Status: StatusOpen}, StatusWaiting, replyAt)
	steps, c := sweep(l, c, hourly(replyAt, replyAt.Add(20*oneDay))...)
	if !slices.Equal(steps, []Step{StepRemind, StepClose}) || c.Status != StatusClosed {
		t.Fatalf("waiting set by hand: %v status %q, want a reminder, then one close", steps, c.Status)
	}
	// Setting waiting on a running wait keeps its start.
	c = AgentReplied(Clock{}, replyAt)
	if w := SetStatus(c, StatusWaiting, replyAt.Add(5*oneDay)); !w.AwaitingSince.Equal(replyAt) {
		t.Fatalf("waiting restarted the wait at %v, want %v", w.AwaitingSince, replyAt)
	}
}

// TestWaitingReminder: a ticket set waiting by an agent is reminded once
// while its wait is younger than WaitingAfter, and stays waiting; one the
// lifecycle turned waiting is not reminded after its waiting notice,
// whether or not it was reminded before, nor is one set waiting after the
// reminder of its wait went.
func TestWaitingReminder(t *testing.T) {
	l := DefaultLifecycle()
	open := AgentReplied(Clock{Status: StatusNew}, replyAt)
	set := SetStatus(open, StatusWaiting, replyAt)
	if due := l.Due(set); !due.Equal(replyAt.Add(3 * oneDay)) {
		t.Errorf("set waiting: Due = %v, want the reminder at +3 days", due)
	}
	step, c := l.Next(set, replyAt.Add(3*oneDay))
	if step != StepRemind || c.Status != StatusWaiting || !c.Reminded {
		t.Errorf("set waiting, +3 days: %q %+v, want a reminder, still waiting", step, c)
	}

	_, turned := l.Next(open, replyAt.Add(8*oneDay)) // downtime: no reminder went
	_, remindedOpen := l.Next(open, replyAt.Add(3*oneDay))
	for _, tt := range []struct {
		name string
		c    Clock
		from time.Duration // first sweep
	}{
		{"turned waiting after downtime", turned, 9 * oneDay},
		{"turned waiting, an earlier release's record", Clock{Status: StatusWaiting, AwaitingSince: replyAt}, 9 * oneDay},
		{"set waiting after the reminder", SetStatus(remindedOpen, StatusWaiting, replyAt.Add(5*oneDay)), 5 * oneDay},
		{"set waiting, swept first on day 9", set, 9 * oneDay},
	} {
		steps, c := sweep(l, tt.c, hourly(replyAt.Add(tt.from), replyAt.Add(20*oneDay))...)
		// A lapse sends nothing.
		steps = slices.DeleteFunc(steps, func(s Step) bool { return s == StepLapse })
		if !slices.Equal(steps, []Step{StepClose}) || c.Status != StatusClosed {
			t.Errorf("%s: %v status %q, want only the close", tt.name, steps, c.Status)
		}
	}
}

func TestClockJSON(t *testing.T) {
	c := AgentReplied(Clock{}, replyAt)
	c.Reminded = true
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`"status":"open"`, `"awaiting_since":"2025-01-06T10:00:00Z"`, `"reminded":true`} {
		if !strings.Contains(string(b), key) {
			t.Errorf("clock JSON %s lacks %s", b, key)
		}
	}
	if strings.Contains(string(b), "resolved_at") {
		t.Errorf("clock JSON %s carries an unset resolved_at", b)
	}
	var back Clock
	if err := json.Unmarshal(b, &back); err != nil || back != c {
		t.Errorf("round trip gave %+v, %v; want %+v", back, err, c)
	}
}

func FuzzLifecycleNext(f *testing.F) {
	f.Add(uint8(1), int64(0), false, int64(0), int64(20*oneDay), int64(72), int64(168), int64(336), int64(168))
	f.Add(uint8(2), int64(0), true, int64(0), int64(8*oneDay), int64(72), int64(168), int64(336), int64(168))
	f.Add(uint8(4), int64(-1), false, int64(0), int64(8*oneDay), int64(72), int64(168), int64(336), int64(168))
	f.Add(uint8(1), int64(0), false, int64(0), int64(8*oneDay), int64(500), int64(0), int64(-3), int64(0))
	f.Fuzz(func(t *testing.T, status uint8, since int64, reminded bool, resolved, now int64, remind, wait, closeAfter, rclose int64) {
		statuses := []Status{StatusNew, StatusOpen, StatusWaiting, StatusOnHold, StatusResolved, StatusClosed, "bogus"}
		base := time.Date(2025, 1, 6, 10, 0, 0, 0, time.UTC)
		const span = int64(1000 * oneDay)
		// A zero offset means "not set", like a stored zero time.
		inst := func(off int64) time.Time {
			if off == 0 {
				return time.Time{}
			}
			return base.Add(time.Duration(off % span))
		}
		c := Clock{Status: statuses[int(status)%len(statuses)], AwaitingSince: inst(since), Reminded: reminded, ResolvedAt: inst(resolved)}
		hours := func(n int64) time.Duration { return time.Duration(n%10000) * time.Hour }
		l := Lifecycle{RemindAfter: hours(remind), WaitingAfter: hours(wait), CloseAfter: hours(closeAfter), ResolvedCloseAfter: hours(rclose)}
		at := base.Add(time.Duration(now % span))

		step, after := l.Next(c, at)
		if again, _ := l.Next(after, at); again != StepNone {
			t.Fatalf("Next(%+v, %v) = %q then %q: not idempotent", c, at, step, again)
		}
		if step == StepNone && after != c {
			t.Fatalf("no step but the clock changed: %+v -> %+v", c, after)
		}
		if due := l.Due(after); !due.IsZero() && !due.After(at) {
			t.Fatalf("after %q at %v the next step is due at %v, already past", step, at, due)
		}
		due := l.Due(c)
		if due.IsZero() {
			if s, _ := l.Next(c, base.Add(time.Duration(span)*3)); s != StepNone {
				t.Fatalf("Due says never for %+v, yet Next gives %q", c, s)
			}
			return
		}
		if s, _ := l.Next(c, due); s == StepNone {
			t.Fatalf("Due(%+v) = %v, yet Next gives nothing then", c, due)
		}
		if s, _ := l.Next(c, due.Add(-time.Nanosecond)); s != StepNone {
			t.Fatalf("Due(%+v) = %v, yet Next gives %q before it", c, due, s)
		}
	})
}
