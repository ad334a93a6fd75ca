package store

import (
	"context"
	"time"
)

// WithDue returns s with PutTicket setting t.Due to due(t) before the
// ticket is written, so the due index changes in the same transaction as
// the ticket. It is how the scheduler's policy reaches every writer; Close
// and reads pass through unchanged.
func WithDue(s Store, due func(*Ticket) time.Time) Store {
	if d, ok := s.(*dueStore); ok {
		s = d.Store
	}
	return &dueStore{Store: s, due: due}
}

type dueStore struct {
	Store
	due func(*Ticket) time.Time
}

func (s *dueStore) wrap(fn func(Tx) error) func(Tx) error {
	return func(tx Tx) error { return fn(&dueTx{Tx: tx, due: s.due}) }
}

func (s *dueStore) Update(ctx context.Context, fn func(Tx) error) error {
	return s.Store.Update(ctx, s.wrap(fn))
}

func (s *dueStore) UpdateNow(ctx context.Context, fn func(Tx) error) error {
	return s.Store.UpdateNow(ctx, s.wrap(fn))
}

func (s *dueStore) UpdateSoon(ctx context.Context, fn func(Tx) error) error {
	return s.Store.UpdateSoon(ctx, s.wrap(fn))
}

func (s *dueStore) DryRun(ctx context.Context, fn func(Tx) error) error {
	return s.Store.DryRun(ctx, s.wrap(fn))
}

type dueTx struct {
	Tx
	due func(*Ticket) time.Time
}

func (tx *dueTx) PutTicket(t *Ticket) error {
	t.Due = tx.due(t)
	return tx.Tx.PutTicket(t)
}
