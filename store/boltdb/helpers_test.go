package boltdb

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"testing"

	bolt "go.etcd.io/bbolt"
)

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func jsonOf(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// expectClean fails t unless check finds nothing wrong in d.
func expectClean(t *testing.T, d *DB, when string) {
	t.Helper()
	if problems, err := d.Check(bg); err != nil || len(problems) != 0 {
		t.Errorf("check %s: %q %v", when, problems, err)
	}
}

// keysIn is the number of keys in bucket b of d.
func keysIn(d *DB, b []byte) (n int) {
	d.db.View(func(btx *bolt.Tx) error {
		n = btx.Bucket(b).Stats().KeyN
		return nil
	})
	return n
}

// eachEntry calls fn with every key and value of bucket b, in key order.
// They are bbolt's: copy what is kept.
func eachEntry(d *DB, b []byte, fn func(k, v []byte)) {
	d.db.View(func(btx *bolt.Tx) error {
		return btx.Bucket(b).ForEach(func(k, v []byte) error {
			fn(k, v)
			return nil
		})
	})
}

// partValue is the stored value of ticket id's message or event number
// seq in bucket, under whichever kind of key it is (parts.go).
func partValue(t *testing.T, d *DB, bucket []byte, id string, seq uint64) []byte {
	t.Helper()
	var v []byte
	d.db.View(func(btx *bolt.Tx) error {
		v = clone((&tx{ctx: bg, tx: btx}).partAt(bucket, id, u64(seq)))
		return nil
	})
	if v == nil {
		t.Fatalf("no entry %d of %s in %s", seq, id, bucket)
	}
	return v
}

// asBefore12 files every ticket record, message, event, queued mail and
// sent mail under its ticket's id, as releases before schema 12 did: for a database made
// to look like an older schema's.
func asBefore12(t *testing.T, d *DB) {
	t.Helper()
	err := d.db.Update(func(btx *bolt.Tx) error {
		for _, name := range [][]byte{bucketTickets, bucketMessages, bucketEvents, bucketIdxOutboxQueue, bucketMeta} {
			b := btx.Bucket(name)
			type move struct{ from, to []byte }
			var moves []move
			b.ForEach(func(k, _ []byte) error {
				// Under a posting: byPosting, the posting (the creation
				// time, then the id), then the rest as it follows the id
				// in the key by id.
				if rest, ok := bytes.CutPrefix(k, []byte{byPosting}); ok && !bytes.Equal(name, bucketMeta) {
					moves = append(moves, move{clone(k), clone(rest[postingTime:])})
				} else if rest, ok := bytes.CutPrefix(k, []byte("sentp\x00")); ok && bytes.Equal(name, bucketMeta) {
					moves = append(moves, move{clone(k), append([]byte("sentt\x00"), rest[postingTime:]...)})
				}
				return nil
			})
			for _, m := range moves {
				v := clone(b.Get(m.from))
				if err := b.Delete(m.from); err != nil {
					return err
				}
				if err := b.Put(m.to, v); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
