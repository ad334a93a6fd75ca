package boltdb

import (
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
