package postgres

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"ticketgate/store"
)

// encode is json.Marshal without HTML escaping: a quoted "> line" stays
// ">" in the database, not "\u003e".
func encode(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

var (
	minNano = time.Unix(0, 0)
	maxNano = time.Unix(0, math.MaxInt64)
)

// nano is t as Unix nanoseconds, clamped to what an int64 holds (zero
// and anything before 1970 are 0), for the due-time columns.
func nano(t time.Time) int64 {
	switch {
	case t.IsZero() || t.Before(minNano):
		return 0
	case t.After(maxNano):
		return math.MaxInt64
	}
	return t.UnixNano()
}

// isText reports whether every s can be compared with a text column:
// valid UTF-8 without a zero byte, which is all PostgreSQL keeps as text.
// Anything else (an id or address typed with stray bytes) is no record's:
// a lookup answers that, as for any unknown one, instead of sending it,
// which PostgreSQL refuses with an error that aborts the transaction.
func isText(s ...string) bool {
	for _, v := range s {
		if !utf8.ValidString(v) || strings.IndexByte(v, 0) >= 0 {
			return false
		}
	}
	return true
}

// limit is a LIMIT for n, where 0 means none.
func limit(n int) int64 {
	if n <= 0 {
		return math.MaxInt64
	}
	return int64(n)
}

func (t *tx) NewTicketID(prefix string) (string, error) {
	for range 1000 {
		n, err := rand.Int(rand.Reader, big.NewInt(1000000))
		if err != nil {
			return "", fmt.Errorf("allocate ticket id: %w", err)
		}
		id := fmt.Sprintf("%s-%06d", prefix, n.Int64())
		var taken bool
		if err := t.row(`SELECT EXISTS (SELECT 1 FROM tickets WHERE id = $1)`, args(id), &taken); err != nil {
			return "", fmt.Errorf("allocate ticket id: %w", err)
		}
		// Another process may take the same id before this transaction
		// commits: the primary key then fails one of them, which runs
		// again and draws another.
		if !taken {
			return id, nil
		}
	}
	return "", fmt.Errorf("allocate ticket id: no free id found (the %s- number space is nearly full)", prefix)
}

func decodeTicket(id string, v []byte) (*store.Ticket, error) {
	var tk store.Ticket
	if err := json.Unmarshal(v, &tk); err != nil {
		return nil, fmt.Errorf("ticket %s: %w: %w", id, store.ErrBadRecord, err)
	}
	return &tk, nil
}

func (t *tx) Ticket(id string) (*store.Ticket, error) {
	if !isText(id) {
		return nil, fmt.Errorf("ticket %s: %w", id, store.ErrNotFound)
	}
	var v []byte
	err := t.row(`SELECT rec FROM tickets WHERE id = $1`, args(id), &v)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("ticket %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read ticket %s: %w", id, err)
	}
	return decodeTicket(id, v)
}

func (t *tx) TicketFull(id string) (*store.Ticket, error) {
	tk, err := t.Ticket(id)
	if err != nil {
		return nil, err
	}
	tk.Messages = []store.Message{}
	tk.Events = []store.Event{}
	var v []byte
	err = t.rows(`SELECT rec FROM messages WHERE ticket_id = $1 ORDER BY seq`, args(id), []any{&v}, func() error {
		var m store.Message
		if err := json.Unmarshal(v, &m); err != nil {
			return fmt.Errorf("%w: %w", store.ErrBadRecord, err)
		}
		tk.Messages = append(tk.Messages, m)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read messages of %s: %w", id, err)
	}
	err = t.rows(`SELECT rec FROM events WHERE ticket_id = $1 ORDER BY seq`, args(id), []any{&v}, func() error {
		var e store.Event
		if err := json.Unmarshal(v, &e); err != nil {
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

func (t *tx) DueTickets(now time.Time, lim int) ([]string, error) {
	var ids []string
	var id string
	err := t.rows(`SELECT id FROM tickets WHERE due_ns IS NOT NULL AND due_ns <= $1 ORDER BY due_ns, id LIMIT $2`,
		args(nano(now), limit(lim)), []any{&id}, func() error {
			ids = append(ids, id)
			return nil
		})
	if err != nil {
		return nil, fmt.Errorf("due tickets: %w", err)
	}
	return ids, nil
}

func (t *tx) AddMessage(id string, m *store.Message) error {
	v, err := encode(m)
	if err != nil {
		return fmt.Errorf("encode message: %w", err)
	}
	norm := store.NormMessageID(m.MessageID)
	if err := t.exec(`INSERT INTO messages (ticket_id, msgid, rec) VALUES ($1, $2, $3)`, id, []byte(norm), v); err != nil {
		return fmt.Errorf("put message: %w", err)
	}
	if err := t.addWords(id, store.MessageWords(m), wordInMessage); err != nil {
		return err
	}
	if m.MessageID != "" {
		return t.IndexMessageID(m.MessageID, id)
	}
	return nil
}

func (t *tx) AddEvent(id string, e store.Event) error {
	v, err := encode(e)
	if err != nil {
		return fmt.Errorf("encode event: %w", err)
	}
	if err := t.exec(`INSERT INTO events (ticket_id, rec) VALUES ($1, $2)`, id, v); err != nil {
		return fmt.Errorf("put event: %w", err)
	}
	return nil
}

// IndexMessageID points msgid at ticket id. Two transactions indexing the
// same Message-ID conflict on its row, and one runs again: it then finds
// the message stored (a duplicate delivery, answered as a success). An
// id that is nothing but angle brackets names no message, and is not
// indexed.
func (t *tx) IndexMessageID(msgid, id string) error {
	norm := store.NormMessageID(msgid)
	if norm == "" {
		return nil
	}
	err := t.exec(`INSERT INTO msgids (msgid, ticket_id) VALUES ($1, $2)
		ON CONFLICT (msgid) DO UPDATE SET ticket_id = $2`, []byte(norm), id)
	if err != nil {
		return fmt.Errorf("index message id: %w", err)
	}
	return nil
}

func (t *tx) TicketByMessageID(msgid string) (string, error) {
	norm := store.NormMessageID(msgid)
	if norm == "" {
		return "", nil // names no message (IndexMessageID)
	}
	var id string
	err := t.row(`SELECT ticket_id FROM msgids WHERE msgid = $1`, args([]byte(norm)), &id)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("find message id %s: %w", msgid, err)
	}
	return id, nil
}

func (t *tx) HasMessage(id, msgid string) (bool, error) {
	_, found, err := t.MessageByID(id, msgid)
	return found, err
}

func (t *tx) MessageByID(ticketID, msgid string) (*store.Message, bool, error) {
	if !isText(ticketID) {
		return nil, false, nil
	}
	var v []byte
	err := t.row(`SELECT rec FROM messages WHERE ticket_id = $1 AND msgid = $2 ORDER BY seq LIMIT 1`,
		args(ticketID, []byte(store.NormMessageID(msgid))), &v)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("find message %s on %s: %w", msgid, ticketID, err)
	}
	var m store.Message
	if err := json.Unmarshal(v, &m); err != nil {
		return nil, false, fmt.Errorf("decode message %s on %s: %w", msgid, ticketID, err)
	}
	return &m, true, nil
}
