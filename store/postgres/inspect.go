package postgres

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	"ticketgate/rules"
	"ticketgate/store"
)

var _ store.Inspector = (*DB)(nil)

// Stats counts tickets by status and the outbox entries with two
// aggregate queries over their indexes, and reads the oldest entry.
func (d *DB) Stats(ctx context.Context) (store.Stats, error) {
	st := store.Stats{ByStatus: map[rules.Status]int{}}
	err := d.View(ctx, func(stx store.Tx) error {
		t := stx.(*tx)
		var (
			status string
			n      int
		)
		err := t.rows(`SELECT status, count(*) FROM tickets GROUP BY status`, nil, []any{&status, &n}, func() error {
			st.ByStatus[rules.Status(status)] = n
			return nil
		})
		if err != nil {
			return err
		}
		if err := t.row(`SELECT count(*) FROM outbox`, nil, &st.Outbox); err != nil {
			return err
		}
		// Outbox ids grow as mail is queued: the first is the mail
		// waiting longest, due since it was queued however often the
		// relay deferred it (its NextAt is only its next try).
		first, err := t.entries(`SELECT `+outboxCols+` FROM outbox ORDER BY id LIMIT 1`, nil)
		if err != nil || len(first) == 0 {
			return err
		}
		st.OldestDue = first[0].rec.Created
		return nil
	})
	return st, err
}

// Check reads every ticket record in one snapshot and reports a record
// whose columns disagree with it (status, sort keys, the words of its
// subject and requester), then, by queries, messages, events, Message-IDs,
// indexed addresses and outbox entries of tickets that do not exist, blobs that are
// referenced but missing, and blobs counted fewer times than they are
// used.
func (d *DB) Check(ctx context.Context) ([]string, error) {
	var problems []string
	report := func(f string, a ...any) { problems = append(problems, fmt.Sprintf(f, a...)) }
	err := d.View(ctx, func(stx store.Tx) error {
		t := stx.(*tx)
		var (
			id, status         string
			kc, ku, kp, kd, ws []byte
			v                  []byte
		)
		err := t.rows(`SELECT id, status, k_created, k_updated, k_priority, k_due, words_src, rec FROM tickets ORDER BY id`, nil,
			[]any{&id, &status, &kc, &ku, &kp, &kd, &ws, &v}, func() error {
				var tk store.Ticket
				if err := json.Unmarshal(v, &tk); err != nil {
					report("ticket %s: record does not decode: %v", id, err)
					return nil
				}
				k := keysOf(&tk)
				switch {
				case tk.ID != id:
					report("ticket %s: record names %s", id, tk.ID)
				case string(tk.Status) != status:
					report("ticket %s: status column %q, record %q", id, status, tk.Status)
				case !bytes.Equal(k.created, kc) || !bytes.Equal(k.updated, ku) || !bytes.Equal(k.priority, kp) || !bytes.Equal(k.due, kd):
					report("ticket %s: sort keys disagree with the record", id)
				case !bytes.Equal(wordsSource(&tk), ws):
					report("ticket %s: indexed words disagree with the record", id)
				}
				return nil
			})
		if err != nil {
			return err
		}
		orphans := []struct{ what, q string }{
			{"message of a missing ticket", `SELECT DISTINCT ticket_id FROM messages m WHERE NOT EXISTS (SELECT 1 FROM tickets t WHERE t.id = m.ticket_id)`},
			{"event of a missing ticket", `SELECT DISTINCT ticket_id FROM events e WHERE NOT EXISTS (SELECT 1 FROM tickets t WHERE t.id = e.ticket_id)`},
			{"Message-ID indexed to a missing ticket", `SELECT DISTINCT ticket_id FROM msgids m WHERE NOT EXISTS (SELECT 1 FROM tickets t WHERE t.id = m.ticket_id)`},
			{"address indexed to a missing ticket", `SELECT DISTINCT ticket_id FROM ticket_addrs a WHERE NOT EXISTS (SELECT 1 FROM tickets t WHERE t.id = a.ticket_id)`},
			{"outbox entry of a missing ticket", `SELECT DISTINCT rec->>'ticket_id' FROM outbox o WHERE rec->>'ticket_id' <> '' AND NOT EXISTS (SELECT 1 FROM tickets t WHERE t.id = o.rec->>'ticket_id')`},
			{"outbox entry whose mail blob is missing", `SELECT id::text FROM outbox o WHERE NOT EXISTS (SELECT 1 FROM blobs b WHERE b.hash = o.raw_hash)`},
		}
		for _, o := range orphans {
			var s string
			if err := t.rows(o.q, nil, []any{&s}, func() error {
				report("%s: %s", o.what, s)
				return nil
			}); err != nil {
				return err
			}
		}
		return t.checkBlobs(report)
	})
	return problems, err
}

// checkBlobs reports blobs used more often than their reference count
// says, and blobs referenced from messages that are missing.
func (t *tx) checkBlobs(report func(string, ...any)) error {
	uses := map[string]int64{}
	var v []byte
	err := t.rows(`SELECT rec FROM messages`, nil, []any{&v}, func() error {
		var m store.Message
		if err := json.Unmarshal(v, &m); err != nil {
			return nil
		}
		if m.Raw != "" {
			uses[m.Raw]++
		}
		for _, a := range m.Attachments {
			if a.SHA256 != "" {
				uses[a.SHA256]++
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	var h string
	if err := t.rows(`SELECT raw_hash FROM outbox`, nil, []any{&h}, func() error { uses[h]++; return nil }); err != nil {
		return err
	}
	for hash, n := range uses {
		var refs int64
		err := t.row(`SELECT refs FROM blobs WHERE hash = $1`, args(hash), &refs)
		if err != nil {
			report("blob %s: used %d times, missing", hash, n)
			continue
		}
		if refs < n {
			report("blob %s: counted %d references, used %d times", hash, refs, n)
		}
	}
	return nil
}
