package postgres

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"ticketgate/store"
)

// PutBlob stores content once per hash and counts a reference to it;
// releaseBlob gives one back and deletes the blob at zero.
func (t *tx) PutBlob(content []byte) (string, error) {
	sum := sha256.Sum256(content)
	h := hex.EncodeToString(sum[:])
	if content == nil {
		content = []byte{}
	}
	err := t.exec(`INSERT INTO blobs (hash, content, refs) VALUES ($1, $2, 1)
		ON CONFLICT (hash) DO UPDATE SET refs = blobs.refs + 1`, h, content)
	if err != nil {
		return "", fmt.Errorf("put blob: %w", err)
	}
	return h, nil
}

// PutRawBlob is PutBlob: a blob's row is found by its hash's index, so
// numbering a raw mail would save nothing here.
func (t *tx) PutRawBlob(content []byte) (string, error) { return t.PutBlob(content) }

func (t *tx) releaseBlob(h string) error {
	if err := t.exec(`UPDATE blobs SET refs = refs - 1 WHERE hash = $1`, h); err != nil {
		return fmt.Errorf("release blob: %w", err)
	}
	if err := t.exec(`DELETE FROM blobs WHERE hash = $1 AND refs <= 0`, h); err != nil {
		return fmt.Errorf("release blob: %w", err)
	}
	return nil
}

func (t *tx) Blob(hash string) ([]byte, error) {
	if !isText(hash) {
		return nil, fmt.Errorf("blob %s: %w", hash, store.ErrNotFound)
	}
	var v []byte
	err := t.row(`SELECT content FROM blobs WHERE hash = $1`, args(hash), &v)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("blob %s: %w", hash, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read blob %s: %w", hash, err)
	}
	return v, nil
}

func (t *tx) PutCheckpoint(c store.Checkpoint) error {
	err := t.exec(`INSERT INTO checkpoints (mailbox, uidvalidity, uid) VALUES ($1, $2, $3)
		ON CONFLICT (mailbox) DO UPDATE SET uidvalidity = $2, uid = $3
		WHERE NOT (checkpoints.uidvalidity = $2 AND checkpoints.uid > $3)`,
		c.Mailbox, int64(c.UIDValidity), int64(c.UID))
	if err != nil {
		return fmt.Errorf("put checkpoint %s: %w", c.Mailbox, err)
	}
	return nil
}

func (t *tx) Checkpoint(mailbox string) (store.Checkpoint, error) {
	var validity, uid int64
	err := t.row(`SELECT uidvalidity, uid FROM checkpoints WHERE mailbox = $1`, args(mailbox), &validity, &uid)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Checkpoint{Mailbox: mailbox}, nil
	}
	if err != nil {
		return store.Checkpoint{Mailbox: mailbox}, fmt.Errorf("read checkpoint %s: %w", mailbox, err)
	}
	return store.Checkpoint{Mailbox: mailbox, UIDValidity: uint32(validity), UID: uint32(uid)}, nil
}

func (t *tx) RateTimes(key string) ([]time.Time, error) {
	var v []byte
	err := t.row(`SELECT times FROM rates WHERE key = $1`, args([]byte(strings.ToLower(key))), &v)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read rate %s: %w", key, err)
	}
	// A counter that does not decode (damage, which check reports)
	// counts nothing, rather than refusing every message of its sender
	// or domain for good; the next count replaces it.
	ts, _ := decodeRate(key, v)
	return ts, nil
}

// decodeRate reads the times of the rate counter under key.
func decodeRate(key string, v []byte) ([]time.Time, error) {
	var ts []time.Time
	if err := json.Unmarshal(v, &ts); err != nil {
		return nil, fmt.Errorf("decode rate %q: %w", key, err)
	}
	return ts, nil
}

func (t *tx) Rates(after string, limit int) ([]store.Rate, string, error) {
	limit = max(limit, 1)
	var out []store.Rate
	var k, v []byte
	err := t.rows(`SELECT key, times FROM rates WHERE key > $1 ORDER BY key LIMIT $2`, args([]byte(after), limit+1), []any{&k, &v}, func() error {
		ts, _ := decodeRate(string(k), v) // damaged: counts nothing, as RateTimes
		out = append(out, store.Rate{Key: string(k), Times: ts})
		return nil
	})
	if err != nil {
		return nil, "", fmt.Errorf("read rates: %w", err)
	}
	if len(out) > limit {
		out = out[:limit]
		return out, out[limit-1].Key, nil
	}
	return out, "", nil
}

func (t *tx) PutRateTimes(key string, ts []time.Time) error {
	k := []byte(strings.ToLower(key))
	if len(ts) == 0 {
		if err := t.exec(`DELETE FROM rates WHERE key = $1`, k); err != nil {
			return fmt.Errorf("put rate %s: %w", key, err)
		}
		return nil
	}
	v, err := encode(ts)
	if err != nil {
		return err
	}
	if err := t.exec(`INSERT INTO rates (key, times) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET times = $2`, k, v); err != nil {
		return fmt.Errorf("put rate %s: %w", key, err)
	}
	return nil
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
