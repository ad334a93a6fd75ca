package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"ticketgate/store"
)

// outboxRec is an outbox entry's record: small, no body (the blob
// raw_hash) and no claim (its own columns).
type outboxRec struct {
	ID       uint64    `json:"id"`
	TicketID string    `json:"ticket_id"`
	Kind     string    `json:"kind"`
	From     string    `json:"from"`
	To       []string  `json:"to"`
	Attempts int       `json:"attempts"`
	NextAt   time.Time `json:"next_at"`
	Created  time.Time `json:"created"`
	LastErr  string    `json:"last_error,omitempty"`
	Done     []string  `json:"done,omitempty"`
	Carries  string    `json:"carries,omitempty"`
}

// outboxCols is what every read of an entry selects, in scanEntry order.
const outboxCols = `rec, raw_hash, claimed_by, claimed_until_ns`

// entry is one outbox row as read.
type entry struct {
	rec        outboxRec
	v          []byte
	rawHash    string
	claimedBy  *string
	claimUntil *int64
}

func (e *entry) dest() []any { return []any{&e.v, &e.rawHash, &e.claimedBy, &e.claimUntil} }

func (e *entry) decode() error {
	e.rec = outboxRec{}
	if err := json.Unmarshal(e.v, &e.rec); err != nil {
		return fmt.Errorf("decode outbox entry: %w", err)
	}
	return nil
}

func (e *entry) mail() *store.OutMail {
	r := &e.rec
	m := &store.OutMail{ID: r.ID, TicketID: r.TicketID, Kind: r.Kind, From: r.From, To: r.To,
		Attempts: r.Attempts, NextAt: r.NextAt, Created: r.Created, LastErr: r.LastErr, Done: r.Done, Carries: r.Carries}
	if e.claimedBy != nil && e.claimUntil != nil {
		m.ClaimedBy, m.ClaimedUntil = *e.claimedBy, time.Unix(0, *e.claimUntil).UTC()
	}
	return m
}

// id64 is an outbox id as stored; ids never reach 2^63.
func id64(id uint64) (int64, error) {
	if id > math.MaxInt64 {
		return 0, fmt.Errorf("outbox entry %d: %w", id, store.ErrNotFound)
	}
	return int64(id), nil
}

func (t *tx) entry(id uint64, lock bool) (*entry, error) {
	n, err := id64(id)
	if err != nil {
		return nil, err
	}
	q := `SELECT ` + outboxCols + ` FROM outbox WHERE id = $1`
	if lock {
		q += ` FOR UPDATE`
	}
	e := &entry{}
	err = t.row(q, args(n), e.dest()...)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("outbox entry %d: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read outbox entry %d: %w", id, err)
	}
	return e, e.decode()
}

// entries reads the entries a query selects (outboxCols first, nothing
// else), in its order.
func (t *tx) entries(q string, a []any) ([]*entry, error) {
	var out []*entry
	e := &entry{}
	err := t.rows(q, a, e.dest(), func() error {
		if err := e.decode(); err != nil {
			return err
		}
		c := *e
		out = append(out, &c)
		return nil
	})
	return out, err
}

func (t *tx) Enqueue(m *store.OutMail) error {
	if m.ID == 0 {
		id, err := t.NextOutboxID()
		if err != nil {
			return err
		}
		m.ID = id
	}
	id, err := id64(m.ID)
	if err != nil {
		return err
	}
	rec := &outboxRec{ID: m.ID, TicketID: m.TicketID, Kind: m.Kind, From: m.From, To: m.To,
		Attempts: m.Attempts, NextAt: m.NextAt, Created: m.Created, LastErr: m.LastErr, Done: m.Done, Carries: m.Carries}
	var rawHash string
	old, err := t.entry(m.ID, true)
	switch {
	case err == nil:
		rawHash = old.rawHash
	case !errors.Is(err, store.ErrNotFound):
		return err
	}
	if m.Raw != nil {
		h, err := t.PutBlob(m.Raw)
		if err != nil {
			return err
		}
		if rawHash != "" {
			if err := t.releaseBlob(rawHash); err != nil {
				return err
			}
		}
		rawHash = h
	}
	queue := []byte(m.Queue())
	if err := t.holdBack(rec, queue); err != nil {
		return err
	}
	m.NextAt = rec.NextAt
	// New mail, and mail made due sooner (a retry), wake the other
	// gateways: an idle one sleeps until the time the mail was due.
	if old == nil || rec.NextAt.Before(old.rec.NextAt) {
		if err := t.notify(); err != nil {
			return err
		}
	}
	v, err := encode(rec)
	if err != nil {
		return fmt.Errorf("encode outbox entry: %w", err)
	}
	// Writing the entry again ends any claim on it.
	err = t.exec(`INSERT INTO outbox (id, queue, next_ns, raw_hash, claimed_by, claimed_until_ns, rec)
		VALUES ($1, $2, $3, $4, NULL, NULL, $5)
		ON CONFLICT (id) DO UPDATE SET queue = $2, next_ns = $3, raw_hash = $4, claimed_by = NULL, claimed_until_ns = NULL, rec = $5`,
		id, queue, nano(rec.NextAt), rawHash, v)
	if err != nil {
		return fmt.Errorf("put outbox entry %d: %w", m.ID, err)
	}
	return t.deferLater(rec, queue)
}

// holdBack raises rec.NextAt to that of the entry before it in its queue.
func (t *tx) holdBack(rec *outboxRec, queue []byte) error {
	prev, err := t.entries(`SELECT `+outboxCols+` FROM outbox WHERE queue = $1 AND id < $2 ORDER BY id DESC LIMIT 1`,
		args(queue, int64(rec.ID)))
	if err != nil {
		return fmt.Errorf("read outbox queue: %w", err)
	}
	if len(prev) == 1 && rec.NextAt.Before(prev[0].rec.NextAt) {
		rec.NextAt = prev[0].rec.NextAt
	}
	return nil
}

// deferLater raises the NextAt of the entries after rec in its queue to
// rec's, stopping at the first that is due no earlier. As the queue is due
// in order, only entries due by rec.NextAt can need it.
func (t *tx) deferLater(rec *outboxRec, queue []byte) error {
	later, err := t.entries(`SELECT `+outboxCols+` FROM outbox WHERE queue = $1 AND id > $2 AND next_ns <= $3 ORDER BY id`,
		args(queue, int64(rec.ID), nano(rec.NextAt)))
	if err != nil {
		return fmt.Errorf("read outbox queue: %w", err)
	}
	for _, e := range later {
		if !e.rec.NextAt.Before(rec.NextAt) {
			return nil
		}
		e.rec.NextAt = rec.NextAt
		v, err := encode(&e.rec)
		if err != nil {
			return err
		}
		if err := t.exec(`UPDATE outbox SET next_ns = $2, rec = $3 WHERE id = $1`, int64(e.rec.ID), nano(rec.NextAt), v); err != nil {
			return fmt.Errorf("defer outbox entry %d: %w", e.rec.ID, err)
		}
	}
	return nil
}

func (t *tx) NextOutboxID() (uint64, error) {
	var id int64
	if err := t.row(`SELECT nextval('outbox_id')`, nil, &id); err != nil {
		return 0, fmt.Errorf("next outbox id: %w", err)
	}
	return uint64(id), nil
}

func byID(out []*store.OutMail) []*store.OutMail {
	slices.SortFunc(out, func(a, b *store.OutMail) int {
		switch {
		case a.ID < b.ID:
			return -1
		case a.ID > b.ID:
			return 1
		}
		return 0
	})
	return out
}

// Outbox reads the index outbox_due up to now.
func (t *tx) Outbox(now time.Time, lim int) ([]*store.OutMail, error) {
	end := int64(math.MaxInt64)
	if !now.IsZero() {
		end = nano(now)
	}
	es, err := t.entries(`SELECT `+outboxCols+` FROM outbox WHERE next_ns <= $1 ORDER BY next_ns, id LIMIT $2`, args(end, limit(lim)))
	if err != nil {
		return nil, fmt.Errorf("read outbox: %w", err)
	}
	var out []*store.OutMail
	for _, e := range es {
		// The column clamps times outside 1970..2262; compare the real ones.
		if !now.IsZero() && e.rec.NextAt.After(now) {
			continue
		}
		out = append(out, e.mail())
	}
	return byID(out), nil
}

// ClaimOutbox locks the due entries nobody else holds, passing over those
// another transaction is claiming (SKIP LOCKED), keeps those whose earlier
// queue-mates are all among them, and marks them claimed. A claim that
// another process made after this transaction began makes PostgreSQL
// refuse this one, which runs again and sees it.
func (t *tx) ClaimOutbox(owner string, now time.Time, lease time.Duration, lim int) ([]*store.OutMail, error) {
	es, err := t.entries(`
		WITH cand AS (
			SELECT id, queue FROM outbox
			WHERE next_ns <= $1 AND (claimed_by IS NULL OR claimed_by = $2 OR claimed_until_ns <= $1)
			ORDER BY next_ns, id LIMIT $3
			FOR UPDATE SKIP LOCKED
		), kept AS (
			SELECT id FROM cand c WHERE NOT EXISTS (
				SELECT 1 FROM outbox e WHERE e.queue = c.queue AND e.id < c.id AND e.id NOT IN (SELECT id FROM cand))
		)
		UPDATE outbox SET claimed_by = $2, claimed_until_ns = $4
		WHERE id IN (SELECT id FROM kept)
		RETURNING `+outboxCols,
		args(nano(now), owner, limit(lim), nano(now.Add(lease))))
	if err != nil {
		return nil, fmt.Errorf("claim outbox: %w", err)
	}
	out := make([]*store.OutMail, 0, len(es))
	for _, e := range es {
		out = append(out, e.mail())
	}
	return byID(out), nil
}

func (t *tx) OutboxList(after uint64, lim int) ([]*store.OutMail, error) {
	if after >= math.MaxInt64 {
		return nil, nil
	}
	es, err := t.entries(`SELECT `+outboxCols+` FROM outbox WHERE id > $1 ORDER BY id LIMIT $2`, args(int64(after), limit(lim)))
	if err != nil {
		return nil, fmt.Errorf("list outbox: %w", err)
	}
	var out []*store.OutMail
	for _, e := range es {
		out = append(out, e.mail())
	}
	return out, nil
}

func (t *tx) OutboxEntry(id uint64) (*store.OutMail, error) {
	e, err := t.entry(id, false)
	if err != nil {
		return nil, err
	}
	return e.mail(), nil
}

func (t *tx) OutboxRaw(id uint64) ([]byte, error) {
	e, err := t.entry(id, false)
	if err != nil {
		return nil, err
	}
	raw, err := t.Blob(e.rawHash)
	if err != nil {
		return nil, fmt.Errorf("outbox entry %d: %w", id, err)
	}
	return raw, nil
}

func (t *tx) NextOutboxAt() (time.Time, error) {
	es, err := t.entries(`SELECT `+outboxCols+` FROM outbox ORDER BY next_ns, id LIMIT 1`, nil)
	if err != nil || len(es) == 0 {
		return time.Time{}, err
	}
	return es[0].rec.NextAt, nil
}

func (t *tx) Dequeue(id uint64) error {
	n, err := id64(id)
	if err != nil {
		return nil
	}
	var rawHash string
	err = t.row(`DELETE FROM outbox WHERE id = $1 RETURNING raw_hash`, args(n), &rawHash)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("dequeue %d: %w", id, err)
	}
	if rawHash != "" {
		return t.releaseBlob(rawHash)
	}
	return nil
}

type sentRec struct {
	TicketID string    `json:"ticket_id"`
	To       []string  `json:"to"`
	Kind     string    `json:"kind,omitempty"`
	At       time.Time `json:"at,omitzero"`
}

func (t *tx) Sent(m *store.OutMail) error {
	id, err := id64(m.ID)
	if err != nil {
		return err
	}
	v, err := encode(sentRec{TicketID: m.TicketID, To: m.To, Kind: m.Kind, At: time.Now().UTC()})
	if err != nil {
		return err
	}
	if err := t.exec(`INSERT INTO sent (id, ticket_id, rec) VALUES ($1, $2, $3) ON CONFLICT (id) DO UPDATE SET rec = $3`, id, m.TicketID, v); err != nil {
		return fmt.Errorf("record sent mail %d: %w", m.ID, err)
	}
	return nil
}

// TicketMail reads the outbox by its queue index (a queue starts with its
// ticket's id and a 0 byte) and sent by its ticket column.
func (t *tx) TicketMail(id string) ([]*store.OutMail, []store.SentMail, error) {
	if !isText(id) {
		return nil, nil, nil
	}
	lo, hi := append([]byte(id), 0), append([]byte(id), 1)
	es, err := t.entries(`SELECT `+outboxCols+` FROM outbox WHERE queue >= $1 AND queue < $2 ORDER BY id`, args(lo, hi))
	if err != nil {
		return nil, nil, fmt.Errorf("read outbox of %s: %w", id, err)
	}
	var queued []*store.OutMail
	for _, e := range es {
		queued = append(queued, e.mail())
	}
	var sent []store.SentMail
	var n int64
	var v []byte
	err = t.rows(`SELECT id, rec FROM sent WHERE ticket_id = $1 ORDER BY id`, args(id), []any{&n, &v}, func() error {
		var r sentRec
		if err := json.Unmarshal(v, &r); err != nil {
			return fmt.Errorf("decode sent mail %d: %w", n, err)
		}
		sent = append(sent, store.SentMail{ID: uint64(n), Kind: r.Kind, To: r.To, At: r.At})
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("read sent mail of %s: %w", id, err)
	}
	return queued, sent, nil
}

func (t *tx) SentTo(id uint64) (ticketID string, to []string, err error) {
	var v []byte
	n, err := id64(id)
	if err != nil {
		return "", nil, fmt.Errorf("sent mail %d: %w", id, store.ErrNotFound)
	}
	err = t.row(`SELECT rec FROM sent WHERE id = $1`, args(n), &v)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil, fmt.Errorf("sent mail %d: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return "", nil, fmt.Errorf("read sent mail %d: %w", id, err)
	}
	var r sentRec
	err = json.Unmarshal(v, &r)
	return r.TicketID, r.To, err
}

// ReserveOutboxIDs makes every id NextOutboxID hands out from now on
// larger than upto: for entries copied in with their ids kept. Gateways
// may be drawing ids meanwhile: the sequence is moved on by drawing ids
// (as many as it lacks), never set, so that it never goes back to hand
// out an id it handed out already.
func (d *DB) ReserveOutboxIDs(ctx context.Context, upto uint64) error {
	n, err := id64(upto)
	if err != nil || n == 0 {
		return err
	}
	// A million ids a statement (about a second).
	for {
		var last int64
		err := d.pool.QueryRow(ctx, `SELECT max(nextval('outbox_id'))
			FROM generate_series(1, LEAST(GREATEST($1 - (SELECT last_value FROM outbox_id), 1), 1000000))`, n).Scan(&last)
		if err != nil || last >= n {
			return err
		}
	}
}
