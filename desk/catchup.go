package desk

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"ticketgate/rules"
	"ticketgate/store"
)

// dueCaughtUp holds the policies (with the settings that time a ticket's
// steps) whose tickets were given their due times (policyDue).
var dueCaughtUp sync.Map

// dueKey is what a catch-up of due times is done once for.
type dueKey struct {
	p                  *Policy
	lifecycle          rules.Lifecycle
	warn, every, after time.Duration
}

// dueStatuses are the statuses whose tickets a policy may have something
// due for: every one but closed, whose tickets only retention reaches.
var dueStatuses = []rules.Status{rules.StatusNew, rules.StatusOpen, rules.StatusWaiting, rules.StatusOnHold, rules.StatusResolved}

// policyDue gives every ticket whose policy has something due for it
// sooner than its due time says that earlier due time, once per policy:
// a ticket keeps the due time of the policy it was last written under,
// and the sweep reads due tickets only. Without it a step turned on or
// made shorter by a restart or reload (a reminder sooner, the close of
// resolved tickets, warnings, critical follow-ups, [retention]) would
// reach the tickets already waiting late, or never. It is written through
// Apply, like every change, in transactions of one batch each; a page the
// store keeps refusing for conflicts with other writers is read again in
// pages a tenth as big, down to one ticket, as the sweep's batches are.
func (s *Sweeper) policyDue(ctx context.Context) error {
	p := s.Policy
	key := dueKey{p, p.Lifecycle, p.SLA.WarnBefore, p.SLA.CriticalUpdateEvery, p.Retention.After}
	if _, done := dueCaughtUp.Load(key); done {
		return nil
	}
	size := s.batch()
	for _, st := range s.dueStatuses() {
		after := ""
		for {
			var next string
			err := s.Store.UpdateNow(ctx, func(tx store.Tx) error {
				// Run again after a conflict, the page starts where it did.
				var err error
				next, err = s.duePage(tx, st, after, size)
				return err
			})
			if errors.Is(err, store.ErrConflict) && size > 1 {
				size = max(1, size/10)
				s.log().Info("catching due times up kept conflicting with other writes; in smaller pages", "tickets", size)
				continue
			}
			if err != nil {
				return fmt.Errorf("sweep: due times: %w", err)
			}
			if after = next; after == "" {
				break
			}
		}
	}
	dueCaughtUp.Store(key, true)
	return nil
}

// catchUpDue is policyDue inside one transaction (a dry run).
func (s *Sweeper) catchUpDue(ctx context.Context, tx store.Tx) error {
	for _, st := range s.dueStatuses() {
		after := ""
		for {
			if err := ctx.Err(); err != nil {
				return err
			}
			var err error
			if after, err = s.duePage(tx, st, after, s.batch()); err != nil {
				return err
			}
			if after == "" {
				break
			}
		}
	}
	return nil
}

// dueStatuses are the statuses whose tickets policyDue reads: closed
// ones too while retention is on.
func (s *Sweeper) dueStatuses() []rules.Status {
	if s.Policy.Retention.After > 0 {
		return append(dueStatuses[:len(dueStatuses):len(dueStatuses)], rules.StatusClosed)
	}
	return dueStatuses
}

// duePage writes back the tickets of status st on one page of size (from
// cursor after) that the policy has something due for earlier than their due
// time, and returns the next page's cursor ("" after the last).
func (s *Sweeper) duePage(tx store.Tx, st rules.Status, after string, size int) (string, error) {
	list, next, err := tx.Tickets(store.Filter{Status: st, Sort: store.SortCreated, Limit: size, After: after})
	if errors.Is(err, store.ErrBadRecord) {
		// Damage, which check reports; the sweep passes the ticket
		// over (sweepTicket) and catches the others up.
		s.log().Error("ticket passed over by the sweep: it does not decode; run check", "err", err)
		err = nil
	}
	if err != nil {
		return "", err
	}
	for _, t := range list {
		at := s.Policy.Due(t)
		if at.IsZero() || (!t.Due.IsZero() && !t.Due.After(at)) {
			continue
		}
		if err := Apply(tx, s.Desk, at, &Change{Ticket: t}); err != nil {
			return "", err
		}
	}
	return next, nil
}
