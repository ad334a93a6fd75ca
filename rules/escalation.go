package rules

import (
	"encoding/json"
	"slices"
	"time"
)

// EscalationPolicy is level 2: where an escalated ticket goes and the
// clock it runs on from then on.
type EscalationPolicy struct {
	// Queue is the queue an escalated ticket moves to; "" keeps its queue.
	Queue string
	// Calendar names the calendar (in SLAPolicy.Calendars) level 2's
	// business units and critical follow-ups count in; "" is
	// SLAPolicy.Hours for targets and around the clock for follow-ups.
	Calendar string
	// Target is level 2's first response and resolution target, counted
	// from the escalation.
	Target Target
	// OnBreach escalates a ticket when a level-1 target is breached.
	OnBreach bool
}

// Escalation is level 2's clock on an escalated ticket. Its JSON field
// names are a public contract; "breached" is always a list, never null.
type Escalation struct {
	Level            int        `json:"level"` // 2
	At               time.Time  `json:"at"`    // when the ticket was escalated
	FirstResponseDue time.Time  `json:"first_response_due"`
	FirstResponseAt  *time.Time `json:"first_response_at"` // the first public agent reply at level 2
	ResolutionDue    time.Time  `json:"resolution_due"`
	Breached         []string   `json:"breached"`         // kinds whose level-2 breach alert was raised
	Warned           []string   `json:"warned,omitempty"` // kinds whose level-2 warning was raised
}

// MarshalJSON encodes the escalation with "breached" as [] rather than null.
func (e Escalation) MarshalJSON() ([]byte, error) {
	type plain Escalation
	if e.Breached == nil {
		e.Breached = []string{}
	}
	return json.Marshal(plain(e))
}

// escalationHours is the calendar level 2's targets count in.
func (p SLAPolicy) escalationHours() BusinessHours {
	if h, ok := p.Calendars[p.Escalation.Calendar]; ok && p.Escalation.Calendar != "" {
		return h
	}
	return p.Hours
}

// Escalate returns the SLA moved to level 2 at at: level 2's due times
// count from at in its calendar, and from then on Check raises level 2's
// alerts instead of level 1's. Escalating an escalated SLA changes nothing.
func (p SLAPolicy) Escalate(s SLA, at time.Time) SLA {
	if s.Escalation != nil {
		return s
	}
	h := p.escalationHours()
	s.Escalation = &Escalation{
		Level:            2,
		At:               at,
		FirstResponseDue: p.Escalation.Target.FirstResponse.From(h, at),
		ResolutionDue:    p.Escalation.Target.Resolution.From(h, at),
		Breached:         []string{},
	}
	return s
}

// EscalationQueue is the queue a ticket of queue moves to when escalated.
func (p SLAPolicy) EscalationQueue(queue string) string {
	if p.Escalation.Queue != "" {
		return p.Escalation.Queue
	}
	return queue
}

// resumeEscalation moves level 2's resolution due time later by the part
// of the pause [s.PausedAt, at) that came after the escalation, in the
// target's units; a warning raised for the old due time is forgotten.
func (p SLAPolicy) resumeEscalation(s SLA, at time.Time) SLA {
	e := s.Escalation
	if e == nil || e.ResolutionDue.IsZero() {
		return s
	}
	from := later(s.PausedAt, e.At)
	if !at.After(from) {
		return s
	}
	c := *e
	if span := p.Escalation.Target.Resolution; span.business() {
		h := p.escalationHours()
		c.ResolutionDue = h.Add(c.ResolutionDue, h.Between(from, at))
	} else {
		c.ResolutionDue = c.ResolutionDue.Add(at.Sub(from))
	}
	if !c.ResolutionDue.Equal(e.ResolutionDue) {
		c.Warned = slices.DeleteFunc(slices.Clone(c.Warned), func(k string) bool { return k == KindResolution })
		if len(c.Warned) == 0 {
			c.Warned = nil
		}
	}
	s.Escalation = &c
	return s
}

// followHours is the calendar critical follow-ups count in: the level's
// named calendar (level 2's when escalated, else the queue's), or none,
// and then they count around the clock.
func (p SLAPolicy) followHours(s SLA) (BusinessHours, bool) {
	name := s.Calendar
	if s.Escalation != nil {
		name = p.Escalation.Calendar
	}
	h, ok := p.Calendars[name]
	return h, ok && name != ""
}

// followDue is when a critical ticket's next follow-up reminder is due:
// CriticalUpdateEvery after the latest of its creation, its latest public
// update and its latest reminder, counted in the level's calendar. Zero
// when none is due: follow-ups off, not critical, or resolved.
func (p SLAPolicy) followDue(s SLA) time.Time {
	if p.CriticalUpdateEvery <= 0 || s.Priority != PriorityCritical || !s.ResolvedAt.IsZero() {
		return time.Time{}
	}
	base := later(later(s.CreatedAt, s.PublicAt), s.FollowedAt)
	if h, ok := p.followHours(s); ok {
		return h.Add(base, p.CriticalUpdateEvery)
	}
	return base.Add(p.CriticalUpdateEvery)
}

// FollowUp reports whether a critical ticket's follow-up reminder is due
// at now, and returns the SLA with it recorded: the next one is due a whole
// interval after now, so a sweep that was down for hours sends one
// reminder, not one per missed interval.
func (p SLAPolicy) FollowUp(s SLA, now time.Time) (bool, SLA) {
	due := p.followDue(s)
	if due.IsZero() || now.Before(due) {
		return false, s
	}
	s.FollowedAt = now
	return true, s
}

// FollowUpDue is when the next critical follow-up is due (zero: none).
func (p SLAPolicy) FollowUpDue(s SLA) time.Time { return p.followDue(s) }

// KeepsAssignee reports whether a ticket escalated into queue stays with
// its assignee: only when they could take it there themselves ("#assign
// me": an agent of that queue, or a manager). Otherwise the ticket is
// level 2's to take, as an unassigned ticket of the queue is; left with a
// level-1 assignee, level 2's replies would be held as notes.
func KeepsAssignee(assignee Actor, queue string) bool {
	return Authorize(Command{Name: "assign", Assign: "me"}, assignee, TicketView{Queue: queue}) == nil
}

// TakeEscalation returns dst, the SLA of a ticket another (src) is merged
// into at at, on src's level-2 clock when src was escalated and dst was
// not: the escalation the customer asked for goes on where the
// conversation does, its due times counted from src's escalation, src's
// pauses until at included. Otherwise dst is returned as it is.
func (p SLAPolicy) TakeEscalation(dst, src SLA, at time.Time) SLA {
	if dst.Escalation != nil || src.Escalation == nil {
		return dst
	}
	s := p.Resume(p.Reopen(src, at), at)
	e := *s.Escalation
	e.Breached = slices.Clone(e.Breached)
	e.Warned = slices.Clone(e.Warned)
	dst.Escalation = &e
	return dst
}
