package boltdb

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"ticketgate/store"
)

// migrations run in order on Open; migrations[i] brings the schema from i
// to i+1. Each runs in the one transaction that also records the new
// version, so a crash leaves the old schema whole.
var migrations = []func(tx *bolt.Tx) error{
	createBuckets,
	migrateV2,
	migrateV3,
	migrateV4,
	migrateV5,
	migrateV6,
	migrateV7,
	migrateV8,
	migrateV9,
	migrateV10,
	migrateV11,
	migrateV12,
	migrateV13,
	migrateV14,
	migrateV15,
	migrateV16,
	migrateV17,
	migrateV18,
}

// migrateV18 builds idx.word again: from schema 18 on Chinese, Japanese
// and Korean are indexed a character and a pair of characters at a time
// (store.Words), and the entries earlier schemas made of a whole run of
// them would find nothing a search is for.
func migrateV18(btx *bolt.Tx) error { return rebuildWords(btx) }

// migrateV17 changes no bucket. From schema 17 on words are read
// composed (NFC) and case folded (store.Words), and a search would not
// find the entries earlier schemas made of a word written otherwise
// ("οδος" in lower case, an accent typed apart): migrateV18, which every
// database that comes to schema 17 runs next, builds idx.word again.
func migrateV17(*bolt.Tx) error { return nil }

// migrateV16 changes no bucket. From schema 16 on the mail the desk
// writes from its templates (notices, reminders, the survey) has no words
// (store.MessageWords), and the entries earlier schemas made of them
// would find every ticket that got one: migrateV18, which every database
// that comes to schema 16 runs after it, builds idx.word again without
// them.
func migrateV16(*bolt.Tx) error { return nil }

// rebuildWords builds idx.word again from every ticket and message, as
// store.TicketWords and store.MessageWords split them now, under each
// ticket's posting; a ticket with no summary, and a ticket or message
// whose record does not decode, are left out, as the indexer leaves them. The entries are gathered first and put in key order (see
// migrateV4). The messages still queued for the indexer are indexed here
// too and leave the queue.
func rebuildWords(btx *bolt.Tx) error {
	t := &tx{ctx: context.Background(), tx: btx}
	type entry struct {
		k   []byte
		bit byte
	}
	var entries []entry
	err := t.bucket(bucketTickets).ForEach(func(k, v []byte) error {
		var tk store.Ticket
		if err := decodeTicket(v, &tk); err != nil {
			// A damaged record is left out, as listings and the
			// sweep pass over it and check reports it: it must not
			// keep the database from opening after an upgrade.
			return nil
		}
		// Since schema 12 a record's key is its posting, not its id.
		at := t.postingOf([]byte(tk.ID))
		if at == nil {
			return nil
		}
		for _, w := range store.TicketWords(&tk) {
			entries = append(entries, entry{key([]byte(w), at), wordInTicket})
		}
		seen := map[string]bool{}
		return t.eachPart(bucketMessages, tk.ID, func(mk, mv []byte) error {
			m, err := t.decodeMessage(mv)
			if err != nil {
				return nil // damaged: left out, as the indexer leaves it
			}
			for _, w := range store.MessageWords(m) {
				if !seen[w] {
					seen[w] = true
					entries = append(entries, entry{key([]byte(w), at), wordInMessage})
				}
			}
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("index words: %w", err)
	}
	for _, b := range [][]byte{bucketIdxWord, bucketIdxWordQ} {
		if err := btx.DeleteBucket(b); err != nil && !errors.Is(err, bolterrors.ErrBucketNotFound) {
			return fmt.Errorf("drop bucket %s: %w", b, err)
		}
		if _, err := btx.CreateBucket(b); err != nil {
			return fmt.Errorf("create bucket %s: %w", b, err)
		}
	}
	words := t.bucket(bucketIdxWord)
	words.FillPercent = wordFill
	slices.SortFunc(entries, func(a, b entry) int { return bytes.Compare(a.k, b.k) })
	for i := 0; i < len(entries); {
		k, v := entries[i].k, entries[i].bit
		// The same word on the ticket and in a message: one entry.
		for i++; i < len(entries) && bytes.Equal(entries[i].k, k); i++ {
			v |= entries[i].bit
		}
		if err := words.Put(k, []byte{v}); err != nil {
			return fmt.Errorf("index words: %w", err)
		}
	}
	return nil
}

// migrateV15 changes no bucket. From schema 15 on ticket records
// (ticketrec.go), rate counters, events and sent records (records.go) are
// written in binary; those written before still read, and stay as they
// are until next written. The version makes a program of schema 14, which
// could not read the new ones, refuse the database instead of failing on
// its records.
func migrateV15(*bolt.Tx) error { return nil }

// migrateV14 changes no bucket. From schema 14 on a message's raw copy is
// counted under its number instead of its hash (see PutRawBlob). A
// program of schema 13 would read it, but copying such a message to
// another ticket would store the content again under its hash and leave
// the number uncounted. The version makes such a program refuse the
// database instead.
func migrateV14(*bolt.Tx) error { return nil }

// migrateV13 changes no bucket. From schema 13 on a large blob may be
// kept in chunks (see PutBlob), which a program of schema 12 would not
// find. The version makes such a program refuse the database instead.
func migrateV13(*bolt.Tx) error { return nil }

// migrateV12 changes no bucket. From schema 12 on a blob's content may be
// kept packed (see PutBlob), which a program of schema 11 would read as a
// blob with a malformed count and report missing. The version makes such
// a program refuse the database instead.
func migrateV12(*bolt.Tx) error { return nil }

// migrateV11 changes no bucket. From schema 11 on the outbox keeps its
// mails and drafts packed (leading bytes 6 and 7, see mailout's pack),
// which a program of schema 10 cannot read: it would hand a packed mail
// to the relay as it is. The version makes such a program refuse the
// database instead.
func migrateV11(*bolt.Tx) error { return nil }

// migrateV10 moves every idx.word entry to its key of schema 10: the
// word, then the ticket's posting (its creation time, then its id: see
// search.go) instead of its id. An entry of a ticket with no summary
// names no ticket, and is dropped.
func migrateV10(btx *bolt.Tx) error {
	t := &tx{ctx: context.Background(), tx: btx}
	type entry struct{ k, v []byte }
	var entries []entry
	err := t.bucket(bucketIdxWord).ForEach(func(k, v []byte) error {
		w, id, ok := bytes.Cut(k, []byte{0})
		if at := t.postingOf(id); ok && at != nil {
			entries = append(entries, entry{key(w, at), clone(v)})
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("read %s: %w", bucketIdxWord, err)
	}
	if err := btx.DeleteBucket(bucketIdxWord); err != nil {
		return fmt.Errorf("drop bucket %s: %w", bucketIdxWord, err)
	}
	words, err := btx.CreateBucket(bucketIdxWord)
	if err != nil {
		return fmt.Errorf("create bucket %s: %w", bucketIdxWord, err)
	}
	// In key order (see migrateV4), filling the pages as the indexer
	// will.
	words.FillPercent = wordFill
	slices.SortFunc(entries, func(a, b entry) int { return bytes.Compare(a.k, b.k) })
	for _, e := range entries {
		if err := words.Put(e.k, e.v); err != nil {
			return fmt.Errorf("index words: %w", err)
		}
	}
	return nil
}

// migrateV9 moves each rate counter to its key of schema 9 (rateKey:
// its subject first). From schema 9 outbox and message records are also
// written in binary (records.go) and notification drafts deflated; the
// records written before still read, and stay as they are. The version
// makes a program of schema 8, which could not read the new ones,
// refuse the database instead of failing on its records.
func migrateV9(btx *bolt.Tx) error {
	rate := btx.Bucket(bucketRate)
	type move struct{ from, to, v []byte }
	var moves []move
	err := rate.ForEach(func(k, v []byte) error {
		if to := rateKey(string(k)); !bytes.Equal(to, k) {
			moves = append(moves, move{clone(k), to, clone(v)})
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, m := range moves {
		if err := rate.Delete(m.from); err != nil {
			return err
		}
		if err := rate.Put(m.to, m.v); err != nil {
			return err
		}
	}
	return nil
}

// migrateV8 adds blob.data, where new blobs keep their content by number
// (see PutBlob); the blobs already stored stay in blobs.
func migrateV8(btx *bolt.Tx) error {
	if _, err := btx.CreateBucketIfNotExists(bucketBlobData); err != nil {
		return fmt.Errorf("create bucket %s: %w", bucketBlobData, err)
	}
	return nil
}

// migrateV7 adds idx.wordq, the messages whose words wait for the search
// indexer (words.go), and outbox.raw, where new outbox entries keep their
// mail (the entries already queued keep theirs in a blob until sent).
func migrateV7(btx *bolt.Tx) error {
	for _, b := range [][]byte{bucketIdxWordQ, bucketOutboxRaw} {
		if _, err := btx.CreateBucketIfNotExists(b); err != nil {
			return fmt.Errorf("create bucket %s: %w", b, err)
		}
	}
	return nil
}

// migrateV6 builds idx.addr (Tx.TicketsOfAddress) from the tickets'
// requesters and participants.
func migrateV6(btx *bolt.Tx) error {
	idx, err := btx.CreateBucketIfNotExists(bucketIdxAddr)
	if err != nil {
		return fmt.Errorf("create bucket %s: %w", bucketIdxAddr, err)
	}
	tickets := btx.Bucket(bucketTickets)
	if tickets == nil {
		return nil
	}
	return tickets.ForEach(func(id, v []byte) error {
		var tk store.Ticket
		if err := decodeTicket(v, &tk); err != nil {
			return fmt.Errorf("decode ticket %s: %w", id, err)
		}
		for _, a := range store.Addresses(&tk) {
			if err := idx.Put(key([]byte(a), id), nil); err != nil {
				return err
			}
		}
		return nil
	})
}

// migrateV5 adds the buckets of leases and IMAP failed tries, which used
// to live in the serving process's memory, and of instances.
func migrateV5(btx *bolt.Tx) error {
	for _, b := range [][]byte{bucketLease, bucketPollTries, bucketInstances} {
		if _, err := btx.CreateBucketIfNotExists(b); err != nil {
			return fmt.Errorf("create bucket %s: %w", b, err)
		}
	}
	return nil
}

// schemaVersion is the schema this program writes.
var schemaVersion = uint64(len(migrations))

func createBuckets(tx *bolt.Tx) error {
	for _, b := range [][]byte{bucketMeta, bucketTickets, bucketMessages, bucketEvents, bucketBlobs,
		bucketOutbox, bucketIMAP, bucketRate, bucketIdxMsgID, bucketIdxStatus, bucketIdxDue} {
		if _, err := tx.CreateBucketIfNotExists(b); err != nil {
			return fmt.Errorf("create bucket %s: %w", b, err)
		}
	}
	return nil
}

func schemaOf(tx *bolt.Tx) uint64 {
	if meta := tx.Bucket(bucketMeta); meta != nil {
		if v := meta.Get(keySchema); len(v) == 8 {
			return binary.BigEndian.Uint64(v)
		}
	}
	return 0
}

func (d *DB) migrate() error {
	return d.db.Update(func(tx *bolt.Tx) error {
		version := schemaOf(tx)
		if version > schemaVersion {
			return fmt.Errorf("database schema %d is newer than this program (%d)", version, schemaVersion)
		}
		for i := version; i < schemaVersion; i++ {
			if err := migrations[i](tx); err != nil {
				return fmt.Errorf("migrate schema %d to %d: %w", i, i+1, err)
			}
			if version > 0 {
				d.log.Info("database schema migrated", "from", i, "to", i+1)
			}
		}
		return tx.Bucket(bucketMeta).Put(keySchema, u64(schemaVersion))
	})
}

// checkSchema refuses, on a read-only open, a schema this program cannot
// read: it cannot migrate without writing.
func (d *DB) checkSchema() error {
	return d.db.View(func(tx *bolt.Tx) error {
		switch v := schemaOf(tx); {
		case v > schemaVersion:
			return fmt.Errorf("database schema %d is newer than this program (%d)", v, schemaVersion)
		case v < schemaVersion:
			return &OldSchemaError{Have: v, Want: schemaVersion}
		}
		return nil
	})
}

// OldSchemaError is what a read-only Open returns for a database of an
// earlier release's schema, which it cannot migrate without writing.
type OldSchemaError struct {
	Have, Want uint64
}

func (e *OldSchemaError) Error() string {
	return fmt.Sprintf("database schema %d must be migrated to %d: open it once for writing (run serve)", e.Have, e.Want)
}

// migrateV2 brings a schema-1 database to schema 2:
//   - blobs get reference counts (one per message or outbox use);
//   - outbox entries lose their body to a blob and enter idx.outbox.due;
//   - idx.created is built and idx.status keys gain the created time;
//   - tickets, messages and events are re-encoded without HTML escaping,
//     messages with their visible text as a span of the text.
func migrateV2(btx *bolt.Tx) error {
	// idx.outbox.queue is schema 3's, but migrateOutbox enqueues as this
	// program does, which keeps it; migrateV3 then finds it whole. The
	// same for schema 4's idx.summary and idx.word, which PutTicket keeps
	// and migrateV4 builds again from scratch, and schema 6's idx.addr,
	// which migrateV6 fills (its keys have empty values: putting one
	// again changes nothing), and schema 7's outbox.raw, where Enqueue
	// now puts the mail, and idx.wordq, where PutTicket queues a new
	// ticket's words.
	for _, b := range [][]byte{bucketBlobRefs, bucketIdxCreated, bucketIdxOutboxDue, bucketIdxOutboxQueue,
		bucketIdxSummary, bucketIdxWord, bucketIdxAddr, bucketOutboxRaw, bucketIdxWordQ} {
		if _, err := btx.CreateBucketIfNotExists(b); err != nil {
			return fmt.Errorf("create bucket %s: %w", b, err)
		}
	}
	t := &tx{ctx: context.Background(), tx: btx}
	if err := migrateMessages(t); err != nil {
		return err
	}
	if err := migrateOutbox(t); err != nil {
		return err
	}
	if err := reencode(btx.Bucket(bucketEvents), func(v []byte) (any, error) {
		var e store.Event
		return e, json.Unmarshal(v, &e)
	}); err != nil {
		return fmt.Errorf("events: %w", err)
	}
	return migrateTickets(t)
}

// reencode rewrites every value of b as decode returns it.
func reencode(b *bolt.Bucket, decode func(v []byte) (any, error)) error {
	type kv struct{ k, v []byte }
	var out []kv
	err := b.ForEach(func(k, v []byte) error {
		x, err := decode(v)
		if err != nil {
			return fmt.Errorf("decode %q: %w", k, err)
		}
		nv, err := encode(x)
		if err != nil {
			return err
		}
		out = append(out, kv{clone(k), nv})
		return nil
	})
	if err != nil {
		return err
	}
	for _, e := range out {
		if err := b.Put(e.k, e.v); err != nil {
			return err
		}
	}
	return nil
}

// migrateMessages re-encodes messages and counts their blob references.
func migrateMessages(t *tx) error {
	refs := map[string]uint64{}
	msgs := t.bucket(bucketMessages)
	type kv struct{ k, v []byte }
	var out []kv
	err := msgs.ForEach(func(k, v []byte) error {
		m, err := t.decodeMessage(v)
		if err != nil {
			return fmt.Errorf("decode message %q: %w", k, err)
		}
		if m.Raw != "" {
			refs[m.Raw]++
		}
		for _, a := range m.Attachments {
			if a.SHA256 != "" {
				refs[a.SHA256]++
			}
		}
		nv, err := t.encodeMessage(m)
		out = append(out, kv{clone(k), nv})
		return err
	})
	if err != nil {
		return fmt.Errorf("messages: %w", err)
	}
	for _, e := range out {
		if err := msgs.Put(e.k, e.v); err != nil {
			return err
		}
	}
	// Every blob gets a count; one nothing refers to is kept for good
	// (count 1), as schema 1 kept every blob.
	var hashes []string
	if err := t.bucket(bucketBlobs).ForEach(func(k, _ []byte) error {
		hashes = append(hashes, string(k))
		return nil
	}); err != nil {
		return err
	}
	for _, h := range hashes {
		if err := t.bumpBlob(h, max(refs[h], 1)); err != nil {
			return err
		}
	}
	return nil
}

// migrateOutbox moves each schema-1 entry's body out of its record.
func migrateOutbox(t *tx) error {
	var old []store.OutMail
	err := t.bucket(bucketOutbox).ForEach(func(k, v []byte) error {
		var m store.OutMail
		if err := json.Unmarshal(v, &m); err != nil {
			return fmt.Errorf("decode outbox entry %d: %w", binary.BigEndian.Uint64(k), err)
		}
		old = append(old, m)
		return nil
	})
	if err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	for _, m := range old {
		if err := t.bucket(bucketOutbox).Delete(u64(m.ID)); err != nil {
			return err
		}
		if m.Raw == nil {
			m.Raw = []byte{}
		}
		if err := t.Enqueue(&m); err != nil {
			return fmt.Errorf("outbox entry %d: %w", m.ID, err)
		}
	}
	return nil
}

// migrateTickets re-encodes tickets and rebuilds idx.status and idx.created.
func migrateTickets(t *tx) error {
	if err := t.tx.DeleteBucket(bucketIdxStatus); err != nil {
		return err
	}
	if _, err := t.tx.CreateBucket(bucketIdxStatus); err != nil {
		return err
	}
	var all []*store.Ticket
	err := t.bucket(bucketTickets).ForEach(func(k, v []byte) error {
		var tk store.Ticket
		if err := decodeTicket(v, &tk); err != nil {
			return fmt.Errorf("decode ticket %s: %w", k, err)
		}
		all = append(all, &tk)
		return nil
	})
	if err != nil {
		return fmt.Errorf("tickets: %w", err)
	}
	for _, tk := range all {
		if err := t.PutTicket(tk); err != nil {
			return fmt.Errorf("ticket %s: %w", tk.ID, err)
		}
	}
	return nil
}

// migrateV3 brings a schema-2 database to schema 3: idx.outbox.queue is
// built, and within each queue an entry due before an earlier one of its
// queue is moved to that one's NextAt, as Enqueue now keeps them.
func migrateV3(btx *bolt.Tx) error {
	if _, err := btx.CreateBucketIfNotExists(bucketIdxOutboxQueue); err != nil {
		return fmt.Errorf("create bucket %s: %w", bucketIdxOutboxQueue, err)
	}
	t := &tx{ctx: context.Background(), tx: btx}
	var recs []*outboxRec
	err := t.bucket(bucketOutbox).ForEach(func(k, v []byte) error {
		var r outboxRec
		if err := decodeOutboxRec(v, &r); err != nil {
			return fmt.Errorf("decode outbox entry %d: %w", binary.BigEndian.Uint64(k), err)
		}
		recs = append(recs, &r)
		return nil
	})
	if err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	latest := map[string]time.Time{} // each queue's NextAt so far, in id order
	for _, r := range recs {
		q := r.queue()
		if err := t.bucket(bucketIdxOutboxQueue).Put(outboxQueueKey(q, r.ID), nil); err != nil {
			return err
		}
		if at := latest[q]; r.NextAt.Before(at) {
			old := *r
			r.NextAt = at
			if err := t.putOutboxRec(r, &old); err != nil {
				return fmt.Errorf("outbox entry %d: %w", r.ID, err)
			}
		}
		latest[q] = r.NextAt
	}
	return nil
}

// migrateV4 brings a schema-3 database to schema 4: idx.summary (what
// listings filter and sort on) and idx.word (search) are built from every
// ticket and message.
//
// bbolt splits a node only on commit, so keys put in random order into
// one large transaction cost time quadratic in the keys per node: the
// word entries are gathered first (memory about the size of the index)
// and put in key order.
func migrateV4(btx *bolt.Tx) error {
	for _, b := range [][]byte{bucketIdxSummary, bucketIdxWord} {
		if err := btx.DeleteBucket(b); err != nil && !errors.Is(err, bolterrors.ErrBucketNotFound) {
			return fmt.Errorf("drop bucket %s: %w", b, err)
		}
		if _, err := btx.CreateBucket(b); err != nil {
			return fmt.Errorf("create bucket %s: %w", b, err)
		}
	}
	t := &tx{ctx: context.Background(), tx: btx}
	// Each entry is an idx.word key followed by its one-byte value.
	var entries [][]byte
	add := func(id []byte, words []string, bit byte) {
		for _, w := range words {
			entries = append(entries, append(key([]byte(w), id), bit))
		}
	}
	err := t.bucket(bucketTickets).ForEach(func(k, v []byte) error {
		var tk store.Ticket
		if err := decodeTicket(v, &tk); err != nil {
			return fmt.Errorf("decode ticket %s: %w", k, err)
		}
		add(k, store.TicketWords(&tk), wordInTicket)
		return t.indexSummary(&tk)
	})
	if err != nil {
		return fmt.Errorf("tickets: %w", err)
	}
	// Message keys are the ticket id, 0x00 and an 8-byte sequence; a
	// ticket's messages are together, and each word counts once a ticket.
	var last []byte
	seen := map[string]bool{}
	err = t.bucket(bucketMessages).ForEach(func(k, v []byte) error {
		if len(k) < 9 {
			return fmt.Errorf("message key %q", k)
		}
		if id := k[:len(k)-9]; !bytes.Equal(id, last) {
			last, seen = clone(id), map[string]bool{}
		}
		m, err := t.decodeMessage(v)
		if err != nil {
			return fmt.Errorf("decode message %q: %w", k, err)
		}
		var fresh []string
		for _, w := range store.MessageWords(m) {
			if !seen[w] {
				seen[w] = true
				fresh = append(fresh, w)
			}
		}
		add(last, fresh, wordInMessage)
		return nil
	})
	if err != nil {
		return fmt.Errorf("messages: %w", err)
	}
	slices.SortFunc(entries, func(a, b []byte) int { return bytes.Compare(a[:len(a)-1], b[:len(b)-1]) })
	words := t.bucket(bucketIdxWord)
	for i := 0; i < len(entries); {
		e := entries[i]
		k, v := e[:len(e)-1], e[len(e)-1]
		// The same word on the ticket and in a message: one entry.
		for i++; i < len(entries) && bytes.Equal(entries[i][:len(entries[i])-1], k); i++ {
			v |= entries[i][len(entries[i])-1]
		}
		if err := words.Put(k, []byte{v}); err != nil {
			return fmt.Errorf("index words: %w", err)
		}
	}
	return nil
}
