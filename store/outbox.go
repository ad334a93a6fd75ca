package store

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"
)

// OutMail is one message waiting in the durable outbox. It is written in the
// same transaction as the ticket change that caused it, so a committed
// decision to send is never lost; the outbox worker removes it once the
// relay accepted it (or failed it permanently).
type OutMail struct {
	ID       uint64    `json:"id"`
	TicketID string    `json:"ticket_id"`
	Kind     string    `json:"kind"` // auto, agent, notify, reminder, ...
	From     string    `json:"from"` // envelope sender (return path)
	To       []string  `json:"to"`   // envelope recipients
	Raw      []byte    `json:"raw"`
	Attempts int       `json:"attempts"`
	NextAt   time.Time `json:"next_at"`
	Created  time.Time `json:"created"`
	LastErr  string    `json:"last_error,omitempty"`
}

// Enqueue adds m to the outbox and sets m.ID. The id is known before commit,
// so callers can derive per-message values (VERP return paths) from it via
// NextOutboxID.
func (tx *Tx) Enqueue(m *OutMail) error {
	b := tx.tx.Bucket(bucketOutbox)
	if m.ID == 0 {
		seq, err := b.NextSequence()
		if err != nil {
			return err
		}
		m.ID = seq
	}
	v, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("encode outbox entry: %w", err)
	}
	return b.Put(u64(m.ID), v)
}

// NextOutboxID reserves the id the next outbox entry will have; pass it in
// OutMail.ID to Enqueue.
func (tx *Tx) NextOutboxID() (uint64, error) {
	return tx.tx.Bucket(bucketOutbox).NextSequence()
}

// Forever is an instant after every NextAt, for listing the whole outbox.
var Forever = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)

// Outbox returns the entries due at or before now (all when now is zero),
// oldest first, at most limit (0 = all).
func (tx *Tx) Outbox(now time.Time, limit int) ([]*OutMail, error) {
	var out []*OutMail
	err := tx.tx.Bucket(bucketOutbox).ForEach(func(k, v []byte) error {
		if limit > 0 && len(out) >= limit {
			return nil
		}
		var m OutMail
		if err := json.Unmarshal(v, &m); err != nil {
			return fmt.Errorf("decode outbox entry %d: %w", binary.BigEndian.Uint64(k), err)
		}
		if now.IsZero() || !m.NextAt.After(now) {
			out = append(out, &m)
		}
		return nil
	})
	return out, err
}

// OutboxEntry returns one outbox entry.
func (tx *Tx) OutboxEntry(id uint64) (*OutMail, error) {
	v := tx.tx.Bucket(bucketOutbox).Get(u64(id))
	if v == nil {
		return nil, fmt.Errorf("outbox entry %d: %w", id, ErrNotFound)
	}
	var m OutMail
	if err := json.Unmarshal(v, &m); err != nil {
		return nil, fmt.Errorf("decode outbox entry %d: %w", id, err)
	}
	return &m, nil
}

// NextOutboxAt returns the earliest NextAt in the outbox, or zero if empty.
func (tx *Tx) NextOutboxAt() (time.Time, error) {
	var next time.Time
	err := tx.tx.Bucket(bucketOutbox).ForEach(func(_, v []byte) error {
		var m struct {
			NextAt time.Time `json:"next_at"`
		}
		if err := json.Unmarshal(v, &m); err != nil {
			return err
		}
		if next.IsZero() || m.NextAt.Before(next) {
			next = m.NextAt
		}
		return nil
	})
	return next, err
}

// Dequeue removes an entry from the outbox (delivered or given up).
func (tx *Tx) Dequeue(id uint64) error {
	return tx.tx.Bucket(bucketOutbox).Delete(u64(id))
}

// Sent records where an outgoing mail went, so that a bounce naming its
// outbox id can be mapped back to the ticket and recipient after the entry
// left the outbox.
func (tx *Tx) Sent(m *OutMail) error {
	v, err := json.Marshal(struct {
		TicketID string   `json:"ticket_id"`
		To       []string `json:"to"`
	}{m.TicketID, m.To})
	if err != nil {
		return err
	}
	return tx.tx.Bucket(bucketMeta).Put(key([]byte("sent"), u64(m.ID)), v)
}

// SentTo returns the ticket and recipients of an outbox id sent earlier.
func (tx *Tx) SentTo(id uint64) (ticketID string, to []string, err error) {
	v := tx.tx.Bucket(bucketMeta).Get(key([]byte("sent"), u64(id)))
	if v == nil {
		return "", nil, fmt.Errorf("sent mail %d: %w", id, ErrNotFound)
	}
	var r struct {
		TicketID string   `json:"ticket_id"`
		To       []string `json:"to"`
	}
	err = json.Unmarshal(v, &r)
	return r.TicketID, r.To, err
}
