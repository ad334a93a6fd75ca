package main

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"ticketgate/store"
)

// health lists what keeps the gateway from doing its work, for /healthz:
// a database it cannot commit to, a disk about to fill, a listener at its
// connection cap, an outbox whose due mail is not being sent. Empty means
// healthy.
func (a *app) health(ctx context.Context) []string {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var problems []string
	// An empty read-write transaction still commits (and syncs) bbolt's
	// meta page: a read-only or failing disk shows here.
	if err := a.store.UpdateNow(ctx, func(store.Tx) error { return nil }); err != nil {
		problems = append(problems, "database cannot be written: "+err.Error())
	}
	if min := a.cfg.Admin.MinFreeBytes; min > 0 {
		dir := filepath.Dir(a.cfg.Store.Path)
		free, err := diskFree(dir)
		switch {
		case err != nil:
			problems = append(problems, fmt.Sprintf("free space of %s: %v", dir, err))
		case free >= 0 && free < min:
			problems = append(problems, fmt.Sprintf("disk holding %s has %d bytes free, under admin.min_free_bytes %d", dir, free, min))
		}
	}
	if a.gw != nil {
		for _, l := range a.gw.listeners {
			if open, max := l.Load(); max > 0 && open >= max {
				problems = append(problems, fmt.Sprintf("listener %s is at its connection cap (%d of %d)", l.Addr(), open, max))
			}
		}
	}
	if max := dur(a.cfg.Admin.OutboxMaxAge, 0); max > 0 {
		if p := a.outboxLag(ctx, max); p != "" {
			problems = append(problems, p)
		}
	}
	return problems
}

// outboxLag reports the earliest due outbox entry when it has waited past
// its due time for longer than max: the worker is stuck or far behind.
// (Mail deferred after a failed attempt is not due until its retry.)
func (a *app) outboxLag(ctx context.Context, max time.Duration) string {
	now := time.Now()
	var next time.Time
	if err := a.store.View(ctx, func(tx store.Tx) error {
		due, err := tx.Outbox(now, 1)
		if err != nil || len(due) == 0 {
			return err
		}
		// Mail due at once is queued with no NextAt: it is due since
		// it was queued (as store.Stats has it).
		next = due[0].NextAt
		if next.IsZero() {
			next = due[0].Created
		}
		return nil
	}); err != nil {
		return "outbox cannot be read: " + err.Error()
	}
	if next.IsZero() || now.Sub(next) <= max {
		return ""
	}
	return fmt.Sprintf("outbox: the oldest due mail has waited %s since it fell due at %s, over admin.outbox_max_age %s",
		now.Sub(next).Round(time.Second), next.UTC().Format(time.RFC3339), max)
}
