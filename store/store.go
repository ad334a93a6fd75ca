// Package store keeps tickets, their messages and events, the outbox of mail
// to send, and IMAP checkpoints in one bbolt database. It is the only package
// that imports bbolt; its API speaks in tickets, messages, events and outbox
// entries, so another backend could stand behind it.
//
// Durability: Update returns only after the transaction is committed and
// fsynced (bbolt's default). Callers answer "250" after Update returns.
package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// Config is the [store] section of the configuration file.
type Config struct {
	// Path of the database file; its directory is created if missing.
	Path string `toml:"path"`
}

var (
	// ErrNotFound is returned when a ticket (or other record) does not exist.
	ErrNotFound = errors.New("not found")
	// ErrLocked is returned by Open when another process (usually a running
	// "serve") holds the database.
	ErrLocked = errors.New("database is in use by another process")
)

// Bucket names. Index buckets are named idx.<what>.
var (
	bucketMeta      = []byte("meta")
	bucketTickets   = []byte("tickets")
	bucketMessages  = []byte("messages")
	bucketEvents    = []byte("events")
	bucketBlobs     = []byte("blobs")
	bucketOutbox    = []byte("outbox")
	bucketIMAP      = []byte("imap")
	bucketRate      = []byte("rate")
	bucketIdxMsgID  = []byte("idx.msgid")
	bucketIdxStatus = []byte("idx.status")
	bucketIdxDue    = []byte("idx.due")
	keySchema       = []byte("schema")
)

// migrations run in order on Open; migrations[i] brings the schema from i to i+1.
var migrations = []func(tx *bolt.Tx) error{
	func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketMeta, bucketTickets, bucketMessages, bucketEvents, bucketBlobs,
			bucketOutbox, bucketIMAP, bucketRate, bucketIdxMsgID, bucketIdxStatus, bucketIdxDue} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return fmt.Errorf("create bucket %s: %w", b, err)
			}
		}
		return nil
	},
}

// Store is the ticket database.
type Store struct {
	db  *bolt.DB
	log *slog.Logger
	// due computes when the scheduler must next look at a ticket; PutTicket
	// calls it so the due index changes in the same transaction as the ticket.
	due func(*Ticket) time.Time
}

// SetDueFunc installs the function that computes a ticket's next due time.
// Call it before the first write.
func (s *Store) SetDueFunc(f func(*Ticket) time.Time) { s.due = f }

// Options tune Open.
type Options struct {
	// ReadOnly opens the database for reading only (shared lock).
	ReadOnly bool
	// LockTimeout is how long to wait for another process's lock; 0 waits 1s.
	LockTimeout time.Duration
}

// Open opens (creating if needed) the database at path and runs migrations.
// It returns ErrLocked when another process holds the database.
func Open(path string, opts Options, log *slog.Logger) (*Store, error) {
	if log == nil {
		log = slog.Default()
	}
	if !opts.ReadOnly {
		if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
			return nil, fmt.Errorf("create database directory: %w", err)
		}
	} else if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	timeout := opts.LockTimeout
	if timeout == 0 {
		timeout = time.Second
	}
	db, err := bolt.Open(path, 0o640, &bolt.Options{Timeout: timeout, ReadOnly: opts.ReadOnly})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("open %s: %w", path, ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	// Group commit: concurrent Updates within this window share one commit
	// and its fsync. bbolt's default 10 ms is pure latency for a lone sender.
	db.MaxBatchDelay = 2 * time.Millisecond
	s := &Store{db: db, log: log}
	if !opts.ReadOnly {
		if err := s.migrate(); err != nil {
			db.Close()
			return nil, err
		}
	}
	return s, nil
}

func (s *Store) migrate() error {
	return s.db.Update(func(tx *bolt.Tx) error {
		var version uint64
		if meta := tx.Bucket(bucketMeta); meta != nil {
			if v := meta.Get(keySchema); len(v) == 8 {
				version = binary.BigEndian.Uint64(v)
			}
		}
		if version > uint64(len(migrations)) {
			return fmt.Errorf("database schema %d is newer than this program (%d)", version, len(migrations))
		}
		for i := version; i < uint64(len(migrations)); i++ {
			if err := migrations[i](tx); err != nil {
				return fmt.Errorf("migrate schema %d to %d: %w", i, i+1, err)
			}
		}
		return tx.Bucket(bucketMeta).Put(keySchema, u64(uint64(len(migrations))))
	})
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// Update runs fn in a read-write transaction grouped with concurrent callers
// (bbolt's Batch): one fsync covers them all. fn may run more than once and
// must be idempotent apart from its effects on tx. Update returns after the
// commit is on disk.
func (s *Store) Update(fn func(tx *Tx) error) error {
	return s.db.Batch(func(btx *bolt.Tx) error { return fn(&Tx{tx: btx, dueFunc: s.due}) })
}

// UpdateNow is Update without batching, for callers outside the ingest path.
func (s *Store) UpdateNow(fn func(tx *Tx) error) error {
	return s.db.Update(func(btx *bolt.Tx) error { return fn(&Tx{tx: btx, dueFunc: s.due}) })
}

// View runs fn in a read-only transaction.
func (s *Store) View(fn func(tx *Tx) error) error {
	return s.db.View(func(btx *bolt.Tx) error { return fn(&Tx{tx: btx}) })
}

// Tx is a transaction on the store. Values read from it are copies and stay
// valid after the transaction ends.
type Tx struct {
	tx      *bolt.Tx
	dueFunc func(*Ticket) time.Time
}

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
