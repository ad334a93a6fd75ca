package mailout

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"os"
	"strings"
	"sync"
	"time"

	"ticketgate/rules"
	"ticketgate/store"
)

// Sender delivers one message; *Relay is the real one.
type Sender interface {
	Send(from string, to []string, raw []byte) ([]RcptError, error)
}

// Worker delivers the outbox. A message leaves the outbox only after the
// relay accepted it or failed it permanently; a relay that is down only
// delays delivery. Each message is handed to the relay at most once per
// successful attempt (a crash between the relay's 250 and our commit can
// repeat it, the only window left).
type Worker struct {
	Store     store.Store
	Sender    Sender
	Log       *slog.Logger
	RetryBase time.Duration // first retry delay (default 1m), doubling to 6h
	GiveUp    time.Duration // fail a message still queued after this (default 5 days)
	Now       func() time.Time
	// Owner names this worker in its claims on outbox entries (unique per
	// process; NewWorker makes one), and Lease is how long a claim holds
	// (default store.DefaultLease). Workers of several processes sharing
	// one database never send the same entry while a claim holds.
	Owner string
	Lease time.Duration

	wake chan struct{}
}

// NewWorker returns a worker for s sending through sender.
func NewWorker(s store.Store, sender Sender, log *slog.Logger) *Worker {
	host, _ := os.Hostname()
	owner := fmt.Sprintf("%s/%d/%s", host, os.Getpid(), rand.Text()[:8])
	return &Worker{Store: s, Sender: sender, Log: log, Owner: owner, wake: make(chan struct{}, 1)}
}

func (w *Worker) lease() time.Duration {
	if w.Lease > 0 {
		return w.Lease
	}
	return store.DefaultLease
}

// claim reads what is due and claims it. It returns the entries claimed
// and how many were due (some may be held by another process).
func (w *Worker) claim(ctx context.Context) ([]*store.OutMail, int, error) {
	var due []*store.OutMail
	err := w.Store.View(ctx, func(tx store.Tx) error {
		var err error
		due, err = tx.Outbox(w.now(), wakeBatch)
		return err
	})
	if err != nil || len(due) == 0 {
		return nil, 0, err
	}
	// Claiming writes; the read before it keeps a wake with nothing due
	// from costing a commit.
	var claimed []*store.OutMail
	err = w.Store.Update(ctx, func(tx store.Tx) error {
		var err error
		claimed, err = tx.ClaimOutbox(w.Owner, w.now(), w.lease(), wakeBatch)
		return err
	})
	return claimed, len(due), err
}

// Wake tells the worker that new mail is in the outbox. It never blocks.
func (w *Worker) Wake() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (w *Worker) now() time.Time {
	if w.Now != nil {
		return w.Now()
	}
	return time.Now()
}

// Run delivers until ctx is done.
func (w *Worker) Run(ctx context.Context) {
	defer func() {
		if r := recover(); r != nil {
			w.Log.Error("outbox worker panic", "panic", r)
		}
	}()
	for {
		next := w.RunOnce(ctx)
		wait := time.Minute
		if !next.IsZero() {
			wait = max(time.Until(next), 10*time.Millisecond)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-w.wake:
		case <-t.C:
		}
		t.Stop()
	}
}

// wakeBatch is how many due entries one wake reads; when more are due,
// RunOnce asks to be run again at once.
const wakeBatch = 500

// RunOnce delivers the due messages once and returns when the next one
// falls due (zero when the outbox is empty). Mail to one recipient about one
// ticket goes out in the order it was queued (a closing notice before its
// survey); other mail goes out a few at a time, so the relay's answers
// overlap and their outcomes share commits with each other and with ingest.
//
// A wake reads only what is due (store.Tx.Outbox) and each body just
// before it is sent. Order needs no more: the store keeps each queue due
// in order, so a deferred message's queue is deferred with it and what is
// due of a queue is its head.
func (w *Worker) RunOnce(ctx context.Context) time.Time {
	due, ndue, err := w.claim(ctx)
	if err != nil {
		w.Log.Error("read outbox", "err", err)
		return w.now().Add(time.Minute)
	}
	var order []string
	queues := map[string][]*store.OutMail{}
	for _, m := range due {
		q := m.Queue()
		if _, ok := queues[q]; !ok {
			order = append(order, q)
		}
		queues[q] = append(queues[q], m)
	}
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for _, q := range order {
		if ctx.Err() != nil {
			break
		}
		queue := queues[q]
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() {
				if r := recover(); r != nil {
					w.Log.Error("outbox delivery panic", "panic", r, "ticket", queue[0].TicketID)
				}
				<-sem
				wg.Done()
			}()
			for _, m := range queue {
				if ctx.Err() != nil || !w.deliver(ctx, m) {
					return // later mail of this queue waits for this one
				}
			}
		}()
	}
	wg.Wait()
	if ndue == wakeBatch && ctx.Err() == nil {
		return w.now() // more is due
	}
	var next time.Time
	_ = w.Store.View(context.WithoutCancel(ctx), func(tx store.Tx) error {
		next, err = tx.NextOutboxAt()
		return err
	})
	if now := w.now(); ndue > len(due) && !next.IsZero() && !next.After(now) {
		// Another process holds what is due: look again when its
		// claims may have ended, not at once.
		return now.Add(w.lease() / 6)
	}
	return next
}

// deliver hands m to the relay and records the outcome. It returns false
// when delivery was deferred (the message stays queued).
func (w *Worker) deliver(ctx context.Context, m *store.OutMail) bool {
	log := w.Log.With("ticket", m.TicketID, "queue", m.ID, "kind", m.Kind)
	if !w.now().Before(m.ClaimedUntil) {
		return false // the claim ran out before its turn: claim again
	}
	var raw []byte
	if err := w.Store.View(ctx, func(tx store.Tx) error {
		var err error
		raw, err = tx.OutboxRaw(m.ID)
		return err
	}); err != nil {
		log.Error("read outbox mail", "err", err)
		return false
	}
	refused, err := w.Sender.Send(m.From, m.To, raw)
	now := w.now()
	switch {
	case err != nil && !Permanent(err) && now.Sub(m.Created) < w.giveUp():
		m.Attempts++
		m.NextAt = now.Add(w.backoff(m.Attempts))
		m.LastErr = err.Error()
		log.Warn("delivery deferred", "err", err, "attempt", m.Attempts, "next", m.NextAt)
		w.commit(log, m, func(tx store.Tx) error { return tx.Enqueue(m) })
		return false
	case err != nil:
		log.Error("delivery failed", "err", err)
		w.commit(log, m, func(tx store.Tx) error {
			if err := tx.Dequeue(m.ID); err != nil {
				return err
			}
			return w.event(tx, m, rules.EventDeliveryFailed, fmt.Sprintf("%s mail to %s failed: %v", m.Kind, strings.Join(m.To, ", "), err))
		})
	default:
		log.Info("delivered", "to", m.To)
		w.commit(log, m, func(tx store.Tx) error {
			if err := tx.Dequeue(m.ID); err != nil {
				return err
			}
			if err := tx.Sent(m); err != nil {
				return err
			}
			for _, r := range refused {
				if err := w.event(tx, m, rules.EventDeliveryFailed, fmt.Sprintf("%s mail to %s failed: %v", m.Kind, r.Rcpt, r.Err)); err != nil {
					return err
				}
			}
			return nil
		})
	}
	return true
}

func (w *Worker) event(tx store.Tx, m *store.OutMail, typ rules.EventType, detail string) error {
	if m.TicketID == "" {
		return nil
	}
	return tx.AddEvent(m.TicketID, store.Event{At: w.now(), Type: typ, Detail: detail})
}

// errClaimLost is a delivery outcome not recorded because the entry's
// claim passed to another process (or the entry is gone).
var errClaimLost = errors.New("claim on the outbox entry lost to another process")

func (w *Worker) commit(log *slog.Logger, m *store.OutMail, fn func(tx store.Tx) error) {
	// The outcome is recorded even when ctx ends meanwhile: the relay
	// already answered. Only the claim's holder records it.
	err := w.Store.Update(context.Background(), func(tx store.Tx) error {
		cur, err := tx.OutboxEntry(m.ID)
		if errors.Is(err, store.ErrNotFound) || (err == nil && cur.ClaimedBy != w.Owner) {
			return errClaimLost
		}
		if err != nil {
			return err
		}
		return fn(tx)
	})
	if errors.Is(err, errClaimLost) {
		log.Warn("delivery outcome not recorded", "err", err)
	} else if err != nil {
		log.Error("record delivery outcome", "err", err)
	}
}

func (w *Worker) giveUp() time.Duration {
	if w.GiveUp > 0 {
		return w.GiveUp
	}
	return 5 * 24 * time.Hour
}

// backoff is RetryBase·2^(n-1), capped at 6h, with ±20% jitter so a relay
// coming back is not hit by every message at once.
func (w *Worker) backoff(n int) time.Duration {
	base := w.RetryBase
	if base <= 0 {
		base = time.Minute
	}
	d := base
	for i := 1; i < n && d < 6*time.Hour; i++ {
		d *= 2
	}
	d = min(d, 6*time.Hour)
	jitter := time.Duration(mrand.Int64N(int64(d)/5+1)) - d/10
	return d + jitter
}
