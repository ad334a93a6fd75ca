package boltdb

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	bolt "go.etcd.io/bbolt"

	"ticketgate/rules"
	"ticketgate/store"
)

var _ store.Inspector = (*DB)(nil)

// Stats counts idx.status keys by their status prefix and the outbox
// entries: no record is decoded but the oldest outbox entry.
func (d *DB) Stats(ctx context.Context) (st store.Stats, err error) {
	defer damaged(&err)
	st = store.Stats{ByStatus: map[rules.Status]int{}}
	err = d.View(ctx, func(t store.Tx) error {
		btx := t.(*tx)
		c := btx.bucket(bucketIdxStatus).Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			if i := bytes.IndexByte(k, 0); i > 0 {
				st.ByStatus[rules.Status(k[:i])]++
			}
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		st.Outbox = countKeys(btx.bucket(bucketOutbox))
		// Outbox ids grow as mail is queued: the first is the mail
		// waiting longest, due since it was queued however often the
		// relay deferred it (its NextAt is only its next try).
		c = btx.bucket(bucketOutbox).Cursor()
		for k, _ := c.First(); len(k) == 8; k, _ = c.Next() {
			r, err := btx.outboxRec(binary.BigEndian.Uint64(k))
			if errors.Is(err, store.ErrBadRecord) {
				continue // damage, which check reports: the next one
			}
			if err != nil {
				return err
			}
			st.OldestDue = r.Created
			return nil
		}
		return nil
	})
	return st, err
}

func countKeys(b *bolt.Bucket) int {
	n := 0
	c := b.Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		n++
	}
	return n
}

// Check walks every record and index in one read transaction (a
// consistent snapshot, so it may run while serve writes) and reports:
// index entries without their record or disagreeing with it, records
// without their index entries, messages and events of tickets that do not
// exist, outbox entries naming a missing ticket or missing from their
// queue (and queue entries of mail gone), addresses indexed for a
// ticket that is not theirs or not at all, blobs that are referenced
// but missing or counted fewer times than they are used, records
// (messages, events, rate counters, sent mail) that do not decode. A
// damaged page of the file ends the walk: the problems found before it
// come with an ErrDamaged.
func (d *DB) Check(ctx context.Context) ([]string, error) {
	c := &checker{tickets: map[string]indexed{}, uses: map[string]uint64{}}
	err := d.checkWalk(ctx, c)
	return c.problems, err
}

// checkWalk runs the walk; a damaged page ends it with ErrDamaged, and
// c keeps what was found before it.
func (d *DB) checkWalk(ctx context.Context, c *checker) (err error) {
	defer damaged(&err)
	return d.View(ctx, func(t store.Tx) error {
		c.tx = t.(*tx)
		for _, step := range []func() error{c.ticketRecords, c.ticketIndexes, c.addresses, c.messages, c.events, c.msgIDs, c.outbox, c.blobs, c.counters} {
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := step(); err != nil {
				return err
			}
		}
		return nil
	})
}

// checker holds what one Check has seen so far.
type checker struct {
	tx       *tx
	tickets  map[string]indexed // every ticket record, by id
	uses     map[string]uint64  // blob hash → references from messages and outbox
	problems []string
}

func (c *checker) bad(format string, a ...any) {
	c.problems = append(c.problems, fmt.Sprintf(format, a...))
}

func (c *checker) has(bucket, k []byte) bool {
	got, _ := c.tx.bucket(bucket).Cursor().Seek(k)
	return bytes.Equal(got, k)
}

// ticketRecords checks that every ticket has its idx.status, idx.created
// and (when due) idx.due entries.
func (c *checker) ticketRecords() error {
	return c.tx.bucket(bucketTickets).ForEach(func(k, v []byte) error {
		id := string(k)
		if p, ok := bytes.CutPrefix(k, []byte{byPosting}); ok && len(p) > postingTime {
			id = string(p[postingTime:])
			if !bytes.Equal(c.tx.postingOf([]byte(id)), p) {
				c.bad("ticket %s: record filed under another creation time than its summary's", id)
			}
		}
		var tk store.Ticket
		if err := decodeTicket(v, &tk); err != nil {
			c.bad("ticket %s: record does not decode: %v", id, err)
			return nil
		}
		o := *indexedOf(&tk)
		c.tickets[id] = o
		if !c.has(bucketIdxStatus, statusKey(o.Status, o.CreatedAt, id)) {
			c.bad("ticket %s: no idx.status entry for status %q", id, o.Status)
		}
		if !c.has(bucketIdxCreated, createdKey(o.CreatedAt, id)) {
			c.bad("ticket %s: no idx.created entry", id)
		}
		if !o.Due.IsZero() && !c.has(bucketIdxDue, dueKey(o.Due, id)) {
			c.bad("ticket %s: due %s but no idx.due entry", id, o.Due.UTC().Format("2006-01-02T15:04:05Z"))
		}
		return nil
	})
}

// addresses checks that idx.addr holds exactly each ticket's requester
// and participants.
func (c *checker) addresses() error {
	for id, o := range c.tickets {
		for _, a := range store.Addresses(&store.Ticket{Requester: o.Requester, CC: o.CC}) {
			if !c.has(bucketIdxAddr, key([]byte(a), []byte(id))) {
				c.bad("ticket %s: no idx.addr entry for %s", id, a)
			}
		}
	}
	return c.tx.bucket(bucketIdxAddr).ForEach(func(k, _ []byte) error {
		i := bytes.LastIndexByte(k, 0)
		if i < 0 {
			c.bad("idx.addr: malformed key %q", k)
			return nil
		}
		addr, id := string(k[:i]), string(k[i+1:])
		o, ok := c.tickets[id]
		switch {
		case !ok:
			c.bad("idx.addr: %s names ticket %s, which has no record", addr, id)
		case !slices.Contains(store.Addresses(&store.Ticket{Requester: o.Requester, CC: o.CC}), addr):
			c.bad("idx.addr: %s names ticket %s, which is not theirs", addr, id)
		}
		return nil
	})
}

// ticketIndexes checks that every idx.status, idx.created and idx.due
// entry names a ticket whose record gives that very key.
func (c *checker) ticketIndexes() error {
	err := c.tx.bucket(bucketIdxStatus).ForEach(func(k, _ []byte) error {
		i := bytes.IndexByte(k, 0)
		if i < 0 || len(k) < i+1+createdLen {
			c.bad("idx.status: malformed key %q", k)
			return nil
		}
		id := string(k[i+1+createdLen:])
		if o, ok := c.tickets[id]; !ok {
			c.bad("idx.status: entry for ticket %s, which has no record", id)
		} else if !bytes.Equal(k, statusKey(o.Status, o.CreatedAt, id)) {
			c.bad("idx.status: entry says ticket %s is %q, its record says %q", id, k[:i], o.Status)
		}
		return nil
	})
	if err != nil {
		return err
	}
	err = c.tx.bucket(bucketIdxCreated).ForEach(func(k, _ []byte) error {
		if len(k) <= createdLen {
			c.bad("idx.created: malformed key %q", k)
			return nil
		}
		id := string(k[createdLen:])
		if o, ok := c.tickets[id]; !ok {
			c.bad("idx.created: entry for ticket %s, which has no record", id)
		} else if !bytes.Equal(k, createdKey(o.CreatedAt, id)) {
			c.bad("idx.created: entry for ticket %s does not match its creation time", id)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return c.tx.bucket(bucketIdxDue).ForEach(func(k, _ []byte) error {
		if len(k) <= 8 {
			c.bad("idx.due: malformed key %q", k)
			return nil
		}
		id := string(k[8:])
		if o, ok := c.tickets[id]; !ok {
			c.bad("idx.due: entry for ticket %s, which has no record", id)
		} else if o.Due.IsZero() || !bytes.Equal(k, dueKey(o.Due, id)) {
			c.bad("idx.due: entry for ticket %s does not match its due time", id)
		}
		return nil
	})
}

// owner is the ticket id of a messages or events key: (id, 0x00, 8-byte
// number), or (byPosting, posting, 0x00, number) since schema 12. An
// entry under a posting that is not its ticket's is reported: reads
// would not find it.
func (c *checker) owner(bucket string, k []byte) (string, bool) {
	if len(k) < 10 || k[len(k)-9] != 0 {
		return "", false
	}
	head := k[:len(k)-9]
	if head[0] != byPosting {
		return string(head), true
	}
	if len(head) <= 1+postingTime {
		return "", false
	}
	id := string(head[1+postingTime:])
	if p := c.tx.postingOf([]byte(id)); p != nil && !bytes.Equal(p, head[1:]) {
		c.bad("ticket %s: %s entry %d filed under another creation time than the ticket's", id, bucket, binary.BigEndian.Uint64(k[len(k)-8:]))
	}
	return id, true
}

// messages checks that every message belongs to a ticket, that its raw
// copy and attachments are in the blob store, and that its Message-ID is
// indexed.
func (c *checker) messages() error {
	return c.tx.bucket(bucketMessages).ForEach(func(k, v []byte) error {
		id, ok := c.owner("messages", k)
		if !ok {
			c.bad("messages: malformed key %q", k)
			return nil
		}
		if _, ok := c.tickets[id]; !ok {
			c.bad("ticket %s: has a message but no record", id)
		}
		// The record first, so that a missing raw copy is reported as
		// such even when the text is read from it.
		var m messageRec
		if err := decodeMessageRec(v, &m); err != nil {
			c.bad("ticket %s: message %d does not decode: %v", id, binary.BigEndian.Uint64(k[len(k)-8:]), err)
			return nil
		}
		if m.Raw == "" || c.useBlob(m.Raw, "ticket %s: message %s: raw copy", id, m.MessageID) {
			if _, err := c.tx.message(&m); err != nil {
				c.bad("ticket %s: %v", id, err)
			}
		}
		for _, a := range m.Attachments {
			if a.SHA256 != "" {
				c.useBlob(a.SHA256, "ticket %s: message %s: attachment %q", id, m.MessageID, a.Filename)
			}
		}
		if norm := store.NormMessageID(m.MessageID); norm != "" && c.tx.bucket(bucketIdxMsgID).Get([]byte(norm)) == nil {
			c.bad("ticket %s: message %s is not in idx.msgid", id, m.MessageID)
		}
		return nil
	})
}

// useBlob counts one reference to blob h, reports it when missing, and
// says whether it is there.
func (c *checker) useBlob(h string, format string, a ...any) bool {
	c.uses[h]++
	if !c.tx.hasBlob(h) {
		c.bad(format+": blob %s is missing", append(a, h)...)
		return false
	}
	return true
}

// events checks that every event belongs to a ticket and decodes.
func (c *checker) events() error {
	seen := map[string]bool{}
	return c.tx.bucket(bucketEvents).ForEach(func(k, v []byte) error {
		id, ok := c.owner("events", k)
		if !ok {
			c.bad("events: malformed key %q", k)
			return nil
		}
		if _, ok := c.tickets[id]; !ok && !seen[id] {
			seen[id] = true
			c.bad("ticket %s: has events but no record", id)
		}
		var e store.Event
		if err := decodeEvent(v, &e); err != nil {
			c.bad("ticket %s: event %d does not decode: %v", id, binary.BigEndian.Uint64(k[len(k)-8:]), err)
		}
		return nil
	})
}

// counters checks that every rate counter and every record of sent
// mail decodes: a counter that does not fails each message from its
// sender, a sent record the ticket's list of mail and the bounces
// naming it.
func (c *checker) counters() error {
	err := c.tx.bucket(bucketRate).ForEach(func(k, v []byte) error {
		if _, err := decodeRate(string(k), v); err != nil {
			c.bad("rate counter %q does not decode", rateName(k))
		}
		return nil
	})
	if err != nil {
		return err
	}
	prefix := key([]byte("sent"), nil)
	cur := c.tx.bucket(bucketMeta).Cursor()
	for k, v := cur.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = cur.Next() {
		if len(k) != len(prefix)+8 {
			continue
		}
		var r sentRec
		if err := decodeSent(v, &r); err != nil {
			c.bad("sent mail %d: record does not decode: %v", binary.BigEndian.Uint64(k[len(prefix):]), err)
		}
	}
	return nil
}

// msgIDs checks that every idx.msgid entry names an existing ticket.
func (c *checker) msgIDs() error {
	return c.tx.bucket(bucketIdxMsgID).ForEach(func(k, v []byte) error {
		if _, ok := c.tickets[string(v)]; !ok {
			c.bad("idx.msgid: %s names ticket %q, which has no record", k, v)
		}
		return nil
	})
}

// outbox checks every entry against idx.outbox.due, idx.outbox.queue,
// its ticket and its mail, and every outbox.raw, idx.outbox.due and
// idx.outbox.queue key against its entry.
func (c *checker) outbox() error {
	err := c.tx.bucket(bucketOutbox).ForEach(func(k, v []byte) error {
		var r outboxRec
		if err := decodeOutboxRec(v, &r); err != nil || len(k) != 8 || binary.BigEndian.Uint64(k) != r.ID {
			c.bad("outbox: entry %x does not decode or has another id (%v)", k, err)
			return nil
		}
		if r.TicketID != "" {
			if _, ok := c.tickets[r.TicketID]; !ok {
				c.bad("outbox %d: names ticket %s, which has no record", r.ID, r.TicketID)
			}
		}
		if r.RawHash != "" {
			c.useBlob(r.RawHash, "outbox %d: mail", r.ID)
		} else if !c.has(bucketOutboxRaw, k) {
			c.bad("outbox %d: its mail is missing", r.ID)
		}
		if !c.has(bucketIdxOutboxDue, outboxDueKey(r.NextAt, r.ID)) {
			c.bad("outbox %d: no idx.outbox.due entry", r.ID)
		}
		if !slices.ContainsFunc(c.queueKeys(&r), func(q []byte) bool { return c.has(bucketIdxOutboxQueue, q) }) {
			c.bad("outbox %d: not in idx.outbox.queue", r.ID)
		}
		return nil
	})
	if err != nil {
		return err
	}
	// A queue key left of a mail gone holds back the mail queued after it
	// in its queue: Enqueue and ClaimOutbox look for it.
	err = c.tx.bucket(bucketIdxOutboxQueue).ForEach(func(k, _ []byte) error {
		if len(k) < 8 {
			c.bad("idx.outbox.queue: malformed key %x", k)
			return nil
		}
		id := binary.BigEndian.Uint64(k[len(k)-8:])
		r, err := c.tx.outboxRec(id)
		switch {
		case err != nil:
			c.bad("idx.outbox.queue: entry for outbox %d, which is not in the outbox", id)
		case !slices.ContainsFunc(c.queueKeys(r), func(q []byte) bool { return bytes.Equal(q, k) }):
			c.bad("idx.outbox.queue: entry for outbox %d filed under another queue than its own", id)
		}
		return nil
	})
	if err != nil {
		return err
	}
	err = c.tx.bucket(bucketOutboxRaw).ForEach(func(k, _ []byte) error {
		if !c.has(bucketOutbox, k) {
			c.bad("outbox.raw: mail of outbox %x, which is not in the outbox", k)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return c.tx.bucket(bucketIdxOutboxDue).ForEach(func(k, _ []byte) error {
		if len(k) != 16 {
			c.bad("idx.outbox.due: malformed key %x", k)
			return nil
		}
		id := binary.BigEndian.Uint64(k[8:])
		r, err := c.tx.outboxRec(id)
		if err != nil {
			c.bad("idx.outbox.due: entry for outbox %d, which is not in the outbox", id)
		} else if !bytes.Equal(k, outboxDueKey(r.NextAt, id)) {
			c.bad("idx.outbox.due: entry for outbox %d does not match its next attempt", id)
		}
		return nil
	})
}

// queueKeys are the idx.outbox.queue keys outbox entry r may have: under
// its queue's name, or its ticket's posting (queuePrefixes).
func (c *checker) queueKeys(r *outboxRec) [][]byte {
	var keys [][]byte
	for _, prefix := range c.tx.queuePrefixes(r) {
		keys = append(keys, append(prefix, u64(r.ID)...))
	}
	return keys
}

// blobs checks the reference counts: every blob has one, none is below
// the number of uses (a release would then delete a blob still in use),
// none counts a blob that is gone, and no two name the same content.
func (c *checker) blobs() error {
	named := map[string]string{} // blob.data key → the hash whose count names it
	err := c.tx.bucket(bucketBlobRefs).ForEach(func(k, v []byte) error {
		h := string(k)
		r, ok := decodeBlobRef(v)
		switch {
		case !ok:
			c.bad("blobrefs: count for blob %s is malformed", h)
			return nil
		case c.tx.blobContent(h, r) == nil:
			if c.uses[h] == 0 { // a use reports it otherwise
				c.bad("blobrefs: count for blob %s, which is missing", h)
			}
		case r.count < c.uses[h]:
			c.bad("blob %s: counted %d references but used %d times", h, r.count, c.uses[h])
		}
		if r.at != nil {
			if other, dup := named[string(r.at)]; dup {
				c.bad("blobs %s and %s name the same content", other, h)
			}
			named[string(r.at)] = h
		}
		return nil
	})
	if err != nil {
		return err
	}
	err = c.tx.bucket(bucketBlobs).ForEach(func(k, _ []byte) error {
		if r, ok := c.tx.blobRef(string(k)); !ok || r.at != nil {
			c.bad("blob %s: no reference count", k)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return c.tx.bucket(bucketBlobData).ForEach(func(k, _ []byte) error {
		at := k
		if len(k) == 13 && chunked(k[:9]) {
			at = k[:9] // a chunk
		}
		if _, ok := named[string(at)]; !ok {
			c.bad("blob.data %x: no reference count", k)
		}
		return nil
	})
}
