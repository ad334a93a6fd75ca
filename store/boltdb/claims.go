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
// dropped with it when it rolls back (DB.update settles them).
//
// bbolt lets the next write transaction begin as soon as one has
// committed, before the Update that ran it returns: the pending claims
// are kept by transaction, so that one begun meanwhile (an UpdateNow
// beside the committer) neither drops the claims of the commit before it
// nor has its own undone by them.

// claim is an owner's hold on an outbox entry until a time.
type claim struct {
	owner string
	until time.Time
}

// claims holds the committed claims of a DB and the pending changes of
// its write transactions.
type claims struct {
	mu   sync.Mutex
	held map[uint64]claim
	// pending holds the changes of each write transaction not settled
	// yet: a claim, or nil for one released.
	pending map[*bolt.Tx]*pendingClaims
	// changedBy holds, while changes of more than one transaction are
	// pending, the transaction id of the latest change taken for each
	// entry: changes of an earlier transaction settled later do not
	// undo it.
	changedBy map[uint64]int
}

// pendingClaims are one write transaction's changes to the claims.
type pendingClaims struct {
	txid    int
	changes map[uint64]*claim
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
	if p := c.pending[t.tx]; p != nil {
		if cl, ok := p.changes[id]; ok {
			if cl == nil {
				return claim{}, false
			}
			return *cl, true
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
	p := c.pending[t.tx]
	if p == nil {
		if c.pending == nil {
			c.pending = map[*bolt.Tx]*pendingClaims{}
		}
		p = &pendingClaims{txid: t.tx.ID(), changes: map[uint64]*claim{}}
		c.pending[t.tx] = p
	}
	p.changes[id] = cl
}

// update runs fn in a bbolt write transaction, then settles the claims
// it changed: taken when it committed, dropped when it did not (fn
// failed or panicked, or the commit failed).
func (d *DB) update(fn func(*bolt.Tx) error) error {
	var btx *bolt.Tx
	committed := false
	defer func() { d.claims.settle(btx, committed) }()
	err := d.db.Update(func(tx *bolt.Tx) error {
		btx = tx
		return fn(tx)
	})
	committed = err == nil
	return err
}

// settle takes the pending changes of btx when it committed, and drops
// them otherwise.
func (c *claims) settle(btx *bolt.Tx, committed bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.pending[btx]
	if p == nil {
		return
	}
	delete(c.pending, btx)
	if committed {
		if c.held == nil {
			c.held = map[uint64]claim{}
		}
		for id, cl := range p.changes {
			if c.changedBy[id] > p.txid {
				continue // a later commit changed it already
			}
			if len(c.pending) > 0 {
				if c.changedBy == nil {
					c.changedBy = map[uint64]int{}
				}
				c.changedBy[id] = p.txid
			}
			if cl == nil {
				delete(c.held, id)
			} else {
				c.held[id] = *cl
			}
		}
	}
	if len(c.pending) == 0 {
		c.changedBy = nil
	}
	if len(c.held) > maxStaleClaims {
		now := time.Now()
		for id, cl := range c.held {
			if !cl.until.After(now) {
				delete(c.held, id)
			}
		}
	}
}
