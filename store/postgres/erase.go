package postgres

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"ticketgate/store"
)

func (t *tx) ReplaceMessages(id string, msgs []store.Message) error {
	var (
		seqs    []int64
		oldBlob []string
		seq     int64
		v       []byte
	)
	err := t.rows(`SELECT seq, rec FROM messages WHERE ticket_id = $1 ORDER BY seq FOR UPDATE`, args(id), []any{&seq, &v}, func() error {
		var m store.Message
		if err := json.Unmarshal(v, &m); err != nil {
			return fmt.Errorf("decode message: %w", err)
		}
		seqs = append(seqs, seq)
		oldBlob = append(oldBlob, m.Blobs()...)
		return nil
	})
	if err != nil {
		return fmt.Errorf("replace messages of %s: %w", id, err)
	}
	if len(seqs) != len(msgs) {
		return fmt.Errorf("replace messages of %s: %d given for %d stored", id, len(msgs), len(seqs))
	}
	// Count the new uses before releasing the old ones, so a blob both
	// name is never deleted on the way.
	var words []string
	for i := range msgs {
		m := &msgs[i]
		for _, h := range m.Blobs() {
			err := t.row(`UPDATE blobs SET refs = refs + 1 WHERE hash = $1 RETURNING refs`, args(h), new(int64))
			if errors.Is(err, pgx.ErrNoRows) {
				return fmt.Errorf("replace messages of %s: blob %s: %w", id, h, store.ErrNotFound)
			}
			if err != nil {
				return fmt.Errorf("replace messages of %s: count blob %s: %w", id, h, err)
			}
		}
		v, err := encode(m)
		if err != nil {
			return fmt.Errorf("encode message: %w", err)
		}
		norm := store.NormMessageID(m.MessageID)
		if err := t.exec(`UPDATE messages SET msgid = $2, rec = $3 WHERE seq = $1`, seqs[i], []byte(norm), v); err != nil {
			return fmt.Errorf("put message: %w", err)
		}
		if m.MessageID != "" {
			if err := t.IndexMessageID(m.MessageID, id); err != nil {
				return err
			}
		}
		words = append(words, store.MessageWords(m)...)
	}
	for _, h := range oldBlob {
		if err := t.releaseBlob(h); err != nil {
			return fmt.Errorf("release blob %s: %w", h, err)
		}
	}
	// The new messages are all the ticket has: a word none of them holds
	// is no longer in a message of it.
	if err := t.dropWords(id, words, wordInMessage); err != nil {
		return err
	}
	return t.addWords(id, words, wordInMessage)
}

func (t *tx) ReplaceEvents(id string, events []store.Event) error {
	var seqs []int64
	var seq int64
	err := t.rows(`SELECT seq FROM events WHERE ticket_id = $1 ORDER BY seq FOR UPDATE`, args(id), []any{&seq}, func() error {
		seqs = append(seqs, seq)
		return nil
	})
	if err != nil {
		return fmt.Errorf("replace events of %s: %w", id, err)
	}
	if len(seqs) != len(events) {
		return fmt.Errorf("replace events of %s: %d given for %d stored", id, len(events), len(seqs))
	}
	for i, e := range events {
		v, err := encode(e)
		if err != nil {
			return fmt.Errorf("encode event: %w", err)
		}
		if err := t.exec(`UPDATE events SET rec = $2 WHERE seq = $1`, seqs[i], v); err != nil {
			return fmt.Errorf("put event: %w", err)
		}
	}
	return nil
}

func (t *tx) EraseAddress(addr, pseudonym string) error {
	addr = strings.ToLower(strings.TrimSpace(addr))
	if addr == "" {
		return nil
	}
	// Rate counters and bounce marks are keyed "<kind>:<address>", in
	// lower case.
	suffix := []byte(":" + addr)
	err := t.exec(`DELETE FROM rates WHERE octet_length(key) > $2
		AND substring(key FROM octet_length(key) - $2 + 1) = $1`, suffix, len(suffix))
	if err != nil {
		return fmt.Errorf("erase %s from rates: %w", addr, err)
	}
	type put struct {
		id int64
		v  []byte
	}
	var (
		puts []put
		id   int64
		v    []byte
	)
	err = t.rows(`SELECT id, rec FROM sent WHERE EXISTS (
		SELECT 1 FROM json_array_elements_text(rec->'to') AS a WHERE lower(a) = $1)`, args(addr), []any{&id, &v}, func() error {
		var r sentRec
		if err := json.Unmarshal(v, &r); err != nil {
			return fmt.Errorf("decode sent mail %d: %w", id, err)
		}
		for i, to := range r.To {
			if strings.EqualFold(to, addr) {
				r.To[i] = pseudonym
			}
		}
		nv, err := encode(r)
		puts = append(puts, put{id, nv})
		return err
	})
	if err != nil {
		return fmt.Errorf("erase %s from sent mail: %w", addr, err)
	}
	for _, p := range puts {
		if err := t.exec(`UPDATE sent SET rec = $2 WHERE id = $1`, p.id, p.v); err != nil {
			return fmt.Errorf("erase %s from sent mail %d: %w", addr, p.id, err)
		}
	}
	return nil
}
