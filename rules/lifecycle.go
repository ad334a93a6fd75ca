package rules

import "time"

// Lifecycle holds the configurable delays of the awaiting-customer clock.
// Each delay counts from the agent's public reply that started the wait
// (ResolvedCloseAfter from the resolution). A delay of zero or less turns
// its step off.
type Lifecycle struct {
	RemindAfter        time.Duration // one reminder to the customer
	WaitingAfter       time.Duration // status becomes waiting, customer told
	CloseAfter         time.Duration // status becomes closed, customer told how to reopen
	ResolvedCloseAfter time.Duration // a resolved ticket closes on its own
}

// DefaultLifecycle returns the support policy's delays: a reminder after
// 3 days without a customer reply, waiting after 7, closed after 14, and
// resolved tickets closed 7 days after resolution.
func DefaultLifecycle() Lifecycle {
	return Lifecycle{
		RemindAfter:        72 * time.Hour,
		WaitingAfter:       168 * time.Hour,
		CloseAfter:         336 * time.Hour,
		ResolvedCloseAfter: 168 * time.Hour,
	}
}

// Clock is the lifecycle state stored with a ticket. It records what has
// been done for the current wait, which is what makes Next exactly-once.
type Clock struct {
	Status        Status    `json:"status,omitempty"`
	AwaitingSince time.Time `json:"awaiting_since,omitzero"` // when the agent's public reply started the wait; zero when not awaiting
	Reminded      bool      `json:"reminded,omitempty"`      // reminder sent for this wait
	ResolvedAt    time.Time `json:"resolved_at,omitzero"`    // when the ticket was resolved; zero otherwise
}

// Step is one lifecycle action. Every step but StepNone and StepLapse
// means mail to the customer: a reminder, the waiting notice, or the
// closing notice with how to reopen and the satisfaction survey.
type Step string

// The lifecycle steps.
const (
	StepNone    Step = ""
	StepRemind  Step = "remind"  // remind the customer; status unchanged
	StepWaiting Step = "waiting" // status waiting; tell the customer
	StepClose   Step = "close"   // status closed; tell the customer how to reopen, send the survey
	// StepLapse sends nothing: the reminder a waiting ticket was owed did
	// not go before its wait came to WaitingAfter (the gateway was down,
	// or an earlier release turned it waiting), and is owed no more.
	StepLapse Step = "lapse"
)

// Next returns the single step due at now and the clock as it is after
// applying it. When several steps are overdue (after downtime) it returns
// only the furthest one, so a ticket silent for 20 days is closed without a
// late reminder or waiting notice. It is idempotent: Next on the returned
// clock at the same now returns StepNone, and so does Next at any later now
// until the next step's time (see Due).
//
// A waiting ticket an agent set waiting is reminded too, once, as an open
// one is, until its wait reaches WaitingAfter; later than that the
// reminder lapses, as it does for an open ticket whose waiting notice
// (which asks for the answer itself) goes instead. The lifecycle's own
// waiting step marks the clock reminded, so the ticket it turns waiting
// gets no reminder after its waiting notice.
func (l Lifecycle) Next(c Clock, now time.Time) (Step, Clock) {
	switch c.Status {
	case StatusResolved:
		if reached(c.ResolvedAt, l.ResolvedCloseAfter, now) {
			c.Status = StatusClosed
			return StepClose, c
		}
	case StatusOpen, StatusWaiting:
		return l.nextAwaiting(c, now)
	}
	return StepNone, c
}

func (l Lifecycle) nextAwaiting(c Clock, now time.Time) (Step, Clock) {
	since := c.AwaitingSince
	switch {
	case reached(since, l.CloseAfter, now):
		return StepClose, Clock{Status: StatusClosed}
	case c.Status == StatusOpen && reached(since, l.WaitingAfter, now):
		c.Status, c.Reminded = StatusWaiting, true
		return StepWaiting, c
	case c.Reminded || !reached(since, l.RemindAfter, now):
		return StepNone, c
	case c.Status == StatusWaiting && reached(since, l.WaitingAfter, now):
		c.Reminded = true
		return StepLapse, c
	}
	c.Reminded = true
	return StepRemind, c
}

// Due returns the earliest instant at which Next returns a step for c, or
// the zero time when it never will (for the due-time index). It may be in
// the past for a clock that has not been swept yet.
func (l Lifecycle) Due(c Clock) time.Time {
	var due time.Time
	consider := func(since time.Time, d time.Duration) {
		if at, ok := deadline(since, d); ok && (due.IsZero() || at.Before(due)) {
			due = at
		}
	}
	switch c.Status {
	case StatusResolved:
		consider(c.ResolvedAt, l.ResolvedCloseAfter)
	case StatusOpen:
		if !c.Reminded {
			consider(c.AwaitingSince, l.RemindAfter)
		}
		consider(c.AwaitingSince, l.WaitingAfter)
		consider(c.AwaitingSince, l.CloseAfter)
	case StatusWaiting:
		if !c.Reminded {
			consider(c.AwaitingSince, l.RemindAfter)
		}
		consider(c.AwaitingSince, l.CloseAfter)
	}
	return due
}

// Stops returns when the wait on c first stops the SLA's resolution
// clock: the ticket turns waiting or closes, whichever comes first.
// Zero when no wait is running on an open ticket (a waiting ticket's
// clock is paused already, a resolved ticket's stopped).
func (l Lifecycle) Stops(c Clock) time.Time {
	if c.Status != StatusOpen {
		return time.Time{}
	}
	waiting, okWaiting := deadline(c.AwaitingSince, l.WaitingAfter)
	closing, okClosing := deadline(c.AwaitingSince, l.CloseAfter)
	switch {
	case okWaiting && okClosing:
		return earlier(waiting, closing)
	case okWaiting:
		return waiting
	}
	return closing
}

// deadline returns since+d, or false when there is no clock or the step is off.
func deadline(since time.Time, d time.Duration) (time.Time, bool) {
	if since.IsZero() || d <= 0 {
		return time.Time{}, false
	}
	return since.Add(d), true
}

func reached(since time.Time, d time.Duration, now time.Time) bool {
	at, ok := deadline(since, d)
	return ok && !now.Before(at)
}

// AgentReplied returns the clock after an agent's public reply at at: the
// ticket is open and a fresh wait for the customer starts, so a reminder
// is owed again. An on-hold ticket stays on hold and its clock stays stopped.
func AgentReplied(c Clock, at time.Time) Clock {
	if c.Status == StatusOnHold {
		return c
	}
	return Clock{Status: StatusOpen, AwaitingSince: at}
}

// CustomerReplied returns the clock after the customer wrote: the wait
// stops, and waiting, resolved and closed tickets open again (as
// StatusOnCustomerReply says); new and on-hold tickets keep their status.
func CustomerReplied(c Clock, at time.Time) Clock {
	return Clock{Status: StatusOnCustomerReply(c.Status)}
}

// SetStatus returns the clock after the status was set to s at at.
// Resolved records at as ResolvedAt for the automatic close. Waiting keeps
// the current wait (and whether its reminder went), or starts one at at,
// so the ticket is still reminded and closes on its own. Every other
// status stops the wait. Setting the current status, or an
// unknown one, changes nothing.
func SetStatus(c Clock, s Status, at time.Time) Clock {
	if _, ok := ParseStatus(string(s)); !ok || s == c.Status {
		return c
	}
	switch s {
	case StatusResolved:
		return Clock{Status: s, ResolvedAt: at}
	case StatusWaiting:
		if c.AwaitingSince.IsZero() {
			return Clock{Status: s, AwaitingSince: at}
		}
		return Clock{Status: s, AwaitingSince: c.AwaitingSince, Reminded: c.Reminded}
	}
	return Clock{Status: s}
}
