package boltdb

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"ticketgate/store"
)

// PutBlob stores content once per hash and counts a reference to it in
// blobrefs; releaseBlob gives one back and deletes the blob at zero.
func (t *tx) PutBlob(content []byte) (string, error) {
	sum := sha256.Sum256(content)
	h := hex.EncodeToString(sum[:])
	b := t.bucket(bucketBlobs)
	if b.Get([]byte(h)) == nil {
		if err := b.Put([]byte(h), content); err != nil {
			return "", fmt.Errorf("put blob: %w", err)
		}
	}
	if err := t.bumpBlob(h, 1); err != nil {
		return "", fmt.Errorf("put blob: %w", err)
	}
	return h, nil
}

func (t *tx) bumpBlob(h string, by uint64) error {
	refs := t.bucket(bucketBlobRefs)
	var n uint64
	if v := refs.Get([]byte(h)); len(v) == 8 {
		n = binary.BigEndian.Uint64(v)
	}
	return refs.Put([]byte(h), u64(n+by))
}

// releaseBlob drops one reference to blob h. A blob without a count (none
// should be left after migration) is kept.
func (t *tx) releaseBlob(h string) error {
	refs := t.bucket(bucketBlobRefs)
	v := refs.Get([]byte(h))
	if len(v) != 8 {
		return nil
	}
	if n := binary.BigEndian.Uint64(v); n > 1 {
		return refs.Put([]byte(h), u64(n-1))
	}
	if err := refs.Delete([]byte(h)); err != nil {
		return err
	}
	return t.bucket(bucketBlobs).Delete([]byte(h))
}

// blobRefs returns the reference count of blob h (for tests).
func (t *tx) blobRefs(h string) uint64 {
	if v := t.bucket(bucketBlobRefs).Get([]byte(h)); len(v) == 8 {
		return binary.BigEndian.Uint64(v)
	}
	return 0
}

func (t *tx) Blob(hash string) ([]byte, error) {
	v := t.bucket(bucketBlobs).Get([]byte(hash))
	if v == nil {
		return nil, fmt.Errorf("blob %s: %w", hash, store.ErrNotFound)
	}
	return clone(v), nil
}

func (t *tx) PutCheckpoint(c store.Checkpoint) error {
	if old, err := t.Checkpoint(c.Mailbox); err == nil && old.UIDValidity == c.UIDValidity && old.UID > c.UID {
		return nil
	}
	v, err := encode(c)
	if err != nil {
		return err
	}
	return t.bucket(bucketIMAP).Put([]byte(c.Mailbox), v)
}

func (t *tx) Checkpoint(mailbox string) (store.Checkpoint, error) {
	v := t.bucket(bucketIMAP).Get([]byte(mailbox))
	if v == nil {
		return store.Checkpoint{Mailbox: mailbox}, nil
	}
	var c store.Checkpoint
	if err := json.Unmarshal(v, &c); err != nil {
		return c, fmt.Errorf("decode checkpoint %s: %w", mailbox, err)
	}
	return c, nil
}

func (t *tx) RateTimes(key string) ([]time.Time, error) {
	v := t.bucket(bucketRate).Get([]byte(strings.ToLower(key)))
	if v == nil {
		return nil, nil
	}
	var ts []time.Time
	if err := json.Unmarshal(v, &ts); err != nil {
		return nil, fmt.Errorf("decode rate %s: %w", key, err)
	}
	return ts, nil
}

func (t *tx) PutRateTimes(key string, ts []time.Time) error {
	b := t.bucket(bucketRate)
	k := []byte(strings.ToLower(key))
	if len(ts) == 0 {
		return b.Delete(k)
	}
	v, err := encode(ts)
	if err != nil {
		return err
	}
	return b.Put(k, v)
}

func (t *tx) MarkBouncing(addr string, until time.Time) error {
	return t.PutRateTimes("bounce:"+addr, []time.Time{until})
}

func (t *tx) Bouncing(addr string, now time.Time) (bool, error) {
	ts, err := t.RateTimes("bounce:" + addr)
	if err != nil {
		return false, err
	}
	return len(ts) == 1 && now.Before(ts[0]), nil
}
