package boltdb

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"ticketgate/store"
)

// migrations run in order on Open; migrations[i] brings the schema from i
// to i+1. Each runs in the one transaction that also records the new
// version, so a crash leaves the old schema whole.
var migrations = []func(tx *bolt.Tx) error{
	createBuckets,
	migrateV2,
	migrateV3,
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
			return fmt.Errorf("database schema %d must be migrated to %d: open it once for writing (run serve)", v, schemaVersion)
		}
		return nil
	})
}

// migrateV2 brings a schema-1 database to schema 2:
//   - blobs get reference counts (one per message or outbox use);
//   - outbox entries lose their body to a blob and enter idx.outbox.due;
//   - idx.created is built and idx.status keys gain the created time;
//   - tickets, messages and events are re-encoded without HTML escaping,
//     messages with their visible text as a span of the text.
func migrateV2(btx *bolt.Tx) error {
	// idx.outbox.queue is schema 3's, but migrateOutbox enqueues as this
	// program does, which keeps it; migrateV3 then finds it whole.
	for _, b := range [][]byte{bucketBlobRefs, bucketIdxCreated, bucketIdxOutboxDue, bucketIdxOutboxQueue} {
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
		m, err := decodeMessage(v)
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
		nv, err := encodeMessage(m)
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

// migrateOutbox moves each schema-1 entry's body into a blob.
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
		if err := json.Unmarshal(v, &tk); err != nil {
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
		if err := json.Unmarshal(v, &r); err != nil {
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
