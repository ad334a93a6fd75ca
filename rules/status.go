package rules

import (
	"fmt"
	"time"
)

// Cause says who or what moves a ticket to another status.
type Cause string

// The causes of a status change.
const (
	CauseCustomer  Cause = "customer"  // the customer wrote
	CauseAgent     Cause = "agent"     // an agent's public reply
	CauseCommand   Cause = "command"   // an agent's #status or #close
	CauseOperator  Cause = "operator"  // the command line or the admin API
	CauseLifecycle Cause = "lifecycle" // the sweep: no answer from the customer, or resolved long enough
)

// Notice is a mail to the customer that a status change asks for, named by
// the template that writes it.
type Notice string

// The notices a status change can ask for.
const (
	NoticeResolution Notice = "resolution" // resolved or closed by a person
	NoticeClosed     Notice = "closed"     // closed by the lifecycle, with how to reopen
	NoticeWaiting    Notice = "waiting"    // waiting for the customer, by the lifecycle
	NoticeStatus     Notice = "status"     // any other status a person set, when the policy says so
	NoticeSurvey     Notice = "survey"     // how did we do?
)

// StatusPolicy is what the status state machine needs to know: the
// lifecycle's clock rules, the SLA policy, and which statuses the customer
// is told of when a person sets them.
type StatusPolicy struct {
	Lifecycle Lifecycle
	SLA       SLAPolicy
	// Notify lists the statuses whose setting by an agent or operator mails
	// the customer (DefaultNotify when nil). The lifecycle's own steps tell
	// the customer whatever this says; a customer's own mail is never
	// answered with a notice.
	Notify map[Status]bool
}

// DefaultNotify is the statuses a customer hears of by default: resolved
// and closed; on hold and waiting are the desk's own business.
func DefaultNotify() map[Status]bool {
	return map[Status]bool{StatusResolved: true, StatusClosed: true}
}

// StatusState is the part of a ticket the state machine reads and writes.
type StatusState struct {
	Status     Status
	Clock      Clock
	SLA        *SLA      // nil: the ticket has no SLA
	ClosedAt   time.Time // zero unless closed
	SurveySent bool      // the survey of the current closing went out
	// HasRequester is false for a ticket with no customer address: nobody
	// to send notices to.
	HasRequester bool
}

// StatusChange asks for a ticket to move to status To.
type StatusChange struct {
	To    Status
	Cause Cause
	Why   string // for the event, e.g. "agent replied"
	At    time.Time
	// WithReply is set when the change comes with an agent's public reply:
	// the reply itself carries the notice (one mail, with the agent's text),
	// so none is sent on its own and ReplyNotice says which to use.
	WithReply bool
	// Quiet is set when the change tells the customer nothing: no
	// notice and no survey (a merge closes its source so, the
	// conversation going on in the ticket it went into).
	Quiet bool
}

// StatusDecision is what a status change does.
type StatusDecision struct {
	State   StatusState
	Changed bool
	// Events for the activity log, in order; their Detail is final.
	Events []DecidedEvent
	// Notices are the mails the customer gets, in order.
	Notices []Notice
	// ReplyNotice, when set, is the notice the accompanying agent reply is
	// written as (WithReply).
	ReplyNotice Notice
}

// DecidedEvent is an activity-log entry decided by rules.
type DecidedEvent struct {
	Type   EventType
	Detail string
}

// Move is the ticket status state machine: the only code that decides a
// status change and what follows from it. Every entry point (customer
// mail, agent mail and commands, operator actions, the lifecycle sweep)
// asks it. Its effects are decided here once:
//   - the lifecycle clock follows the new status (a resolved ticket's
//     automatic close starts counting, waiting keeps its wait, and a
//     public reply that sets open or waiting starts the wait for the
//     customer);
//   - the SLA resolution clock pauses on hold and while waiting, stops at
//     resolution and closing, and runs again on reopening, the time spent
//     resolved counting as paused, so its alerts fire again;
//   - closing stamps ClosedAt and asks for the survey once per closing;
//     leaving closed clears both and is a reopening;
//   - the customer is told of statuses the policy marks (a person's
//     change) or of the lifecycle's waiting and closing.
//
// Moving to the current status, or to an unknown one, changes nothing.
func (p StatusPolicy) Move(s StatusState, c StatusChange) StatusDecision {
	d := StatusDecision{State: s}
	from := s.Status
	if _, ok := ParseStatus(string(c.To)); !ok || c.To == from {
		return d
	}
	to, at := c.To, c.At
	d.Changed = true
	n := &d.State
	n.Status = to
	n.Clock = p.clockAfter(s.Clock, from, c)
	if s.SLA != nil {
		sla := p.slaAfter(*s.SLA, from, to, at)
		n.SLA = &sla
	}
	switch {
	case to == StatusClosed:
		n.ClosedAt = at
		n.SurveySent = false
	case from == StatusClosed:
		n.ClosedAt = time.Time{}
		n.SurveySent = false
		d.Events = append(d.Events, DecidedEvent{EventReopened, reopenDetail(c)})
	}
	d.Events = append(d.Events, DecidedEvent{EventStatus, statusDetail(from, to, c)})
	p.notices(&d, from, c)
	return d
}

// clockAfter is the lifecycle clock after the change. The customer's mail
// stops the wait; a public reply that sets the ticket open or waiting
// starts a fresh wait; every other change sets the status on the clock.
func (p StatusPolicy) clockAfter(c Clock, from Status, ch StatusChange) Clock {
	switch {
	case ch.Cause == CauseCustomer:
		return Clock{Status: ch.To}
	case ch.WithReply && (ch.To == StatusOpen || ch.To == StatusWaiting):
		return Clock{Status: ch.To, AwaitingSince: ch.At}
	}
	c.Status = from
	c = SetStatus(c, ch.To, ch.At)
	if ch.Cause == CauseLifecycle && ch.To == StatusWaiting {
		// The waiting notice asks for the answer: no reminder after it
		// (Lifecycle.Next).
		c.Reminded = true
	}
	return c
}

// slaAfter is the SLA after a change from from to to at at.
func (p StatusPolicy) slaAfter(s SLA, from, to Status, at time.Time) SLA {
	if isDone(from) && !isDone(to) {
		s = p.SLA.Reopen(s, at)
	}
	switch to {
	case StatusOnHold, StatusWaiting:
		return s.Pause(at)
	case StatusResolved, StatusClosed:
		return p.SLA.Resume(s, at).Resolve(at)
	}
	return p.SLA.Resume(s, at)
}

// notices decides the mails to the customer.
func (p StatusPolicy) notices(d *StatusDecision, from Status, c StatusChange) {
	if !d.State.HasRequester || c.Cause == CauseCustomer || c.Quiet {
		return
	}
	to := c.To
	if c.Cause == CauseLifecycle {
		switch to {
		case StatusWaiting:
			d.Notices = append(d.Notices, NoticeWaiting)
		case StatusClosed:
			d.Notices = append(d.Notices, NoticeClosed)
		}
	} else if p.notify()[to] {
		notice := NoticeStatus
		if isDone(to) {
			notice = NoticeResolution
		}
		if c.WithReply {
			d.ReplyNotice = notice
		} else {
			d.Notices = append(d.Notices, notice)
		}
	}
	if to == StatusClosed {
		d.Notices = append(d.Notices, NoticeSurvey)
		d.State.SurveySent = true
	}
}

func (p StatusPolicy) notify() map[Status]bool {
	if p.Notify == nil {
		return DefaultNotify()
	}
	return p.Notify
}

// isDone reports whether s ends the work on a ticket.
func isDone(s Status) bool { return s == StatusResolved || s == StatusClosed }

func statusDetail(from, to Status, c StatusChange) string {
	why := c.Why
	if why == "" {
		why = string(c.Cause)
	}
	return fmt.Sprintf("%s → %s (%s)", from, to, why)
}

func reopenDetail(c StatusChange) string {
	switch c.Cause {
	case CauseCustomer:
		return "customer replied to the closed ticket"
	case CauseLifecycle:
		return "reopened by the lifecycle"
	}
	return "reopened by " + string(c.Cause)
}
