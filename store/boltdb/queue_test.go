package boltdb

import (
	"bytes"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"ticketgate/rules"
	"ticketgate/store"
)

// TestQueueKeptInOrderAcrossKeyLayouts: a queue whose first mail was
// queued under its name (before its ticket had a record, as every mail
// queued before schema 12 is) and whose later mail went under the
// ticket's posting is still one queue: the first waiting for a retry holds
// back the second, the ticket lists both, a changed creation time moves
// the keys, and delivering everything empties the index.
func TestQueueKeptInOrderAcrossKeyLayouts(t *testing.T) {
	d := openTest(t, filepath.Join(t.TempDir(), "t.db"))
	defer d.Close()
	now := time.Now().Round(time.Millisecond)
	tk := &store.Ticket{ID: "HS-000003", Status: rules.StatusOpen, CreatedAt: now.Add(-time.Hour)}
	enqueue := func(m *store.OutMail) {
		t.Helper()
		if err := d.Update(bg, func(st store.Tx) error { return st.Enqueue(m) }); err != nil {
			t.Fatal(err)
		}
	}
	layouts := func() (named, posted int) {
		d.db.View(func(btx *bolt.Tx) error {
			return btx.Bucket(bucketIdxOutboxQueue).ForEach(func(k, _ []byte) error {
				if k[0] == byPosting {
					posted++
				} else {
					named++
				}
				return nil
			})
		})
		return named, posted
	}
	claimed := func(at time.Time) string {
		t.Helper()
		var ids []uint64
		if err := d.Update(bg, func(st store.Tx) error {
			ms, err := st.ClaimOutbox("A", at, time.Second, 0)
			for _, m := range ms {
				ids = append(ids, m.ID)
			}
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return fmt.Sprint(ids)
	}
	listed := func() string {
		t.Helper()
		var ids []uint64
		d.View(bg, func(st store.Tx) error {
			q, _, err := st.TicketMail(tk.ID)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range q {
				ids = append(ids, m.ID)
			}
			return nil
		})
		return fmt.Sprint(ids)
	}

	// Mail 1 failed once and waits an hour.
	enqueue(&store.OutMail{TicketID: tk.ID, To: []string{"a@x"}, Raw: []byte("1"), Attempts: 1, NextAt: now.Add(time.Hour)})
	if err := d.Update(bg, func(st store.Tx) error { return st.PutTicket(tk) }); err != nil {
		t.Fatal(err)
	}
	enqueue(&store.OutMail{TicketID: tk.ID, To: []string{"a@x"}, Raw: []byte("2")})
	enqueue(&store.OutMail{TicketID: tk.ID, To: []string{"b@x"}, Raw: []byte("3")})
	if named, posted := layouts(); named != 1 || posted != 2 {
		t.Fatalf("idx.outbox.queue: %d keys by name and %d by posting, want 1 and 2", named, posted)
	}
	if got := listed(); got != "[1 2 3]" {
		t.Errorf("the ticket's queued mail: %s, want [1 2 3]", got)
	}

	// Mail 2, behind it in its queue, waits too.
	if got := claimed(now); got != "[3]" {
		t.Errorf("claimed while mail 1 waits: %s, want [3]", got)
	}

	if err := d.Update(bg, func(st store.Tx) error { return st.Dequeue(3) }); err != nil {
		t.Fatal(err)
	}
	tk.CreatedAt = now.Add(-2 * time.Hour)
	if err := d.Update(bg, func(st store.Tx) error { return st.PutTicket(tk) }); err != nil {
		t.Fatal(err)
	}
	if got := listed(); got != "[1 2]" {
		t.Errorf("the ticket's queued mail after its creation time changed: %s, want [1 2]", got)
	}
	if got := claimed(now.Add(time.Hour + 2*time.Second)); got != "[1 2]" {
		t.Errorf("claimed once mail 1 is due: %s, want [1 2]", got)
	}
	if err := d.Update(bg, func(st store.Tx) error {
		for _, id := range []uint64{1, 2} {
			if err := st.Dequeue(id); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if named, posted := layouts(); named != 0 || posted != 0 {
		t.Errorf("idx.outbox.queue after every mail left: %d keys by name, %d by posting", named, posted)
	}
	expectClean(t, d, "after the queue emptied")
}

// TestQueueOfATicketOpenedInTheSameTransaction: the mail of a ticket
// opened by the transaction that queues it goes under the posting the
// ticket's summary then gets (so a new ticket's mail is at the end of
// the index), and is found there once the ticket is written.
func TestQueueOfATicketOpenedInTheSameTransaction(t *testing.T) {
	d := openTest(t, filepath.Join(t.TempDir(), "t.db"))
	defer d.Close()
	opened := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	tk := &store.Ticket{ID: "HS-000004", Status: rules.StatusOpen, CreatedAt: opened}
	if err := d.Update(bg, func(st store.Tx) error {
		for _, to := range []string{"ann@customer.example", "ann@customer.example"} {
			if err := st.Enqueue(&store.OutMail{TicketID: tk.ID, To: []string{to}, Raw: []byte("hello"), TicketCreated: opened}); err != nil {
				return err
			}
		}
		return st.PutTicket(tk)
	}); err != nil {
		t.Fatal(err)
	}
	var keys [][]byte
	d.db.View(func(btx *bolt.Tx) error {
		return btx.Bucket(bucketIdxOutboxQueue).ForEach(func(k, _ []byte) error {
			keys = append(keys, clone(k))
			return nil
		})
	})
	want := postedQueuePrefix(posting(opened, tk.ID), []string{"ann@customer.example"})
	if len(keys) != 2 || !bytes.HasPrefix(keys[0], want) || !bytes.HasPrefix(keys[1], want) {
		t.Fatalf("idx.outbox.queue keys %q, want two under %q", keys, want)
	}
	var got []uint64
	if err := d.Update(bg, func(st store.Tx) error {
		ms, err := st.ClaimOutbox("A", time.Now(), time.Minute, 0)
		for _, m := range ms {
			got = append(got, m.ID)
		}
		if err != nil {
			return err
		}
		return st.Dequeue(1)
	}); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != "[1 2]" {
		t.Errorf("claimed %v, want [1 2]", got)
	}
	if n := keysIn(d, bucketIdxOutboxQueue); n != 1 {
		t.Errorf("%d keys left in idx.outbox.queue after one of two mails left, want 1", n)
	}
	expectClean(t, d, "with a new ticket's mail queued")
}
