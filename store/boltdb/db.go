// Package boltdb is the bbolt backend of store: one database file, one
// writer process. It is the only package that imports bbolt.
//
// Layout: records are JSON (HTML escaping off) in buckets keyed by id;
// integers and times in keys are 8-byte big-endian; indexes are idx.<what>
// buckets with composite keys and empty values, kept in the same
// transaction as the records they index. Two hold small values:
// idx.summary (what listings filter and sort on) and idx.word (where on
// the ticket a word occurs); search.go describes them. The one index not
// kept in the same transaction is the words of messages: the message is
// queued in idx.wordq with it, and words.go's indexer moves its words into
// idx.word later; a search reads both. Large values that are written once
// (blob contents, outbox mail) are keyed by a sequence number so that
// writing one appends to the end of its bucket (misc.go, outbox.go).
package boltdb

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"ticketgate/store"
)

// Options tune Open.
type Options struct {
	// ReadOnly opens the database for reading only (shared lock).
	ReadOnly bool
	// LockTimeout is how long to wait for another process's lock; 0 waits 1s.
	LockTimeout time.Duration

	// noIndexer leaves every message's words queued (tests of the queue).
	noIndexer bool
}

// DB is a bbolt database holding the store. It implements store.Store.
type DB struct {
	db  *bolt.DB
	log *slog.Logger
	gen string // this Open, for leases

	claims claims // of outbox entries (claims.go)

	// Counted by the committer: grouped commits made and the Update calls
	// they carried.
	commits, grouped atomic.Uint64
	observe          atomic.Pointer[func(calls int, took time.Duration)]
	soonWithin       time.Duration // 0: SoonWithin (tests change it)
	// expected counts the Update calls announced by Expect.
	expected     expected
	expectWithin time.Duration // 0: ExpectWithin (tests change it)

	// updates queues Update calls for the committer (commit.go); nil when
	// opened read-only. closing guards closed against a send on a closed
	// channel; loopDone closes when the committer has answered them all.
	updates  chan *update
	closing  sync.RWMutex
	closed   bool
	loopDone chan struct{}

	// The search indexer (words.go): wordsQueued says a transaction
	// queued message words since the last commit; indexWake wakes the
	// indexer, indexStop stops it and indexDone closes when it stopped.
	wordsQueued                     atomic.Bool
	indexWake, indexStop, indexDone chan struct{}
}

// CommitStats counts the grouped commits Update made since Open and the
// calls they carried: calls/commits is the messages per fsync.
func (d *DB) CommitStats() (commits, calls uint64) {
	return d.commits.Load(), d.grouped.Load()
}

var _ store.Store = (*DB)(nil)

// ErrDamaged is returned when bbolt finds a page of the database file that
// is not what the page pointing to it says (a bad disk, a copy cut short):
// bbolt panics on such a page, and the store answers this error instead.
var ErrDamaged = errors.New("database file is damaged")

// damaged turns a panic of bbolt reading a damaged page into ErrDamaged in
// *err. It is deferred around a read of the file that may meet one.
func damaged(err *error) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("%w: %v", ErrDamaged, r)
	}
}

// Open opens (creating if needed) the database at path and runs the schema
// migrations. It returns store.ErrLocked when another process holds the
// database. A read-only open does not create the file and refuses a
// database whose schema is older than this program's (it cannot migrate it).
func Open(path string, opts Options, log *slog.Logger) (*DB, error) {
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
	// The freelist is not written with every commit (NoFreelistSync): on an
	// aged database it was the biggest part of a small commit's writes.
	// bbolt rebuilds it by scanning the file when it opens one whose last
	// commit did not sync it. The hashmap freelist allocates in constant
	// time where the array one scans.
	db, err := openBolt(path, &bolt.Options{Timeout: timeout, ReadOnly: opts.ReadOnly,
		NoFreelistSync: true, FreelistType: bolt.FreelistMapType})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("open %s: %w", path, store.ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	d := &DB{db: db, log: log, gen: rand.Text()}
	err = d.openSchema(opts.ReadOnly)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if !opts.ReadOnly {
		d.updates = make(chan *update, maxGroup)
		d.loopDone = make(chan struct{})
		go d.commitLoop()
		if !opts.noIndexer {
			d.startIndexer()
		}
	}
	return d, nil
}

// openSchema checks (read-only) or migrates the schema of the file just
// opened: the first read of it, where a damaged file shows.
func (d *DB) openSchema(readOnly bool) (err error) {
	defer damaged(&err)
	if readOnly {
		return d.checkSchema()
	}
	return d.migrate()
}

// openBolt opens the database file at path with bbolt. A restore
// (Replace) renames the restored file over path while it holds the old
// file's lock, so an open that waited for that lock would run on the old
// file, set aside as .pre-restore: such an open is made again, on the
// file path names now.
func openBolt(path string, opts *bolt.Options) (*bolt.DB, error) {
	for tries := 1; ; tries++ {
		// bbolt opens the database file first (and again for each
		// Tx.WriteTo, a Backup, after Open returned).
		var once sync.Once
		var f *os.File
		o := *opts
		o.OpenFile = func(name string, flag int, perm os.FileMode) (*os.File, error) {
			file, err := os.OpenFile(name, flag, perm)
			once.Do(func() { f = file })
			return file, err
		}
		db, err := bolt.Open(path, 0o640, &o)
		if err != nil {
			return nil, err
		}
		opened, err := f.Stat()
		if err != nil {
			db.Close()
			return nil, err
		}
		if now, err := os.Stat(path); err != nil || os.SameFile(opened, now) || tries == 10 {
			return db, nil
		}
		db.Close()
	}
}

// Close lets the Updates already queued commit, then closes the database;
// later Updates fail.
func (d *DB) Close() error {
	d.stopIndexer()
	d.stopCommitter()
	return d.db.Close()
}

// UpdateNow is Update without batching; fn runs once.
func (d *DB) UpdateNow(ctx context.Context, fn func(store.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	err := wrapErr(d.update(func(btx *bolt.Tx) error { return fn(&tx{ctx: ctx, tx: btx, gen: d.gen, db: d}) }))
	d.committed()
	return err
}

// View runs fn in a read-only transaction.
func (d *DB) View(ctx context.Context, fn func(store.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return d.db.View(func(btx *bolt.Tx) error { return fn(&tx{ctx: ctx, tx: btx, gen: d.gen, db: d}) })
}

var errRollback = errors.New("dry run: rolled back")

// DryRun runs fn in a read-write transaction and always rolls it back.
func (d *DB) DryRun(ctx context.Context, fn func(store.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	err := d.update(func(btx *bolt.Tx) error {
		if err := fn(&tx{ctx: ctx, tx: btx, gen: d.gen, db: d}); err != nil {
			return err
		}
		return errRollback
	})
	if errors.Is(err, errRollback) {
		return nil
	}
	return wrapErr(err)
}

func wrapErr(err error) error {
	if errors.Is(err, bolterrors.ErrDatabaseReadOnly) || errors.Is(err, bolterrors.ErrTxNotWritable) {
		return fmt.Errorf("%w: %w", store.ErrReadOnly, err)
	}
	return err
}

// tx implements store.Tx over one bbolt transaction.
type tx struct {
	ctx context.Context
	tx  *bolt.Tx
	gen string // DB.gen
	db  *DB    // nil in migrations

	// hinted holds, by ticket id, the postings a caller's TicketCreated
	// gave entries of a ticket that had no summary yet (parts.go).
	hinted map[string][][]byte
}

func (t *tx) Context() context.Context { return t.ctx }

// bucket returns the named bucket. In a write transaction a bucket whose
// new keys always go at its end is split full (appendFill) instead of in
// halves, bbolt's default for keys that land anywhere: otherwise every
// page but the last stays half empty, and the bytes written per message
// grow with the pages.
func (t *tx) bucket(name []byte) *bolt.Bucket {
	b := t.tx.Bucket(name)
	if b != nil && t.tx.Writable() && appended(name) {
		b.FillPercent = appendFill
	}
	return b
}

// appendFill is how full bbolt leaves the pages of an appended bucket.
const appendFill = 0.95

// appended reports whether bucket name's keys are taken in order: blob
// contents and outbox entries by number, creation times.
func appended(name []byte) bool {
	for _, b := range [][]byte{bucketBlobData, bucketOutbox, bucketOutboxRaw, bucketIdxCreated} {
		if bytes.Equal(name, b) {
			return true
		}
	}
	return false
}

// BackupFile writes a consistent copy of the database file at path to w
// as Backup does, whatever its schema and without migrating it: the
// backup of an earlier release's database taken before this release
// first opens it for writing, which that release can still restore (and
// this one restores by migrating a copy). It returns store.ErrLocked
// when another process holds the database past timeout.
func BackupFile(path string, w io.Writer, timeout time.Duration) (int64, error) {
	db, err := openBolt(path, &bolt.Options{Timeout: timeout, ReadOnly: true})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return 0, fmt.Errorf("open %s: %w", path, store.ErrLocked)
	}
	if err != nil {
		return 0, fmt.Errorf("open %s: %w", path, err)
	}
	defer db.Close()
	var n int64
	err = db.View(func(btx *bolt.Tx) error {
		var err error
		n, err = btx.WriteTo(w)
		return err
	})
	return n, err
}
