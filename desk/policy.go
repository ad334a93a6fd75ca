package desk

import (
	"fmt"
	"net/mail"
	"strings"
	"time"

	"ticketgate/mailout"
	"ticketgate/rules"
	"ticketgate/store"
)

// AgentRef is what the policy needs to know about an agent to alert them:
// their address, name, the queues they work (alerts on unassigned tickets
// of those queues; an agent without queues gets none) and whether they
// manage the desk (managers get every SLA alert).
type AgentRef struct {
	Email   string
	Name    string
	Queues  []string
	Manager bool
}

// Policy keeps the support policy's promises about time on a ticket: the
// awaiting-customer clock, SLA targets and the satisfaction survey. The
// pipeline and agent handling call its hooks whenever a ticket changes, in
// the same transaction; a nil *Policy does nothing.
type Policy struct {
	Lifecycle rules.Lifecycle
	SLA       rules.SLAPolicy
	// Agents receive SLA alerts: the assignee, or the queue's agents when
	// the ticket is unassigned, and the managers.
	Agents []AgentRef
	// ReopenWindow is how long a customer may reopen a closed ticket by
	// replying; the closing notice tells them.
	ReopenWindow time.Duration
	// Notify lists the statuses whose setting by an agent or operator mails
	// the customer (nil: rules.DefaultNotify, resolved and closed).
	Notify map[rules.Status]bool
	// Retention deletes the bodies and attachments of tickets closed
	// long enough ([retention]); the sweep does it.
	Retention rules.Retention
}

// clockOf returns the ticket's lifecycle clock in step with its status. The
// clock may only run ahead of the status on a new ticket an agent answered
// (the wait has started, the status change may follow); any other mismatch
// comes from a change made without the hooks, and the status wins.
func clockOf(t *store.Ticket) rules.Clock {
	c := t.Clock
	if c.Status == t.Status || (t.Status == rules.StatusNew && c.Status == rules.StatusOpen) {
		return c
	}
	from := c
	from.Status = ""
	return rules.SetStatus(from, t.Status, t.UpdatedAt)
}

// Created starts the clocks of a new ticket: the lifecycle clock at rest and
// the SLA due times for its priority and plan.
func (p *Policy) Created(t *store.Ticket, now time.Time) {
	p.createdIn(t, t.Queue, now)
}

// createdIn is Created with level 1 counting in the calendar of queue, the
// queue the ticket was opened in (an escalation may have moved it since).
func (p *Policy) createdIn(t *store.Ticket, queue string, now time.Time) {
	if p == nil {
		return
	}
	t.Clock = rules.Clock{Status: t.Status}
	s := p.SLA.StartIn(now, t.Priority, t.Plan, queue)
	if t.Escalated {
		// Opened at the escalation address: level 2 from the start.
		s = p.SLA.Escalate(s, now)
	}
	t.SLA = &s
}

// Escalate moves t to level 2 at now: it is flagged escalated, moves to the
// escalation queue (leaving an assignee who does not work that queue, so
// that level 2 takes it), and level 2's SLA clock starts. It returns what it
// changed besides the flag, for the escalated event ("" for nothing).
// Callers escalate a ticket once; a level-2 clock already running is kept.
func (p *Policy) Escalate(t *store.Ticket, now time.Time) string {
	t.Escalated = true
	if p == nil {
		return ""
	}
	var parts []string
	if q := p.SLA.EscalationQueue(t.Queue); q != t.Queue {
		parts = append(parts, fmt.Sprintf("queue %s → %s", t.Queue, q))
		t.Queue = q
		if t.Assignee != "" && !rules.KeepsAssignee(p.actor(t.Assignee), q) {
			parts = append(parts, fmt.Sprintf("%s no longer assigned (not an agent of %s)", t.Assignee, q))
			t.Assignee = ""
		}
	}
	if t.SLA != nil && t.SLA.Escalation == nil {
		s := p.SLA.Escalate(*t.SLA, now)
		t.SLA = &s
		e := s.Escalation
		d := "level 2"
		if !e.FirstResponseDue.IsZero() {
			d += ", first response due " + e.FirstResponseDue.UTC().Format(time.RFC3339)
		}
		if !e.ResolutionDue.IsZero() {
			d += ", resolution due " + e.ResolutionDue.UTC().Format(time.RFC3339)
		}
		parts = append(parts, d)
	}
	return strings.Join(parts, "; ")
}

// TakeEscalation escalates t, into which src is merged at now, when src
// was escalated and t was not: t moves to level 2 as Escalate moves it,
// on src's level-2 clock. It returns what it changed for t's escalated
// event, or "" when t stays as it was.
func (p *Policy) TakeEscalation(t, src *store.Ticket, now time.Time) string {
	if !src.Escalated || t.Escalated {
		return ""
	}
	if p != nil && t.SLA != nil && src.SLA != nil {
		s := p.SLA.TakeEscalation(*t.SLA, *src.SLA, now)
		t.SLA = &s
	}
	d := "escalated as " + src.ID + " was"
	if more := p.Escalate(t, now); more != "" {
		d += "; " + more
	}
	if t.SLA != nil && t.SLA.Escalation != nil && src.SLA != nil && src.SLA.Escalation != nil {
		e := t.SLA.Escalation
		d += "; level 2 since " + e.At.UTC().Format(time.RFC3339)
		if !e.FirstResponseDue.IsZero() {
			d += ", first response due " + e.FirstResponseDue.UTC().Format(time.RFC3339)
		}
		if !e.ResolutionDue.IsZero() {
			d += ", resolution due " + e.ResolutionDue.UTC().Format(time.RFC3339)
		}
	}
	return d
}

// actor is what the rules know of the agent addr (no queues, no rights
// for an address that is no agent).
func (p *Policy) actor(addr string) rules.Actor {
	for _, a := range p.Agents {
		if strings.EqualFold(a.Email, addr) {
			return rules.Actor{Email: a.Email, Manager: a.Manager, Queues: a.Queues}
		}
	}
	return rules.Actor{Email: addr}
}

// CustomerReplied stops the awaiting-customer clock and resumes paused SLA
// clocks (unless the ticket is still on hold).
func (p *Policy) CustomerReplied(t *store.Ticket, now time.Time) {
	if p == nil {
		return
	}
	c := rules.CustomerReplied(clockOf(t), now)
	c.Status = t.Status
	t.Clock = c
	p.followSLA(t, now)
}

// AgentReplied records a public agent reply: first response, and the start
// (or restart) of the awaiting-customer clock. A ticket on hold, resolved
// or closed keeps its clock; a waiting ticket keeps waiting, with a fresh
// wait.
func (p *Policy) AgentReplied(t *store.Ticket, now time.Time) {
	if p == nil {
		return
	}
	if t.SLA != nil {
		s := t.SLA.Responded(now)
		t.SLA = &s
	}
	switch t.Status {
	case rules.StatusNew, rules.StatusOpen, rules.StatusWaiting:
		c := rules.AgentReplied(clockOf(t), now)
		if t.Status == rules.StatusWaiting {
			c.Status = rules.StatusWaiting
		}
		t.Clock = c
	}
}

// followSLA pauses, resumes or stops the SLA clocks to match the status.
func (p *Policy) followSLA(t *store.Ticket, now time.Time) {
	if t.SLA == nil {
		return
	}
	s := *t.SLA
	switch t.Status {
	case rules.StatusOnHold, rules.StatusWaiting:
		s = s.Pause(now)
	case rules.StatusResolved, rules.StatusClosed:
		s = p.SLA.Resume(s, now).Resolve(now)
	default:
		s = p.SLA.Resume(s, now)
	}
	t.SLA = &s
}

// PriorityChanged recomputes SLA due times for the ticket's priority and
// plan, keeping the time already paused and the breaches already raised.
func (p *Policy) PriorityChanged(t *store.Ticket, now time.Time) {
	if p == nil {
		return
	}
	if t.SLA == nil {
		s := p.SLA.StartIn(t.CreatedAt, t.Priority, t.Plan, t.Queue)
		t.SLA = &s
		return
	}
	s := *t.SLA
	s.Plan = t.Plan
	s = p.SLA.Reprioritise(s, t.Priority)
	t.SLA = &s
}

// Due is when the scheduler must next look at t (zero: never): the next
// lifecycle step or the next SLA alert, whichever comes first. The store
// keeps it in its due index.
func (p *Policy) Due(t *store.Ticket) time.Time {
	if p == nil {
		return time.Time{}
	}
	due := p.Lifecycle.Due(clockOf(t))
	if t.SLA != nil {
		if at := p.SLA.NextCheck(*t.SLA); !at.IsZero() && (due.IsZero() || at.Before(due)) {
			due = at
		}
	}
	if at := p.Retention.Due(t.Status, t.ClosedAt, t.BodiesDeletedAt); !at.IsZero() && (due.IsZero() || at.Before(due)) {
		due = at
	}
	return due
}

// surveyReply handles a customer's mail to a closed ticket whose survey was
// sent: a rating is stored and thanked once, and handled is true (the
// ticket stays closed). Anything else returns false and follows the reopen
// policy. A later rating replaces the stored one, thanked only when it
// answers the survey of a later closing.
func (p *Policy) surveyReply(c *Change, visible string, now time.Time) bool {
	if p == nil {
		return false
	}
	r, ok := rules.ParseRating(visible)
	if !ok {
		return false
	}
	t := c.Ticket
	replaces := t.Satisfaction != nil
	// The first answer to this closing's survey is thanked: a rating
	// given before the ticket was reopened and closed again answered
	// another survey.
	first := !replaces || t.ClosedAt != nil && t.Satisfaction.At.Before(*t.ClosedAt)
	t.Satisfaction = &store.Satisfaction{Score: r.Score, Comment: r.Comment, At: now}
	c.log(store.Event{At: now, Type: rules.EventSatisfaction, Detail: ratingDetail(r.Score, r.Comment, replaces), Actor: t.Requester})
	if first {
		c.send(Intent{Out: mailout.Out{Kind: "survey_thanks", To: requester(t), Template: "survey_thanks",
			Data: map[string]any{"Name": t.RequesterName, "Score": r.Score, "Comment": r.Comment},
			Auto: "auto-replied", Record: true}})
	}
	return true
}

// replacesRating ends the detail of a rating that replaces an earlier one.
const replacesRating = " (replaces the earlier rating)"

// ratingDetail is the detail of a satisfaction event: "rated 4/5", the
// comment after a colon, and whether it replaces an earlier rating.
func ratingDetail(score int, comment string, replaces bool) string {
	detail := fmt.Sprintf("rated %d/5", score)
	if comment != "" {
		detail += ": " + comment
	}
	if replaces {
		detail += replacesRating
	}
	return detail
}

// ratingWithoutComment is a satisfaction event's detail with the
// customer's comment left out (forget): the score stays, and so does the
// "[HS-123456] " in front of a rating a merge copied.
func ratingWithoutComment(detail string) string {
	copied, rating, _ := strings.Cut(detail, "rated ")
	var score int
	if _, err := fmt.Sscanf(rating, "%d/5", &score); err != nil {
		return "rating, its comment erased"
	}
	return copied + ratingDetail(score, "", strings.HasSuffix(detail, replacesRating))
}

// requester is the customer a ticket's automatic mail goes to.
func requester(t *store.Ticket) []mail.Address {
	return []mail.Address{{Name: t.RequesterName, Address: t.Requester}}
}
