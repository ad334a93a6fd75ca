package boltdb

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/compress/s2"
	bolt "go.etcd.io/bbolt"

	"ticketgate/store"
)

// Blobs are counted in blobrefs under their hex SHA-256: the value is the
// reference count (8 bytes) and the blob's number in blob.data (8 more),
// where its content is. Numbers are taken in order, so storing a blob
// appends to blob.data instead of rewriting a random page of large values
// (and its neighbours') as keying content by hash did. A blob stored
// before schema 8 has a count alone and its content in blobs under its
// hash; it stays there until released.
//
// Since schema 12 a content that s2 makes an eighth smaller or more is
// kept packed, under its number followed by packedBlob (a 9-byte key, so
// blob.data stays in the order contents were stored); anything else is
// kept as it is under the 8-byte number. A 4 KB text mail packs to about
// half, which takes it from two pages (it overflowed one) to part of one.
//
// Since schema 13 a content stored (packed or not) in more than
// chunkFrom bytes is kept in chunks of blobChunk bytes, under its 9-byte
// key (with chunkedBlob set) followed by the chunk's number (4 bytes);
// its count in blobrefs then ends with the stored length. bbolt never
// splits a leaf of four keys or fewer, so contents of hundreds of KB
// kept whole shared leaves that each later blob's commit rewrote whole,
// two or three times the bytes stored; chunks fill pages in order, and a
// full page is not written again.
//
// Since schema 14 a message's raw copy (PutRawBlob) is counted in
// blobrefs under its number, '#' and 16 hex digits, instead of its hash:
// its content is not looked for, and its count goes next to the last
// one's instead of on a random page.

// PutBlob stores content once per hash and counts a reference to it;
// releaseBlob gives one back and deletes the blob at zero.
func (t *tx) PutBlob(content []byte) (string, error) {
	sum := sha256.Sum256(content)
	h := hex.EncodeToString(sum[:])
	if t.bucket(bucketBlobRefs).Get([]byte(h)) == nil && t.bucket(bucketBlobs).Get([]byte(h)) == nil {
		return t.addBlob(content, func(uint64) string { return h })
	}
	if err := t.bumpBlob(h, 1); err != nil {
		return "", fmt.Errorf("put blob: %w", err)
	}
	return h, nil
}

// PutRawBlob stores content as a blob of its own, counted under its
// number (see above).
func (t *tx) PutRawBlob(content []byte) (string, error) {
	return t.addBlob(content, func(n uint64) string { return "#" + hex.EncodeToString(u64(n)) })
}

// addBlob stores content under blob.data's next number n and counts one
// reference to it under id(n), which it returns.
func (t *tx) addBlob(content []byte, id func(n uint64) string) (string, error) {
	data := t.bucket(bucketBlobData)
	n, err := data.NextSequence()
	if err != nil {
		return "", fmt.Errorf("put blob: %w", err)
	}
	r, err := putBlobData(data, n, content)
	if err != nil {
		return "", fmt.Errorf("put blob: %w", err)
	}
	h := id(n)
	if err := t.putBlobRef(h, r); err != nil {
		return "", fmt.Errorf("put blob: %w", err)
	}
	return h, nil
}

// The flags in the ninth byte of a blob.data key (see PutBlob).
const (
	packedBlob  = 1 // kept packed with s2
	chunkedBlob = 2 // kept in chunks under the key and their number
)

// Chunks: a content stored in more than chunkFrom bytes is kept in
// chunks of blobChunk bytes, two to a page (bbolt puts at least two keys
// in a leaf, and appended buckets split at appendFill).
const (
	chunkFrom = 4000
	blobChunk = 1900
)

// blobEntry is content's key and value in blob.data as number n: packed
// when that saves an eighth or more (see PutBlob).
func blobEntry(n uint64, content []byte) (at, v []byte) {
	if packed := s2.Encode(nil, content); len(packed) <= len(content)-len(content)/8 {
		return append(u64(n), packedBlob), packed
	}
	return u64(n), content
}

// putBlobData stores content in data as number n and returns where: one
// value, or chunks when it is large.
func putBlobData(data *bolt.Bucket, n uint64, content []byte) (blobRef, error) {
	at, v := blobEntry(n, content)
	if len(v) <= chunkFrom {
		return blobRef{count: 1, at: at}, data.Put(at, v)
	}
	if len(at) == 8 {
		at = append(at, 0)
	}
	at[8] |= chunkedBlob
	for i := 0; i*blobChunk < len(v); i++ {
		chunk := v[i*blobChunk : min(len(v), (i+1)*blobChunk)]
		if err := data.Put(chunkKey(at, i), chunk); err != nil {
			return blobRef{}, err
		}
	}
	return blobRef{count: 1, at: at, size: len(v)}, nil
}

// chunkKey is the key of chunk i of the blob at at.
func chunkKey(at []byte, i int) []byte {
	return binary.BigEndian.AppendUint32(append(make([]byte, 0, len(at)+4), at...), uint32(i))
}

// chunked reports whether the blob at at is kept in chunks.
func chunked(at []byte) bool { return len(at) == 9 && at[8]&chunkedBlob != 0 }

// blobRef is blob h's entry in blobrefs: its reference count, and where
// its content is (see PutBlob): at is its key in blob.data, or nil for a
// blob kept in blobs under its hash; size is how many bytes its chunks
// hold, for a chunked one.
type blobRef struct {
	count uint64
	at    []byte
	size  int
}

func (t *tx) blobRef(h string) (blobRef, bool) {
	return decodeBlobRef(t.bucket(bucketBlobRefs).Get([]byte(h)))
}

// decodeBlobRef reads a blobrefs value; ok is false when it is malformed
// (or missing).
func decodeBlobRef(v []byte) (r blobRef, ok bool) {
	switch {
	case len(v) == 8 || len(v) == 16:
	case len(v) == 17 && v[16] == packedBlob:
	case len(v) == 21 && v[16]&^packedBlob == chunkedBlob:
		r.size = int(binary.BigEndian.Uint32(v[17:]))
		v = v[:17]
	default:
		return r, false
	}
	r.count = binary.BigEndian.Uint64(v)
	if len(v) > 8 {
		r.at = clone(v[8:])
	}
	return r, true
}

// putBlobRef writes r as blob h's entry: the count, then the key when the
// content is in blob.data, then a chunked content's stored length
// (decodeBlobRef reads it back).
func (t *tx) putBlobRef(h string, r blobRef) error {
	v := append(u64(r.count), r.at...)
	if chunked(r.at) {
		v = binary.BigEndian.AppendUint32(v, uint32(r.size))
	}
	return t.bucket(bucketBlobRefs).Put([]byte(h), v)
}

// blobContent returns the content of blob h, whose entry is r, or nil when
// missing (or when its packed bytes do not unpack, or its chunks do not
// join up). A packed or chunked content is a new slice; any other is
// bbolt's, valid while the transaction is.
func (t *tx) blobContent(h string, r blobRef) []byte {
	v := t.storedBlob(h, r)
	if v == nil || len(r.at) != 9 || r.at[8]&packedBlob == 0 {
		return v
	}
	content, err := s2.Decode(nil, v)
	if err != nil {
		return nil
	}
	return content
}

// storedBlob returns blob h's bytes as they are stored (packed or not),
// or nil when missing: a chunked blob's chunks joined, nil when they do
// not join up to its size.
func (t *tx) storedBlob(h string, r blobRef) []byte {
	switch {
	case chunked(r.at):
		v := make([]byte, 0, r.size)
		c := t.bucket(bucketBlobData).Cursor()
		i := 0
		for k, chunk := c.Seek(r.at); k != nil && bytes.HasPrefix(k, r.at); k, chunk = c.Next() {
			if len(k) != len(r.at)+4 || binary.BigEndian.Uint32(k[len(r.at):]) != uint32(i) || len(v)+len(chunk) > r.size {
				return nil
			}
			v = append(v, chunk...)
			i++
		}
		if len(v) != r.size || r.size == 0 {
			return nil
		}
		return v
	case r.at != nil:
		return t.bucket(bucketBlobData).Get(r.at)
	}
	return t.bucket(bucketBlobs).Get([]byte(h))
}

// blob returns the content of blob h, or nil when missing.
func (t *tx) blob(h string) []byte {
	r, _ := t.blobRef(h)
	return t.blobContent(h, r)
}

// peekBlob calls fn with the content of blob h, nil when missing, for a
// reader that keeps none of it (a message's text copied out of its raw
// copy): a packed content is unpacked into a buffer used again, which
// fn's slice is only valid until fn returns.
func (t *tx) peekBlob(h string, fn func([]byte) error) error {
	r, _ := t.blobRef(h)
	if len(r.at) != 9 || r.at[8]&packedBlob == 0 {
		return fn(t.blobContent(h, r))
	}
	v := t.storedBlob(h, r)
	n, err := s2.DecodedLen(v)
	if v == nil || err != nil || n > maxPeekBuffer {
		return fn(t.blobContent(h, r))
	}
	buf := peekBuffers.Get().(*[]byte)
	defer peekBuffers.Put(buf)
	if cap(*buf) < n {
		*buf = make([]byte, n)
	}
	content, err := s2.Decode((*buf)[:n], v)
	if err != nil {
		content = nil // does not unpack: missing, as blobContent has it
	}
	return fn(content)
}

// peekBuffers are peekBlob's buffers, each at most maxPeekBuffer long:
// a larger content (a message with big files) is unpacked into a slice
// of its own.
var peekBuffers = sync.Pool{New: func() any { return new([]byte) }}

const maxPeekBuffer = 256 << 10

// hasBlob reports whether blob h's content is stored.
func (t *tx) hasBlob(h string) bool {
	r, _ := t.blobRef(h)
	return t.storedBlob(h, r) != nil
}

func (t *tx) bumpBlob(h string, by uint64) error {
	r, _ := t.blobRef(h)
	r.count += by
	return t.putBlobRef(h, r)
}

// releaseBlob drops one reference to blob h. A blob without a count (none
// should be left after migration) is kept.
func (t *tx) releaseBlob(h string) error {
	r, ok := t.blobRef(h)
	if !ok {
		return nil
	}
	if r.count > 1 {
		r.count--
		return t.putBlobRef(h, r)
	}
	if err := t.bucket(bucketBlobRefs).Delete([]byte(h)); err != nil {
		return err
	}
	if chunked(r.at) {
		return deletePrefix(t.bucket(bucketBlobData), r.at)
	}
	if r.at != nil {
		return t.bucket(bucketBlobData).Delete(r.at)
	}
	return t.bucket(bucketBlobs).Delete([]byte(h))
}

// deletePrefix deletes every key of b that begins with prefix.
func deletePrefix(b *bolt.Bucket, prefix []byte) error {
	var gone [][]byte
	c := b.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		gone = append(gone, clone(k))
	}
	for _, k := range gone {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// blobRefs returns the reference count of blob h (for tests).
func (t *tx) blobRefs(h string) uint64 {
	r, _ := t.blobRef(h)
	return r.count
}

func (t *tx) Blob(hash string) ([]byte, error) {
	r, _ := t.blobRef(hash)
	v := t.blobContent(hash, r)
	if v == nil {
		return nil, fmt.Errorf("blob %s: %w", hash, store.ErrNotFound)
	}
	if len(r.at) == 9 {
		return v, nil // unpacked or joined into a slice of its own
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

// rateKinds are the kinds of rate counters and marks, as their keys
// begin ("<kind><subject>": auto:ann@example.com).
var rateKinds = []string{"in:sender:", "in:domain:", "in:ticket:", "auto:", "bounce:"}

// rateKey is where the counter key is kept in the rate bucket: its
// subject first, then a zero byte and its kind (ann@example.com\x00auto:),
// in lower case. A new sender's address takes a random page of the
// bucket; its inbound counter and its automatic-reply counter, written
// by the same commit, then share it. A key of another kind is kept as
// it is.
func rateKey(key string) []byte {
	key = strings.ToLower(key)
	for _, kind := range rateKinds {
		if subject, ok := strings.CutPrefix(key, kind); ok {
			return []byte(subject + "\x00" + kind)
		}
	}
	return []byte(key)
}

// rateName is the key RateTimes takes for rate bucket key k (rateKey
// turned back).
func rateName(k []byte) string {
	if subject, kind, ok := bytes.Cut(k, []byte{0}); ok && slices.Contains(rateKinds, string(kind)) {
		return string(kind) + string(subject)
	}
	return string(k)
}

func (t *tx) Rates(after string, limit int) ([]store.Rate, string, error) {
	limit = max(limit, 1)
	var out []store.Rate
	var last []byte // the cursor: the bucket's own key, not the name
	c := t.bucket(bucketRate).Cursor()
	k, v := c.Seek([]byte(after))
	if after != "" && k != nil && string(k) == after {
		k, v = c.Next()
	}
	for ; k != nil; k, v = c.Next() {
		if len(out) == limit {
			return out, string(last), nil
		}
		last = k
		// A counter that does not decode (damage, which check
		// reports) counts nothing; the next count replaces it.
		ts, _ := decodeRate(string(k), v)
		out = append(out, store.Rate{Key: rateName(k), Times: ts})
	}
	return out, "", nil
}

func (t *tx) RateTimes(key string) ([]time.Time, error) {
	v := t.bucket(bucketRate).Get(rateKey(key))
	if v == nil {
		return nil, nil
	}
	// A counter that does not decode (damage, which check reports)
	// counts nothing, rather than refusing every message of its sender
	// or domain for good; the next count replaces it.
	ts, _ := decodeRate(key, v)
	return ts, nil
}

func (t *tx) PutRateTimes(key string, ts []time.Time) error {
	b := t.bucket(bucketRate)
	k := rateKey(key)
	if len(ts) == 0 {
		return b.Delete(k)
	}
	return b.Put(k, encodeRate(ts))
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
