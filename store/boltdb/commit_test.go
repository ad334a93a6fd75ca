package boltdb

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"ticketgate/store"
)

// TestConcurrentUpdatesShareCommits holds the committer inside a first
// write until 31 more writers have queued behind it: they must all land in
// the next commit, so 32 writes cost two commits (counted, not timed), and
// every one of them is there after a reopen.
func TestConcurrentUpdatesShareCommits(t *testing.T) {
	path := filepath.Join(t.TempDir(), "t.db")
	d := openTest(t, path)
	var sizes []int
	var mu sync.Mutex
	d.ObserveCommits(func(calls int, _ time.Duration) {
		mu.Lock()
		sizes = append(sizes, calls)
		mu.Unlock()
	})
	commits0, calls0 := d.CommitStats()
	entered, release := make(chan struct{}), make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	put := func(i int, wait bool) {
		errs <- d.Update(bg, func(tx store.Tx) error {
			if wait {
				close(entered)
				<-release
			}
			return tx.PutCheckpoint(store.Checkpoint{Mailbox: fmt.Sprintf("box%02d", i), UIDValidity: 1, UID: uint32(i)})
		})
	}
	wg.Go(func() { put(0, true) })
	<-entered // the committer is inside the first write
	for i := 1; i < 32; i++ {
		wg.Go(func() { put(i, false) })
	}
	waitForQueued(d, 31)
	releaseAndWait(t, release, &wg, errs)
	commits, calls := d.CommitStats()
	if commits-commits0 != 2 || calls-calls0 != 32 {
		t.Errorf("32 writes took %d commits carrying %d calls, want 2 commits", commits-commits0, calls-calls0)
	}
	mu.Lock()
	if fmt.Sprint(sizes) != "[1 31]" {
		t.Errorf("observed commit sizes %v, want [1 31]", sizes)
	}
	mu.Unlock()
	want := map[string]uint32{}
	for i := range 32 {
		want[fmt.Sprintf("box%02d", i)] = uint32(i)
	}
	boxesAfterReopen(t, d, path, want)
}

// TestFailingUpdateDoesNotFailItsGroup queues a failing write and a
// panicking one among good ones in one commit: each bad caller gets its
// own error (or panic) back, and every good write is committed.
func TestFailingUpdateDoesNotFailItsGroup(t *testing.T) {
	path := filepath.Join(t.TempDir(), "t.db")
	d := openTest(t, path)
	entered, release := make(chan struct{}), make(chan struct{})
	boom := errors.New("refused")
	gone, cancel := context.WithCancel(bg)
	results := make([]error, 8)
	var panicked any
	var wg sync.WaitGroup
	write := func(ctx context.Context, i int, fail bool) {
		results[i] = d.Update(ctx, func(tx store.Tx) error {
			if i == 0 {
				close(entered)
				<-release
			}
			if err := tx.PutCheckpoint(store.Checkpoint{Mailbox: fmt.Sprint("box", i), UID: uint32(i)}); err != nil {
				return err
			}
			if fail {
				return boom
			}
			return nil
		})
	}
	wg.Go(func() { write(bg, 0, false) })
	<-entered
	for i := 1; i < 8; i++ {
		switch i {
		case 3:
			wg.Go(func() { write(bg, i, true) })
		case 5:
			wg.Go(func() { write(gone, i, false) })
		case 6:
			wg.Go(func() {
				defer func() { panicked = recover() }()
				d.Update(bg, func(tx store.Tx) error {
					tx.PutCheckpoint(store.Checkpoint{Mailbox: "box6", UID: 6})
					panic("bad write")
				})
			})
		default:
			wg.Go(func() { write(bg, i, false) })
		}
		waitForQueued(d, i)
	}
	cancel() // write 5 gives up while queued
	close(release)
	wg.Wait()
	if panicked != "bad write" {
		t.Errorf("the panicking caller got %v", panicked)
	}
	d.Close()
	d = openTest(t, path)
	defer d.Close()
	for i := range 8 {
		var c store.Checkpoint
		d.View(bg, func(tx store.Tx) error {
			c, _ = tx.Checkpoint(fmt.Sprint("box", i))
			return nil
		})
		switch i {
		case 3:
			if !errors.Is(results[i], boom) || c.UID != 0 {
				t.Errorf("failing write: %v, stored %+v", results[i], c)
			}
		case 5:
			if !errors.Is(results[i], context.Canceled) || c.UID != 0 {
				t.Errorf("cancelled write: %v, stored %+v", results[i], c)
			}
		case 6:
			if c.UID != 0 {
				t.Errorf("panicking write stored %+v", c)
			}
		default:
			if results[i] != nil || c.UID != uint32(i) {
				t.Errorf("write %d: %v, stored %+v after reopen", i, results[i], c)
			}
		}
	}
}

// TestUpdateAfterCloseFails: Close answers what was queued and refuses
// what comes after.
func TestUpdateAfterCloseFails(t *testing.T) {
	d := openTest(t, filepath.Join(t.TempDir(), "t.db"))
	if err := d.Update(bg, func(tx store.Tx) error { return nil }); err != nil {
		t.Fatal(err)
	}
	d.Close()
	if err := d.Update(bg, func(tx store.Tx) error { return nil }); err == nil {
		t.Error("Update after Close succeeded")
	}
}

// releaseAndWait lets the committer out of the write holding it (closes
// release), waits for every writer and fails t on the first error they
// sent to errs.
func releaseAndWait(t *testing.T, release chan struct{}, wg *sync.WaitGroup, errs chan error) {
	t.Helper()
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

// holdCommitter starts a write that holds the committer until release
// is closed and then runs then, and returns once the committer is inside
// it; the write's error goes to errs.
func holdCommitter(d *DB, wg *sync.WaitGroup, errs chan error, then func(store.Tx) error) (release chan struct{}) {
	entered, release := make(chan struct{}), make(chan struct{})
	wg.Go(func() {
		errs <- d.Update(bg, func(tx store.Tx) error {
			close(entered)
			<-release
			return then(tx)
		})
	})
	<-entered
	return release
}

// waitForQueued returns once n calls wait for the committer.
func waitForQueued(d *DB, n int) {
	for len(d.updates) != n {
		time.Sleep(time.Millisecond)
	}
}

// waitForRound returns once the committer has ended round r of the
// announcements: it holds a commit and is looking for the calls
// announced in r.
func waitForRound(d *DB, r uint64) {
	for round(d) <= r {
		time.Sleep(time.Millisecond)
	}
}

// round is the committer's round of announcements now.
func round(d *DB) uint64 {
	d.expected.mu.Lock()
	defer d.expected.mu.Unlock()
	return d.expected.round
}

// TestCommitWaitsForAnnouncedWrite: a write announced (Expect) before a
// commit starts rides that commit when it comes, instead of the next:
// two writes, one commit (counted, not timed), both there after a
// reopen. The bound is an hour, so only the announcement's end can let
// the commit go.
func TestCommitWaitsForAnnouncedWrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "t.db")
	d := openTest(t, path)
	d.expectWithin = time.Hour
	commits0, calls0 := d.CommitStats()
	r := round(d)
	arrived := d.Expect() // a message is being read
	first := make(chan error, 1)
	go func() { first <- d.Update(bg, putBox("first", 1)) }()
	waitForRound(d, r) // the commit of the first write waits
	// The announced write queues and ends its announcement, as the desk
	// does (queued here by hand, so that it is queued before the end).
	u := &update{ctx: bg, gen: d.gen, db: d, fn: putBox("second", 2), done: make(chan error, 1)}
	d.updates <- u
	arrived()
	if err := <-u.done; err != nil {
		t.Fatal(err)
	}
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	commits, calls := d.CommitStats()
	if commits-commits0 != 1 || calls-calls0 != 2 {
		t.Errorf("a write and an announced one took %d commits carrying %d calls, want 1 commit", commits-commits0, calls-calls0)
	}
	boxesAfterReopen(t, d, path, map[string]uint32{"first": 1, "second": 2})
}

// TestGivenUpAnnouncementFreesTheCommit: a message announced and then
// refused (its write never comes) does not hold the commit under way,
// whose bound is an hour; neither does a caller that ends its own
// announcement before its Update, as a lone SMTP client does.
func TestGivenUpAnnouncementFreesTheCommit(t *testing.T) {
	d := openTest(t, filepath.Join(t.TempDir(), "t.db"))
	defer d.Close()
	d.expectWithin = time.Hour
	r := round(d)
	refused := d.Expect()
	done := make(chan error, 1)
	go func() { done <- d.Update(bg, putBox("other", 1)) }()
	waitForRound(d, r)
	refused()
	refused() // a second call changes nothing
	awaitCommit(t, done, "the commit still waits for a write that was given up")
	own := d.Expect()
	own()
	go func() { done <- d.Update(bg, putBox("lone", 1)) }()
	awaitCommit(t, done, "a lone write waits for its own announcement")
}

// awaitCommit fails t unless done reports a commit without error, or
// with stuck when none comes within a minute: a guard against a hung
// test, not a performance assertion.
func awaitCommit(t *testing.T, done <-chan error, stuck string) {
	t.Helper()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(time.Minute):
		t.Fatal(stuck)
	}
}

// TestLongWriteCommitsAfterItsRound holds the committer inside a first
// write while a write to be committed alone (the indexer's) and then an
// ordinary one queue behind it: the ordinary one is committed first, in a
// commit of its own, and the long one after it, although it came first.
// Before, both shared one commit in the order they came, and the ordinary
// write waited for the long one.
func TestLongWriteCommitsAfterItsRound(t *testing.T) {
	path := filepath.Join(t.TempDir(), "t.db")
	d := openTest(t, path)
	var mu sync.Mutex
	var ran []string
	put := func(name string, tx store.Tx) error {
		mu.Lock()
		ran = append(ran, name)
		mu.Unlock()
		return tx.PutCheckpoint(store.Checkpoint{Mailbox: name, UIDValidity: 1, UID: 1})
	}
	commits0, _ := d.CommitStats()
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	release := holdCommitter(d, &wg, errs, func(tx store.Tx) error { return put("first", tx) })
	wg.Go(func() { errs <- d.updateAlone(bg, func(tx store.Tx) error { return put("long", tx) }) })
	waitForQueued(d, 1)
	wg.Go(func() { errs <- d.Update(bg, func(tx store.Tx) error { return put("message", tx) }) })
	waitForQueued(d, 2)
	releaseAndWait(t, release, &wg, errs)
	if commits, _ := d.CommitStats(); commits-commits0 != 3 || fmt.Sprint(ran) != "[first message long]" {
		t.Errorf("writes ran %v in %d commits, want [first message long] in 3", ran, commits-commits0)
	}
	boxesAfterReopen(t, d, path, map[string]uint32{"first": 1, "message": 1, "long": 1})
}

// boxesAfterReopen closes d, opens the database at path again and fails
// t unless each checkpoint in want holds its UID.
func boxesAfterReopen(t *testing.T, d *DB, path string, want map[string]uint32) {
	t.Helper()
	d.Close()
	d = openTest(t, path)
	defer d.Close()
	err := d.View(bg, func(tx store.Tx) error {
		for box, uid := range want {
			if c, err := tx.Checkpoint(box); err != nil || c.UID != uid {
				t.Errorf("%s after reopen: %+v, %v; want UID %d", box, c, err, uid)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestRerunEnqueueKeepsItsMail proves that a mail queued in a commit
// rolled back for another caller's error is not overwritten by the next
// mail queued: the rerun must still take its id from the outbox.
func TestRerunEnqueueKeepsItsMail(t *testing.T) {
	d := openTest(t, filepath.Join(t.TempDir(), "t.db"))
	defer d.Close()
	first := &store.OutMail{TicketID: "HS-1", To: []string{"a@x"}, Raw: []byte("first")}
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	release := holdCommitter(d, &wg, errs, func(store.Tx) error { return nil })
	wg.Go(func() { errs <- d.Update(bg, func(tx store.Tx) error { return tx.Enqueue(first) }) })
	waitForQueued(d, 1)
	boom := errors.New("refused")
	wg.Go(func() {
		if err := d.Update(bg, func(tx store.Tx) error { return boom }); !errors.Is(err, boom) {
			errs <- fmt.Errorf("failing write: %v", err)
		}
	})
	waitForQueued(d, 2)
	releaseAndWait(t, release, &wg, errs)
	second := &store.OutMail{TicketID: "HS-2", To: []string{"b@x"}, Raw: []byte("second")}
	if err := d.Update(bg, func(tx store.Tx) error { return tx.Enqueue(second) }); err != nil {
		t.Fatal(err)
	}
	if first.ID == second.ID {
		t.Errorf("both mails got outbox id %d", first.ID)
	}
	d.View(bg, func(tx store.Tx) error {
		if raw, err := tx.OutboxRaw(first.ID); err != nil || string(raw) != "first" {
			t.Errorf("first mail after the next was queued: %q, %v", raw, err)
		}
		return nil
	})
}
