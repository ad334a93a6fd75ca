package postgres

import (
	"context"
	"fmt"
	"time"
)

// outboxChannel is the channel a transaction that queues mail notifies at
// its commit (PostgreSQL delivers a NOTIFY only when its transaction
// commits, and once however often it was sent in it).
const outboxChannel = "ticketgate_outbox"

func (t *tx) notify() error {
	if t.notified {
		return nil
	}
	if err := t.exec(`SELECT pg_notify($1, '')`, outboxChannel); err != nil {
		return fmt.Errorf("notify queued mail: %w", err)
	}
	t.notified = true
	return nil
}

// Listen calls wake each time a process sharing the database (this one
// included) commits new mail to the outbox, until ctx ends, so that an
// idle gateway's outbox worker looks at once rather than at its next
// timer. It holds a connection of its own; after losing it, it connects
// again (with a pause) and calls wake, since a notification may have been
// missed meanwhile.
func (d *DB) Listen(ctx context.Context, wake func()) {
	defer func() {
		if r := recover(); r != nil {
			d.log.Error("outbox listener panic", "panic", r)
		}
	}()
	for ctx.Err() == nil {
		err := d.listenOnce(ctx, wake)
		if ctx.Err() != nil {
			return
		}
		d.log.Warn("outbox listener lost its connection; connecting again", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

func (d *DB) listenOnce(ctx context.Context, wake func()) error {
	conn, err := d.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	// The connection carries a LISTEN: it does not go back to the pool.
	pc := conn.Hijack()
	defer pc.Close(context.WithoutCancel(ctx))
	if _, err := pc.Exec(ctx, "LISTEN "+outboxChannel); err != nil {
		return err
	}
	wake()
	for {
		if _, err := pc.WaitForNotification(ctx); err != nil {
			return err
		}
		wake()
	}
}
