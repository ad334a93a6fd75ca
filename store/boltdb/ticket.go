package boltdb

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"ticketgate/rules"
	"ticketgate/store"
)

func (t *tx) NewTicketID(prefix string) (string, error) {
	b := t.bucket(bucketTickets)
	for range 1000 {
		n, err := rand.Int(rand.Reader, big.NewInt(1000000))
		if err != nil {
			return "", fmt.Errorf("allocate ticket id: %w", err)
		}
		id := fmt.Sprintf("%s-%06d", prefix, n.Int64())
		if b.Get([]byte(id)) == nil && t.postingOf([]byte(id)) == nil {
			return id, nil
		}
	}
	return "", fmt.Errorf("allocate ticket id: no free id found (the %s- number space is nearly full)", prefix)
}

// ticketRecord returns ticket id's record and its key in tickets: under
// its posting since schema 12 (a new ticket's record then goes at the end
// of the bucket, whatever its number), under its id when an earlier
// release wrote it. v is nil when there is none.
func (t *tx) ticketRecord(id string) (k, v []byte) {
	b := t.bucket(bucketTickets)
	if p := t.postingOf([]byte(id)); p != nil {
		k = postedRecordKey(p)
		if v = b.Get(k); v != nil {
			return k, v
		}
	}
	return []byte(id), b.Get([]byte(id))
}

func (t *tx) Ticket(id string) (*store.Ticket, error) {
	_, v := t.ticketRecord(id)
	if v == nil {
		return nil, fmt.Errorf("ticket %s: %w", id, store.ErrNotFound)
	}
	var tk store.Ticket
	if err := decodeTicket(v, &tk); err != nil {
		return nil, fmt.Errorf("ticket %s: %w: %w", id, store.ErrBadRecord, err)
	}
	return &tk, nil
}

func (t *tx) TicketFull(id string) (*store.Ticket, error) {
	tk, err := t.Ticket(id)
	if err != nil {
		return nil, err
	}
	tk.Messages = []store.Message{}
	tk.Events = []store.Event{}
	err = t.scan(bucketMessages, id, func(v []byte) error {
		m, err := t.decodeMessage(v)
		if err != nil {
			return fmt.Errorf("%w: %w", store.ErrBadRecord, err)
		}
		tk.Messages = append(tk.Messages, *m)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read messages of %s: %w", id, err)
	}
	err = t.scan(bucketEvents, id, func(v []byte) error {
		var e store.Event
		if err := decodeEvent(v, &e); err != nil {
			return fmt.Errorf("%w: %w", store.ErrBadRecord, err)
		}
		tk.Events = append(tk.Events, e)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read events of %s: %w", id, err)
	}
	return tk, nil
}

// scan calls fn with every record of ticket id in bucket, in key order.
func (t *tx) scan(bucket []byte, id string, fn func(v []byte) error) error {
	return t.eachPart(bucket, id, func(_, v []byte) error { return fn(v) })
}

// indexed is the part of a ticket record its indexes are built from.
type indexed struct {
	Status        rules.Status
	Due           time.Time
	CreatedAt     time.Time
	Subject       string
	Requester     string
	RequesterName string
	CC            []string
}

func indexedOf(tk *store.Ticket) *indexed {
	return &indexed{Status: tk.Status, Due: tk.Due, CreatedAt: tk.CreatedAt, Subject: tk.Subject,
		Requester: tk.Requester, RequesterName: tk.RequesterName, CC: tk.CC}
}

// indexAddresses keeps idx.addr in step with tk's requester and
// participants; o is the record stored before (nil for a new ticket).
func (t *tx) indexAddresses(tk *store.Ticket, o *indexed) error {
	b := t.bucket(bucketIdxAddr)
	now := store.Addresses(tk)
	if o != nil {
		for _, a := range store.Addresses(&store.Ticket{Requester: o.Requester, CC: o.CC}) {
			if !slices.Contains(now, a) {
				if err := b.Delete(key([]byte(a), []byte(tk.ID))); err != nil {
					return err
				}
			}
		}
	}
	for _, a := range now {
		if err := putIfMissing(b, key([]byte(a), []byte(tk.ID))); err != nil {
			return err
		}
	}
	return nil
}

// TicketsOfAddress walks idx.addr under addr.
func (t *tx) TicketsOfAddress(addr string) ([]string, error) {
	prefix := key([]byte(strings.ToLower(strings.TrimSpace(addr))), nil)
	var ids []string
	c := t.bucket(bucketIdxAddr).Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		if err := t.ctx.Err(); err != nil {
			return nil, err
		}
		ids = append(ids, string(k[len(prefix):]))
	}
	return ids, nil
}

func statusKey(st rules.Status, created time.Time, id string) []byte {
	return key([]byte(st), createdKey(created, id))
}

// PutTicket writes the ticket record and keeps its indexes in step.
// Records and index entries that would not change are left alone, so a
// write touches only the pages it must.
func (t *tx) PutTicket(tk *store.Ticket) error {
	b := t.bucket(bucketTickets)
	at, old := t.ticketRecord(tk.ID)
	if old == nil || len(at) > 0 && at[0] == byPosting {
		at = postedRecordKey(posting(tk.CreatedAt, tk.ID))
	}
	var o *indexed
	if old != nil {
		var prev store.Ticket
		if err := decodeTicket(old, &prev); err != nil {
			return fmt.Errorf("decode ticket %s: %w", tk.ID, err)
		}
		o = indexedOf(&prev)
		if err := t.unindex(tk, *o); err != nil {
			return err
		}
	}
	if err := t.index(tk); err != nil {
		return err
	}
	// What is filed under the ticket's posting moves with a changed
	// creation time, before the summary says the new one (moveWords
	// reads the messages under it).
	if o != nil && !o.CreatedAt.Equal(tk.CreatedAt) {
		from, to := posting(o.CreatedAt, tk.ID), posting(tk.CreatedAt, tk.ID)
		if err := b.Delete(postedRecordKey(from)); err != nil { // written again below
			return fmt.Errorf("ticket %s: %w", tk.ID, err)
		}
		old = nil
		if err := t.moveSent(from, to); err != nil {
			return fmt.Errorf("index ticket %s: %w", tk.ID, err)
		}
		if err := t.movePostings(from, to); err != nil {
			return fmt.Errorf("ticket %s: %w", tk.ID, err)
		}
	}
	if err := t.settleHints(tk.ID, posting(tk.CreatedAt, tk.ID)); err != nil {
		return err
	}
	if err := t.indexSummary(tk); err != nil {
		return fmt.Errorf("index ticket %s: %w", tk.ID, err)
	}
	if err := t.indexTicketWords(tk, o); err != nil {
		return fmt.Errorf("index ticket %s: %w", tk.ID, err)
	}
	if err := t.indexAddresses(tk, o); err != nil {
		return fmt.Errorf("index ticket %s: %w", tk.ID, err)
	}
	if v := encodeTicket(tk); !bytes.Equal(old, v) {
		if err := b.Put(at, v); err != nil {
			return fmt.Errorf("put ticket %s: %w", tk.ID, err)
		}
	}
	return nil
}

// unindex removes the index entries of the stored record o that tk no
// longer has.
func (t *tx) unindex(tk *store.Ticket, o indexed) error {
	if o.Status != tk.Status || !o.CreatedAt.Equal(tk.CreatedAt) {
		if err := t.bucket(bucketIdxStatus).Delete(statusKey(o.Status, o.CreatedAt, tk.ID)); err != nil {
			return err
		}
	}
	if !o.CreatedAt.Equal(tk.CreatedAt) {
		if err := t.bucket(bucketIdxCreated).Delete(createdKey(o.CreatedAt, tk.ID)); err != nil {
			return err
		}
	}
	if !o.Due.IsZero() && !o.Due.Equal(tk.Due) {
		if err := t.bucket(bucketIdxDue).Delete(dueKey(o.Due, tk.ID)); err != nil {
			return err
		}
	}
	return nil
}

// index adds tk's index entries unless they are there.
func (t *tx) index(tk *store.Ticket) error {
	if !tk.Due.IsZero() {
		if err := putIfMissing(t.bucket(bucketIdxDue), dueKey(tk.Due, tk.ID)); err != nil {
			return err
		}
	}
	if err := putIfMissing(t.bucket(bucketIdxCreated), createdKey(tk.CreatedAt, tk.ID)); err != nil {
		return err
	}
	return putIfMissing(t.bucket(bucketIdxStatus), statusKey(tk.Status, tk.CreatedAt, tk.ID))
}

// Tickets answers f from the indexes: by walking idx.created or
// idx.status when f sorts by creation time with no condition but the
// status, otherwise from the ticket summaries (see search).
func (t *tx) Tickets(f store.Filter) ([]*store.Ticket, string, error) {
	q, err := newQuery(f)
	if err != nil {
		return nil, "", err
	}
	if q.byCreation() {
		return t.walkCreated(q)
	}
	return t.search(q)
}

// seekBefore positions c on the last key below k.
func seekBefore(c *bolt.Cursor, k []byte) []byte {
	if got, _ := c.Seek(k); got == nil {
		got, _ = c.Last()
		return got
	}
	got, _ := c.Prev()
	return got
}

// lastWithPrefix positions c on the last key (with prefix, if any).
func lastWithPrefix(c *bolt.Cursor, prefix []byte) []byte {
	if len(prefix) == 0 {
		k, _ := c.Last()
		return k
	}
	// prefix ends in 0x00; the same bytes ending in 0x01 sort right after
	// every key with prefix.
	end := append(append([]byte(nil), prefix[:len(prefix)-1]...), 1)
	return seekBefore(c, end)
}

func (t *tx) DueTickets(now time.Time, limit int) ([]string, error) {
	var ids []string
	end := uint64(now.UnixNano())
	c := t.bucket(bucketIdxDue).Cursor()
	for k, _ := c.First(); k != nil && len(k) > 8; k, _ = c.Next() {
		if binary.BigEndian.Uint64(k[:8]) > end || (limit > 0 && len(ids) >= limit) {
			break
		}
		if err := t.ctx.Err(); err != nil {
			return nil, err
		}
		ids = append(ids, string(k[8:]))
	}
	return ids, nil
}
