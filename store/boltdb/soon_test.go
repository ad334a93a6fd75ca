package boltdb

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"ticketgate/store"
)

// putBox writes checkpoint box with UID uid.
func putBox(box string, uid uint32) func(store.Tx) error {
	return func(tx store.Tx) error {
		return tx.PutCheckpoint(store.Checkpoint{Mailbox: box, UIDValidity: 1, UID: uid})
	}
}

// onDisk copies the database file at path as it is now (the database
// stays open, as after a crash) and reads checkpoint box from the copy.
func onDisk(t *testing.T, path, box string) uint32 {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cp := filepath.Join(t.TempDir(), "copy.db")
	if err := os.WriteFile(cp, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	d := openTest(t, cp)
	defer d.Close()
	var c store.Checkpoint
	if err := d.View(bg, func(tx store.Tx) error {
		var err error
		c, err = tx.Checkpoint(box)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return c.UID
}

// commitSizes records the calls each commit of d carries.
func commitSizes(d *DB) func() string {
	var mu sync.Mutex
	var sizes []int
	d.ObserveCommits(func(calls int, _ time.Duration) {
		mu.Lock()
		sizes = append(sizes, calls)
		mu.Unlock()
	})
	return func() string {
		mu.Lock()
		defer mu.Unlock()
		return fmt.Sprint(sizes)
	}
}

// holdSoon starts UpdateSoon(fn) and returns once the committer holds
// it: the committer is kept inside another write (one commit) until the
// call is queued behind it, then let go to take it.
func holdSoon(t *testing.T, d *DB, fn func(store.Tx) error) <-chan error {
	t.Helper()
	entered, release := make(chan struct{}), make(chan struct{})
	first := make(chan error, 1)
	go func() {
		first <- d.Update(bg, func(tx store.Tx) error {
			close(entered)
			<-release
			return putBox("first", 1)(tx)
		})
	}()
	<-entered
	soon := make(chan error, 1)
	go func() { soon <- d.UpdateSoon(bg, fn) }()
	waitForQueued(d, 1)
	close(release)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	waitForQueued(d, 0)
	return soon
}

// TestUpdateSoonRidesTheNextUpdate: a deferred write waits for the next
// Update and shares its commit (one fsync for both), and it is on disk
// when UpdateSoon returns. The bound is made an hour long, so nothing but
// that Update can have committed it.
func TestUpdateSoonRidesTheNextUpdate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "t.db")
	d := openTest(t, path)
	defer d.Close()
	d.soonWithin = time.Hour
	sizes := commitSizes(d)
	soon := holdSoon(t, d, putBox("soon", 7))
	commits, _ := d.CommitStats()
	select {
	case err := <-soon:
		t.Fatalf("UpdateSoon returned (%v) before any write came to share its commit", err)
	default:
	}
	if err := d.Update(bg, putBox("update", 8)); err != nil {
		t.Fatal(err)
	}
	if err := <-soon; err != nil {
		t.Fatal(err)
	}
	if got := onDisk(t, path, "soon"); got != 7 {
		t.Errorf("UpdateSoon returned, the file holds UID %d, want 7", got)
	}
	if after, _ := d.CommitStats(); after != commits+1 {
		t.Errorf("the Update and the deferred write took %d commits, want 1", after-commits)
	}
	if got := sizes(); got != "[1 2]" {
		t.Errorf("commit sizes %s, want [1 2] (the first write, then the Update with the deferred one)", got)
	}
}

// TestLoneUpdateSoonCommits: with nothing else written, a deferred write
// is committed on its own (after SoonWithin) and is on disk when the call
// returns.
func TestLoneUpdateSoonCommits(t *testing.T) {
	path := filepath.Join(t.TempDir(), "t.db")
	d := openTest(t, path)
	defer d.Close()
	sizes := commitSizes(d)
	if err := d.UpdateSoon(bg, putBox("lone", 3)); err != nil {
		t.Fatal(err)
	}
	if got := onDisk(t, path, "lone"); got != 3 {
		t.Errorf("UpdateSoon returned, the file holds UID %d, want 3", got)
	}
	if got := sizes(); got != "[1]" {
		t.Errorf("commit sizes %s, want [1]", got)
	}
}

// TestCloseCommitsHeldWrites: Close commits the deferred writes it holds
// instead of waiting out their bound (an hour here) or dropping them, and
// refuses later ones.
func TestCloseCommitsHeldWrites(t *testing.T) {
	path := filepath.Join(t.TempDir(), "t.db")
	d := openTest(t, path)
	d.soonWithin = time.Hour
	soon := holdSoon(t, d, putBox("held", 5))
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-soon; err != nil {
		t.Fatalf("held write at Close: %v", err)
	}
	if err := d.UpdateSoon(bg, putBox("late", 1)); err == nil {
		t.Error("UpdateSoon after Close succeeded")
	}
	d = openTest(t, path)
	defer d.Close()
	d.View(bg, func(tx store.Tx) error {
		if c, err := tx.Checkpoint("held"); err != nil || c.UID != 5 {
			t.Errorf("held write after reopen: %+v %v", c, err)
		}
		return nil
	})
}
