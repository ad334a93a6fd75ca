package boltdb

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"

	"ticketgate/store"
)

// Replace makes the database file at path a copy of the database file at
// from (a Backup), atomically: the copy is written beside path, synced,
// and renamed over it, so path is at every moment either the old database
// or the whole new one. The old file is kept as path+".pre-restore".
//
// It holds the database's own lock throughout and returns store.ErrLocked
// when another process (a running serve) has the database open. The new
// file keeps the old one's mode and, when run as root, its owner.
//
// The new database hands out no outbox id the old one handed out (as far
// as the old file can still be read): a bounce names the mail it is about
// by that id, and one about mail sent after the backup was taken would
// otherwise be taken as one about the next mail queued after the restore,
// and kept on that mail's ticket.
func Replace(path, from string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return fmt.Errorf("create database directory: %w", err)
	}
	_, statErr := os.Stat(path)
	existed := statErr == nil
	// Read before the lock is taken: a read of the file takes bbolt's
	// shared lock, which the lock below would refuse.
	var last uint64
	if existed {
		last = lastOutboxIDOf(path)
	}
	// bbolt's lock on the file; opening a missing file creates it, so a
	// serve starting meanwhile waits for us as well.
	lock, err := lockFile(path, 50*time.Millisecond)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return fmt.Errorf("%s: %w", path, store.ErrLocked)
	}
	if err != nil {
		return fmt.Errorf("lock %s: %w", path, err)
	}
	defer lock.Close()
	info, err := os.Stat(path)
	if err != nil {
		return err
	}
	tmp, err := copyBeside(path, from, info)
	if err != nil {
		return err
	}
	if err := reserveOutboxIDs(tmp, last); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("restore: keep the outbox ids of mail sent before: %w", err)
	}
	if existed {
		keep := path + ".pre-restore"
		os.Remove(keep)
		if err := os.Link(path, keep); err != nil {
			os.Remove(tmp)
			return fmt.Errorf("keep the old database as %s: %w", keep, err)
		}
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("replace %s: %w", path, err)
	}
	return SyncDir(filepath.Dir(path))
}

// lastOutboxIDOf returns the LastOutboxID of the database file at path,
// or 0 when it cannot be read: a restore is also for a database that is
// damaged.
func lastOutboxIDOf(path string) (n uint64) {
	defer func() {
		if recover() != nil { // a damaged page
			n = 0
		}
	}()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: 50 * time.Millisecond})
	if err != nil {
		return 0
	}
	defer db.Close()
	db.View(func(btx *bolt.Tx) error {
		n = lastOutboxID(btx)
		return nil
	})
	return n
}

// reserveOutboxIDs makes the database file at path (no process has it
// open) hand out only outbox ids above last. A copy bbolt cannot read
// (restored with -force) is left as it is.
func reserveOutboxIDs(path string, last uint64) (err error) {
	if last == 0 {
		return nil
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		return nil
	}
	defer func() {
		if recover() != nil { // a damaged page
			err = nil
		}
		if cerr := db.Close(); err == nil {
			err = cerr
		}
	}()
	return db.Update(func(btx *bolt.Tx) error {
		b := btx.Bucket(bucketOutbox)
		if b == nil || b.Sequence() >= last {
			return nil
		}
		return b.SetSequence(last)
	})
}

// lockFile takes the lock bbolt takes on the database file at path (an
// exclusive flock), creating the file when missing, waiting up to
// timeout. It does not read the file: a damaged database, which bbolt
// refuses to open (or faults on), is what a restore is for.
func lockFile(path string, timeout time.Duration) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return nil, err
	}
	for end := time.Now().Add(timeout); ; {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) || time.Now().After(end) {
			f.Close()
			return nil, err
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// copyBeside copies from into a new file in path's directory with the
// mode and owner of info, synced, and returns its name.
func copyBeside(path, from string, info os.FileInfo) (string, error) {
	src, err := os.Open(from)
	if err != nil {
		return "", err
	}
	defer src.Close()
	f, err := os.CreateTemp(filepath.Dir(path), ".restore-*")
	if err != nil {
		return "", fmt.Errorf("restore: %w", err)
	}
	_, err = io.Copy(f, src)
	if err == nil {
		err = f.Chmod(info.Mode().Perm())
	}
	if st, ok := info.Sys().(*syscall.Stat_t); ok && err == nil && os.Geteuid() == 0 {
		err = f.Chown(int(st.Uid), int(st.Gid))
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", fmt.Errorf("restore: write %s: %w", f.Name(), err)
	}
	return f.Name(), nil
}

// SyncDir makes a rename in dir durable (backup's and restore's).
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
