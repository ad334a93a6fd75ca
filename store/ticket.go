package store

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"sort"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"ticketgate/rules"
)

// Ticket is a support ticket. Its JSON form is a public contract (CLI -json
// and the admin API).
type Ticket struct {
	ID            string         `json:"id"`
	Subject       string         `json:"subject"`
	Status        rules.Status   `json:"status"`
	Priority      rules.Priority `json:"priority"`
	Queue         string         `json:"queue"`
	Route         string         `json:"route"`
	Category      string         `json:"category,omitempty"`
	Plan          string         `json:"plan,omitempty"`
	Requester     string         `json:"requester"`
	RequesterName string         `json:"requester_name,omitempty"`
	CC            []string       `json:"cc"`
	Assignee      string         `json:"assignee"`
	Escalated     bool           `json:"escalated,omitempty"`
	Watchers      []string       `json:"watchers,omitempty"`
	Linked        []string       `json:"linked,omitempty"`
	CreatedAt     time.Time      `json:"created_at"`
	UpdatedAt     time.Time      `json:"updated_at"`
	ClosedAt      *time.Time     `json:"closed_at,omitempty"`

	// LastInID is the Message-ID of the last message received on the
	// ticket; replies chain to it. Thread holds the ids of the ticket's
	// conversation, oldest first, for References.
	LastInID string   `json:"last_in_id,omitempty"`
	Thread   []string `json:"thread,omitempty"`

	// Clock is the awaiting-customer lifecycle state; SLA the service
	// level targets and what was alerted; Due when the scheduler must look
	// at the ticket next (kept in the idx.due index, zero for never).
	Clock        rules.Clock   `json:"lifecycle"`
	SLA          *rules.SLA    `json:"sla,omitempty"`
	Satisfaction *Satisfaction `json:"satisfaction,omitempty"`
	SurveySent   bool          `json:"survey_sent,omitempty"`
	Due          time.Time     `json:"due,omitzero"`

	// Messages and Events are filled by Tx.TicketFull; they are stored
	// in their own buckets, not in the ticket record.
	Messages []Message `json:"messages"`
	Events   []Event   `json:"events"`
}

// Message is one mail on a ticket.
type Message struct {
	MessageID   string       `json:"message_id"`
	Direction   string       `json:"direction"` // "in" or "out"
	Kind        string       `json:"kind"`      // customer, agent, note, auto, system
	From        string       `json:"from"`
	To          []string     `json:"to"`
	Cc          []string     `json:"cc,omitempty"`
	Subject     string       `json:"subject"`
	Text        string       `json:"text"`
	VisibleText string       `json:"visible_text"`
	CreatedAt   time.Time    `json:"created_at"`
	Attachments []Attachment `json:"attachments"`
	// Raw is the SHA-256 of the raw message kept in the blob store.
	Raw string `json:"raw_sha256,omitempty"`
	// Notes lists what happened while reading the message (parse
	// problems, limits hit), for people reading the ticket.
	Notes []string `json:"notes,omitempty"`
}

// Satisfaction is the customer's answer to the closing survey.
type Satisfaction struct {
	Score   int       `json:"score"`
	Comment string    `json:"comment"`
	At      time.Time `json:"at"`
}

// Attachment describes a file attached to a message; its content is kept
// once per SHA-256 in the blob store.
type Attachment struct {
	Filename    string `json:"filename"`
	ContentType string `json:"content_type"`
	Size        int64  `json:"size"`
	SHA256      string `json:"sha256,omitempty"`
	ContentID   string `json:"content_id,omitempty"`
	Inline      bool   `json:"inline,omitempty"`
}

// Event is one entry in a ticket's activity log.
type Event struct {
	At     time.Time       `json:"at"`
	Type   rules.EventType `json:"type"`
	Detail string          `json:"detail"`
	Actor  string          `json:"actor,omitempty"`
}

// Filter selects tickets in Tickets.
type Filter struct {
	Status rules.Status // "" for all
	Limit  int          // 0 for no limit
}

// NewTicketID allocates an unused ticket id: prefix, "-", six random digits.
// Ids are not sequential. It checks the id against the tickets already
// committed and against the ones created earlier in the same transaction.
func (tx *Tx) NewTicketID(prefix string) (string, error) {
	b := tx.tx.Bucket(bucketTickets)
	for range 1000 {
		n, err := rand.Int(rand.Reader, big.NewInt(1000000))
		if err != nil {
			return "", fmt.Errorf("allocate ticket id: %w", err)
		}
		id := fmt.Sprintf("%s-%06d", prefix, n.Int64())
		if b.Get([]byte(id)) == nil {
			return id, nil
		}
	}
	return "", fmt.Errorf("allocate ticket id: no free id found (the %s- number space is nearly full)", prefix)
}

// Ticket returns the ticket record (without messages and events).
func (tx *Tx) Ticket(id string) (*Ticket, error) {
	v := tx.tx.Bucket(bucketTickets).Get([]byte(id))
	if v == nil {
		return nil, fmt.Errorf("ticket %s: %w", id, ErrNotFound)
	}
	var t Ticket
	if err := json.Unmarshal(v, &t); err != nil {
		return nil, fmt.Errorf("decode ticket %s: %w", id, err)
	}
	return &t, nil
}

// TicketFull returns the ticket with its messages and events, oldest first.
func (tx *Tx) TicketFull(id string) (*Ticket, error) {
	t, err := tx.Ticket(id)
	if err != nil {
		return nil, err
	}
	t.Messages = []Message{}
	t.Events = []Event{}
	err = tx.scan(bucketMessages, id, func(v []byte) error {
		var m Message
		if err := json.Unmarshal(v, &m); err != nil {
			return err
		}
		t.Messages = append(t.Messages, m)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read messages of %s: %w", id, err)
	}
	err = tx.scan(bucketEvents, id, func(v []byte) error {
		var e Event
		if err := json.Unmarshal(v, &e); err != nil {
			return err
		}
		t.Events = append(t.Events, e)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read events of %s: %w", id, err)
	}
	return t, nil
}

func (tx *Tx) scan(bucket []byte, id string, fn func(v []byte) error) error {
	prefix := append([]byte(id), 0)
	c := tx.tx.Bucket(bucket).Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		if err := fn(v); err != nil {
			return err
		}
	}
	return nil
}

// PutTicket writes the ticket record and keeps its indexes in step.
// Messages and Events on t are ignored (use AddMessage and AddEvent).
// Records and index entries that would not change are left alone, so a
// write touches only the pages it must.
func (tx *Tx) PutTicket(t *Ticket) error {
	b := tx.tx.Bucket(bucketTickets)
	idx := tx.tx.Bucket(bucketIdxStatus)
	due := tx.tx.Bucket(bucketIdxDue)
	if tx.dueFunc != nil {
		t.Due = tx.dueFunc(t)
	}
	old := b.Get([]byte(t.ID))
	if old != nil {
		// Only the indexed fields are needed from the old record.
		var o struct {
			Status rules.Status `json:"status"`
			Due    time.Time    `json:"due"`
		}
		if err := json.Unmarshal(old, &o); err != nil {
			return fmt.Errorf("decode ticket %s: %w", t.ID, err)
		}
		if o.Status != t.Status {
			if err := idx.Delete(key([]byte(o.Status), []byte(t.ID))); err != nil {
				return err
			}
		}
		if !o.Due.IsZero() && !o.Due.Equal(t.Due) {
			if err := due.Delete(dueKey(o.Due, t.ID)); err != nil {
				return err
			}
		}
	}
	if !t.Due.IsZero() {
		if err := putIfMissing(due, dueKey(t.Due, t.ID)); err != nil {
			return err
		}
	}
	rec := *t
	rec.Messages, rec.Events = nil, nil
	v, err := json.Marshal(&rec)
	if err != nil {
		return fmt.Errorf("encode ticket %s: %w", t.ID, err)
	}
	if !bytes.Equal(old, v) {
		if err := b.Put([]byte(t.ID), v); err != nil {
			return fmt.Errorf("put ticket %s: %w", t.ID, err)
		}
	}
	return putIfMissing(idx, key([]byte(t.Status), []byte(t.ID)))
}

// putIfMissing adds the index entry k (empty value) unless it is there:
// bbolt copies a page on every Put, even one that changes nothing, and in
// a large index each such copy is a page (and its branch pages) written on
// commit.
func putIfMissing(b *bolt.Bucket, k []byte) error {
	if got, _ := b.Cursor().Seek(k); bytes.Equal(got, k) {
		return nil
	}
	return b.Put(k, nil)
}

// AddMessage appends m to ticket id and indexes its Message-ID.
func (tx *Tx) AddMessage(id string, m *Message) error {
	b := tx.tx.Bucket(bucketMessages)
	seq, err := b.NextSequence()
	if err != nil {
		return err
	}
	v, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("encode message: %w", err)
	}
	if err := b.Put(key([]byte(id), u64(seq)), v); err != nil {
		return fmt.Errorf("put message: %w", err)
	}
	if m.MessageID != "" {
		return tx.IndexMessageID(m.MessageID, id)
	}
	return nil
}

// AddEvent appends an event to ticket id's activity log.
func (tx *Tx) AddEvent(id string, e Event) error {
	b := tx.tx.Bucket(bucketEvents)
	seq, err := b.NextSequence()
	if err != nil {
		return err
	}
	v, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("encode event: %w", err)
	}
	return b.Put(key([]byte(id), u64(seq)), v)
}

// IndexMessageID records that Message-ID msgid belongs to ticket id, for
// threading by In-Reply-To and References.
func (tx *Tx) IndexMessageID(msgid, id string) error {
	return tx.tx.Bucket(bucketIdxMsgID).Put([]byte(normID(msgid)), []byte(id))
}

// TicketByMessageID returns the ticket a Message-ID belongs to, or "".
func (tx *Tx) TicketByMessageID(msgid string) string {
	return string(tx.tx.Bucket(bucketIdxMsgID).Get([]byte(normID(msgid))))
}

// HasMessage reports whether ticket id already holds a message with this
// Message-ID (for duplicate deliveries).
func (tx *Tx) HasMessage(id, msgid string) (bool, error) {
	_, found, err := tx.MessageByID(id, msgid)
	return found, err
}

// MessageByID returns the first message on ticket ticketID with Message-ID
// msgid (angle brackets and surrounding space ignored), and whether there
// is one. Mail that reuses a Message-ID is told apart from a repeated
// delivery by comparing what it returns.
func (tx *Tx) MessageByID(ticketID, msgid string) (*Message, bool, error) {
	want := normID(msgid)
	var found *Message
	err := tx.scan(bucketMessages, ticketID, func(v []byte) error {
		if found != nil {
			return nil
		}
		// Decode the id alone first: most messages are not the one.
		var head struct {
			MessageID string `json:"message_id"`
		}
		if err := json.Unmarshal(v, &head); err != nil {
			return err
		}
		if normID(head.MessageID) != want {
			return nil
		}
		var m Message
		if err := json.Unmarshal(v, &m); err != nil {
			return err
		}
		found = &m
		return nil
	})
	if err != nil {
		return nil, false, fmt.Errorf("find message %s on %s: %w", msgid, ticketID, err)
	}
	return found, found != nil, nil
}

func normID(id string) string {
	return strings.TrimSpace(strings.Trim(strings.TrimSpace(id), "<>"))
}

// PutBlob stores content once per SHA-256 and returns its hex hash.
func (tx *Tx) PutBlob(content []byte) (string, error) {
	sum := sha256.Sum256(content)
	h := hex.EncodeToString(sum[:])
	b := tx.tx.Bucket(bucketBlobs)
	if b.Get([]byte(h)) != nil {
		return h, nil
	}
	if err := b.Put([]byte(h), content); err != nil {
		return "", fmt.Errorf("put blob: %w", err)
	}
	return h, nil
}

// Blob returns a copy of the content stored under hash.
func (tx *Tx) Blob(hash string) ([]byte, error) {
	v := tx.tx.Bucket(bucketBlobs).Get([]byte(hash))
	if v == nil {
		return nil, fmt.Errorf("blob %s: %w", hash, ErrNotFound)
	}
	return clone(v), nil
}

// Tickets lists ticket records (without messages and events), newest first.
func (tx *Tx) Tickets(f Filter) ([]*Ticket, error) {
	var ids []string
	if f.Status != "" {
		prefix := append([]byte(f.Status), 0)
		c := tx.tx.Bucket(bucketIdxStatus).Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			ids = append(ids, string(k[len(prefix):]))
		}
	} else {
		err := tx.tx.Bucket(bucketTickets).ForEach(func(k, _ []byte) error {
			ids = append(ids, string(k))
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	out := make([]*Ticket, 0, len(ids))
	for _, id := range ids {
		t, err := tx.Ticket(id)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].CreatedAt.After(out[j].CreatedAt) })
	if f.Limit > 0 && len(out) > f.Limit {
		out = out[:f.Limit]
	}
	return out, nil
}

// dueKey is 8-byte big-endian Unix nanoseconds followed by the ticket id, so
// a cursor walks tickets in due order.
func dueKey(at time.Time, id string) []byte {
	return append(u64(uint64(at.UnixNano())), id...)
}

// DueTickets returns the ids of tickets due at or before now, earliest
// first, at most limit (0 = all). Its cost grows with the number due, not
// with the number of tickets.
func (tx *Tx) DueTickets(now time.Time, limit int) []string {
	var ids []string
	end := uint64(now.UnixNano())
	c := tx.tx.Bucket(bucketIdxDue).Cursor()
	for k, _ := c.First(); k != nil && len(k) > 8; k, _ = c.Next() {
		if binary.BigEndian.Uint64(k[:8]) > end || (limit > 0 && len(ids) >= limit) {
			break
		}
		ids = append(ids, string(k[8:]))
	}
	return ids
}
