package boltdb

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Bucket names. Index buckets are named idx.<what>.
var (
	bucketMeta     = []byte("meta")
	bucketTickets  = []byte("tickets")
	bucketMessages = []byte("messages")
	bucketEvents   = []byte("events")
	bucketBlobs    = []byte("blobs")
	bucketBlobRefs = []byte("blobrefs")
	// blob.data holds blobs' content by number (see PutBlob).
	bucketBlobData     = []byte("blob.data")
	bucketOutbox       = []byte("outbox")
	bucketIMAP         = []byte("imap")
	bucketRate         = []byte("rate")
	bucketIdxMsgID     = []byte("idx.msgid")
	bucketIdxStatus    = []byte("idx.status")
	bucketIdxDue       = []byte("idx.due")
	bucketIdxCreated   = []byte("idx.created")
	bucketIdxOutboxDue = []byte("idx.outbox.due")
	// idx.summary holds each ticket's summary (see summary) under its
	// id; idx.word holds (word, ticket id) for search.
	bucketIdxSummary = []byte("idx.summary")
	bucketIdxWord    = []byte("idx.word")
	// idx.wordq holds (message sequence → ticket id) the messages whose
	// words are not yet in idx.word (words.go).
	bucketIdxWordQ = []byte("idx.wordq")
	// outbox.raw holds each outbox entry's mail under its id (an entry
	// from before schema 7 names a blob instead).
	bucketOutboxRaw = []byte("outbox.raw")
	// idx.addr holds (address, ticket id) for the requester and each
	// participant of a ticket, addresses in lower case.
	bucketIdxAddr = []byte("idx.addr")
	// idx.outbox.queue holds (queue, id): an entry's neighbours in its
	// queue, to keep the queue due in order.
	bucketIdxOutboxQueue = []byte("idx.outbox.queue")
	// lease holds leases (see Tx.TakeLease) by name; imap.tries the
	// failed tries of each IMAP mailbox's messages (Tx.PutPollTries).
	bucketLease     = []byte("lease")
	bucketPollTries = []byte("imap.tries")
	bucketInstances = []byte("instances")
	keySchema       = []byte("schema")
)

func u64(v uint64) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, v)
	return b
}

// key joins fields with 0x00, as index keys do.
func key(parts ...[]byte) []byte {
	n := 0
	for _, p := range parts {
		n += len(p) + 1
	}
	k := make([]byte, 0, n)
	for i, p := range parts {
		if i > 0 {
			k = append(k, 0)
		}
		k = append(k, p...)
	}
	return k
}

func clone(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append([]byte(nil), b...)
}

// encode is json.Marshal without HTML escaping: a quoted "> line" stays
// ">" on disk, not "\u003e".
func encode(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// putIfMissing adds the index entry k (empty value) unless it is there:
// bbolt copies a page on every Put, even one that changes nothing, and in
// a large index each such copy is a page (and its branch pages) written on
// commit.
func putIfMissing(b *bolt.Bucket, k []byte) error {
	if got, _ := b.Cursor().Seek(k); bytes.Equal(got, k) {
		return nil
	}
	return b.Put(k, nil)
}

// dueKey is 8-byte big-endian Unix nanoseconds followed by the ticket id, so
// a cursor walks tickets in due order.
func dueKey(at time.Time, id string) []byte {
	return append(u64(uint64(at.UnixNano())), id...)
}

// createdLen is the length of a created-time key prefix.
const createdLen = 12

// createdKey is a time that sorts for every year (timeKey), then id.
func createdKey(at time.Time, id string) []byte {
	k := make([]byte, 0, createdLen+len(id))
	return append(appendTime(k, at), id...)
}

// appendTime appends at as createdLen bytes that sort as the time does,
// for every year: the Unix second with its sign bit flipped (8 bytes) and
// the nanosecond (4 bytes).
func appendTime(b []byte, at time.Time) []byte {
	b = binary.BigEndian.AppendUint64(b, uint64(at.Unix())^(1<<63))
	return binary.BigEndian.AppendUint32(b, uint32(at.Nanosecond()))
}

var (
	minNano = time.Unix(0, 0)
	maxNano = time.Unix(0, math.MaxInt64)
)

// nanoKey is t as Unix nanoseconds, clamped to the range 8 bytes can hold
// (zero and anything before 1970 are 0).
func nanoKey(t time.Time) uint64 {
	switch {
	case t.IsZero() || t.Before(minNano):
		return 0
	case t.After(maxNano):
		return math.MaxUint64
	}
	return uint64(t.UnixNano())
}

// outboxDueKey is the entry's NextAt (nanoKey) and its id, 8 bytes each.
func outboxDueKey(next time.Time, id uint64) []byte {
	return append(u64(nanoKey(next)), u64(id)...)
}

// outboxQueuePrefix is the part of idx.outbox.queue keys shared by the
// entries of one queue (store.OutMail.Queue): the queue, then 0x00.
func outboxQueuePrefix(queue string) []byte {
	return append([]byte(queue), 0)
}

// outboxQueueKey is the entry's queue prefix and its id (8 bytes), so a
// cursor walks one queue in id order.
func outboxQueueKey(queue string, id uint64) []byte {
	return append(outboxQueuePrefix(queue), u64(id)...)
}

// byPosting begins the keys filed under a ticket's posting (see
// search.go: its creation millisecond, then its id) instead of its id:
// since schema 12 a ticket's record, messages, events and queued mail,
// so that a new ticket's go at the end of each bucket, whatever its
// number. No ticket id begins with this byte, so these keys never mix
// with those beginning with an id. Keys of both kinds are read
// (partPrefixes, queuePrefixes): everything written before schema 12
// begins with the id, as does what belongs to a ticket without a
// summary.
const byPosting = 1

// postedRecordKey is the key of the ticket record under posting p:
// byPosting, p.
func postedRecordKey(p []byte) []byte {
	return append([]byte{byPosting}, p...)
}

// postedPrefix is the part the keys under posting p share: byPosting, p,
// 0x00.
func postedPrefix(p []byte) []byte {
	return append(postedRecordKey(p), 0)
}

// postedQueuePrefix is the part of a queue's idx.outbox.queue keys under
// its ticket's posting that its entries share: postedPrefix, then the
// recipients joined by 0x00, and 0x00; the entry's id (8 bytes) follows.
func postedQueuePrefix(posting []byte, to []string) []byte {
	return append(append(postedPrefix(posting), strings.Join(to, "\x00")...), 0)
}

// inQueue reports whether idx.outbox.queue key k belongs to the queue with
// this prefix. A longer key with the same prefix is another queue's (one
// whose fields continue past this one's); ids are always 8 bytes.
func inQueue(k, prefix []byte) bool {
	return len(k) == len(prefix)+8 && bytes.HasPrefix(k, prefix)
}
