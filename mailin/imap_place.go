package mailin

import (
	"context"
	"fmt"
	"maps"
	"sync"

	"github.com/emersion/go-imap/v2"

	"ticketgate/store"
)

// Where a poller stands in a mailbox besides its checkpoint's UID: the
// checkpoint held below mail not yet taken ("seen" mode without
// keywords), and the failed tries of each message, kept in the store.

type triesKey struct {
	validity uint32
	uid      imap.UID
}

// held keeps the checkpoint below every message not yet taken, in "seen"
// mode on a server that keeps no keywords. There the checkpoint is all
// that says a message already \Seen was taken: a message a person read
// that failed for now (deliveries run in parallel) would be lost if a
// later one committed its own UID. So each delivery commits as checkpoint
// the UID below the lowest candidate not yet committed, and after each
// batch the poller records how far everything was taken. A checkpoint on
// disk never passes a message left to take, across a crash too; a crash
// only means messages above it are delivered again and dropped as
// duplicates. A nil held (every other mode) commits each message's own
// UID.
type held struct {
	mu   sync.Mutex
	uids []imap.UID // this drain's candidates, ascending
	next int        // uids[next] is the lowest not yet released
	done map[imap.UID]bool
	top  imap.UID // the highest candidate released so far
	from imap.UID // the checkpoint the drain started from
}

func newHeld(uids []imap.UID, from imap.UID) *held {
	return &held{uids: uids, done: map[imap.UID]bool{}, from: from}
}

// lowest returns the lowest candidate not yet released; h.mu is held.
func (h *held) lowest() (imap.UID, bool) {
	for h.next < len(h.uids) && h.done[h.uids[h.next]] {
		h.next++
	}
	if h.next == len(h.uids) {
		return 0, false
	}
	return h.uids[h.next], true
}

// checkpoint returns the UID that the delivery of uid may commit.
func (h *held) checkpoint(uid imap.UID) imap.UID {
	if h == nil {
		return uid
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if low, ok := h.lowest(); ok && low < uid {
		return low - 1
	}
	return uid
}

// release marks uid committed, or given up after max_tries.
func (h *held) release(uid imap.UID) {
	if h == nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.done[uid] = true
	h.top = max(h.top, uid)
}

// mark returns how far every candidate was taken, and whether that is
// past the checkpoint the drain started from.
func (h *held) mark() (imap.UID, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	m := h.top
	if low, ok := h.lowest(); ok {
		m = min(m, low-1)
	}
	return m, m > h.from
}

// settle records the checkpoint h allows, so that messages committed
// while a lower one was in flight are not fetched again next time.
func (p *Poller) settle(ctx context.Context, validity uint32, h *held) error {
	if h == nil {
		return nil
	}
	uid, ok := h.mark()
	if !ok {
		return nil
	}
	err := p.in.Store.UpdateNow(context.WithoutCancel(ctx), func(tx store.Tx) error {
		return tx.PutCheckpoint(store.Checkpoint{Mailbox: p.cfg.Name, UIDValidity: validity, UID: uint32(uid)})
	})
	if err != nil {
		return fmt.Errorf("record checkpoint: %w", err)
	}
	return nil
}

// splitExhausted separates messages that failed max_tries times.
func (p *Poller) splitExhausted(validity uint32, uids []imap.UID) (todo, exhausted []imap.UID) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, uid := range uids {
		if p.tries[triesKey{validity, uid}] >= p.cfg.MaxTries {
			exhausted = append(exhausted, uid)
		} else {
			todo = append(todo, uid)
		}
	}
	// Forget messages that are no longer there (moved away by hand).
	present := map[imap.UID]bool{}
	for _, uid := range uids {
		present[uid] = true
	}
	for k := range p.tries {
		if k.validity != validity || !present[k.uid] {
			delete(p.tries, k)
		}
	}
	return todo, exhausted
}

// loadTries reads the failed tries the database holds for the mailbox:
// they count across restarts and across the instances that poll it in
// turn.
func (p *Poller) loadTries(ctx context.Context) error {
	var (
		validity uint32
		tries    map[uint32]int
	)
	err := p.in.Store.View(ctx, func(tx store.Tx) error {
		var err error
		validity, tries, err = tx.PollTries(p.cfg.Name)
		return err
	})
	if err != nil {
		return fmt.Errorf("read failed tries: %w", err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.tries = map[triesKey]int{}
	for uid, n := range tries {
		p.tries[triesKey{validity, imap.UID(uid)}] = n
	}
	p.saved = tries
	return nil
}

// saveTries writes the failed tries under validity to the database when
// they changed since they were last read or written.
func (p *Poller) saveTries(ctx context.Context, validity uint32) error {
	p.mu.Lock()
	tries := map[uint32]int{}
	for k, n := range p.tries {
		if k.validity == validity && n > 0 {
			tries[uint32(k.uid)] = n
		}
	}
	same := maps.Equal(tries, p.saved)
	p.mu.Unlock()
	if same {
		return nil
	}
	err := p.in.Store.UpdateNow(context.WithoutCancel(ctx), func(tx store.Tx) error {
		return tx.PutPollTries(p.cfg.Name, validity, tries)
	})
	if err != nil {
		return fmt.Errorf("record failed tries: %w", err)
	}
	p.mu.Lock()
	p.saved = tries
	p.mu.Unlock()
	return nil
}

// failedOnce counts a permanent failure and reports whether the message
// has now used up its tries.
func (p *Poller) failedOnce(validity uint32, o outcome) bool {
	p.mu.Lock()
	k := triesKey{validity, o.uid}
	p.tries[k]++
	n := p.tries[k]
	p.mu.Unlock()
	p.setError(fmt.Errorf("uid %d: %w", o.uid, o.err))
	p.log.Warn("message cannot be taken", "uid", o.uid, "try", n, "max_tries", p.cfg.MaxTries, "err", o.err)
	return n >= p.cfg.MaxTries
}
