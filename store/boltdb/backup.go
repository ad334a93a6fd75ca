package boltdb

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	bolt "go.etcd.io/bbolt"

	"ticketgate/store"
)

// Backup writes a consistent copy of the database to w while writers
// carry on; the copy opens with Open like the original. It is the
// records of one read transaction written afresh into a new file (a
// compacted copy), not the file's pages: bbolt leaves a deleted value's
// bytes in the pages it frees until it writes there again, so a copy of
// the file would keep what forget or retention erased. The new file is
// made beside the database (or, where that directory cannot be written,
// in the system's temporary directory) and removed once copied to w.
func (d *DB) Backup(ctx context.Context, w io.Writer) (int64, error) {
	f, err := os.CreateTemp(filepath.Dir(d.db.Path()), ".backup-*")
	if err != nil {
		if f, err = os.CreateTemp("", "ticketgate-backup-*"); err != nil {
			return 0, fmt.Errorf("backup: %w", err)
		}
	}
	name := f.Name()
	f.Close()
	defer os.Remove(name)
	err = d.View(ctx, func(t store.Tx) error { return copyRecords(t.(*tx).tx, name) })
	if err != nil {
		return 0, fmt.Errorf("backup: %w", err)
	}
	f, err = os.Open(name)
	if err != nil {
		return 0, fmt.Errorf("backup: %w", err)
	}
	defer f.Close()
	return io.Copy(w, f)
}

// copyMaxTx bounds the bytes one transaction of copyRecords writes: bbolt
// holds a transaction's pages in memory until it commits, and serve's
// heap is kept small (gcMemoryLimit).
const copyMaxTx = 4 << 20

// copyRecords writes every bucket of src, with its sequence, keys and
// values, into a new database file at path.
func copyRecords(src *bolt.Tx, path string) (err error) {
	defer damaged(&err)
	dst, err := bolt.Open(path, 0o600, &bolt.Options{NoSync: true, NoFreelistSync: true, FreelistType: bolt.FreelistMapType})
	if err != nil {
		return err
	}
	defer func() {
		if cerr := dst.Close(); err == nil {
			err = cerr
		}
	}()
	out, err := dst.Begin(true)
	if err != nil {
		return err
	}
	defer func() { _ = out.Rollback() }()
	var size int
	// path is the buckets from the top down to the one b is copied into.
	var copyBucket func(from *bolt.Bucket, path [][]byte) error
	copyBucket = func(from *bolt.Bucket, path [][]byte) error {
		return from.ForEach(func(k, v []byte) error {
			if size += len(k) + len(v); size > copyMaxTx {
				if err := out.Commit(); err != nil {
					return err
				}
				if out, err = dst.Begin(true); err != nil {
					return err
				}
				size = len(k) + len(v)
			}
			to := out.Bucket(path[0])
			for _, name := range path[1:] {
				to = to.Bucket(name)
			}
			to.FillPercent = 1
			if v != nil {
				return to.Put(k, v)
			}
			sub := from.Bucket(k)
			made, err := to.CreateBucket(k)
			if err != nil {
				return err
			}
			if err := made.SetSequence(sub.Sequence()); err != nil {
				return err
			}
			return copyBucket(sub, append(path[:len(path):len(path)], k))
		})
	}
	err = src.ForEach(func(name []byte, b *bolt.Bucket) error {
		made, err := out.CreateBucket(name)
		if err != nil {
			return err
		}
		if err := made.SetSequence(b.Sequence()); err != nil {
			return err
		}
		return copyBucket(b, [][]byte{name})
	})
	if err != nil {
		return err
	}
	return out.Commit()
}
