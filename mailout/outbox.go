package mailout

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"ticketgate/rules"
	"ticketgate/store"
)

// Sender delivers one message; *Relay is the real one.
type Sender interface {
	// Send offers raw from envelope sender from to the recipients in to.
	// Right after it has written the end of the mail (the final dot the
	// relay answers 250 to), and before it reads the answer, it calls
	// handedOver (when not nil) with the recipients the relay refused:
	// from then on the relay may have the mail, whatever becomes of this
	// process. It returns the refused recipients (the mail went to the
	// others) or an error for the whole message.
	Send(from string, to []string, raw []byte, handedOver func(refused []RcptError)) ([]RcptError, error)
}

// Worker delivers the outbox. A message leaves the outbox only after the
// relay accepted it or failed it permanently; a relay that is down only
// delays delivery, and when it answers again the mail deferred meanwhile
// is due at once.
//
// Concurrency deliveries run at once, each taking the next due queue as
// soon as it is done with its last, never waiting for the others. Their
// outcomes go to one committer, which records those that arrived while
// its previous commit ran in one transaction. Run writes its claims and
// outcomes with the store's UpdateSoon: they ride the next commit of
// incoming mail instead of costing an fsync each, and wait at most the
// store's bound (bbolt: 50 ms) when nothing else is written. An entry
// whose outcome is committed is never sent again; one whose outcome is
// not committed yet is not taken again meanwhile. For the moment between
// the relay taking a mail and that commit, Run keeps a hand-off log (see
// handoffLog): when the process is killed in between, the next Run takes
// the mail as delivered instead of sending it again. The price: a relay
// refusing the end of a mail just as the process is killed leaves that
// mail taken as delivered (logged on the next start). Without the log (a
// machine losing power before the page cache reached the disk, or
// PostgreSQL), a mail whose outcome was not committed yet is sent again:
// at least once, never lost, the window being the relay's answer plus
// the wait for that commit.
type Worker struct {
	Store     store.Store
	Sender    Sender
	Log       *slog.Logger
	RetryBase time.Duration // first retry delay (default 1m), doubling to 6h
	GiveUp    time.Duration // fail a message still queued after this (default 5 days)
	Now       func() time.Time
	// HandoffLog is the path of the hand-off log, next to the database;
	// "" keeps none (a process killed between the relay's 250 and its
	// commit then sends that mail again on the next start).
	HandoffLog string
	// Owner names this worker in its claims on outbox entries (unique per
	// process; NewWorker makes one), and Lease is how long a claim holds
	// (default store.DefaultLease). Workers of several processes sharing
	// one database never send the same entry while a claim holds, and
	// only a claim's holder records the outcome of its delivery.
	Owner string
	Lease time.Duration
	// Concurrency is how many deliveries run at once (0:
	// DefaultRelaySessions); give the Relay as many Sessions.
	Concurrency int

	wake chan struct{}
	hlog *handoffLog
	// relayDown is set when the relay failed a whole message for now and
	// cleared by the next delivery, which wakes the deferred mail.
	relayDown atomic.Bool

	mu sync.Mutex
	// relayErr and relayErrAt are the relay's last failure of a whole
	// message, cleared when it takes a mail again.
	relayErr   string
	relayErrAt time.Time
	// unrecorded holds outcomes whose commit failed (a full disk): they
	// are committed again before the next claim, and their entries are
	// not sent meanwhile.
	unrecorded map[uint64]func(store.Tx) error
	// flight holds the entries taken for delivery whose outcome is not
	// committed yet, and busy counts them by queue: neither they nor the
	// later mail of their queues are taken again meanwhile.
	flight map[uint64]*flying
	busy   map[string]int
	// claims counts the claims begun, and settled holds, for each entry
	// whose outcome was committed lately, the count when it was: a claim
	// that began before that commit may have read the entry as still
	// due, and must not send it again.
	claims  uint64
	settled map[uint64]uint64
	// out is where deliveries hand their outcomes to the committer of
	// the running Run or RunOnce.
	out chan<- *outcome
}

// flying is an entry taken for delivery.
type flying struct {
	queue string
	until time.Time // its claim holds until then
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

func (w *Worker) concurrency() int {
	if w.Concurrency > 0 {
		return w.Concurrency
	}
	return DefaultRelaySessions
}

// claim reads what is due and claims it, unless everything due is in
// flight already (or waits for its outcome to be recorded again). It
// returns the entries claimed and how many were due (some may be held by
// another process). Claiming renews the claims on entries in flight. A
// soon claim is committed with the store's next commit (UpdateSoon).
func (w *Worker) claim(ctx context.Context, soon bool) ([]*store.OutMail, int, error) {
	var due []*store.OutMail
	err := w.Store.View(ctx, func(tx store.Tx) error {
		var err error
		due, err = tx.Outbox(w.now(), wakeBatch)
		return err
	})
	if err != nil || len(due) == 0 {
		return nil, 0, err
	}
	if !slices.ContainsFunc(due, func(m *store.OutMail) bool { return w.wantsClaim(m.ID) }) {
		// Claiming would only cost a commit.
		return nil, len(due), nil
	}
	// Claiming writes; the read before it keeps a wake with nothing due
	// from costing a commit.
	var claimed []*store.OutMail
	err = w.write(ctx, soon, func(tx store.Tx) error {
		var err error
		claimed, err = tx.ClaimOutbox(w.Owner, w.now(), w.lease(), wakeBatch)
		return err
	})
	return claimed, len(due), err
}

// wantsClaim reports whether a claim of entry id would do something: it
// is not in flight, or in flight on a claim that runs out within half a
// lease (a delivery may take longer than a lease, to a slow relay, and a
// claim let run out meanwhile is another process's to take and send
// again).
func (w *Worker) wantsClaim(id uint64) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	f, ok := w.flight[id]
	return !ok || f.until.Sub(w.now()) < w.lease()/2
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

// Run delivers until ctx is done, then waits for the deliveries under way
// and commits their outcomes. It first takes the mail a killed run handed
// to the relay as delivered (see HandoffLog).
func (w *Worker) Run(ctx context.Context) {
	defer func() {
		if r := recover(); r != nil {
			w.Log.Error("outbox worker panic", "panic", r)
		}
	}()
	defer w.useHandoffLog()()
	p := w.startPump(ctx, true)
	defer p.stop()
	var ready [][]*store.OutMail // queues claimed, not yet taken by a delivery
	defer func() {
		for _, q := range ready {
			w.land(q...)
		}
	}()
	timer := time.NewTimer(0)
	defer timer.Stop()
	look := true
	for {
		// Hand the deliveries what is ready before claiming again: a
		// claim waits for the store's next commit (UpdateSoon), and the
		// deliveries must not wait with it.
		ready = handReady(p.jobs, ready)
		if look && len(ready)+len(p.jobs) < refill && ctx.Err() == nil {
			// Claim more while the deliveries still have work for the
			// time a claim takes, not much earlier: what is claimed
			// waits under a lease.
			var queues [][]*store.OutMail
			var wait time.Duration
			queues, look, wait = w.claimMore(ctx)
			ready = append(ready, queues...)
			timer.Reset(wait)
		}
		var jobs chan<- []*store.OutMail
		var head []*store.OutMail
		if len(ready) > 0 {
			jobs, head = p.jobs, ready[0]
		}
		select {
		case <-ctx.Done():
			return
		case jobs <- head:
			ready = ready[1:]
		case <-w.wake:
			look = true
		case <-timer.C:
			look = true
		case <-p.freed:
			// An outcome committed or a delivery finished: what it held
			// back may be due now.
			look = true
		}
	}
}

// useHandoffLog opens the hand-off log (when HandoffLog names one),
// takes the mail a killed run handed to the relay as delivered, and
// keeps the log for this run's deliveries. It returns what closes it.
func (w *Worker) useHandoffLog() (closeLog func()) {
	if w.HandoffLog == "" {
		return func() {}
	}
	l, notes, err := openHandoffLog(w.HandoffLog)
	if err != nil {
		w.Log.Error("mail handed to the relay by a killed run may be sent again", "err", err)
		return func() {}
	}
	if !w.applyNotes(l, notes) {
		return func() { l.close() }
	}
	w.hlog = l
	return func() {
		w.hlog = nil
		l.close()
	}
}

// handReady gives the deliveries, through jobs, the queues of ready
// they take at once, in order, and returns the rest.
func handReady(jobs chan<- []*store.OutMail, ready [][]*store.OutMail) [][]*store.OutMail {
	for len(ready) > 0 {
		select {
		case jobs <- ready[0]:
			ready = ready[1:]
		default:
			return ready
		}
	}
	return ready
}

// claimMore claims the queues due now. again says more is due than one
// claim takes: claim again as soon as the deliveries need more work.
// wait is how long until the next mail falls due (a minute when unknown).
func (w *Worker) claimMore(ctx context.Context) (queues [][]*store.OutMail, again bool, wait time.Duration) {
	queues, ndue, nclaimed, err := w.take(ctx, true)
	again = ndue == wakeBatch && len(queues) > 0
	wait = time.Minute
	if err == nil && !again {
		if next := w.nextDue(ctx, ndue, nclaimed); !next.IsZero() {
			wait = max(time.Until(next), 10*time.Millisecond)
		}
	}
	return queues, again, wait
}

// wakeBatch is how many due entries one claim reads; when more are due,
// the worker claims again once fewer than refill queues wait for a
// delivery.
const (
	wakeBatch = 500
	refill    = wakeBatch / 4
)

// RunOnce delivers the due messages once, waits for their outcomes to be
// committed, and returns when the next one falls due (zero when the
// outbox is empty). Mail to one recipient about one ticket goes out in the
// order it was queued (a closing notice before its survey); other mail
// goes out a few at a time, so the relay's answers overlap and their
// outcomes share commits with each other and with ingest.
//
// A wake reads only what is due (store.Tx.Outbox) and each body just
// before it is sent. Order needs no more: the store keeps each queue due
// in order, so a deferred message's queue is deferred with it and what is
// due of a queue is its head.
func (w *Worker) RunOnce(ctx context.Context) time.Time {
	p := w.startPump(ctx, false)
	queues, ndue, nclaimed, err := w.take(ctx, true)
	if err != nil {
		p.stop()
		return w.now().Add(time.Minute)
	}
	for i, q := range queues {
		select {
		case p.jobs <- q:
		case <-ctx.Done():
			for _, q := range queues[i:] {
				w.land(q...)
			}
			p.stop()
			return w.now()
		}
	}
	p.stop()
	if ndue == wakeBatch && ctx.Err() == nil {
		return w.now() // more is due
	}
	return w.nextDue(ctx, ndue, nclaimed)
}

// take records the outcomes waiting to be committed again, claims what is
// due and returns it as queues of mail to deliver in order, leaving out
// the entries in flight and the later mail of their queues. ndue is how
// many entries were due (at most wakeBatch), nclaimed how many of them
// this worker holds a claim on. soon commits the claim with the store's
// next commit (UpdateSoon).
func (w *Worker) take(ctx context.Context, soon bool) (queues [][]*store.OutMail, ndue, nclaimed int, err error) {
	w.recordAgain()
	w.mu.Lock()
	w.claims++
	claim := w.claims
	w.mu.Unlock()
	due, ndue, err := w.claim(ctx, soon)
	if err != nil {
		if ctx.Err() == nil { // a stop is no error to log
			w.Log.Error("read outbox", "err", err)
		}
		return nil, 0, 0, err
	}
	return w.plan(due, claim), ndue, len(due), nil
}

// nextDue returns when to look at the outbox again after a claim that
// found ndue entries due and claimed nclaimed of them (zero: nothing is
// queued).
func (w *Worker) nextDue(ctx context.Context, ndue, nclaimed int) time.Time {
	var next time.Time
	err := w.Store.View(context.WithoutCancel(ctx), func(tx store.Tx) error {
		var err error
		next, err = tx.NextOutboxAt()
		return err
	})
	if err != nil {
		w.Log.Error("read outbox", "err", err)
		return w.now().Add(time.Minute)
	}
	w.mu.Lock()
	held, flying := len(w.unrecorded), len(w.flight)
	w.mu.Unlock()
	now := w.now()
	if ndue > nclaimed || flying > 0 && !next.After(now) {
		// Another process holds some of what is due: look again when
		// its claims may have ended, not at once. (A zero next is no
		// help here: mail due at once is queued with a zero NextAt.)
		// Entries in flight are due until their outcomes are
		// committed, and each commit says so (pump.freed): this is
		// only in case.
		if soon := now.Add(w.lease() / 6); next.IsZero() || next.After(soon) || flying > 0 && !next.After(now) {
			next = soon
		}
	}
	if held > 0 {
		// Their outcomes wait for the database (a full disk): try again
		// in a while, not in a loop.
		if soon := now.Add(time.Second); next.Before(soon) {
			next = soon
		}
	}
	return next
}

// deliver hands m to the relay and records the outcome. It returns false
// when m stays queued (deferred, for some or all of its recipients).
func (w *Worker) deliver(ctx context.Context, m *store.OutMail) bool {
	log := w.Log.With("ticket", m.TicketID, "queue", m.ID, "kind", m.Kind)
	if !w.now().Before(w.claimedUntil(m)) {
		w.land(m) // the claim ran out before its turn: claim again
		return false
	}
	rcpts := m.Pending()
	if len(rcpts) == 0 {
		w.record(log, m.ID, func(tx store.Tx) error {
			if err := tx.Dequeue(m.ID); err != nil {
				return err
			}
			return tx.Sent(m)
		}, nil)
		return true
	}
	var raw []byte
	var stale string
	var held []string
	err := w.Store.View(ctx, func(tx store.Tx) error {
		var err error
		if raw, err = OutboxMail(tx, m); err != nil {
			return err
		}
		if stale, err = outdated(tx, m, raw); err != nil || stale != "" {
			return err
		}
		held, err = bouncing(tx, m, raw, rcpts, w.now())
		return err
	})
	if err == nil && len(held) > 0 {
		return w.hold(log, m, held)
	}
	if stale != "" {
		err = errors.New(stale)
	}
	if stale != "" || errors.Is(err, ErrCarriedGone) {
		log.Warn("mail not sent", "err", err)
		w.record(log, m.ID, func(tx store.Tx) error {
			if err := tx.Dequeue(m.ID); err != nil {
				return err
			}
			return w.event(tx, m, rules.EventMailSuppressed, SuppressedDetail(m, rcpts, err))
		}, nil)
		return true
	}
	expired := w.now().Sub(m.Created) >= w.giveUp()
	if err != nil {
		if ctx.Err() != nil { // stopping: the next run reads it again
			w.land(m)
			return false
		}
		// A mail that cannot be read back (a damaged entry, a database
		// that does not answer) waits and is tried again like one the
		// relay deferred, and is given up after give_up_after, instead
		// of holding its queue for good.
		return w.failed(log, m, fmt.Errorf("read outbox mail: %w", err), expired, false)
	}
	var handedOver func([]RcptError)
	if w.hlog != nil {
		handedOver = func(refused []RcptError) {
			n := handoffNote{ID: m.ID, Attempts: m.Attempts, To: done(nil, rcpts, refused, nil)}
			if err := w.hlog.note(n); err != nil {
				log.Error("note hand-off", "err", err)
			}
		}
	}
	refused, err := w.Sender.Send(m.From, rcpts, raw, handedOver)
	if errors.Is(err, ErrAborted) {
		// Cut short by a stop, not failed by the relay: the mail waits
		// for the next run, however long it has waited, and counts an
		// attempt, so that a hand-off note of it is not taken for
		// delivered by that run.
		return w.failed(log, m, err, false, false)
	}
	if err != nil {
		w.noteRelayError(err)
		return w.failed(log, m, err, expired, true)
	}
	return w.delivered(log, m, rcpts, refused, expired)
}

// failed records a failure of the whole message: a retry later, or for
// good. byRelay says the relay failed it (not the outbox's own read of
// the mail): a deferral then marks the relay down.
func (w *Worker) failed(log *slog.Logger, m *store.OutMail, err error, expired, byRelay bool) bool {
	if Permanent(err) || expired {
		log.Error("delivery failed", "err", err)
		w.record(log, m.ID, func(tx store.Tx) error {
			if err := tx.Dequeue(m.ID); err != nil {
				return err
			}
			return w.event(tx, m, rules.EventDeliveryFailed, fmt.Sprintf("%s mail to %s failed: %v", m.Kind, strings.Join(m.Pending(), ", "), err))
		}, nil)
		return true
	}
	m.Attempts++
	m.NextAt = w.now().Add(w.backoff(m.Attempts))
	m.LastErr = err.Error()
	// A TLS failure repeats until someone changes the relay or the
	// configuration: say so loudly, and on the ticket, the first time.
	tlsFirst := IsTLSError(err) && m.Attempts == 1
	if IsTLSError(err) {
		log.Error("relay TLS failed; mail waits in the outbox until the relay's certificate or [outbound] tls is fixed", "err", err, "attempt", m.Attempts, "next", m.NextAt)
	} else {
		log.Warn("delivery deferred", "err", err, "attempt", m.Attempts, "next", m.NextAt)
	}
	w.record(log, m.ID, func(tx store.Tx) error {
		if err := tx.Enqueue(m); err != nil {
			return err
		}
		if tlsFirst {
			return w.event(tx, m, rules.EventRelayTLSFailed, fmt.Sprintf("%s mail to %s waits: %v", m.Kind, strings.Join(m.Pending(), ", "), err))
		}
		return nil
	}, func() {
		// Set after the deferral is committed, so that the delivery
		// that clears it wakes this mail too.
		if byRelay {
			w.relayDown.Store(true)
		}
	})
	return false
}

// delivered records the relay's answers when the message as a whole was
// not failed: the mail went to the recipients not refused (if any);
// those refused for now stay queued. A partial success is retried at once
// (a relay capping recipients per transaction takes the next share in a
// new one); a message refused for every recipient waits for its backoff.
func (w *Worker) delivered(log *slog.Logger, m *store.OutMail, rcpts []string, refused []RcptError, expired bool) bool {
	final, later := split(refused, expired)
	took := len(refused) < len(rcpts)
	m.Done = done(m.Done, rcpts, refused, final)
	if len(later) == 0 {
		if took {
			log.Info("delivered", "to", rcpts, "refused", len(refused))
		} else {
			log.Warn("refused for every recipient", "to", rcpts)
		}
		w.record(log, m.ID, func(tx store.Tx) error {
			if err := tx.Dequeue(m.ID); err != nil {
				return err
			}
			// Sent only when the relay took it for someone (now, or in
			// an earlier attempt, which recorded it then).
			if took {
				if err := tx.Sent(m); err != nil {
					return err
				}
			}
			return w.refusedEvents(tx, m, final)
		}, nil)
	} else {
		m.LastErr = later[0].Err.Error()
		if took {
			m.NextAt = w.now()
		} else {
			m.Attempts++
			m.NextAt = w.now().Add(w.backoff(m.Attempts))
		}
		log.Warn("delivery deferred for some recipients", "to", m.Pending(), "err", m.LastErr, "attempt", m.Attempts, "next", m.NextAt)
		w.record(log, m.ID, func(tx store.Tx) error {
			if err := tx.Enqueue(m); err != nil {
				return err
			}
			if took {
				if err := tx.Sent(m); err != nil {
					return err
				}
			}
			return w.refusedEvents(tx, m, final)
		}, nil)
	}
	if took {
		w.noteRelayError(nil)
	}
	if took && w.relayDown.Swap(false) {
		w.wakeDeferred(log)
	}
	return len(later) == 0
}

func (w *Worker) refusedEvents(tx store.Tx, m *store.OutMail, final []RcptError) error {
	for _, r := range final {
		if err := w.event(tx, m, rules.EventDeliveryFailed, fmt.Sprintf("%s mail to %s failed: %v", m.Kind, r.Rcpt, r.Err)); err != nil {
			return err
		}
	}
	return nil
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

// record hands the outcome of a delivery of entry id to the committer
// (see pump), which commits it in a group commit and then runs committed
// (when not nil). Only the claim's holder records: an outcome for an
// entry whose claim passed to another process (or which is gone) is
// dropped. An outcome that cannot be committed is kept and committed
// again before the next claim; its entry stays in flight meanwhile.
func (w *Worker) record(log *slog.Logger, id uint64, apply func(tx store.Tx) error, committed func()) {
	fn := func(tx store.Tx) error {
		cur, err := tx.OutboxEntry(id)
		if errors.Is(err, store.ErrNotFound) || (err == nil && cur.ClaimedBy != w.Owner) {
			return errClaimLost
		}
		if err != nil {
			return err
		}
		return apply(tx)
	}
	o := &outcome{id: id, log: log, fn: fn, committed: committed}
	w.mu.Lock()
	out := w.out
	w.mu.Unlock()
	if out == nil {
		w.commit([]*outcome{o}, false) // no committer running: at once
		return
	}
	out <- o
}

// recordAgain commits the outcomes whose commit failed.
func (w *Worker) recordAgain() {
	w.mu.Lock()
	var again []*outcome
	for id, fn := range w.unrecorded {
		again = append(again, &outcome{id: id, log: w.Log.With("queue", id), fn: fn})
	}
	w.mu.Unlock()
	if len(again) > 0 {
		w.commit(again, false)
	}
}

// applyNotes marks the recipients of the hand-off notes of a killed run
// done, unless the entry's outcome was committed since (it is gone, or
// counted another attempt); the next wake dequeues what has no recipient
// left. It reports whether the log may be used (and was emptied).
func (w *Worker) applyNotes(l *handoffLog, notes []handoffNote) bool {
	if len(notes) > 0 {
		var taken []uint64
		err := w.Store.Update(context.Background(), func(tx store.Tx) error {
			taken = taken[:0]
			for _, n := range notes {
				m, err := tx.OutboxEntry(n.ID)
				if errors.Is(err, store.ErrNotFound) || err == nil && m.Attempts != n.Attempts {
					continue
				}
				if err != nil {
					return err
				}
				m.Done = done(m.Done, n.To, nil, nil)
				if err := tx.Enqueue(m); err != nil {
					return err
				}
				taken = append(taken, n.ID)
			}
			return nil
		})
		if err != nil {
			w.Log.Error("mail handed to the relay by a killed run may be sent again", "err", err)
			return false
		}
		if len(taken) > 0 {
			w.Log.Warn("mail handed to the relay just before the last run was killed is taken as delivered, not sent again", "queue", taken)
		}
	}
	if err := l.reset(); err != nil {
		w.Log.Error("empty hand-off log", "err", err)
		return false
	}
	return true
}

// wakeDeferred makes every entry waiting for a retry due now: the relay
// answers again, so the backoff that spared it no longer has a reason.
// It walks the outbox in id order, a thousand entries a transaction, so a
// large outbox is never in memory at once; entries become due in queue
// order, as Enqueue keeps each queue (a queue's entries are in id order).
func (w *Worker) wakeDeferred(log *slog.Logger) {
	now := w.now()
	n := 0
	for after := uint64(0); ; {
		var last uint64
		var woken, read int
		err := w.Store.Update(context.Background(), func(tx store.Tx) error {
			woken, read, last = 0, 0, after
			list, err := tx.OutboxList(after, 1000)
			if err != nil {
				return err
			}
			read = len(list)
			for _, m := range list {
				last = m.ID
				if !m.NextAt.After(now) {
					continue
				}
				m.NextAt = now
				if err := tx.Enqueue(m); err != nil {
					return err
				}
				woken++
			}
			return nil
		})
		if err != nil {
			log.Error("wake deferred mail", "err", err)
			return
		}
		n += woken
		if read < 1000 {
			break
		}
		after = last
	}
	log.Info("relay answers again; deferred mail is due now", "mails", n)
	w.Wake()
}

func (w *Worker) giveUp() time.Duration {
	if w.GiveUp > 0 {
		return w.GiveUp
	}
	return 5 * 24 * time.Hour
}

// backoff is RetryBase·2^(n-1), capped at 6h, with ±10% jitter so a relay
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

// noteRelayError keeps err (nil: the relay took a mail) for RelayError.
func (w *Worker) noteRelayError(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err == nil {
		w.relayErr, w.relayErrAt = "", time.Time{}
		return
	}
	w.relayErr, w.relayErrAt = err.Error(), w.now()
}

// RelayError returns the relay's last failure and when it happened, or ""
// when the relay took the last mail offered (or none was offered yet).
func (w *Worker) RelayError() (string, time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.relayErr, w.relayErrAt
}
