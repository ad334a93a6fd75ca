package boltdb

// Since schema 12 a ticket's records are filed under its posting (keys.go:
// byPosting): these tests cover each kind, and reading what earlier
// releases filed under the ticket's id.

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

// TestTicketPartsFiledInTheOrderTicketsWereOpened: the messages and
// events of a ticket opened in the transaction that writes them go under
// its posting; a ticket whose first messages an earlier release filed
// under its id reads all of them in the order they came, erasure
// rewrites them in that order, a changed creation time moves them (and
// a ticket record of this release, also under its posting), and check
// reports an entry filed under a posting that is not its ticket's.
func TestTicketPartsFiledInTheOrderTicketsWereOpened(t *testing.T) {
	d := openTest(t, filepath.Join(t.TempDir(), "t.db"))
	defer d.Close()
	opened := time.Date(2026, 4, 1, 8, 0, 0, 0, time.UTC)
	open := func(id, text string) {
		t.Helper()
		tk := &store.Ticket{ID: id, Status: rules.StatusNew, CreatedAt: opened}
		if err := d.Update(bg, func(st store.Tx) error {
			if err := st.AddMessage(id, &store.Message{MessageID: id + ".1@x", Kind: "customer", Text: text, TicketCreated: opened}); err != nil {
				return err
			}
			if err := st.AddEvent(id, store.Event{At: opened, Type: "note", Detail: "opened", TicketCreated: opened}); err != nil {
				return err
			}
			return st.PutTicket(tk)
		}); err != nil {
			t.Fatal(err)
		}
	}
	add := func(id, text string) {
		t.Helper()
		if err := d.Update(bg, func(st store.Tx) error {
			if err := st.AddMessage(id, &store.Message{MessageID: fmt.Sprintf("%s.%d@x", id, time.Now().UnixNano()), Kind: "customer", Text: text}); err != nil {
				return err
			}
			return st.AddEvent(id, store.Event{At: opened, Type: "note", Detail: text})
		}); err != nil {
			t.Fatal(err)
		}
	}
	read := func(id string) (texts, details string) {
		t.Helper()
		d.View(bg, func(st store.Tx) error {
			tk, err := st.TicketFull(id)
			if err != nil {
				t.Fatal(err)
			}
			var ms, es []string
			for _, m := range tk.Messages {
				ms = append(ms, m.Text)
			}
			for _, e := range tk.Events {
				es = append(es, e.Detail)
			}
			texts, details = fmt.Sprint(ms), fmt.Sprint(es)
			return nil
		})
		return texts, details
	}
	posted := func(bucket []byte) (n int) {
		eachEntry(d, bucket, func(k, _ []byte) {
			if k[0] == byPosting {
				n++
			}
		})
		return n
	}

	open("HS-000005", "first")
	if m, e := posted(bucketMessages), posted(bucketEvents); m != 1 || e != 1 {
		t.Errorf("a ticket opened with its message and event: %d messages and %d events under its posting, want 1 and 1", m, e)
	}

	asBefore12(t, d) // HS-000005's first message and event as an earlier release filed them
	add("HS-000005", "second")
	add("HS-000005", "third")
	if m, e := posted(bucketMessages), posted(bucketEvents); m != 2 || e != 2 {
		t.Errorf("after an upgrade: %d messages and %d events under the posting, want 2 and 2", m, e)
	}
	want := func(when, texts, details string) {
		t.Helper()
		if gt, gd := read("HS-000005"); gt != texts || gd != details {
			t.Errorf("%s: messages %s, events %s; want %s and %s", when, gt, gd, texts, details)
		}
	}
	want("filed both ways", "[first second third]", "[opened second third]")

	if err := d.Update(bg, func(st store.Tx) error {
		return st.ReplaceMessages("HS-000005", []store.Message{{MessageID: "HS-000005.1@x", Text: "[erased]"},
			{MessageID: "2@x", Text: "second"}, {MessageID: "3@x", Text: "[erased]"}})
	}); err != nil {
		t.Fatal(err)
	}
	want("erased", "[[erased] second [erased]]", "[opened second third]")

	if err := d.Update(bg, func(st store.Tx) error {
		tk, err := st.Ticket("HS-000005")
		if err != nil {
			return err
		}
		tk.CreatedAt = opened.Add(-24 * time.Hour)
		return st.PutTicket(tk)
	}); err != nil {
		t.Fatal(err)
	}
	want("after the creation time changed", "[[erased] second [erased]]", "[opened second third]")
	expectClean(t, d, "with messages filed both ways")

	// A ticket record of this release, under its posting, moves with it.
	open("HS-000006", "sixth")
	if n := posted(bucketTickets); n != 1 {
		t.Errorf("%d ticket records under a posting, want 1 (HS-000006's)", n)
	}
	if err := d.Update(bg, func(st store.Tx) error {
		tk, err := st.Ticket("HS-000006")
		if err != nil {
			return err
		}
		tk.CreatedAt, tk.Subject = opened.Add(time.Hour), "moved"
		return st.PutTicket(tk)
	}); err != nil {
		t.Fatal(err)
	}
	d.View(bg, func(st store.Tx) error {
		if tk, err := st.TicketFull("HS-000006"); err != nil || tk.Subject != "moved" || len(tk.Messages) != 1 {
			t.Errorf("HS-000006 after its creation time changed: %+v %v", tk, err)
		}
		return nil
	})
	if n := posted(bucketTickets); n != 1 {
		t.Errorf("%d ticket records under a posting after one moved, want 1", n)
	}
	expectClean(t, d, "with a ticket record moved")

	// An entry under a posting that is not its ticket's cannot be read:
	// check says so.
	d.db.Update(func(btx *bolt.Tx) error {
		return btx.Bucket(bucketMessages).Put(append(postedPrefix(posting(opened, "HS-000005")), u64(99)...), []byte("lost"))
	})
	problems, err := d.Check(bg)
	if err != nil || !bytes.Contains([]byte(fmt.Sprint(problems)), []byte("another creation time")) {
		t.Errorf("check with a misfiled message: %q %v", problems, err)
	}
}

// TestCreationTimeGivenWrongIsSettled: when what a transaction writes
// for a ticket it opens names another creation time than the ticket is
// then written with, nothing is misfiled: the ticket's message, event
// and queued mail are read, and check finds nothing wrong.
func TestCreationTimeGivenWrongIsSettled(t *testing.T) {
	d := openTest(t, filepath.Join(t.TempDir(), "t.db"))
	defer d.Close()
	said := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
	tk := &store.Ticket{ID: "HS-000007", Status: rules.StatusNew, CreatedAt: said.Add(time.Minute)}
	if err := d.Update(bg, func(st store.Tx) error {
		if err := st.AddMessage(tk.ID, &store.Message{MessageID: "m7@x", Kind: "customer", Text: "hello", TicketCreated: said}); err != nil {
			return err
		}
		if err := st.AddEvent(tk.ID, store.Event{At: said, Type: "note", Detail: "opened", TicketCreated: said}); err != nil {
			return err
		}
		if err := st.Enqueue(&store.OutMail{TicketID: tk.ID, To: []string{"ann@customer.example"}, Raw: []byte("hi"), TicketCreated: said}); err != nil {
			return err
		}
		return st.PutTicket(tk)
	}); err != nil {
		t.Fatal(err)
	}
	d.View(bg, func(st store.Tx) error {
		full, err := st.TicketFull(tk.ID)
		if err != nil || len(full.Messages) != 1 || len(full.Events) != 1 {
			t.Errorf("HS-000007: %+v %v, want its message and event", full, err)
		}
		if queued, _, err := st.TicketMail(tk.ID); err != nil || len(queued) != 1 {
			t.Errorf("HS-000007's queued mail: %d %v, want 1", len(queued), err)
		}
		return nil
	})
	expectClean(t, d, "after a creation time given wrong")
}

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
		eachEntry(d, bucketIdxOutboxQueue, func(k, _ []byte) {
			if k[0] == byPosting {
				posted++
			} else {
				named++
			}
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
	eachEntry(d, bucketIdxOutboxQueue, func(k, _ []byte) { keys = append(keys, clone(k)) })
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

// TestSentMailIndexedUnderTheTicketsPosting: a ticket's sent mail is
// indexed under its posting (the order tickets were opened), listed
// with what an earlier release indexed under its id, in order, and still
// listed after the ticket's creation time changed; a ticket without a
// record keeps the index by id.
func TestSentMailIndexedUnderTheTicketsPosting(t *testing.T) {
	d := openTest(t, filepath.Join(t.TempDir(), "t.db"))
	defer d.Close()
	d0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tk := &store.Ticket{ID: "HS-000002", Status: rules.StatusOpen, CreatedAt: d0}
	sent := func(ticketID string, id uint64) {
		t.Helper()
		if err := d.Update(bg, func(st store.Tx) error {
			return st.Sent(&store.OutMail{ID: id, TicketID: ticketID, To: []string{"ann@customer.example"}, Kind: "reply"})
		}); err != nil {
			t.Fatal(err)
		}
	}
	listed := func(ticketID string) string {
		t.Helper()
		var ids []uint64
		d.View(bg, func(st store.Tx) error {
			_, s, err := st.TicketMail(ticketID)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range s {
				ids = append(ids, m.ID)
			}
			return nil
		})
		return fmt.Sprint(ids)
	}
	has := func(k []byte) (ok bool) {
		d.db.View(func(btx *bolt.Tx) error {
			ok = hasKey(btx.Bucket(bucketMeta), k) // the value is empty: Get cannot tell
			return nil
		})
		return ok
	}

	if err := d.Update(bg, func(st store.Tx) error { return st.PutTicket(tk) }); err != nil {
		t.Fatal(err)
	}
	sent("HS-000002", 3)
	// As a release before schema 12 indexed it: under the ticket's id.
	d.db.Update(func(btx *bolt.Tx) error {
		meta := btx.Bucket(bucketMeta)
		if err := meta.Put(key([]byte("sent"), u64(1)), []byte(`{"ticket_id":"HS-000002","to":["ann@customer.example"]}`)); err != nil {
			return err
		}
		return meta.Put(key([]byte("sentt"), []byte("HS-000002"), u64(1)), nil)
	})
	sent("HS-000009", 4) // no such ticket
	sent("HS-0000022", 5)

	if got := listed("HS-000002"); got != "[1 3]" {
		t.Errorf("sent mail of HS-000002: %s, want [1 3]", got)
	}
	if !has(key([]byte("sentp"), posting(d0, "HS-000002"), u64(3))) || has(key([]byte("sentt"), []byte("HS-000002"), u64(3))) {
		t.Error("mail 3 is not indexed under its ticket's posting alone")
	}
	if got := listed("HS-000009"); got != "[4]" {
		t.Errorf("sent mail of a ticket without a record: %s, want [4]", got)
	}

	tk.CreatedAt = d0.Add(time.Hour)
	if err := d.Update(bg, func(st store.Tx) error { return st.PutTicket(tk) }); err != nil {
		t.Fatal(err)
	}
	sent("HS-000002", 6)
	if got := listed("HS-000002"); got != "[1 3 6]" {
		t.Errorf("sent mail of HS-000002 after its creation time changed: %s, want [1 3 6]", got)
	}
	if has(key([]byte("sentp"), posting(d0, "HS-000002"), u64(3))) {
		t.Error("mail 3 is still indexed under the ticket's old posting")
	}
	expectClean(t, d, "with sent mail indexed both ways")
}

func hasKey(b *bolt.Bucket, k []byte) bool {
	got, _ := b.Cursor().Seek(k)
	return bytes.Equal(got, k)
}
