package mailout

import (
	"time"

	"ticketgate/rules"
	"ticketgate/store"
)

// Policy keeps the support policy's promises about time on a ticket: the
// awaiting-customer clock, SLA targets and the satisfaction survey. The
// pipeline and agent handling call its hooks whenever a ticket changes, in
// the same transaction; a nil *Policy does nothing.
type Policy struct {
	Lifecycle rules.Lifecycle
	SLA       rules.SLAPolicy
}

// Created starts the clocks of a new ticket.
func (p *Policy) Created(t *store.Ticket, now time.Time) {}

// CustomerReplied stops the awaiting-customer clock and resumes paused SLA clocks.
func (p *Policy) CustomerReplied(t *store.Ticket, now time.Time) {}

// AgentReplied records a public agent reply: first response, and the start
// (or restart) of the awaiting-customer clock.
func (p *Policy) AgentReplied(t *store.Ticket, now time.Time) {}

// StatusChanged follows a status change made by anyone (t.Status is the new one).
func (p *Policy) StatusChanged(t *store.Ticket, from rules.Status, now time.Time) {}

// PriorityChanged recomputes SLA due times.
func (p *Policy) PriorityChanged(t *store.Ticket, now time.Time) {}

// Due is when the scheduler must next look at t (zero: never). The store
// keeps it in its due index.
func (p *Policy) Due(t *store.Ticket) time.Time { return time.Time{} }

// SurveyReply handles a customer's mail to a closed ticket whose survey was
// sent: a rating is stored and thanked once, and handled is true (the
// ticket stays closed). Anything else returns false and follows the reopen
// policy.
func (p *Policy) SurveyReply(tx *store.Tx, d *Desk, t *store.Ticket, visible string, now time.Time) (handled bool, err error) {
	return false, nil
}
