package boltdb

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"

	"ticketgate/store"
)

// The search words of a message, and of a new ticket's subject and
// requester, are not written by the transaction that stores them.
// Splitting a body into words and putting one idx.word entry a word, each
// at a random place in the index, was the largest part of storing a
// message, paid inside the single writer while every other message of the
// group commit waited. AddMessage instead queues the message in idx.wordq
// (its sequence number → its ticket id: one small put at the end of the
// bucket), PutTicket queues a new ticket (key "t", 0x00, its id), and the
// indexer (indexLoop) moves the words of many queued entries into
// idx.word at once: split on its own goroutine, put in key order in one
// commit of its own, after the writes queued with it (updateAlone). A
// change to a ticket's words after that (a new subject, an erasure) is
// indexed at once, in its own transaction, and takes the ticket off the
// queue.
//
// A queued entry is searchable at once: a search reads the queue as well
// as the index (queuedWords). The queue is in the same transaction as the
// message or ticket, so a crash loses neither; a database opened again
// indexes what is left queued.

// maxIndexBatch caps the messages one indexing commit takes.
const maxIndexBatch = 512

// indexDelay is how long the indexer lets messages gather in the queue
// after it is woken: at a few messages a second one indexing commit (and
// fsync) then serves many messages instead of one each; under load the
// queue holds what a second brings, which a search reads in a few
// milliseconds.
const indexDelay = 500 * time.Millisecond

// queueWords queues the message stored under ticket id with sequence seq
// for the indexer.
func (t *tx) queueWords(id string, seq uint64) error {
	if err := t.bucket(bucketIdxWordQ).Put(u64(seq), []byte(id)); err != nil {
		return fmt.Errorf("queue message words: %w", err)
	}
	if t.db != nil {
		t.db.wordsQueued.Store(true)
	}
	return nil
}

// queueTicketWords queues the words of ticket id's subject and requester.
func (t *tx) queueTicketWords(id string) error {
	if err := t.bucket(bucketIdxWordQ).Put(ticketWordsKey(id), nil); err != nil {
		return fmt.Errorf("queue ticket words: %w", err)
	}
	if t.db != nil {
		t.db.wordsQueued.Store(true)
	}
	return nil
}

// ticketWordsKey is the idx.wordq key of ticket id's own words. Message
// keys are 8 bytes and start with 0x00; these follow them all.
func ticketWordsKey(id string) []byte { return key([]byte("t"), []byte(id)) }

// unqueueWords drops the ticket's messages stored under keys (messages
// bucket keys) from the queue: whoever calls it indexes them.
func (t *tx) unqueueWords(keys [][]byte) error {
	q := t.bucket(bucketIdxWordQ)
	for _, k := range keys {
		if len(k) < 8 {
			continue
		}
		if err := q.Delete(k[len(k)-8:]); err != nil {
			return fmt.Errorf("unqueue message words: %w", err)
		}
	}
	return nil
}

// queuedEntry is a queued message's or ticket's words.
type queuedEntry struct {
	seq   []byte // its idx.wordq key
	id    []byte // its ticket
	at    []byte // the ticket's posting (search.go); nil: no such ticket
	bit   byte   // wordInMessage or wordInTicket
	words []string
}

// queued reads up to limit queued entries (0: all) and their words. A
// queued message or ticket that is no longer stored, or does not decode,
// has no words.
func (t *tx) queued(limit int) ([]queuedEntry, error) {
	var out []queuedEntry
	tprefix := ticketWordsKey("")
	c := t.bucket(bucketIdxWordQ).Cursor()
	for k, v := c.First(); k != nil && (limit == 0 || len(out) < limit); k, v = c.Next() {
		if err := t.ctx.Err(); err != nil {
			return nil, err
		}
		q := queuedEntry{seq: clone(k), id: clone(v), bit: wordInMessage}
		if bytes.HasPrefix(k, tprefix) {
			q.id, q.bit = clone(k[len(tprefix):]), wordInTicket
		}
		if q.at = t.postingOf(q.id); q.at == nil {
			out = append(out, q)
			continue
		}
		// A record that does not decode (damage, which check reports)
		// has no words either: one such record must not fail every
		// search and stop the indexer.
		if q.bit == wordInTicket {
			if tk, err := t.Ticket(string(q.id)); err == nil {
				q.words = store.TicketWords(tk)
			}
		} else if v := t.partAt(bucketMessages, string(v), k); v != nil {
			if m, err := t.decodeMessage(v); err == nil {
				q.words = store.MessageWords(m)
			}
		}
		out = append(out, q)
	}
	return out, nil
}

// queuedWords is, for every ticket with queued messages, the set of their
// words.
func (t *tx) queuedWords() (map[string]map[string]bool, error) {
	qs, err := t.queued(0)
	if err != nil {
		return nil, err
	}
	out := map[string]map[string]bool{}
	for _, q := range qs {
		set := out[string(q.id)]
		if set == nil {
			set = map[string]bool{}
			out[string(q.id)] = set
		}
		for _, w := range q.words {
			set[w] = true
		}
	}
	return out, nil
}

// indexQueued moves the words of up to maxIndexBatch queued entries into
// idx.word and reports how many it took. The words are split in a read
// transaction; the commit then puts them in key order and skips any
// entry no longer queued (a change indexed it in the meantime). That
// commit holds the writer tens of milliseconds, so it is committed alone:
// the writes the committer took with it go first.
func (d *DB) indexQueued(ctx context.Context) (int, error) {
	var qs []queuedEntry
	err := d.View(ctx, func(st store.Tx) error {
		var err error
		qs, err = st.(*tx).queued(maxIndexBatch)
		return err
	})
	if err != nil || len(qs) == 0 {
		return 0, err
	}
	if err := d.updateAlone(ctx, indexEntries(qs)); err != nil {
		return 0, fmt.Errorf("index queued words: %w", err)
	}
	return len(qs), nil
}

// indexEntries is the commit that moves the words of qs, read earlier,
// into idx.word, in key order, and takes them off the queue; it skips an
// entry no longer queued (a change indexed it since it was read) or whose
// ticket's posting changed.
func indexEntries(qs []queuedEntry) func(store.Tx) error {
	type entry struct {
		k  []byte // idx.word key
		at int    // the entry in qs
	}
	var entries []entry
	for i, q := range qs {
		for _, w := range q.words {
			entries = append(entries, entry{key([]byte(w), q.at), i})
		}
	}
	slices.SortFunc(entries, func(a, b entry) int { return bytes.Compare(a.k, b.k) })
	return func(st store.Tx) error {
		t := st.(*tx)
		queue, words := t.bucket(bucketIdxWordQ), t.bucket(bucketIdxWord)
		if queue == nil || words == nil {
			return fmt.Errorf("bucket %s or %s missing", bucketIdxWordQ, bucketIdxWord)
		}
		words.FillPercent = wordFill
		// An entry is indexed when still queued, and under the posting
		// it was read with: a ticket whose creation time changed since
		// stays queued for the next round.
		live := make([]bool, len(qs))
		for i, q := range qs {
			live[i] = queue.Get(q.seq) != nil && bytes.Equal(t.postingOf(q.id), q.at)
		}
		c := words.Cursor()
		for _, e := range entries {
			if !live[e.at] {
				continue
			}
			if err := putWordBit(c, words, e.k, qs[e.at].bit); err != nil {
				return err
			}
		}
		for i, q := range qs {
			if !live[i] {
				continue
			}
			if err := queue.Delete(q.seq); err != nil {
				return fmt.Errorf("unqueue words: %w", err)
			}
		}
		return nil
	}
}

// putWordBit sets bit in the idx.word entry k of b, reading the entry
// with c, a cursor of b. Callers put many words and pass one cursor for
// all of them: Get would allocate a cursor (and its stack) every time.
func putWordBit(c *bolt.Cursor, b *bolt.Bucket, k []byte, bit byte) error {
	var had byte
	if got, v := c.Seek(k); bytes.Equal(got, k) && len(v) == 1 {
		had = v[0]
	}
	if had&bit != 0 {
		return nil
	}
	if err := b.Put(k, []byte{had | bit}); err != nil {
		return fmt.Errorf("index word: %w", err)
	}
	return nil
}

// committed wakes the indexer when a transaction queued words since the
// last commit: it then finds them committed.
func (d *DB) committed() {
	if d.wordsQueued.Swap(false) {
		d.wakeIndexer()
	}
}

// wakeIndexer tells the indexer that messages were queued.
func (d *DB) wakeIndexer() {
	select {
	case d.indexWake <- struct{}{}:
	default:
	}
}

// indexLoop indexes queued messages whenever some were queued, until
// stopIndexer.
func (d *DB) indexLoop() {
	defer close(d.indexDone)
	for {
		select {
		case <-d.indexStop:
			return
		case <-d.indexWake:
		}
		select {
		case <-d.indexStop:
			return
		case <-time.After(indexDelay):
		}
		for {
			n, err := d.indexQueued(context.Background())
			if err != nil {
				d.log.Error("search index", "err", err)
				break
			}
			if n < maxIndexBatch {
				break
			}
		}
	}
}

// startIndexer starts the indexer, with whatever a previous run left
// queued.
func (d *DB) startIndexer() {
	d.indexWake = make(chan struct{}, 1)
	d.indexStop = make(chan struct{})
	d.indexDone = make(chan struct{})
	go d.indexLoop()
	d.wakeIndexer()
}

// stopIndexer waits for the indexer's commit in flight and stops it. What
// is still queued stays queued, searchable, for the next Open.
func (d *DB) stopIndexer() {
	if d.indexStop == nil {
		return
	}
	close(d.indexStop)
	<-d.indexDone
	d.indexStop = nil
}
