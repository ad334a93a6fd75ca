package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// RateTimes returns the recorded times of a rate-limited event (auto-replies
// to an address, inbound mail from a sender ...) under key.
func (tx *Tx) RateTimes(key string) ([]time.Time, error) {
	v := tx.tx.Bucket(bucketRate).Get([]byte(strings.ToLower(key)))
	if v == nil {
		return nil, nil
	}
	var ts []time.Time
	if err := json.Unmarshal(v, &ts); err != nil {
		return nil, fmt.Errorf("decode rate %s: %w", key, err)
	}
	return ts, nil
}

// PutRateTimes replaces the recorded times under key (nil deletes).
func (tx *Tx) PutRateTimes(key string, ts []time.Time) error {
	b := tx.tx.Bucket(bucketRate)
	k := []byte(strings.ToLower(key))
	if len(ts) == 0 {
		return b.Delete(k)
	}
	v, err := json.Marshal(ts)
	if err != nil {
		return err
	}
	return b.Put(k, v)
}

// MarkBouncing records that mail to addr bounced at, until until.
func (tx *Tx) MarkBouncing(addr string, until time.Time) error {
	return tx.PutRateTimes("bounce:"+addr, []time.Time{until})
}

// Bouncing reports whether automatic mail to addr is suppressed at now
// because it bounced recently.
func (tx *Tx) Bouncing(addr string, now time.Time) bool {
	ts, err := tx.RateTimes("bounce:" + addr)
	return err == nil && len(ts) == 1 && now.Before(ts[0])
}

var errRollback = errors.New("dry run: rolled back")

// DryRun runs fn in a read-write transaction and always rolls it back, so
// callers can see what a change would do without making it.
func (s *Store) DryRun(fn func(tx *Tx) error) error {
	err := s.db.Update(func(btx *bolt.Tx) error {
		if err := fn(&Tx{tx: btx, dueFunc: s.due}); err != nil {
			return err
		}
		return errRollback
	})
	if errors.Is(err, errRollback) {
		return nil
	}
	return err
}
