package boltdb

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"

	"ticketgate/store"
)

// outboxRec is an outbox entry on disk: small, no body. The mail is in
// outbox.raw under the entry's id (sequential keys: the mail queued by one
// commit shares its pages, and so does the mail one commit dequeues), or,
// for an entry queued before schema 7, the blob RawHash; idx.outbox.due holds
// (NextAt, id) so a wake reads only what is due, and idx.outbox.queue
// holds (queue, id) so Enqueue finds an entry's neighbours in its queue
// and keeps their NextAt in queue order.
type outboxRec struct {
	ID       uint64    `json:"id"`
	TicketID string    `json:"ticket_id"`
	Kind     string    `json:"kind"`
	From     string    `json:"from"`
	To       []string  `json:"to"`
	RawHash  string    `json:"raw_sha256"`
	Attempts int       `json:"attempts"`
	NextAt   time.Time `json:"next_at"`
	Created  time.Time `json:"created"`
	LastErr  string    `json:"last_error,omitempty"`
	Done     []string  `json:"done,omitempty"`
	Carries  string    `json:"carries,omitempty"`
	// A claim is kept in memory (claims.go); these are read and written
	// only as an earlier release left them, and never taken for one.
	ClaimedBy    string    `json:"claimed_by,omitempty"`
	ClaimedUntil time.Time `json:"claimed_until,omitzero"`
	ClaimGen     string    `json:"claim_gen,omitempty"`

	// ticketCreated is store.OutMail.TicketCreated, which Enqueue was
	// given (not stored): see queuePrefixes.
	ticketCreated time.Time
}

func (t *tx) mail(r *outboxRec) *store.OutMail {
	m := &store.OutMail{ID: r.ID, TicketID: r.TicketID, Kind: r.Kind, From: r.From, To: r.To,
		Attempts: r.Attempts, NextAt: r.NextAt, Created: r.Created, LastErr: r.LastErr, Done: r.Done, Carries: r.Carries}
	if c, ok := t.claimOf(r.ID); ok {
		m.ClaimedBy, m.ClaimedUntil = c.owner, c.until
	}
	return m
}

// heldByOther reports whether another owner holds an unexpired claim on r.
func (t *tx) heldByOther(r *outboxRec, owner string, now time.Time) bool {
	c, ok := t.claimOf(r.ID)
	return ok && c.owner != owner && c.until.After(now)
}

func (t *tx) outboxRec(id uint64) (*outboxRec, error) {
	v := t.bucket(bucketOutbox).Get(u64(id))
	if v == nil {
		return nil, fmt.Errorf("outbox entry %d: %w", id, store.ErrNotFound)
	}
	var r outboxRec
	if err := decodeOutboxRec(v, &r); err != nil {
		return nil, fmt.Errorf("outbox entry %d: %w: %w", id, store.ErrBadRecord, err)
	}
	return &r, nil
}

func (t *tx) Enqueue(m *store.OutMail) error {
	b := t.bucket(bucketOutbox)
	if m.ID == 0 {
		seq, err := b.NextSequence()
		if err != nil {
			return err
		}
		m.ID = seq
	} else if m.ID > b.Sequence() {
		// An id set by a run of this call that was rolled back (a
		// grouped commit runs it again) or by the caller: the next
		// NextSequence must not hand it out again.
		if err := b.SetSequence(m.ID); err != nil {
			return err
		}
	}
	rec := &outboxRec{ID: m.ID, TicketID: m.TicketID, Kind: m.Kind, From: m.From, To: m.To,
		Attempts: m.Attempts, NextAt: m.NextAt, Created: m.Created, LastErr: m.LastErr, Done: m.Done, Carries: m.Carries,
		ticketCreated: m.TicketCreated}
	var old *outboxRec
	if b.Get(u64(m.ID)) != nil {
		var err error
		if old, err = t.outboxRec(m.ID); err != nil {
			return err
		}
		rec.RawHash = old.RawHash
		t.setClaim(m.ID, nil) // queued again: whoever held it lets go
		if err := t.unqueue(old); err != nil {
			return err
		}
	}
	if m.Raw != nil {
		if err := t.bucket(bucketOutboxRaw).Put(u64(rec.ID), m.Raw); err != nil {
			return fmt.Errorf("put outbox mail: %w", err)
		}
		rec.RawHash = ""
		if old != nil && old.RawHash != "" {
			if err := t.releaseBlob(old.RawHash); err != nil {
				return err
			}
		}
	}
	// The rest of rec's queue, read once: rec's own key is not in it yet,
	// and putting it moves none of the others.
	prefixes := t.queuePrefixes(rec)
	queue := t.idsUnder(bucketIdxOutboxQueue, prefixes)
	if err := t.holdBack(rec, queue); err != nil {
		return err
	}
	m.NextAt = rec.NextAt
	if err := t.putOutboxRec(rec, old); err != nil {
		return err
	}
	if err := t.bucket(bucketIdxOutboxQueue).Put(append(prefixes[len(prefixes)-1], u64(rec.ID)...), nil); err != nil {
		return err
	}
	return t.deferLater(rec, queue)
}

func (r *outboxRec) queue() string {
	return (&store.OutMail{TicketID: r.TicketID, To: r.To}).Queue()
}

// putOutboxRec writes rec and its idx.outbox.due key, replacing old's.
func (t *tx) putOutboxRec(rec, old *outboxRec) error {
	due := t.bucket(bucketIdxOutboxDue)
	if old != nil {
		if err := due.Delete(outboxDueKey(old.NextAt, old.ID)); err != nil {
			return err
		}
	}
	if err := t.bucket(bucketOutbox).Put(u64(rec.ID), encodeOutboxRec(rec)); err != nil {
		return err
	}
	return due.Put(outboxDueKey(rec.NextAt, rec.ID), nil)
}

// holdBack raises rec.NextAt to that of the entry before it in its queue,
// whose ids are queue.
func (t *tx) holdBack(rec *outboxRec, queue []uint64) error {
	id := before(queue, rec.ID)
	if id == 0 {
		return nil
	}
	prev, err := t.outboxRec(id)
	if err != nil {
		return err
	}
	if rec.NextAt.Before(prev.NextAt) {
		rec.NextAt = prev.NextAt
	}
	return nil
}

// queuePrefixes returns the prefixes of the idx.outbox.queue keys r's
// queue may have entries under: its name (every entry queued before
// schema 12, and those of a ticket without a summary), then, when its
// ticket has a posting, under that (postedQueuePrefix). The last is
// where an entry queued now goes. The posting is the summary's; a ticket
// opened in this transaction has none yet, and then the creation time
// the mail was queued with gives the posting its summary will have.
func (t *tx) queuePrefixes(r *outboxRec) [][]byte {
	named := outboxQueuePrefix(r.queue())
	p := t.postingOf([]byte(r.TicketID))
	if p == nil {
		p = t.hintedPosting(r.TicketID, r.ticketCreated)
	}
	if p == nil {
		return [][]byte{named}
	}
	return [][]byte{named, postedQueuePrefix(p, r.To)}
}

// idsUnder returns the numbers of bucket's keys that are one of prefixes
// followed by a number (8 bytes), in order: the entries of a queue, or a
// ticket's sent mail, under either kind of key. It walks forward from
// each prefix: bbolt's backward moves (Cursor.Last, Prev) loop forever or
// stop early over leaf pages emptied earlier in the same transaction, as
// a commit that dequeues a batch of delivered mail and queues new mail
// leaves them.
func (t *tx) idsUnder(bucket []byte, prefixes [][]byte) []uint64 {
	var ids []uint64
	c := t.bucket(bucket).Cursor()
	for _, prefix := range prefixes {
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			if inQueue(k, prefix) {
				ids = append(ids, binary.BigEndian.Uint64(k[len(prefix):]))
			}
		}
	}
	slices.Sort(ids)
	return ids
}

// prevInQueue returns the id of the entry before r in its queue, 0 if none.
func (t *tx) prevInQueue(r *outboxRec) uint64 {
	return before(t.idsUnder(bucketIdxOutboxQueue, t.queuePrefixes(r)), r.ID)
}

// before returns the last of ids (in order) below id, 0 if none.
func before(ids []uint64, id uint64) uint64 {
	var last uint64
	for _, n := range ids {
		if n >= id {
			break
		}
		last = n
	}
	return last
}

// unqueue deletes r's key from idx.outbox.queue, under whichever prefix
// it was put (a key that is not there changes no page).
func (t *tx) unqueue(r *outboxRec) error {
	b := t.bucket(bucketIdxOutboxQueue)
	for _, prefix := range t.queuePrefixes(r) {
		if err := b.Delete(append(prefix, u64(r.ID)...)); err != nil {
			return err
		}
	}
	return nil
}

// deferLater raises the NextAt of the entries after rec in its queue
// (whose ids are queue) to rec's, stopping at the first that is due no
// earlier: the queue is in order from there on.
func (t *tx) deferLater(rec *outboxRec, queue []uint64) error {
	for _, id := range queue {
		if id <= rec.ID {
			continue
		}
		later, err := t.outboxRec(id)
		if err != nil {
			return err
		}
		if !later.NextAt.Before(rec.NextAt) {
			return nil
		}
		old := *later
		later.NextAt = rec.NextAt
		if err := t.putOutboxRec(later, &old); err != nil {
			return err
		}
	}
	return nil
}

// ClaimOutbox walks idx.outbox.due like Outbox, passing over entries
// another owner holds, then keeps an entry only if the entry before it in
// its queue is kept too (or there is none).
func (t *tx) ClaimOutbox(owner string, now time.Time, lease time.Duration, limit int) ([]*store.OutMail, error) {
	cands, err := t.dueRecs(nanoKey(now), limit, func(r *outboxRec) bool {
		return !r.NextAt.After(now) && !t.heldByOther(r, owner, now)
	})
	if err != nil {
		return nil, err
	}
	kept := map[uint64]bool{}
	var out []*store.OutMail
	for _, r := range cands {
		if prev := t.prevInQueue(r); prev != 0 && !kept[prev] {
			continue
		}
		kept[r.ID] = true
		t.setClaim(r.ID, &claim{owner: owner, until: now.Add(lease)})
		out = append(out, t.mail(r))
	}
	return out, nil
}

// LastOutboxID returns the highest outbox id the database handed out or
// keeps a record of sent mail under. A bounce names mail by its id, so a
// copy of the database elsewhere (migrate) must not give these ids to
// other mail: a report about mail sent before the copy would be taken as
// one about that mail.
func (d *DB) LastOutboxID(ctx context.Context) (uint64, error) {
	var n uint64
	err := d.View(ctx, func(st store.Tx) error {
		n = lastOutboxID(st.(*tx).tx)
		return nil
	})
	return n, err
}

// lastOutboxID is LastOutboxID in btx.
func lastOutboxID(btx *bolt.Tx) uint64 {
	var n uint64
	if b := btx.Bucket(bucketOutbox); b != nil {
		n = b.Sequence()
	}
	meta := btx.Bucket(bucketMeta)
	if meta == nil {
		return n
	}
	// Sent records are "sent", 0x00 and the 8-byte id: the last one
	// before "sent", 0x01 is the highest.
	c := meta.Cursor()
	k, _ := c.Seek([]byte("sent\x01"))
	if k == nil {
		k, _ = c.Last()
	} else {
		k, _ = c.Prev()
	}
	if len(k) == 13 && bytes.HasPrefix(k, []byte("sent\x00")) {
		n = max(n, binary.BigEndian.Uint64(k[5:]))
	}
	return n
}

func (t *tx) NextOutboxID() (uint64, error) {
	return t.bucket(bucketOutbox).NextSequence()
}

// Outbox walks idx.outbox.due up to now and decodes only those entries.
func (t *tx) Outbox(now time.Time, limit int) ([]*store.OutMail, error) {
	end := uint64(1<<64 - 1)
	if !now.IsZero() {
		end = nanoKey(now)
	}
	// Keys clamp times outside 1970..2262; keep compares the real ones.
	recs, err := t.dueRecs(end, limit, func(r *outboxRec) bool { return now.IsZero() || !r.NextAt.After(now) })
	if err != nil {
		return nil, err
	}
	out := make([]*store.OutMail, len(recs))
	for i, r := range recs {
		out[i] = t.mail(r)
	}
	return out, nil
}

// dueRecs walks idx.outbox.due up to the key time end and returns up to
// limit (0: no limit) of the entries keep takes, in id order.
func (t *tx) dueRecs(end uint64, limit int, keep func(*outboxRec) bool) ([]*outboxRec, error) {
	var recs []*outboxRec
	c := t.bucket(bucketIdxOutboxDue).Cursor()
	for k, _ := c.First(); k != nil && (limit == 0 || len(recs) < limit); k, _ = c.Next() {
		if binary.BigEndian.Uint64(k[:8]) > end {
			break
		}
		if err := t.ctx.Err(); err != nil {
			return nil, err
		}
		r, err := t.outboxRec(binary.BigEndian.Uint64(k[8:]))
		if errors.Is(err, store.ErrBadRecord) {
			// Damage, which check reports (and NextOutboxAt, once it is
			// the first due): it must not hold back every other mail.
			continue
		}
		if err != nil {
			return nil, err
		}
		if keep(r) {
			recs = append(recs, r)
		}
	}
	slices.SortFunc(recs, func(a, b *outboxRec) int { return cmpU64(a.ID, b.ID) })
	return recs, nil
}

func cmpU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (t *tx) OutboxList(after uint64, limit int) ([]*store.OutMail, error) {
	var out []*store.OutMail
	if after == 1<<64-1 {
		return nil, nil
	}
	c := t.bucket(bucketOutbox).Cursor()
	for k, v := c.Seek(u64(after + 1)); k != nil && (limit == 0 || len(out) < limit); k, v = c.Next() {
		if err := t.ctx.Err(); err != nil {
			return nil, err
		}
		var r outboxRec
		if err := decodeOutboxRec(v, &r); err != nil {
			return nil, fmt.Errorf("decode outbox entry %d: %w", binary.BigEndian.Uint64(k), err)
		}
		out = append(out, t.mail(&r))
	}
	return out, nil
}

func (t *tx) OutboxEntry(id uint64) (*store.OutMail, error) {
	r, err := t.outboxRec(id)
	if err != nil {
		return nil, err
	}
	return t.mail(r), nil
}

func (t *tx) OutboxRaw(id uint64) ([]byte, error) {
	// Enqueue keeps an entry's mail in outbox.raw or names a blob, never
	// both: an entry found there needs no look at its record.
	if raw := t.bucket(bucketOutboxRaw).Get(u64(id)); raw != nil {
		return clone(raw), nil
	}
	r, err := t.outboxRec(id)
	if err != nil {
		return nil, err
	}
	if r.RawHash == "" {
		return nil, fmt.Errorf("outbox entry %d: mail: %w", id, store.ErrNotFound)
	}
	raw, err := t.Blob(r.RawHash)
	if err != nil {
		return nil, fmt.Errorf("outbox entry %d: %w", id, err)
	}
	return raw, nil
}

// NextOutboxAt reads the first key of idx.outbox.due and that one entry.
func (t *tx) NextOutboxAt() (time.Time, error) {
	k, _ := t.bucket(bucketIdxOutboxDue).Cursor().First()
	if k == nil {
		return time.Time{}, nil
	}
	r, err := t.outboxRec(binary.BigEndian.Uint64(k[8:]))
	if err != nil {
		return time.Time{}, err
	}
	return r.NextAt, nil
}

func (t *tx) Dequeue(id uint64) error {
	b := t.bucket(bucketOutbox)
	if b.Get(u64(id)) == nil {
		return nil
	}
	r, err := t.outboxRec(id)
	if err != nil {
		return err
	}
	if r.RawHash != "" {
		if err := t.releaseBlob(r.RawHash); err != nil {
			return err
		}
	}
	if err := t.bucket(bucketOutboxRaw).Delete(u64(id)); err != nil {
		return err
	}
	if err := t.bucket(bucketIdxOutboxDue).Delete(outboxDueKey(r.NextAt, id)); err != nil {
		return err
	}
	if err := t.unqueue(r); err != nil {
		return err
	}
	t.setClaim(id, nil)
	return b.Delete(u64(id))
}

type sentRec struct {
	TicketID string    `json:"ticket_id"`
	To       []string  `json:"to"`
	Kind     string    `json:"kind,omitempty"`
	At       time.Time `json:"at,omitzero"`
}

// A sent record ("sent", id) is indexed under its ticket for TicketMail,
// with an empty value: under the ticket's posting (meta "sentp",
// posting, id) when it has one, so the mail of new tickets goes at the
// end of the index whatever their ids, instead of a random page of it;
// under its id ("sentt", ticket, id) when it has none (no summary), as
// every record written before schema 12 is. TicketMail reads both.
func (t *tx) sentIndexKey(ticketID string, id uint64) []byte {
	if p := t.postingOf([]byte(ticketID)); p != nil {
		return key([]byte("sentp"), p, u64(id))
	}
	return key([]byte("sentt"), []byte(ticketID), u64(id))
}

// sentOf returns the ids of ticket id's sent records, in order.
func (t *tx) sentOf(id string) []uint64 {
	prefixes := [][]byte{key([]byte("sentt"), []byte(id), nil)}
	if p := t.postingOf([]byte(id)); p != nil {
		prefixes = append(prefixes, key([]byte("sentp"), p, nil))
	}
	return t.idsUnder(bucketMeta, prefixes)
}

// moveSent moves ticket id's "sentp" entries from posting from to posting
// to (its creation time changed).
func (t *tx) moveSent(from, to []byte) error {
	return t.movePrefix(bucketMeta, key([]byte("sentp"), from, nil), key([]byte("sentp"), to, nil))
}

func (t *tx) Sent(m *store.OutMail) error {
	v := encodeSent(sentRec{TicketID: m.TicketID, To: m.To, Kind: m.Kind, At: time.Now().UTC()})
	meta := t.bucket(bucketMeta)
	if err := meta.Put(key([]byte("sent"), u64(m.ID)), v); err != nil {
		return err
	}
	return meta.Put(t.sentIndexKey(m.TicketID, m.ID), nil)
}

func (t *tx) TicketMail(id string) ([]*store.OutMail, []store.SentMail, error) {
	var queued []*store.OutMail
	prefixes := [][]byte{append([]byte(id), 0)} // its queues by name
	if p := t.postingOf([]byte(id)); p != nil {
		prefixes = append(prefixes, postedPrefix(p))
	}
	c := t.bucket(bucketIdxOutboxQueue).Cursor()
	for _, prefix := range prefixes {
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			r, err := t.outboxRec(binary.BigEndian.Uint64(k[len(k)-8:]))
			if err != nil {
				return nil, nil, err
			}
			queued = append(queued, t.mail(r))
		}
	}
	slices.SortFunc(queued, func(a, b *store.OutMail) int { return cmpU64(a.ID, b.ID) })
	var sent []store.SentMail
	meta := t.bucket(bucketMeta)
	for _, n := range t.sentOf(id) {
		v := meta.Get(key([]byte("sent"), u64(n)))
		if v == nil {
			continue
		}
		var r sentRec
		if err := decodeSent(v, &r); err != nil {
			return nil, nil, fmt.Errorf("decode sent mail %d: %w", n, err)
		}
		sent = append(sent, store.SentMail{ID: n, Kind: r.Kind, To: r.To, At: r.At})
	}
	return queued, sent, nil
}

func (t *tx) SentTo(id uint64) (ticketID string, to []string, err error) {
	v := t.bucket(bucketMeta).Get(key([]byte("sent"), u64(id)))
	if v == nil {
		return "", nil, fmt.Errorf("sent mail %d: %w", id, store.ErrNotFound)
	}
	var r sentRec
	err = decodeSent(v, &r)
	return r.TicketID, r.To, err
}
