package postgres

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"ticketgate/rules"
	"ticketgate/store"
)

// createdLen is the length of a time in a sort key.
const createdLen = 12

// Tags that start the sort keys (and so the cursors) of the orders other
// than by creation time; the same as the bbolt backend's, so a cursor
// reads the same on both.
const (
	tagUpdated  = 'u'
	tagPriority = 'p'
	tagDue      = 'd'
)

// noDue is the due time in k_due of a ticket with nothing due: after
// every time.
var noDue = bytes.Repeat([]byte{0xff}, createdLen)

// appendTime appends at as createdLen bytes that sort as the time does,
// for every year: the Unix second with its sign bit flipped (8 bytes) and
// the nanosecond (4 bytes).
func appendTime(b []byte, at time.Time) []byte {
	b = binary.BigEndian.AppendUint64(b, uint64(at.Unix())^(1<<63))
	return binary.BigEndian.AppendUint32(b, uint32(at.Nanosecond()))
}

// sortKeys are a ticket's keys for each order, bytea compared byte by
// byte.
type sortKeys struct{ created, updated, priority, due []byte }

func keysOf(tk *store.Ticket) sortKeys {
	created := appendTime(nil, tk.CreatedAt)
	var k sortKeys
	k.created = append(append([]byte{}, created...), tk.ID...)
	k.updated = append(appendTime([]byte{tagUpdated}, tk.UpdatedAt), tk.ID...)
	urgency := byte(rules.PriorityCritical.Rank() - tk.Priority.Rank())
	k.priority = append(append([]byte{tagPriority, urgency}, created...), tk.ID...)
	k.due = []byte{tagDue}
	if due := tk.SLADue(); due.IsZero() {
		k.due = append(k.due, noDue...)
	} else {
		k.due = appendTime(k.due, due)
	}
	k.due = append(append(k.due, created...), tk.ID...)
	return k
}

// wordsSource is what store.TicketWords reads of tk, to tell whether its
// words changed.
func wordsSource(tk *store.Ticket) []byte {
	return []byte(tk.Subject + "\x00" + tk.Requester + "\x00" + tk.RequesterName)
}

// Places a word occurs on a ticket (ticket_words.places).
const (
	wordInTicket  = 1 // the subject or the requester
	wordInMessage = 2 // a message
)

func (t *tx) PutTicket(tk *store.Ticket) error {
	rec := *tk
	rec.Messages, rec.Events = nil, nil
	v, err := encode(&rec)
	if err != nil {
		return fmt.Errorf("encode ticket %s: %w", tk.ID, err)
	}
	var due *int64
	if !tk.Due.IsZero() {
		n := nano(tk.Due)
		due = &n
	}
	k := keysOf(tk)
	src := wordsSource(tk)
	// The CTE reads the row as it was before this statement: the words
	// are rewritten only when their source changed.
	var old []byte
	var oldAddrs *string
	err = t.row(`WITH old AS (SELECT words_src, json_build_array(rec->'requester', rec->'cc')::text AS addrs FROM tickets WHERE id = $1)
		INSERT INTO tickets (id, status, due_ns, k_created, k_updated, k_priority, k_due, completed,
			assignee_l, requester_l, queue_l, words_src, rec)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
		ON CONFLICT (id) DO UPDATE SET status = $2, due_ns = $3, k_created = $4, k_updated = $5,
			k_priority = $6, k_due = $7, completed = $8, assignee_l = $9, requester_l = $10,
			queue_l = $11, words_src = $12, rec = $13
		RETURNING (SELECT words_src FROM old), (SELECT addrs FROM old)`,
		args(tk.ID, string(tk.Status), due, k.created, k.updated, k.priority, k.due, store.Completed(tk.Status),
			strings.ToLower(tk.Assignee), strings.ToLower(tk.Requester), strings.ToLower(tk.Queue), src, v), &old, &oldAddrs)
	if err != nil {
		return fmt.Errorf("put ticket %s: %w", tk.ID, err)
	}
	if err := t.indexAddresses(tk, oldAddrs); err != nil {
		return err
	}
	if old != nil && bytes.Equal(old, src) {
		return nil
	}
	words := store.TicketWords(tk)
	if old != nil {
		if err := t.dropWords(tk.ID, words, wordInTicket); err != nil {
			return err
		}
	}
	return t.addWords(tk.ID, words, wordInTicket)
}

// indexAddresses keeps ticket_addrs in step with tk's requester and
// participants. old is the stored record's [requester, cc] as JSON (nil
// for a new ticket): the rows are rewritten only when the addresses
// changed.
func (t *tx) indexAddresses(tk *store.Ticket, old *string) error {
	now := append([]string{}, store.Addresses(tk)...) // never NULL to the database
	if old != nil {
		var pair []json.RawMessage
		var req string
		var cc []string
		if json.Unmarshal([]byte(*old), &pair) == nil && len(pair) == 2 &&
			json.Unmarshal(pair[0], &req) == nil && json.Unmarshal(pair[1], &cc) == nil &&
			slices.Equal(store.Addresses(&store.Ticket{Requester: req, CC: cc}), now) {
			return nil
		}
		if err := t.exec(`DELETE FROM ticket_addrs WHERE ticket_id = $1 AND NOT (addr = ANY($2))`, tk.ID, now); err != nil {
			return fmt.Errorf("index addresses of %s: %w", tk.ID, err)
		}
	}
	if len(now) == 0 {
		return nil
	}
	if err := t.exec(`INSERT INTO ticket_addrs (addr, ticket_id) SELECT unnest($2::text[]), $1 ON CONFLICT DO NOTHING`, tk.ID, now); err != nil {
		return fmt.Errorf("index addresses of %s: %w", tk.ID, err)
	}
	return nil
}

// TicketsOfAddress reads ticket_addrs.
func (t *tx) TicketsOfAddress(addr string) ([]string, error) {
	if !isText(addr) {
		return nil, nil
	}
	var ids []string
	var id string
	err := t.rows(`SELECT ticket_id FROM ticket_addrs WHERE addr = $1 ORDER BY ticket_id`,
		args(strings.ToLower(strings.TrimSpace(addr))), []any{&id}, func() error {
			ids = append(ids, id)
			return nil
		})
	if err != nil {
		return nil, fmt.Errorf("tickets of %s: %w", addr, err)
	}
	return ids, nil
}

// addWords records that words occur on ticket id, in the place bit.
// words may hold a word more than once (those of several messages): one
// statement may not insert and then update the same row, so each is sent
// once.
func (t *tx) addWords(id string, words []string, bit int) error {
	if len(words) == 0 {
		return nil
	}
	words = slices.Compact(slices.Sorted(slices.Values(words)))
	err := t.exec(`INSERT INTO ticket_words (word, ticket_id, places) SELECT w, $2, $3 FROM unnest($1::text[]) AS w
		ON CONFLICT (word, ticket_id) DO UPDATE SET places = ticket_words.places | $3
		WHERE ticket_words.places & $3 = 0`, words, id, int16(bit))
	if err != nil {
		return fmt.Errorf("index words: %w", err)
	}
	return nil
}

// dropWords records that the words not in keep no longer occur on ticket
// id in the place bit, and removes the rows of words left nowhere.
func (t *tx) dropWords(id string, keep []string, bit int) error {
	if keep == nil {
		keep = []string{}
	}
	err := t.exec(`UPDATE ticket_words SET places = places & ~$3::smallint
		WHERE ticket_id = $1 AND places & $3 <> 0 AND word <> ALL($2::text[])`, id, keep, int16(bit))
	if err == nil {
		err = t.exec(`DELETE FROM ticket_words WHERE ticket_id = $1 AND places = 0`, id)
	}
	if err != nil {
		return fmt.Errorf("unindex words: %w", err)
	}
	return nil
}

// orderColumn is the sort key column of order o.
func orderColumn(o store.Sort) string {
	switch o {
	case store.SortUpdated:
		return "k_updated"
	case store.SortPriority:
		return "k_priority"
	case store.SortDue:
		return "k_due"
	}
	return "k_created"
}

// validKey reports whether k can be a sort key of order o.
func validKey(o store.Sort, k []byte) bool {
	switch o {
	case store.SortNewest, store.SortCreated:
		return len(k) > createdLen
	case store.SortUpdated:
		return len(k) > 1+createdLen && k[0] == tagUpdated
	case store.SortPriority:
		return len(k) > 2+createdLen && k[0] == tagPriority
	}
	return len(k) > 1+2*createdLen && k[0] == tagDue
}

// where builds the conditions of a query with numbered parameters.
type where struct {
	conds []string
	args  []any
}

// add appends cond, in which each "?" is the next parameter of a.
func (w *where) add(cond string, a ...any) {
	for _, v := range a {
		w.args = append(w.args, v)
		cond = strings.Replace(cond, "?", "$"+strconv.Itoa(len(w.args)), 1)
	}
	w.conds = append(w.conds, cond)
}

func (w *where) sql() string {
	if len(w.conds) == 0 {
		return "TRUE"
	}
	return strings.Join(w.conds, " AND ")
}

// Tickets answers f with one query: the conditions on the ticket columns,
// each word a lookup in ticket_words by its primary key, the order an
// index on its sort key. It reads one ticket more than a page to know
// whether another page follows.
func (t *tx) Tickets(f store.Filter) ([]*store.Ticket, string, error) {
	if err := t.ctx.Err(); err != nil {
		return nil, "", err
	}
	if err := checkFilter(f); err != nil {
		return nil, "", fmt.Errorf("list tickets: %w", err)
	}
	col := orderColumn(f.Sort)
	desc := (f.Sort == store.SortNewest) != f.Reverse
	var w where
	if f.After != "" {
		after, err := hex.DecodeString(f.After)
		if err != nil || !validKey(f.Sort, after) {
			return nil, "", fmt.Errorf("list tickets: %w %q", store.ErrBadCursor, f.After)
		}
		if desc {
			w.add(col+" < ?", after)
		} else {
			w.add(col+" > ?", after)
		}
	}
	if !isText(string(f.Status), f.Requester, f.Assignee, f.Queue, f.Operator) {
		return []*store.Ticket{}, "", nil // no ticket has them
	}
	w.addFilter(f)
	n := limit(f.Limit)
	if n < math.MaxInt64 {
		n++
	}
	dir := "ASC"
	if desc {
		dir = "DESC"
	}
	w.args = append(w.args, n)
	q := fmt.Sprintf(`SELECT id, %s, rec FROM tickets WHERE %s ORDER BY %s %s LIMIT $%d`, col, w.sql(), col, dir, len(w.args))
	out := []*store.Ticket{}
	var keys [][]byte
	var bad []error // by row: a ticket that does not decode
	var (
		id  string
		key []byte
		v   []byte
	)
	err := t.rows(q, w.args, []any{&id, &key, &v}, func() error {
		tk, err := decodeTicket(id, v)
		if !errors.Is(err, store.ErrBadRecord) && err != nil {
			return err
		}
		out = append(out, tk)
		keys = append(keys, bytes.Clone(key))
		bad = append(bad, err)
		return nil
	})
	if err != nil {
		return nil, "", fmt.Errorf("list tickets: %w", err)
	}
	var next string
	if f.Limit > 0 && len(out) > f.Limit {
		out, bad = out[:f.Limit], bad[:f.Limit]
		next = hex.EncodeToString(keys[f.Limit-1])
	}
	// A ticket that does not decode is left out; the page goes on
	// without it.
	return slices.DeleteFunc(out, func(tk *store.Ticket) bool { return tk == nil }), next, cmp.Or(bad...)
}

// checkFilter is store.ErrBadFilter, said how, when f names no view or
// sort order there is, or the view of an operator's tickets without the
// operator.
func checkFilter(f store.Filter) error {
	if _, ok := store.ParseView(string(f.View)); !ok {
		return fmt.Errorf("%w: no view %q", store.ErrBadFilter, f.View)
	}
	if _, ok := store.ParseSort(string(f.Sort)); !ok && f.Sort != store.SortNewest {
		return fmt.Errorf("%w: no sort order %q", store.ErrBadFilter, f.Sort)
	}
	if f.View == store.ViewMine && f.Operator == "" {
		return fmt.Errorf("%w: the view %q needs an operator", store.ErrBadFilter, f.View)
	}
	return nil
}

// addFilter adds f's view, its conditions on ticket fields and its words.
func (w *where) addFilter(f store.Filter) {
	switch f.View {
	case store.ViewNew:
		w.add("NOT completed AND assignee_l = ''")
	case store.ViewActive:
		w.add("NOT completed AND assignee_l <> ''")
	case store.ViewCompleted:
		w.add("completed")
	case store.ViewMine:
		w.add("NOT completed AND assignee_l = ?", strings.ToLower(f.Operator))
	}
	if f.Status != "" {
		w.add("status = ?", string(f.Status))
	}
	if f.Requester != "" {
		w.add("requester_l = ?", strings.ToLower(f.Requester))
	}
	if f.Assignee != "" {
		w.add("assignee_l = ?", strings.ToLower(f.Assignee))
	}
	if f.Unassigned {
		w.add("assignee_l = ''")
	}
	if f.Queue != "" {
		w.add("queue_l = ?", strings.ToLower(f.Queue))
	}
	for _, word := range store.Words(f.Text) {
		w.add("EXISTS (SELECT 1 FROM ticket_words tw WHERE tw.word = ? AND tw.ticket_id = tickets.id)", word)
	}
}

// rebuildWords fills ticket_words, empty, from every ticket and message,
// as store.TicketWords and store.MessageWords split them now: a
// migration's step (afterMigration).
func rebuildWords(ctx context.Context, tx pgx.Tx) error {
	places := map[string]map[string]int16{} // ticket → word → places
	add := func(id string, words []string, bit int16) {
		m := places[id]
		if m == nil {
			m = map[string]int16{}
			places[id] = m
		}
		for _, w := range words {
			m[w] |= bit
		}
	}
	var id string
	var v []byte
	each := func(query string, fn func() error) error {
		rows, err := tx.Query(ctx, query)
		if err != nil {
			return err
		}
		_, err = pgx.ForEachRow(rows, []any{&id, &v}, fn)
		return err
	}
	err := each(`SELECT id, rec FROM tickets`, func() error {
		tk, err := decodeTicket(id, v)
		if err != nil {
			// A damaged record is left out, as listings and the
			// sweep pass over it: it must not keep the database
			// from opening after an upgrade.
			return nil
		}
		add(id, store.TicketWords(tk), wordInTicket)
		return nil
	})
	if err != nil {
		return fmt.Errorf("index words of tickets: %w", err)
	}
	err = each(`SELECT ticket_id, rec FROM messages`, func() error {
		var m store.Message
		if err := json.Unmarshal(v, &m); err != nil {
			return nil // damaged: left out, as the indexer leaves it
		}
		if _, ok := places[id]; ok {
			add(id, store.MessageWords(&m), wordInMessage)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("index words of messages: %w", err)
	}
	var words, ids []string
	var bits []int16
	flush := func() error {
		_, err := tx.Exec(ctx, `INSERT INTO ticket_words (word, ticket_id, places)
			SELECT * FROM unnest($1::text[], $2::text[], $3::smallint[])`, words, ids, bits)
		words, ids, bits = words[:0], ids[:0], bits[:0]
		return err
	}
	for id, m := range places {
		for w, p := range m {
			words, ids, bits = append(words, w), append(ids, id), append(bits, p)
		}
		if len(words) >= 10000 {
			if err := flush(); err != nil {
				return fmt.Errorf("index words: %w", err)
			}
		}
	}
	if err := flush(); err != nil {
		return fmt.Errorf("index words: %w", err)
	}
	return nil
}
