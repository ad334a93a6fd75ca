package boltdb

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"ticketgate/store"
)

// TestClaimsHeldInMemory: a committed claim keeps another owner off the
// entry without rewriting its record; a claim whose transaction rolls
// back does not hold; the claims of an earlier Open, in memory or as an
// earlier release wrote them into the record, hold for nobody after a
// restart.
func TestClaimsHeldInMemory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "t.db")
	d := openTest(t, path)
	now := time.Now()
	claimed := func(d *DB, owner string) string {
		t.Helper()
		var got []*store.OutMail
		if err := d.Update(bg, func(st store.Tx) error {
			var err error
			got, err = st.ClaimOutbox(owner, now, time.Hour, 0)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		var ids []uint64
		for _, m := range got {
			ids = append(ids, m.ID)
		}
		return fmt.Sprint(ids)
	}
	record := func(d *DB, id uint64) (v []byte) {
		d.db.View(func(btx *bolt.Tx) error {
			v = clone(btx.Bucket(bucketOutbox).Get(u64(id)))
			return nil
		})
		return v
	}
	if err := d.Update(bg, func(st store.Tx) error {
		for _, to := range []string{"a@x", "b@x"} {
			if err := st.Enqueue(&store.OutMail{TicketID: "HS-1", To: []string{to}, Raw: []byte("mail\r\n")}); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	before := record(d, 1)

	// Claimed in a transaction that then fails: nobody holds it.
	failed := errors.New("later step failed")
	err := d.Update(bg, func(st store.Tx) error {
		if _, err := st.ClaimOutbox("A", now, time.Hour, 1); err != nil {
			return err
		}
		return failed
	})
	if !errors.Is(err, failed) {
		t.Fatalf("update: %v", err)
	}
	if got := claimed(d, "B"); got != "[1 2]" {
		t.Errorf("B after A's claim rolled back: %s, want [1 2]", got)
	}
	if got := claimed(d, "A"); got != "[]" {
		t.Errorf("A while B holds both: %s, want []", got)
	}
	if after := record(d, 1); !bytes.Equal(before, after) {
		t.Errorf("claiming rewrote the entry's record:\n%x\n%x", before, after)
	}
	d.View(bg, func(st store.Tx) error {
		if m, err := st.OutboxEntry(1); err != nil || m.ClaimedBy != "B" {
			t.Errorf("entry 1: %+v %v, want claimed by B", m, err)
		}
		return nil
	})

	// As an earlier release left a claim: in the record, for its Open.
	d.db.Update(func(btx *bolt.Tx) error {
		st := &tx{ctx: bg, tx: btx}
		r, err := st.outboxRec(2)
		if err != nil {
			return err
		}
		r.ClaimedBy, r.ClaimedUntil, r.ClaimGen = "old", now.Add(time.Hour), "an earlier open"
		return btx.Bucket(bucketOutbox).Put(u64(2), encodeOutboxRec(r))
	})
	d.Close()

	d = openTest(t, path)
	defer d.Close()
	d.View(bg, func(st store.Tx) error {
		for _, id := range []uint64{1, 2} {
			if m, err := st.OutboxEntry(id); err != nil || m.ClaimedBy != "" {
				t.Errorf("entry %d after a restart: %+v %v, want unclaimed", id, m, err)
			}
		}
		return nil
	})
	if got := claimed(d, "C"); got != "[1 2]" {
		t.Errorf("C after a restart, within the earlier claims' lease: %s, want [1 2]", got)
	}
}

// TestClaimKeptWhenAnotherWriteFollowsAtOnce: bbolt releases its writer
// lock before it runs a commit's OnCommit handlers, so another write
// (UpdateNow: an operator's outbox retry) may begin, and commit, before
// the claims of the commit that came first are recorded. The first
// commit's claim must hold all the same: otherwise the worker that
// claimed the mail finds it unclaimed when it records the delivery,
// drops the outcome and sends the mail again.
func TestClaimKeptWhenAnotherWriteFollowsAtOnce(t *testing.T) {
	d := openTest(t, filepath.Join(t.TempDir(), "t.db"))
	defer d.Close()
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	later := &store.OutMail{TicketID: "HS-2", To: []string{"b@x"}, Raw: []byte("later\r\n"), NextAt: now.Add(time.Hour)}
	if err := d.Update(bg, func(st store.Tx) error {
		if err := st.Enqueue(&store.OutMail{TicketID: "HS-1", To: []string{"a@x"}, Raw: []byte("due\r\n")}); err != nil {
			return err
		}
		return st.Enqueue(later)
	}); err != nil {
		t.Fatal(err)
	}
	err := d.Update(bg, func(st store.Tx) error {
		// Runs once the commit is on disk and bbolt's lock released,
		// as another writer's transaction may.
		st.(*tx).tx.OnCommit(func() {
			if err := d.UpdateNow(bg, func(st store.Tx) error {
				m, err := st.OutboxEntry(later.ID)
				if err != nil {
					return err
				}
				m.NextAt = now // retried: queued again, due now
				return st.Enqueue(m)
			}); err != nil {
				t.Errorf("retry: %v", err)
			}
		})
		got, err := st.ClaimOutbox("worker", now, time.Minute, 0)
		if err == nil && len(got) != 1 {
			t.Errorf("claimed %d entries, want the one due", len(got))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	d.View(bg, func(st store.Tx) error {
		if m, err := st.OutboxEntry(1); err != nil || m.ClaimedBy != "worker" {
			t.Errorf("entry 1 after its claim committed: %+v %v, want claimed by worker", m, err)
		}
		return nil
	})
}
