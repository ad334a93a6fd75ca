package mailout

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"ticketgate/store"
)

// outcome is the outcome of one delivery, to be committed.
type outcome struct {
	id        uint64
	log       *slog.Logger
	fn        func(tx store.Tx) error // checks the claim, then applies
	committed func()                  // after the commit, if not nil
}

// maxOutcomes caps the outcomes one transaction records.
const maxOutcomes = 256

// pump runs the deliveries of one Run or RunOnce: Concurrency delivery
// goroutines, each taking the next queue of mail as soon as it is done
// with its last, and one committer recording their outcomes.
//
// Run's pump records outcomes with the store's UpdateSoon: they ride the
// next commit of ingest (or of anything else) instead of costing an fsync
// of their own, and wait at most the store's bound when nothing else is
// written. Until that commit the entries stay in flight (not claimed or
// sent again) and the hand-off log covers a kill. RunOnce's pump, whose
// caller waits for the outcomes, records them at once.
type pump struct {
	w          *Worker
	ctx        context.Context
	soon       bool // record outcomes with UpdateSoon
	jobs       chan []*store.OutMail
	out        chan *outcome
	freed      chan struct{} // an outcome committed or a queue is done
	deliveries sync.WaitGroup
	done       chan struct{} // the committer ended
}

func (w *Worker) startPump(ctx context.Context, soon bool) *pump {
	p := &pump{w: w, ctx: ctx, soon: soon, jobs: make(chan []*store.OutMail, 64), out: make(chan *outcome, maxOutcomes),
		freed: make(chan struct{}, 1), done: make(chan struct{})}
	w.mu.Lock()
	w.out = p.out
	w.mu.Unlock()
	go p.commitLoop()
	for range w.concurrency() {
		p.deliveries.Add(1)
		go p.deliverLoop(ctx)
	}
	return p
}

// stop waits for the deliveries under way and for the commit of their
// outcomes.
func (p *pump) stop() {
	close(p.jobs)
	p.deliveries.Wait()
	p.w.mu.Lock()
	p.w.out = nil
	p.w.mu.Unlock()
	close(p.out)
	<-p.done
}

func (p *pump) signal() {
	select {
	case p.freed <- struct{}{}:
	default:
	}
}

func (p *pump) deliverLoop(ctx context.Context) {
	defer p.deliveries.Done()
	for queue := range p.jobs {
		p.deliverQueue(ctx, queue)
		p.signal()
	}
}

// deliverQueue delivers the mail of one queue in order, stopping at the
// first that stays queued: the later ones wait for it.
func (p *pump) deliverQueue(ctx context.Context, queue []*store.OutMail) {
	w := p.w
	next := 0
	defer func() {
		if r := recover(); r != nil {
			w.Log.Error("outbox delivery panic", "panic", r, "ticket", queue[0].TicketID)
		}
		w.land(queue[next:]...)
	}()
	for next < len(queue) && ctx.Err() == nil {
		m := queue[next]
		ok := w.deliver(ctx, m)
		next++
		if !ok {
			return
		}
	}
}

// commitLoop commits the outcomes that arrived while the previous commit
// ran, together.
func (p *pump) commitLoop() {
	defer close(p.done)
	for o := range p.out {
		batch := []*outcome{o}
	more:
		for len(batch) < maxOutcomes {
			select {
			case o, ok := <-p.out:
				if !ok {
					break more
				}
				batch = append(batch, o)
			default:
				break more
			}
		}
		p.commit(batch)
		p.signal()
	}
}

func (p *pump) commit(batch []*outcome) {
	defer func() {
		if r := recover(); r != nil {
			p.w.Log.Error("outbox commit panic", "panic", r)
		}
	}()
	// A run that is stopping commits what is left at once: nothing is
	// gained by holding its end back.
	p.w.commit(batch, p.soon && p.ctx.Err() == nil)
}

// commit records the outcomes in batch in one transaction (with the
// store's next commit when soon); when that fails, each in its own, so
// that one outcome the database refuses does not hold back the others.
// It returns when they are committed: only then are they settled.
func (w *Worker) commit(batch []*outcome, soon bool) {
	lost := make([]bool, len(batch))
	// The outcomes are recorded even when the run's ctx ends: the relay
	// already answered.
	err := w.write(context.Background(), soon, func(tx store.Tx) error {
		for i, o := range batch {
			err := o.fn(tx)
			lost[i] = errors.Is(err, errClaimLost)
			if err != nil && !lost[i] {
				return err
			}
		}
		return nil
	})
	if err == nil || len(batch) == 1 {
		for i, o := range batch {
			w.settle(o, lost[i], err)
		}
		return
	}
	for _, o := range batch {
		err := w.Store.Update(context.Background(), o.fn)
		lost := errors.Is(err, errClaimLost)
		if lost {
			err = nil
		}
		w.settle(o, lost, err)
	}
}

// write commits fn: with Update, or with UpdateSoon when soon.
func (w *Worker) write(ctx context.Context, soon bool, fn func(store.Tx) error) error {
	if soon {
		return w.Store.UpdateSoon(ctx, fn)
	}
	return w.Store.Update(ctx, fn)
}

// settle ends the flight of o's entry once its outcome is committed (or
// dropped, its claim lost), or keeps the outcome to commit again.
func (w *Worker) settle(o *outcome, lost bool, err error) {
	if err != nil {
		o.log.Error("record delivery outcome", "err", err)
		w.mu.Lock()
		if w.unrecorded == nil {
			w.unrecorded = map[uint64]func(store.Tx) error{}
		}
		w.unrecorded[o.id] = o.fn
		w.mu.Unlock()
		return
	}
	if lost {
		o.log.Warn("delivery outcome not recorded", "err", errClaimLost)
	}
	w.mu.Lock()
	delete(w.unrecorded, o.id)
	if w.settled == nil {
		w.settled = map[uint64]uint64{}
	}
	w.settled[o.id] = w.claims
	w.mu.Unlock()
	if !lost && o.committed != nil {
		o.committed()
	}
	if l := w.hlog; l != nil {
		if err := l.settle(o.id); err != nil {
			w.Log.Error("empty hand-off log", "err", err)
		}
	}
	w.landID(o.id)
}

// plan takes the entries claim number claim returned that are not in
// flight yet into flight, as queues of mail to deliver in order. A queue
// with an entry in flight is left out whole: its later mail waits for that
// outcome. So is one with an entry whose outcome was committed since the
// claim began: the claim may have read it as it was before (still due).
func (w *Worker) plan(due []*store.OutMail, claim uint64) [][]*store.OutMail {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.flight == nil {
		w.flight, w.busy = map[uint64]*flying{}, map[string]int{}
	}
	for id, at := range w.settled {
		if at < claim {
			delete(w.settled, id) // committed before the claim began: it saw that
		}
	}
	var order []string
	queues := map[string][]*store.OutMail{}
	stale := map[string]bool{}
	for _, m := range due {
		q := m.Queue()
		if f, ok := w.flight[m.ID]; ok {
			f.until = m.ClaimedUntil // the claim was renewed
			continue
		}
		if _, ok := w.settled[m.ID]; ok {
			stale[q] = true
			continue
		}
		if _, planned := queues[q]; !planned && (w.busy[q] > 0 || stale[q]) {
			continue
		}
		if _, planned := queues[q]; !planned {
			order = append(order, q)
		}
		queues[q] = append(queues[q], m)
		w.flight[m.ID] = &flying{queue: q, until: m.ClaimedUntil}
		w.busy[q]++
	}
	out := make([][]*store.OutMail, len(order))
	for i, q := range order {
		out[i] = queues[q]
	}
	return out
}

// land ends the flight of entries not delivered: they are claimed again.
func (w *Worker) land(ms ...*store.OutMail) {
	for _, m := range ms {
		w.landID(m.ID)
	}
}

func (w *Worker) landID(id uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	f, ok := w.flight[id]
	if !ok {
		return
	}
	delete(w.flight, id)
	if w.busy[f.queue]--; w.busy[f.queue] <= 0 {
		delete(w.busy, f.queue)
	}
}

// claimedUntil is when this worker's claim on m runs out, renewed by the
// claims since m was read.
func (w *Worker) claimedUntil(m *store.OutMail) time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	if f, ok := w.flight[m.ID]; ok {
		return f.until
	}
	return m.ClaimedUntil
}
