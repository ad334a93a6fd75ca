package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"ticketgate/store"
)

// instanceID names this serve process in leases and outbox claims:
// unique per process, and telling the operator which host and pid holds
// what.
func instanceID() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s/%d/%s", host, os.Getpid(), rand.Text()[:8])
}

// defaultLease is how long a lease or outbox claim holds unrenewed:
// another instance takes over a dead one's work within it.
const defaultLease = 30 * time.Second

// leaseTTL is [store] lease, or its default.
func leaseTTL(cfg *Config) time.Duration { return dur(cfg.Store.Lease, defaultLease) }

// lease is one-at-a-time work among the instances sharing a database:
// while this process holds the lease name it runs the work, renewing the
// lease every third of its ttl; another instance waits, trying as often,
// and takes over at most ttl after the holder stops renewing.
type lease struct {
	st    store.Store
	name  string
	owner string
	ttl   time.Duration
	log   *slog.Logger
	held  atomic.Bool
}

func newLease(st store.Store, name, owner string, ttl time.Duration, log *slog.Logger) *lease {
	return &lease{st: st, name: name, owner: owner, ttl: ttl, log: log.With("lease", name)}
}

// Held reports whether this process holds the lease now.
func (l *lease) Held() bool { return l.held.Load() }

// take takes or renews the lease, giving up at by: a database that does
// not answer must not hold the decision to stop the work past it.
func (l *lease) take(ctx context.Context, by time.Time) (bool, error) {
	ctx, cancel := context.WithDeadline(ctx, by)
	defer cancel()
	var ok bool
	err := l.st.UpdateNow(ctx, func(tx store.Tx) error {
		var err error
		ok, err = tx.TakeLease(l.name, l.owner, time.Now(), l.ttl)
		return err
	})
	return ok, err
}

// run holds the lease whenever it can until ctx ends, then drops it.
// While held, work (if not nil) runs with a context that ends when the
// lease is lost: refused to a renewal, or not renewed for two thirds of
// its ttl (the database unreachable), so the work stops before another
// instance may take over.
func (l *lease) run(ctx context.Context, work func(context.Context)) {
	defer func() {
		if r := recover(); r != nil {
			l.log.Error("lease panic", "panic", r)
		}
	}()
	var (
		endWork = func() {}
		renewed time.Time
	)
	stop := func(why string) {
		if !l.held.Swap(false) {
			return
		}
		l.log.Info("lease given up", "why", why)
		endWork()
		endWork = func() {}
	}
	tick := l.ttl / 3
	for {
		// A renewal that gets no answer is given up when the work must
		// stop; a try to take the lease, by the next one.
		by := time.Now().Add(tick)
		if l.Held() {
			by = renewed.Add(2 * l.ttl / 3)
		}
		ok, err := l.take(ctx, by)
		now := time.Now()
		switch {
		case err != nil && ctx.Err() == nil:
			l.log.Warn("lease not renewed", "err", err)
			if l.Held() && now.Sub(renewed) >= 2*l.ttl/3 {
				stop("database not answering")
			}
		case ok:
			renewed = now
			if !l.held.Swap(true) {
				l.log.Info("lease taken", "owner", l.owner)
				if work != nil {
					endWork = start(ctx, work)
				}
			}
		case err == nil:
			stop("held by another instance")
		}
		select {
		case <-ctx.Done():
			stop("stopping")
			dctx, dcancel := context.WithTimeout(context.Background(), 5*time.Second)
			if err := l.st.UpdateNow(dctx, func(tx store.Tx) error { return tx.DropLease(l.name, l.owner) }); err != nil {
				l.log.Warn("lease not dropped; it lapses", "err", err)
			}
			dcancel()
			return
		case <-time.After(tick):
		}
	}
}

// start runs work in a goroutine; the function it returns ends work's
// context and waits for it to return.
func start(ctx context.Context, work func(context.Context)) func() {
	wctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { work(wctx) })
	return func() {
		cancel()
		wg.Wait()
	}
}
