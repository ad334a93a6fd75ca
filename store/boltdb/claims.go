package boltdb

import (
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Outbox claims (Tx.ClaimOutbox) are kept in memory, not in the entries'
// records. The file lock means only this process sends from the
// database, and a claim of an earlier process never held for this one
// (a restarted gateway does not wait for its predecessor's claims), so a
// claim written to disk was never read back after a restart: it cost a
// rewrite of every claimed entry, and of its page, in the commit that
// claimed it. A claim still takes effect only when its transaction
// commits: a write transaction's claims are pending until then, and
// dropped with it when it rolls back.

// claim is an owner's hold on an outbox entry until a time.
type claim struct {
	owner string
	until time.Time
}

// claims holds the committed claims of a DB and the pending changes of
// its one write transaction at a time (bbolt runs write transactions one
// after another).
type claims struct {
	mu   sync.Mutex
	held map[uint64]claim
	// pendingIn is the write transaction whose changes pending holds: a
	// claim, or nil for one released.
	pendingIn *bolt.Tx
	pending   map[uint64]*claim
}

// maxStaleClaims is how many claims may be held before a commit drops
// the expired ones: a claim is released when its entry is sent or
// deferred, so only entries deleted another way leave one behind.
const maxStaleClaims = 4096

// claimOf returns the claim on outbox entry id as transaction t sees it.
func (t *tx) claimOf(id uint64) (claim, bool) {
	if t.db == nil {
		return claim{}, false
	}
	c := &t.db.claims
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pendingIn == t.tx {
		if p, ok := c.pending[id]; ok {
			if p == nil {
				return claim{}, false
			}
			return *p, true
		}
	}
	h, ok := c.held[id]
	return h, ok
}

// setClaim claims outbox entry id for cl once t commits, or releases it
// when cl is nil.
func (t *tx) setClaim(id uint64, cl *claim) {
	if t.db == nil {
		return
	}
	c := &t.db.claims
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pendingIn != t.tx {
		c.pendingIn, c.pending = t.tx, map[uint64]*claim{}
		btx := t.tx
		btx.OnCommit(func() { c.commit(btx) })
	}
	c.pending[id] = cl
}

// commit applies the pending changes of btx, which committed.
func (c *claims) commit(btx *bolt.Tx) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pendingIn != btx {
		return
	}
	if c.held == nil {
		c.held = map[uint64]claim{}
	}
	for id, cl := range c.pending {
		if cl == nil {
			delete(c.held, id)
		} else {
			c.held[id] = *cl
		}
	}
	c.pendingIn, c.pending = nil, nil
	if len(c.held) > maxStaleClaims {
		now := time.Now()
		for id, cl := range c.held {
			if !cl.until.After(now) {
				delete(c.held, id)
			}
		}
	}
}
