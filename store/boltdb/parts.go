package boltdb

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"time"
)

// A ticket's messages and events are numbered by their bucket's sequence
// and keyed under the ticket: until schema 12 by its id (id, 0x00, the
// number), which put every new ticket with a random number on a random
// page of both buckets; since then by its posting (postedPrefix, then
// the number: see byPosting), so a new ticket's go at the end. Both
// kinds are read, and a ticket's entries are returned in the order they
// were added, whichever kind their keys are.

// partPrefixes returns the key prefixes ticket id's messages or events
// may be under: its id, then its posting when it has a summary.
func (t *tx) partPrefixes(id string) [][]byte {
	named := append([]byte(id), 0)
	if p := t.postingOf([]byte(id)); p != nil {
		return [][]byte{named, postedPrefix(p)}
	}
	return [][]byte{named}
}

// partKey is the key of ticket id's new message or event number seq:
// under the ticket's posting when it has a summary, or when it is opened
// in this transaction and the caller said when (opened: the posting its
// summary will have); under its id otherwise.
func (t *tx) partKey(id string, opened time.Time, seq uint64) []byte {
	p := t.postingOf([]byte(id))
	if p == nil {
		p = t.hintedPosting(id, opened)
	}
	if p == nil {
		return key([]byte(id), u64(seq))
	}
	return append(postedPrefix(p), u64(seq)...)
}

// hintedPosting is the posting ticket id will have if it was opened at
// opened (a caller's TicketCreated), nil when that is not known. The
// transaction remembers it: should the ticket then be written with
// another creation time, PutTicket moves what was filed under this one
// (settleHints), so a caller's mistake misfiles nothing.
func (t *tx) hintedPosting(id string, opened time.Time) []byte {
	if id == "" || opened.IsZero() {
		return nil
	}
	p := posting(opened, id)
	if !slices.ContainsFunc(t.hinted[id], func(h []byte) bool { return bytes.Equal(h, p) }) {
		if t.hinted == nil {
			t.hinted = map[string][][]byte{}
		}
		t.hinted[id] = append(t.hinted[id], p)
	}
	return p
}

// settleHints moves what this transaction filed under a posting a caller
// gave for ticket id to the posting id now has, when they differ.
func (t *tx) settleHints(id string, now []byte) error {
	for _, h := range t.hinted[id] {
		if bytes.Equal(h, now) {
			continue
		}
		if err := t.movePostings(h, now); err != nil {
			return fmt.Errorf("ticket %s: %w", id, err)
		}
	}
	delete(t.hinted, id)
	return nil
}

// partAt returns ticket id's entry of bucket with the 8-byte number seq,
// under either kind of key, or nil.
func (t *tx) partAt(bucket []byte, id string, seq []byte) []byte {
	b := t.bucket(bucket)
	for _, prefix := range t.partPrefixes(id) {
		if v := b.Get(append(prefix, seq...)); v != nil {
			return v
		}
	}
	return nil
}

// eachPart calls fn with the key and value of each of ticket id's
// entries in bucket, in the order they were added.
func (t *tx) eachPart(bucket []byte, id string, fn func(k, v []byte) error) error {
	type kv struct{ k, v []byte }
	var all []kv
	kinds := 0
	c := t.bucket(bucket).Cursor()
	for _, prefix := range t.partPrefixes(id) {
		n := len(all)
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			if err := t.ctx.Err(); err != nil {
				return err
			}
			if len(k) == len(prefix)+8 {
				all = append(all, kv{k, v})
			}
		}
		if len(all) > n {
			kinds++
		}
	}
	if kinds > 1 { // written before and after schema 12
		slices.SortFunc(all, func(a, b kv) int {
			return cmpU64(binary.BigEndian.Uint64(a.k[len(a.k)-8:]), binary.BigEndian.Uint64(b.k[len(b.k)-8:]))
		})
	}
	for _, e := range all {
		if err := fn(e.k, e.v); err != nil {
			return err
		}
	}
	return nil
}

// postedBuckets are the buckets whose keys begin with postedPrefix:
// what is filed under a ticket's posting, besides its record and its sent
// mail.
var postedBuckets = [][]byte{bucketMessages, bucketEvents, bucketIdxOutboxQueue}

// movePostings moves what postedBuckets hold under posting from to
// posting to.
func (t *tx) movePostings(from, to []byte) error {
	for _, b := range postedBuckets {
		if err := t.movePrefix(b, postedPrefix(from), postedPrefix(to)); err != nil {
			return fmt.Errorf("move %s: %w", b, err)
		}
	}
	return nil
}

// movePrefix moves the keys of bucket that begin with from to begin with
// to instead, with their values.
func (t *tx) movePrefix(bucket, from, to []byte) error {
	b := t.bucket(bucket)
	type kv struct{ k, v []byte }
	var moving []kv
	c := b.Cursor()
	for k, v := c.Seek(from); k != nil && bytes.HasPrefix(k, from); k, v = c.Next() {
		moving = append(moving, kv{clone(k), clone(v)})
	}
	for _, e := range moving {
		if err := b.Delete(e.k); err != nil {
			return err
		}
		if err := b.Put(append(bytes.Clone(to), e.k[len(from):]...), e.v); err != nil {
			return err
		}
	}
	return nil
}
