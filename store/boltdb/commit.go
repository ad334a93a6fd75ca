package boltdb

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"ticketgate/store"
)

// maxGroup caps the calls one grouped commit carries, so that one commit's
// latency stays bounded under any backlog.
const maxGroup = 1024

// SoonWithin is how long UpdateSoon may hold a write back waiting for
// another write to share its commit. Under ingest a commit comes every few
// milliseconds (one SMTP client's message takes 3–5 ms to the 250), so a
// deferred write rides the next one long before this; only a quiet
// database makes it wait the whole bound, and then nobody is waiting on
// it but the outbox, whose outcome is late by 50 ms against a relay round
// trip and a claim lease of seconds. It is also the longest a delivered
// mail's outcome stays uncommitted for that reason: the window in which a
// lost outcome (see mailout.Worker) sends a mail again.
const SoonWithin = 50 * time.Millisecond

// update is one Update or UpdateSoon call waiting for the committer.
type update struct {
	ctx  context.Context
	gen  string // DB.gen
	db   *DB
	fn   func(store.Tx) error
	done chan error
	soon bool // UpdateSoon: may wait up to SoonWithin for company
	// alone: a long write (the search indexer's) that commits by itself,
	// after the calls it came with, so that they do not wait for it.
	alone bool
}

// panicked carries a panic out of the committer to the caller whose
// function raised it.
type panicked struct{ reason any }

func (p panicked) Error() string { return fmt.Sprintf("panic: %v", p.reason) }

// call runs u's function in btx; a panic becomes an error.
func (u *update) call(btx *bolt.Tx) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = panicked{r}
		}
	}()
	if err := u.ctx.Err(); err != nil {
		return err
	}
	return u.fn(&tx{ctx: u.ctx, tx: btx, gen: u.gen, db: u.db})
}

// commitLoop is the one committer: it takes every Update that arrived
// while the previous commit ran and commits them together, one fsync for
// all. It waits for no Update it was not told of: an idle database
// commits a lone call at once, a busy one groups whatever queued during
// the last commit and the calls announced meanwhile (Expect) that come
// within ExpectWithin.
// UpdateSoon calls are held back instead, and join the next commit,
// whatever causes it; when none comes within SoonWithin of the first one
// held, they are committed on their own. A call to be committed alone
// (the indexer's) comes after the others of its round.
func (d *DB) commitLoop() {
	defer close(d.loopDone)
	group := make([]*update, 0, maxGroup)
	var held []*update // UpdateSoon calls waiting for a commit to join
	timer := time.NewTimer(SoonWithin)
	timer.Stop()
	var due <-chan time.Time // timer.C while calls are held
	for {
		group = group[:0]
		select {
		case u, ok := <-d.updates:
			if !ok {
				if len(held) > 0 {
					d.commitGroup(held) // Close: nothing held is lost
				}
				return
			}
			if u.soon && len(held)+1 < maxGroup {
				if len(held) == 0 {
					timer.Reset(cmp.Or(d.soonWithin, SoonWithin))
					due = timer.C
				}
				held = append(held, u)
				continue
			}
			group = append(append(group, held...), u)
		case <-due:
			group = append(group, held...)
		}
		clear(held)
		held, due = held[:0], nil
		timer.Stop()
		d.commitRound(d.awaitExpected(d.takeQueued(group)))
		clear(group)
	}
}

// ExpectWithin is the longest the committer waits for Update calls that
// were announced (Expect) while the previous commit ran and have not come
// yet. A message announced when its transfer begins (SMTP DATA) reaches
// its Update a few milliseconds later under load, after its read and
// parse; without the wait it would miss the commit by that much and wait
// for the next, and every commit, whatever it carries, writes the same
// pages again (the last page of each bucket it appends to, and their
// branch pages). At 32 connections the wait took commits from 9 to 13
// messages and the bytes written a message from 58 to 50 KB, at the
// same rate and with the p99 within the spread between runs
// (docs/performance.md).
const ExpectWithin = 3 * time.Millisecond

// Expect tells the committer that the caller is preparing an Update: a
// commit that starts before the call comes waits for it, up to
// ExpectWithin. The returned function says the call was made or given up
// (call it just before Update, and on every way out); it may be called
// more than once. A lone caller never makes a commit wait: its own
// announcement is over before its Update arrives.
func (d *DB) Expect() (arrived func()) {
	return d.expected.add()
}

// expected counts the announced Update calls still on their way, by the
// round of the committer they were announced in: a commit waits only
// for those announced while the previous one ran. One announced earlier
// is late already (a large message being parsed); waiting for it would
// hold back commit after commit.
type expected struct {
	mu      sync.Mutex
	round   uint64
	pending map[uint64]int
	// drained is signalled when a round's count falls to zero.
	drained chan struct{}
}

func (x *expected) add() func() {
	x.mu.Lock()
	if x.pending == nil {
		x.pending = make(map[uint64]int)
		x.drained = make(chan struct{}, 1)
	}
	r := x.round
	x.pending[r]++
	drained := x.drained
	x.mu.Unlock()
	var done atomic.Bool
	return func() {
		if done.Swap(true) {
			return
		}
		x.mu.Lock()
		x.pending[r]--
		n := x.pending[r]
		if n == 0 {
			delete(x.pending, r)
		}
		x.mu.Unlock()
		if n == 0 {
			select {
			case drained <- struct{}{}:
			default:
			}
		}
	}
}

// next ends the current round and returns it with the calls announced in
// it that have not come, and the channel that signals a drained round.
func (x *expected) next() (round uint64, pending int, drained chan struct{}) {
	x.mu.Lock()
	defer x.mu.Unlock()
	round = x.round
	x.round++
	return round, x.pending[round], x.drained
}

func (x *expected) left(round uint64) int {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.pending[round]
}

// awaitExpected adds to group the Update calls announced since the
// previous commit began that are still on their way, waiting for them up
// to ExpectWithin (the DB's expectWithin in tests).
func (d *DB) awaitExpected(group []*update) []*update {
	round, pending, drained := d.expected.next()
	if pending == 0 {
		return group
	}
	timer := time.NewTimer(cmp.Or(d.expectWithin, ExpectWithin))
	defer timer.Stop()
	for len(group) < maxGroup && d.expected.left(round) > 0 {
		select {
		case u, ok := <-d.updates:
			if !ok {
				return group
			}
			group = append(group, u)
		case <-drained:
		case <-timer.C:
			return group
		}
	}
	// A caller says it arrived just before it queues its call.
	return d.takeQueued(group)
}

// takeQueued adds to group the calls queued now, without waiting, up to
// maxGroup.
func (d *DB) takeQueued(group []*update) []*update {
	for len(group) < maxGroup {
		select {
		case u, ok := <-d.updates:
			if !ok {
				return group
			}
			group = append(group, u)
		default:
			return group
		}
	}
	return group
}

// commitRound commits the calls the committer took in one round: those
// to be committed alone each in a commit of its own after the others.
// The indexer's commit holds the writer about 20 ms at 32 connections;
// in the others' commit, every message of the round waited for it.
func (d *DB) commitRound(group []*update) {
	var alone []*update
	group = slices.DeleteFunc(group, func(u *update) bool {
		if u.alone {
			alone = append(alone, u)
		}
		return u.alone
	})
	if len(group) > 0 {
		d.commitGroup(group)
	}
	for _, u := range alone {
		d.commitGroup([]*update{u})
	}
}

// commitGroup commits group in one transaction. When a function fails, the
// transaction is rolled back, the failing call runs alone (its error is
// its own: bbolt's Batch does the same) and the others are committed
// again without it, so one caller's error never loses another's change.
func (d *DB) commitGroup(group []*update) {
	start := time.Now()
	calls := len(group)
	// A caller that gave up while queued is answered without a try: its
	// error would only roll back and rerun everyone else's.
	group = slices.DeleteFunc(group, func(u *update) bool {
		if err := u.ctx.Err(); err != nil {
			u.done <- err
			return true
		}
		return false
	})
	for len(group) > 0 {
		failed := -1
		err := d.update(func(btx *bolt.Tx) error {
			for i, u := range group {
				if err := u.call(btx); err != nil {
					failed = i
					return err
				}
			}
			return nil
		})
		if failed < 0 {
			// Committed (err nil) or the commit itself failed: the same
			// outcome for every call in it.
			d.commits.Add(1)
			d.grouped.Add(uint64(len(group)))
			for _, u := range group {
				u.done <- wrapErr(err)
			}
			break
		}
		u := group[failed]
		group = slices.Delete(group, failed, failed+1)
		u.done <- wrapErr(d.update(u.call))
	}
	d.committed()
	if f := d.observe.Load(); f != nil {
		(*f)(calls, time.Since(start))
	}
}

// Update runs fn in a read-write transaction grouped with concurrent
// callers: one committer takes every call that arrived while the previous
// commit ran, and one fsync covers them all. Update returns when fn's
// changes are durable (or did not happen). fn may run more than once and
// must be idempotent apart from its effects on tx.
func (d *DB) Update(ctx context.Context, fn func(store.Tx) error) error {
	return d.queue(ctx, &update{fn: fn})
}

// UpdateSoon is Update for a write that is in no hurry: instead of
// causing a commit of its own, fn joins the next commit another write
// causes, or is committed with the other deferred writes SoonWithin after
// the first of them came, whichever is first. Like Update it returns when
// fn's changes are durable (or did not happen). Close commits the
// deferred writes still held.
func (d *DB) UpdateSoon(ctx context.Context, fn func(store.Tx) error) error {
	return d.queue(ctx, &update{fn: fn, soon: true})
}

// updateAlone is Update for a long write: it is committed by itself,
// after the calls the committer took with it.
func (d *DB) updateAlone(ctx context.Context, fn func(store.Tx) error) error {
	return d.queue(ctx, &update{fn: fn, alone: true})
}

// queue hands u (its function and how to commit it) to the committer and
// waits for its commit.
func (d *DB) queue(ctx context.Context, u *update) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d.updates == nil {
		return wrapErr(bolterrors.ErrTxNotWritable) // opened read-only
	}
	u.ctx, u.gen, u.db, u.done = ctx, d.gen, d, make(chan error, 1)
	d.closing.RLock()
	if d.closed {
		d.closing.RUnlock()
		return bolterrors.ErrDatabaseNotOpen
	}
	d.updates <- u
	d.closing.RUnlock()
	// Wait even when ctx ends: the call is in a commit that may still
	// land, and the caller must not act as if it did not.
	err := <-u.done
	if p, ok := err.(panicked); ok {
		panic(p.reason)
	}
	return err
}

// ObserveCommits sets f to be told of each grouped commit: how many
// Update and UpdateSoon calls it carried and how long it took from its start to its
// fsync. Set it before the first Update.
func (d *DB) ObserveCommits(f func(calls int, took time.Duration)) {
	d.observe.Store(&f)
}

// stopCommitter lets queued calls finish, commits the UpdateSoon calls
// held, and stops the committer.
func (d *DB) stopCommitter() {
	if d.updates == nil {
		return
	}
	d.closing.Lock()
	if !d.closed {
		d.closed = true
		close(d.updates)
	}
	d.closing.Unlock()
	<-d.loopDone
}
