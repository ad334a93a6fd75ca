package boltdb

import (
	"bytes"
	"fmt"
	"slices"
	"strings"

	"ticketgate/store"
)

// keysOf returns copies of the keys under ticket id in bucket, in order,
// with their values.
func (t *tx) keysOf(bucket []byte, id string) (keys, vals [][]byte, err error) {
	err = t.eachPart(bucket, id, func(k, v []byte) error {
		keys, vals = append(keys, clone(k)), append(vals, clone(v))
		return nil
	})
	return keys, vals, err
}

func (t *tx) ReplaceMessages(id string, msgs []store.Message) error {
	keys, vals, err := t.keysOf(bucketMessages, id)
	if err != nil {
		return err
	}
	if len(keys) != len(msgs) {
		return fmt.Errorf("replace messages of %s: %d given for %d stored", id, len(msgs), len(keys))
	}
	var oldWords, oldBlobs []string
	for _, v := range vals {
		m, err := t.decodeMessage(v)
		if err != nil {
			return fmt.Errorf("replace messages of %s: %w", id, err)
		}
		oldWords = append(oldWords, store.MessageWords(m)...)
		oldBlobs = append(oldBlobs, m.Blobs()...)
	}
	// Count the new uses before releasing the old ones, so a blob both
	// name is never deleted on the way.
	var newWords []string
	b := t.bucket(bucketMessages)
	for i := range msgs {
		m := &msgs[i]
		for _, h := range m.Blobs() {
			if !t.hasBlob(h) {
				return fmt.Errorf("replace messages of %s: blob %s: %w", id, h, store.ErrNotFound)
			}
			if err := t.bumpBlob(h, 1); err != nil {
				return err
			}
		}
		v, err := t.encodeMessage(m)
		if err != nil {
			return fmt.Errorf("encode message: %w", err)
		}
		if err := b.Put(keys[i], v); err != nil {
			return fmt.Errorf("put message: %w", err)
		}
		if m.MessageID != "" {
			if err := t.IndexMessageID(m.MessageID, id); err != nil {
				return err
			}
		}
		newWords = append(newWords, store.MessageWords(m)...)
	}
	for _, h := range oldBlobs {
		if err := t.releaseBlob(h); err != nil {
			return fmt.Errorf("release blob %s: %w", h, err)
		}
	}
	at := t.postingOf([]byte(id))
	if at == nil {
		return fmt.Errorf("replace messages of %s: %w", id, store.ErrNotFound)
	}
	slices.Sort(oldWords)
	if err := t.dropWords(at, slices.Compact(oldWords), wordInMessage); err != nil {
		return err
	}
	// The new words of every message are indexed here, queued or not: the
	// indexer must not index what it read before this change.
	if err := t.unqueueWords(keys); err != nil {
		return err
	}
	return t.addWords(at, newWords, wordInMessage)
}

func (t *tx) ReplaceEvents(id string, events []store.Event) error {
	keys, _, err := t.keysOf(bucketEvents, id)
	if err != nil {
		return err
	}
	if len(keys) != len(events) {
		return fmt.Errorf("replace events of %s: %d given for %d stored", id, len(events), len(keys))
	}
	b := t.bucket(bucketEvents)
	for i, e := range events {
		if err := b.Put(keys[i], encodeEvent(e)); err != nil {
			return err
		}
	}
	return nil
}

// eraseRates deletes the rate counters and bounce marks of addr (in lower
// case), kept under the address and a zero byte (rateKey): only the
// address itself, not one that begins the same ("ann@x.example").
func (t *tx) eraseRates(addr string) error {
	return deletePrefix(t.bucket(bucketRate), append([]byte(addr), 0))
}

func (t *tx) EraseAddress(addr, pseudonym string) error {
	addr = strings.ToLower(strings.TrimSpace(addr))
	if addr == "" {
		return nil
	}
	if err := t.eraseRates(addr); err != nil {
		return err
	}
	meta := t.bucket(bucketMeta)
	prefix := append([]byte("sent"), 0)
	type put struct{ k, v []byte }
	var puts []put
	c := meta.Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		var r sentRec
		if decodeSent(v, &r) != nil {
			continue
		}
		changed := false
		for i, to := range r.To {
			if strings.EqualFold(to, addr) {
				r.To[i], changed = pseudonym, true
			}
		}
		if changed {
			puts = append(puts, put{clone(k), encodeSent(r)})
		}
	}
	for _, p := range puts {
		if err := meta.Put(p.k, p.v); err != nil {
			return err
		}
	}
	return nil
}
