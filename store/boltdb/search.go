package boltdb

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"ticketgate/rules"
	"ticketgate/store"
)

// A summary is what listings filter and sort tickets on, kept in
// idx.summary under the ticket id by PutTicket: a few dozen bytes a
// ticket, so a view over every ticket reads neither the ticket records
// nor their messages.
//
// On disk: the created and updated times and the SLA due time
// (store.Ticket.SLADue) as appendTime writes them, createdLen bytes each
// (no due time is createdLen bytes of 0xff, after every time); the
// urgency (1 byte: 0 for critical … 3 for low); then the status, the
// assignee and the requester (both in lower case) and the queue, each a
// uvarint length and its bytes. Decoded, the fields share the value's
// bytes: valid only inside the transaction.
type summary struct {
	created, updated, due []byte
	urgency               byte
	status, assignee      []byte
	requester, queue      []byte
}

const summaryFixed = 3*createdLen + 1

// noDue is the summary's due time of a ticket with nothing due.
var noDue = bytes.Repeat([]byte{0xff}, createdLen)

func encodeSummary(tk *store.Ticket) []byte {
	b := make([]byte, 0, summaryFixed+16+len(tk.Assignee)+len(tk.Requester)+len(tk.Queue))
	b = appendTime(b, tk.CreatedAt)
	b = appendTime(b, tk.UpdatedAt)
	if due := tk.SLADue(); due.IsZero() {
		b = append(b, noDue...)
	} else {
		b = appendTime(b, due)
	}
	b = append(b, byte(rules.PriorityCritical.Rank()-tk.Priority.Rank()))
	for _, f := range []string{string(tk.Status), strings.ToLower(tk.Assignee), strings.ToLower(tk.Requester), tk.Queue} {
		b = binary.AppendUvarint(b, uint64(len(f)))
		b = append(b, f...)
	}
	return b
}

var errBadSummary = errors.New("malformed ticket summary")

func decodeSummary(v []byte) (summary, error) {
	var s summary
	if len(v) < summaryFixed {
		return s, errBadSummary
	}
	s.created, s.updated, s.due = v[:createdLen], v[createdLen:2*createdLen], v[2*createdLen:3*createdLen]
	s.urgency = v[3*createdLen]
	v = v[summaryFixed:]
	for _, f := range []*[]byte{&s.status, &s.assignee, &s.requester, &s.queue} {
		n, w := binary.Uvarint(v)
		if w <= 0 || uint64(len(v)-w) < n {
			return s, errBadSummary
		}
		*f, v = v[w:w+int(n)], v[w+int(n):]
	}
	return s, nil
}

// indexSummary writes tk's summary unless it is there already.
func (t *tx) indexSummary(tk *store.Ticket) error {
	b := t.bucket(bucketIdxSummary)
	v := encodeSummary(tk)
	if bytes.Equal(b.Get([]byte(tk.ID)), v) {
		return nil
	}
	return b.Put([]byte(tk.ID), v)
}

// Each idx.word entry is (word, 0x00, posting) with a one-byte value
// saying where on the ticket the word occurs, so a changed subject drops
// a word from the index only when no message has it. A ticket's posting
// is the millisecond of its creation time (the low 48 bits of its Unix
// time in milliseconds, 6 bytes: in order until the year 10889), then its
// id: each word's entries are in the order the tickets were opened, so
// the words of new tickets go at the end of each word's entries, a page
// or two a word for a whole indexing commit, whatever the ticket ids.
// (Until schema 10 the posting was the id alone: random ids put a
// commit's entries all over the index. In seconds, the tickets of the
// same second were in id order: a commit's entries went all over the
// last second's.)
const (
	wordInTicket  byte = 1 << iota // the subject or the requester
	wordInMessage                  // a message
)

// postingTime is the length of a posting's time.
const postingTime = 6

// posting is the place in each word's entries of the ticket id created
// at created.
func posting(created time.Time, id string) []byte {
	return postingAt(created.UnixMilli(), []byte(id))
}

func postingAt(ms int64, id []byte) []byte {
	b := binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(id)), uint64(ms))
	return append(b[8-postingTime:], id...)
}

// postingOf is ticket id's posting, from the creation time its summary
// begins with (appendTime's seconds and nanoseconds); nil when it has
// none (no such ticket).
func (t *tx) postingOf(id []byte) []byte {
	s := t.bucket(bucketIdxSummary).Get(id)
	if len(s) < createdLen {
		return nil
	}
	sec := int64(binary.BigEndian.Uint64(s) ^ 1<<63)
	ns := int64(binary.BigEndian.Uint32(s[8:]))
	return postingAt(sec*1e3+ns/1e6, id)
}

// wordFill is how full bbolt leaves idx.word's pages when it splits them
// (its default: half): the new entries of each word go at its end, and
// the page an entry splits off is seldom added to again.
const wordFill = 0.9

// addWords records that words occur, in the place bit, on the ticket at
// posting at.
func (t *tx) addWords(at []byte, words []string, bit byte) error {
	b := t.bucket(bucketIdxWord)
	b.FillPercent = wordFill
	c := b.Cursor()
	for _, w := range words {
		if err := putWordBit(c, b, key([]byte(w), at), bit); err != nil {
			return err
		}
	}
	return nil
}

// dropWords records that words no longer occur in the place bit on the
// ticket at posting at, and removes the entries of the words left
// nowhere.
func (t *tx) dropWords(at []byte, words []string, bit byte) error {
	b := t.bucket(bucketIdxWord)
	for _, w := range words {
		k := key([]byte(w), at)
		v := b.Get(k)
		if len(v) != 1 || v[0]&bit == 0 {
			continue
		}
		var err error
		if left := v[0] &^ bit; left == 0 {
			err = b.Delete(k)
		} else {
			err = b.Put(k, []byte{left})
		}
		if err != nil {
			return fmt.Errorf("unindex word: %w", err)
		}
	}
	return nil
}

// moveWords moves ticket id's word entries from posting from to posting
// to (its creation time changed). A ticket's entries are found by its
// words: those of its subject and requester as o recorded them, and
// those of its messages.
func (t *tx) moveWords(id string, o *indexed, from, to []byte) error {
	words := store.TicketWords(&store.Ticket{Subject: o.Subject, Requester: o.Requester, RequesterName: o.RequesterName})
	_, msgs, err := t.keysOf(bucketMessages, id)
	if err != nil {
		return err
	}
	for _, v := range msgs {
		m, err := t.decodeMessage(v)
		if err != nil {
			return fmt.Errorf("ticket %s: %w", id, err)
		}
		words = append(words, store.MessageWords(m)...)
	}
	slices.Sort(words)
	b := t.bucket(bucketIdxWord)
	c := b.Cursor()
	for _, w := range slices.Compact(words) {
		k := key([]byte(w), from)
		v := b.Get(k)
		if len(v) != 1 {
			continue
		}
		bit := v[0]
		if err := b.Delete(k); err != nil {
			return fmt.Errorf("unindex word: %w", err)
		}
		if err := putWordBit(c, b, key([]byte(w), to), bit); err != nil {
			return err
		}
	}
	return nil
}

// indexTicketWords keeps the words of tk's subject and requester in
// idx.word; o is the stored record before the change (nil for a new
// ticket, whose words are queued for the indexer: words.go).
func (t *tx) indexTicketWords(tk *store.Ticket, o *indexed) error {
	if o == nil {
		return t.queueTicketWords(tk.ID)
	}
	at := posting(tk.CreatedAt, tk.ID)
	if !o.CreatedAt.Equal(tk.CreatedAt) {
		if err := t.moveWords(tk.ID, o, posting(o.CreatedAt, tk.ID), at); err != nil {
			return err
		}
	}
	if o.Subject == tk.Subject && o.Requester == tk.Requester && o.RequesterName == tk.RequesterName {
		return nil
	}
	// Changed words are indexed now, all of them, and the ticket leaves
	// the queue: the indexer may have read its old words.
	if err := t.bucket(bucketIdxWordQ).Delete(ticketWordsKey(tk.ID)); err != nil {
		return fmt.Errorf("unqueue ticket words: %w", err)
	}
	words := store.TicketWords(tk)
	var gone []string
	for _, w := range store.TicketWords(&store.Ticket{Subject: o.Subject, Requester: o.Requester, RequesterName: o.RequesterName}) {
		if !slices.Contains(words, w) {
			gone = append(gone, w)
		}
	}
	if err := t.dropWords(at, gone, wordInTicket); err != nil {
		return err
	}
	return t.addWords(at, words, wordInTicket)
}

// query is a store.Filter checked and made ready to run.
type query struct {
	f     store.Filter
	desc  bool   // walk the order backwards
	after []byte // the cursor's sort key; nil on the first page
	words []string
	// Addresses in lower case, as summaries keep them.
	operator, requester, assignee []byte
}

// Tags that start the sort keys (and so the cursors) of the orders other
// than by creation time.
const (
	tagUpdated  = 'u'
	tagPriority = 'p'
	tagDue      = 'd'
)

func newQuery(f store.Filter) (*query, error) {
	if _, ok := store.ParseView(string(f.View)); !ok {
		return nil, fmt.Errorf("list tickets: %w: no view %q", store.ErrBadFilter, f.View)
	}
	if _, ok := store.ParseSort(string(f.Sort)); !ok && f.Sort != store.SortNewest {
		return nil, fmt.Errorf("list tickets: %w: no sort order %q", store.ErrBadFilter, f.Sort)
	}
	if f.View == store.ViewMine && f.Operator == "" {
		return nil, fmt.Errorf("list tickets: %w: the view %q needs an operator", store.ErrBadFilter, f.View)
	}
	q := &query{f: f, desc: (f.Sort == store.SortNewest) != f.Reverse, words: store.Words(f.Text),
		operator: lower(f.Operator), requester: lower(f.Requester), assignee: lower(f.Assignee)}
	if f.After != "" {
		after, err := hex.DecodeString(f.After)
		if err != nil || !q.validKey(after) {
			return nil, fmt.Errorf("list tickets: %w %q", store.ErrBadCursor, f.After)
		}
		q.after = after
	}
	return q, nil
}

func lower(s string) []byte { return []byte(strings.ToLower(s)) }

// validKey reports whether k can be a sort key of q's order.
func (q *query) validKey(k []byte) bool {
	switch q.f.Sort {
	case store.SortNewest, store.SortCreated:
		return len(k) > createdLen
	case store.SortUpdated:
		return len(k) > 1+createdLen && k[0] == tagUpdated
	case store.SortPriority:
		return len(k) > 2+createdLen && k[0] == tagPriority
	}
	return len(k) > 1+2*createdLen && k[0] == tagDue
}

// byCreation reports whether q is ordered by creation time and sets no
// condition but the status, so idx.created or idx.status answer it a page
// at a time.
func (q *query) byCreation() bool {
	f := q.f
	return (f.Sort == store.SortNewest || f.Sort == store.SortCreated) && f.View == store.ViewAll &&
		f.Requester == "" && f.Assignee == "" && !f.Unassigned && f.Queue == "" && len(q.words) == 0
}

// sortKey is the key ticket id with summary s sorts by in q's order; it
// ends in the id, so no two tickets share one. Its hex is the cursor.
// The keys of the creation order are those of idx.created.
func (q *query) sortKey(s *summary, id []byte) []byte {
	k := make([]byte, 0, 2+2*createdLen+len(id))
	switch q.f.Sort {
	case store.SortUpdated:
		k = append(append(k, tagUpdated), s.updated...)
	case store.SortPriority:
		k = append(append(k, tagPriority, s.urgency), s.created...)
	case store.SortDue:
		k = append(append(append(k, tagDue), s.due...), s.created...)
	default:
		k = append(k, s.created...)
	}
	return append(k, id...)
}

// match reports whether the ticket with summary s meets q's conditions
// (all but the words).
func (q *query) match(s *summary) bool {
	f := &q.f
	done := store.Completed(rules.Status(s.status))
	switch f.View {
	case store.ViewNew:
		if done || len(s.assignee) > 0 {
			return false
		}
	case store.ViewActive:
		if done || len(s.assignee) == 0 {
			return false
		}
	case store.ViewCompleted:
		if !done {
			return false
		}
	case store.ViewMine:
		if done || !bytes.Equal(s.assignee, q.operator) {
			return false
		}
	}
	switch {
	case f.Status != "" && string(s.status) != string(f.Status),
		f.Requester != "" && !bytes.Equal(s.requester, q.requester),
		f.Assignee != "" && !bytes.Equal(s.assignee, q.assignee),
		f.Unassigned && len(s.assignee) > 0,
		f.Queue != "" && !strings.EqualFold(string(s.queue), f.Queue):
		return false
	}
	return true
}

// search answers q from the summaries (and idx.word for its words):
// every matching ticket's sort key is collected, then sorted, and only
// the page's records are read.
func (t *tx) search(q *query) ([]*store.Ticket, string, error) {
	type hit struct {
		key []byte
		id  int // where the id starts in key
	}
	var hits []hit
	n := 0
	visit := func(id, v []byte) error {
		if n++; n%1024 == 0 {
			if err := t.ctx.Err(); err != nil {
				return err
			}
		}
		s, err := decodeSummary(v)
		if err != nil {
			return fmt.Errorf("ticket %s: %w", id, err)
		}
		if !q.match(&s) {
			return nil
		}
		k := q.sortKey(&s, id)
		if q.after != nil {
			if c := bytes.Compare(k, q.after); c == 0 || (c < 0) != q.desc {
				return nil
			}
		}
		hits = append(hits, hit{k, len(k) - len(id)})
		return nil
	}
	var err error
	if len(q.words) == 0 {
		err = t.bucket(bucketIdxSummary).ForEach(visit)
	} else {
		err = t.withAllWords(q.words, visit)
	}
	if err != nil {
		return nil, "", fmt.Errorf("list tickets: %w", err)
	}
	slices.SortFunc(hits, func(a, b hit) int {
		if q.desc {
			return bytes.Compare(b.key, a.key)
		}
		return bytes.Compare(a.key, b.key)
	})
	var next string
	if q.f.Limit > 0 && len(hits) > q.f.Limit {
		hits = hits[:q.f.Limit]
		next = hex.EncodeToString(hits[len(hits)-1].key)
	}
	out := make([]*store.Ticket, 0, len(hits))
	var bad error
	for _, h := range hits {
		tk, err := t.Ticket(string(h.key[h.id:]))
		if errors.Is(err, store.ErrBadRecord) {
			bad = cmp.Or(bad, err) // the page goes on without it
			continue
		}
		if err != nil {
			return nil, "", err
		}
		out = append(out, tk)
	}
	return out, next, bad
}

// withAllWords calls fn with the id and summary of every ticket on which
// all the words occur, in idx.word or in its messages still queued for
// the indexer (words.go): first those idx.word alone answers, in id
// order, then the others with queued messages.
func (t *tx) withAllWords(words []string, fn func(id, summary []byte) error) error {
	queued, err := t.queuedWords()
	if err != nil {
		return err
	}
	if len(queued) == 0 {
		return t.withWords(words, fn)
	}
	done := map[string]bool{}
	err = t.withWords(words, func(id, summary []byte) error {
		done[string(id)] = true
		return fn(id, summary)
	})
	if err != nil {
		return err
	}
	index, sums := t.bucket(bucketIdxWord), t.bucket(bucketIdxSummary)
	ids := slices.Sorted(maps.Keys(queued))
	for _, id := range ids {
		if done[id] {
			continue
		}
		at := t.postingOf([]byte(id))
		if at == nil {
			continue
		}
		all := true
		for _, w := range words {
			if !queued[id][w] && index.Get(key([]byte(w), at)) == nil {
				all = false
				break
			}
		}
		if !all {
			continue
		}
		if err := fn([]byte(id), sums.Get([]byte(id))); err != nil {
			return err
		}
	}
	return nil
}

// withWords calls fn with the id and summary of every ticket on which
// all the words occur. Each word's entries are sorted by posting, so it
// is a join of sorted lists: each cursor leaps to the highest posting
// another one stands on, and the cost follows the shortest list more
// than the longest.
func (t *tx) withWords(words []string, fn func(id, summary []byte) error) error {
	var cs []*wordCursor
	for _, w := range words {
		cs = append(cs, &wordCursor{c: t.bucket(bucketIdxWord).Cursor(), prefix: append([]byte(w), 0)})
	}
	sums := &summaryCursor{c: t.bucket(bucketIdxSummary).Cursor()}
	var target []byte // the lowest posting still possible
	for n := 0; ; n++ {
		if n%1024 == 0 {
			if err := t.ctx.Err(); err != nil {
				return err
			}
		}
		agreed := true
		for _, c := range cs {
			if !c.seek(target) {
				return nil
			}
			if !bytes.Equal(c.at, target) {
				target, agreed = c.at, false
				break
			}
		}
		if !agreed {
			continue
		}
		if id := target[min(postingTime, len(target)):]; len(id) > 0 {
			if s := sums.get(id); s != nil {
				if err := fn(id, s); err != nil {
					return err
				}
			}
		}
		// The next posting after target is target followed by 0x00.
		target = append(slices.Clip(target), 0)
	}
}

// summaryCursor reads the summaries of the tickets withWords finds. They
// come in the order the tickets were opened, which with sequential
// numbers is id order too: the cursor then steps to the next one instead
// of searching the tree again.
type summaryCursor struct {
	c    *bolt.Cursor
	k, v []byte // where it stands; k nil before the first get
}

// get is ticket id's summary, nil when it has none.
func (s *summaryCursor) get(id []byte) []byte {
	if s.k != nil && bytes.Compare(s.k, id) < 0 {
		for range 4 {
			if s.k, s.v = s.c.Next(); s.k == nil {
				break
			}
			if c := bytes.Compare(s.k, id); c >= 0 {
				if c > 0 {
					return nil // passed where it would be
				}
				return s.v
			}
		}
	}
	if s.k == nil || !bytes.Equal(s.k, id) {
		s.k, s.v = s.c.Seek(id)
	}
	if !bytes.Equal(s.k, id) {
		return nil
	}
	return s.v
}

// wordCursor walks the postings that follow prefix in idx.word's keys, in
// order.
type wordCursor struct {
	c      *bolt.Cursor
	prefix []byte // the word and 0x00
	at     []byte // the posting it stands on; nil before the first seek
}

// seek moves c to the first posting at or after target (the first of all
// for a nil target) and reports whether there is one. It steps a few keys
// before searching the tree again, as the next posting is often close.
func (c *wordCursor) seek(target []byte) bool {
	if c.at != nil && bytes.Compare(c.at, target) >= 0 {
		return true
	}
	var k []byte
	if c.at != nil {
		for range 4 {
			if k, _ = c.c.Next(); k == nil || !bytes.HasPrefix(k, c.prefix) {
				c.at = nil
				return false
			}
			if bytes.Compare(k[len(c.prefix):], target) >= 0 {
				c.at = k[len(c.prefix):]
				return true
			}
		}
	}
	k, _ = c.c.Seek(append(slices.Clip(c.prefix), target...))
	if k == nil || !bytes.HasPrefix(k, c.prefix) {
		c.at = nil
		return false
	}
	c.at = k[len(c.prefix):]
	return true
}

// walkCreated answers a query ordered by creation time with no condition
// but the status by walking idx.created (or idx.status) from the cursor,
// so a page costs a page whatever the number of tickets.
func (t *tx) walkCreated(q *query) ([]*store.Ticket, string, error) {
	var prefix []byte
	c := t.bucket(bucketIdxCreated).Cursor()
	if q.f.Status != "" {
		prefix = append([]byte(q.f.Status), 0)
		c = t.bucket(bucketIdxStatus).Cursor()
	}
	var k []byte
	switch from := append(slices.Clip(prefix), q.after...); {
	case q.desc && q.after != nil:
		k = seekBefore(c, from)
	case q.desc:
		k = lastWithPrefix(c, prefix)
	case q.after != nil:
		k = seekAfter(c, from)
	default:
		k, _ = c.Seek(prefix)
	}
	step := c.Next
	if q.desc {
		step = c.Prev
	}
	out := []*store.Ticket{}
	var bad error
	for ; k != nil && bytes.HasPrefix(k, prefix); k, _ = step() {
		if err := t.ctx.Err(); err != nil {
			return nil, "", err
		}
		if q.f.Limit > 0 && len(out) == q.f.Limit {
			last := out[len(out)-1]
			return out, hex.EncodeToString(createdKey(last.CreatedAt, last.ID)), bad
		}
		tk, err := t.Ticket(string(k[len(prefix)+createdLen:]))
		if errors.Is(err, store.ErrBadRecord) {
			bad = cmp.Or(bad, err) // the page goes on without it
			continue
		}
		if err != nil {
			return nil, "", err
		}
		out = append(out, tk)
	}
	return out, "", bad
}

// seekAfter positions c on the first key above k.
func seekAfter(c *bolt.Cursor, k []byte) []byte {
	got, _ := c.Seek(k)
	if bytes.Equal(got, k) {
		got, _ = c.Next()
	}
	return got
}
