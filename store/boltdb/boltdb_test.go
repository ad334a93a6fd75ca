package boltdb

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"ticketgate/rules"
	"ticketgate/store"
	"ticketgate/store/storetest"
)

var bg = context.Background()

func openTest(t testing.TB, path string) *DB {
	t.Helper()
	d, err := Open(path, Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestSuite(t *testing.T) {
	storetest.Run(t,
		func(t *testing.T) store.Store { return openTest(t, filepath.Join(t.TempDir(), "sub", "dir", "t.db")) },
		func(t *testing.T, s store.Store) store.Store {
			path := s.(*DB).db.Path()
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			return openTest(t, path)
		})
}

func TestSecondWriterIsToldTheDatabaseIsLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "t.db")
	d := openTest(t, path)
	defer d.Close()
	_, err := Open(path, Options{LockTimeout: 100 * time.Millisecond}, nil)
	if !errors.Is(err, store.ErrLocked) {
		t.Fatalf("second open: %v, want ErrLocked", err)
	}
}

func TestReadOnlyOpen(t *testing.T) {
	dir := t.TempDir()
	if _, err := Open(filepath.Join(dir, "none.db"), Options{ReadOnly: true}, nil); err == nil {
		t.Fatal("read-only open created a database")
	}
	if _, err := os.Stat(filepath.Join(dir, "none.db")); !os.IsNotExist(err) {
		t.Fatalf("read-only open left a file: %v", err)
	}
	path := filepath.Join(dir, "t.db")
	d := openTest(t, path)
	if err := d.UpdateNow(bg, func(tx store.Tx) error {
		return tx.PutTicket(&store.Ticket{ID: "HS-000001", Status: rules.StatusOpen})
	}); err != nil {
		t.Fatal(err)
	}
	d.Close()
	ro, err := Open(path, Options{ReadOnly: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if err := ro.View(bg, func(tx store.Tx) error { _, err := tx.Ticket("HS-000001"); return err }); err != nil {
		t.Errorf("read-only view: %v", err)
	}
	err = ro.UpdateNow(bg, func(tx store.Tx) error { return tx.PutCheckpoint(store.Checkpoint{Mailbox: "x"}) })
	if !errors.Is(err, store.ErrReadOnly) {
		t.Errorf("write on a read-only database: %v, want ErrReadOnly", err)
	}
}

func TestPutTicketKeepsIndexesAndSkipsNoops(t *testing.T) {
	path := filepath.Join(t.TempDir(), "t.db")
	d := openTest(t, path)
	d0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	due := d0
	s := store.WithDue(d, func(*store.Ticket) time.Time { return due })
	tk := &store.Ticket{ID: "HS-000001", Status: rules.StatusOpen, CreatedAt: d0}
	if err := s.UpdateNow(bg, func(tx store.Tx) error { return tx.PutTicket(tk) }); err != nil {
		t.Fatal(err)
	}
	// Unchanged: nothing is touched.
	if err := d.db.Update(func(btx *bolt.Tx) error {
		if err := (&tx{ctx: bg, tx: btx}).PutTicket(tk); err != nil {
			return err
		}
		st := btx.Stats()
		if n := st.GetNodeCount(); n != 0 {
			t.Errorf("unchanged PutTicket materialised %d nodes", n)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// Status and due change: old entries go, new ones come.
	due = d0.Add(48 * time.Hour)
	tk.Status = rules.StatusWaiting
	if err := s.UpdateNow(bg, func(tx store.Tx) error { return tx.PutTicket(tk) }); err != nil {
		t.Fatal(err)
	}
	d.Close()
	d = openTest(t, path)
	defer d.Close()
	d.View(bg, func(tx store.Tx) error {
		if ids, err := tx.DueTickets(d0.Add(24*time.Hour), 0); err != nil || len(ids) != 0 {
			t.Errorf("due at day 1: %v %v", ids, err)
		}
		if ids, err := tx.DueTickets(due, 0); err != nil || len(ids) != 1 || ids[0] != "HS-000001" {
			t.Errorf("due at day 2: %v %v", ids, err)
		}
		open, _, _ := tx.Tickets(store.Filter{Status: rules.StatusOpen})
		waiting, _, _ := tx.Tickets(store.Filter{Status: rules.StatusWaiting})
		if len(open) != 0 || len(waiting) != 1 {
			t.Errorf("open %d waiting %d", len(open), len(waiting))
		}
		return nil
	})
	// Every index holds exactly the entries of the one ticket.
	d.db.View(func(btx *bolt.Tx) error {
		for _, b := range [][]byte{bucketIdxStatus, bucketIdxCreated, bucketIdxDue} {
			if n := btx.Bucket(b).Stats().KeyN; n != 1 {
				t.Errorf("%s has %d keys, want 1", b, n)
			}
		}
		return nil
	})
}

// raw returns the stored value of key k in bucket b.
func rawValue(t *testing.T, d *DB, b, k []byte) []byte {
	t.Helper()
	var v []byte
	d.db.View(func(btx *bolt.Tx) error { v = clone(btx.Bucket(b).Get(k)); return nil })
	if v == nil {
		t.Fatalf("no %q in %s", k, b)
	}
	return v
}

func TestRecordsAreNotHTMLEscaped(t *testing.T) {
	d := openTest(t, filepath.Join(t.TempDir(), "t.db"))
	defer d.Close()
	text := "Thanks!\n> On Monday <bob@x> wrote:\n> a & b"
	if err := d.UpdateNow(bg, func(tx store.Tx) error {
		if err := tx.PutTicket(&store.Ticket{ID: "HS-000001", Subject: "<urgent> & more", Status: rules.StatusOpen}); err != nil {
			return err
		}
		if err := tx.AddEvent("HS-000001", store.Event{Type: "note", Detail: "a > b"}); err != nil {
			return err
		}
		return tx.AddMessage("HS-000001", &store.Message{MessageID: "m1@x", Text: text, VisibleText: "Thanks!"})
	}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		bucket []byte
		want   string
	}{
		// Binary records: the subject, detail and text as they are.
		{bucketTickets, "<urgent> & more"},
		{bucketEvents, "a > b"},
		{bucketMessages, text},
	} {
		var v []byte
		if bytes.Equal(c.bucket, bucketTickets) {
			d.db.View(func(btx *bolt.Tx) error {
				_, v = (&tx{ctx: bg, tx: btx}).ticketRecord("HS-000001")
				v = clone(v)
				return nil
			})
		} else {
			v = partValue(t, d, c.bucket, "HS-000001", 1)
		}
		if !bytes.Contains(v, []byte(c.want)) || bytes.Contains(v, []byte(`\u003`)) || bytes.Contains(v, []byte(`\u0026`)) {
			t.Errorf("%s record: %s", c.bucket, v)
		}
	}
}

func TestVisibleTextIsNotStoredTwice(t *testing.T) {
	d := openTest(t, filepath.Join(t.TempDir(), "t.db"))
	defer d.Close()
	text := "Thanks, it works.\n\nOn Monday Bob wrote:\n> did it?"
	msgs := []*store.Message{
		{MessageID: "whole@x", Text: text, VisibleText: text},
		{MessageID: "part@x", Text: text, VisibleText: "it works."},
		{MessageID: "other@x", Text: text, VisibleText: "rebuilt elsewhere"},
	}
	if err := d.UpdateNow(bg, func(tx store.Tx) error {
		for _, m := range msgs {
			if err := tx.AddMessage("HS-000001", m); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for i, want := range []messageRec{{VisibleSpan: &[2]int{0, len(text)}}, {VisibleSpan: &[2]int{8, 9}}, {Visible: "rebuilt elsewhere"}} {
		v := rawValue(t, d, bucketMessages, key([]byte("HS-000001"), u64(uint64(i+1))))
		var r messageRec
		if err := decodeMessageRec(v, &r); err != nil || !reflect.DeepEqual(r.VisibleSpan, want.VisibleSpan) || r.Visible != want.Visible || bytes.Count(v, []byte("did it?")) != 1 {
			t.Errorf("message %d on disk: %q (%v), want span %v, visible text %q and the text once", i, v, err, want.VisibleSpan, want.Visible)
		}
	}
	d.View(bg, func(tx store.Tx) error {
		tk, err := tx.TicketFull("HS-000001")
		if err != nil {
			return err
		}
		for i, m := range tk.Messages {
			if m.VisibleText != msgs[i].VisibleText || m.Text != text {
				t.Errorf("message %d read back: %+v", i, m)
			}
		}
		return nil
	})
}

// TestOutboxMailIsKeptUntilDequeued: each outbox entry's mail is readable
// until the entry is dequeued, a requeue without a body keeps it, and a
// dequeue leaves nothing behind, nor takes a blob a message still uses.
func TestOutboxMailIsKeptUntilDequeued(t *testing.T) {
	path := filepath.Join(t.TempDir(), "t.db")
	d := openTest(t, path)
	defer func() { d.Close() }()
	mail := []byte("Subject: hi\r\n\r\nsame body\r\n")
	refs := func(h string) (n uint64, present bool) {
		d.View(bg, func(st store.Tx) error {
			n = st.(*tx).blobRefs(h)
			_, err := st.Blob(h)
			present = err == nil
			return nil
		})
		return n, present
	}
	raw := func(id uint64) string {
		var r []byte
		d.View(bg, func(tx store.Tx) error {
			var err error
			r, err = tx.OutboxRaw(id)
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				t.Errorf("outbox %d: %v", id, err)
			}
			return nil
		})
		return string(r)
	}
	var h string
	var a, b store.OutMail
	if err := d.UpdateNow(bg, func(tx store.Tx) error {
		// The same mail kept on a message and queued twice.
		var err error
		if h, err = tx.PutBlob(mail); err != nil {
			return err
		}
		a, b = store.OutMail{TicketID: "HS-1", Raw: mail}, store.OutMail{TicketID: "HS-2", Raw: mail}
		if err := tx.Enqueue(&a); err != nil {
			return err
		}
		return tx.Enqueue(&b)
	}); err != nil {
		t.Fatal(err)
	}
	if raw(a.ID) != string(mail) || raw(b.ID) != string(mail) {
		t.Fatalf("queued mail reads %q and %q", raw(a.ID), raw(b.ID))
	}
	// Requeueing without a body keeps the mail.
	a.Raw, a.Attempts = nil, 1
	d.UpdateNow(bg, func(tx store.Tx) error { return tx.Enqueue(&a) })
	if raw(a.ID) != string(mail) {
		t.Errorf("after requeue: %q", raw(a.ID))
	}
	d.UpdateNow(bg, func(tx store.Tx) error { return tx.Dequeue(a.ID) })
	if raw(a.ID) != "" || raw(b.ID) != string(mail) {
		t.Errorf("after one dequeue: %q and %q", raw(a.ID), raw(b.ID))
	}
	d.UpdateNow(bg, func(tx store.Tx) error { return tx.Dequeue(b.ID) })
	if n, ok := refs(h); n != 1 || !ok {
		t.Errorf("after both dequeued: %d refs, present %v (the message still uses it)", n, ok)
	}
	d.Close()
	d = openTest(t, path)
	d.View(bg, func(st store.Tx) error {
		if n := st.(*tx).bucket(bucketOutboxRaw).Stats().KeyN; n != 0 {
			t.Errorf("%d mails left after every entry was dequeued", n)
		}
		return nil
	})
	if n, ok := refs(h); n != 1 || !ok {
		t.Errorf("message's mail after reopen: %d refs, present %v", n, ok)
	}
}

// TestOutboxEntryWithABlobIsSentAndReleased: an entry queued before
// schema 7 keeps its mail in a blob, which reads and is released as
// before.
func TestOutboxEntryWithABlobIsSentAndReleased(t *testing.T) {
	d := openTest(t, filepath.Join(t.TempDir(), "t.db"))
	defer d.Close()
	mail := []byte("Subject: old\r\n\r\nqueued by an older version\r\n")
	var id uint64
	var h string
	if err := d.db.Update(func(btx *bolt.Tx) error {
		st := &tx{ctx: bg, tx: btx}
		var err error
		if h, err = st.PutBlob(mail); err != nil {
			return err
		}
		r, err := st.enqueueRec(&store.OutMail{TicketID: "HS-1", To: []string{"a@x"}, Raw: mail})
		if err != nil {
			return err
		}
		id = r.ID
		// As the older version wrote it: the mail in the blob only.
		r.RawHash = h
		if err := st.putOutboxRec(r, r); err != nil {
			return err
		}
		return btx.Bucket(bucketOutboxRaw).Delete(u64(id))
	}); err != nil {
		t.Fatal(err)
	}
	d.View(bg, func(tx store.Tx) error {
		if r, err := tx.OutboxRaw(id); err != nil || string(r) != string(mail) {
			t.Errorf("old entry reads %q, %v", r, err)
		}
		return nil
	})
	d.UpdateNow(bg, func(tx store.Tx) error { return tx.Dequeue(id) })
	d.View(bg, func(st store.Tx) error {
		if _, err := st.Blob(h); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("the old entry's blob is still stored after its dequeue: %v", err)
		}
		return nil
	})
}

func rawHashOf(t *testing.T, d *DB, id uint64) string {
	var h string
	d.db.View(func(btx *bolt.Tx) error {
		r, err := (&tx{ctx: bg, tx: btx}).outboxRec(id)
		if err != nil {
			t.Fatal(err)
		}
		h = r.RawHash
		return nil
	})
	return h
}

func TestOutboxRecordsAreSmall(t *testing.T) {
	d := openTest(t, filepath.Join(t.TempDir(), "t.db"))
	defer d.Close()
	body := bytes.Repeat([]byte("a long mail body line\r\n"), 1000)
	var m store.OutMail
	d.UpdateNow(bg, func(tx store.Tx) error {
		m = store.OutMail{TicketID: "HS-1", To: []string{"a@x"}, Raw: body}
		return tx.Enqueue(&m)
	})
	if v := rawValue(t, d, bucketOutbox, u64(m.ID)); len(v) > 400 || bytes.Contains(v, []byte("long mail")) {
		t.Errorf("outbox record holds the body (%d bytes): %.200s", len(v), v)
	}
}

// TestListingNeverReadsMessages lists tickets (views and search too)
// with the messages and events buckets gone: any read of them would fail.
func TestListingNeverReadsMessages(t *testing.T) {
	d := openTest(t, filepath.Join(t.TempDir(), "t.db"))
	defer d.Close()
	if err := d.UpdateNow(bg, func(tx store.Tx) error {
		for i := range 5 {
			id := fmt.Sprintf("HS-%06d", i)
			if err := tx.PutTicket(&store.Ticket{ID: id, Status: rules.StatusOpen, CreatedAt: time.Unix(int64(i), 0)}); err != nil {
				return err
			}
			if err := tx.AddMessage(id, &store.Message{MessageID: id, Text: "the printer smokes"}); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// Messages still queued for the search index are read by a search
	// (words.go); once indexed, none is.
	waitIndexed(t, d)
	err := d.db.Update(func(btx *bolt.Tx) error {
		for _, b := range [][]byte{bucketMessages, bucketEvents} {
			if err := btx.DeleteBucket(b); err != nil {
				return err
			}
		}
		st := &tx{ctx: bg, tx: btx}
		for _, f := range []store.Filter{{}, {Status: rules.StatusOpen, Limit: 2}, {View: store.ViewNew, Sort: store.SortPriority, Reverse: true},
			{Text: "smokes printer"}, {Text: "printer", View: store.ViewNew, Limit: 3}} {
			list, _, err := st.Tickets(f)
			if err != nil {
				return err
			}
			if len(list) == 0 || list[0].ID != "HS-000004" {
				t.Errorf("listing %+v: %d tickets", f, len(list))
			}
		}
		func() {
			defer func() { _ = recover() }()
			if _, err := st.TicketFull("HS-000001"); err == nil {
				t.Error("TicketFull read without the messages bucket: the test proves nothing")
			}
		}()
		return errors.New("roll back")
	})
	if err == nil {
		t.Fatal("expected the rollback")
	}
}

func TestBackupOpensAsACopy(t *testing.T) {
	dir := t.TempDir()
	d := openTest(t, filepath.Join(dir, "t.db"))
	defer d.Close()
	d.UpdateNow(bg, func(tx store.Tx) error {
		return tx.PutTicket(&store.Ticket{ID: "HS-000001", Subject: "kept", Status: rules.StatusOpen})
	})
	var buf bytes.Buffer
	if _, err := d.Backup(bg, &buf); err != nil {
		t.Fatal(err)
	}
	copyPath := filepath.Join(dir, "copy.db")
	if err := os.WriteFile(copyPath, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	c := openTest(t, copyPath)
	defer c.Close()
	c.View(bg, func(tx store.Tx) error {
		if tk, err := tx.Ticket("HS-000001"); err != nil || tk.Subject != "kept" {
			t.Errorf("backup: %+v %v", tk, err)
		}
		return nil
	})
}

// A message record's Message-ID is read from its first field, and from a
// record whose fields come in another order too; a record that is not a
// message is an error, not a message without an id.
func TestRecordMessageID(t *testing.T) {
	for rec, want := range map[string]string{
		`{"message_id":"a@x","direction":"in","text":"long"}`: "a@x",
		`{"direction":"in","message_id":"b@x"}`:               "b@x",
		`{"text":"no id"}`:                                    "",
	} {
		if got, err := recordMessageID([]byte(rec)); err != nil || got != want {
			t.Errorf("%s: %q, %v; want %q", rec, got, err, want)
		}
	}
	for _, rec := range []string{`{"message_id":5}`, `not json`, `[1]`} {
		if got, err := recordMessageID([]byte(rec)); err == nil {
			t.Errorf("%s: %q and no error", rec, got)
		}
	}
}

// TestBackupLargerThanACopyTransaction: a backup of a database holding
// more than copyMaxTx bytes (it is written in several transactions) has
// every file and ticket and passes check.
func TestBackupLargerThanACopyTransaction(t *testing.T) {
	dir := t.TempDir()
	d := openTest(t, filepath.Join(dir, "t.db"))
	defer d.Close()
	var files [][]byte
	var hashes []string
	for i := 0; i < 5; i++ {
		f := make([]byte, copyMaxTx/2+i)
		if _, err := rand.Read(f); err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	err := d.UpdateNow(bg, func(tx store.Tx) error {
		for i, f := range files {
			id := fmt.Sprintf("HS-%06d", i+1)
			if err := tx.PutTicket(&store.Ticket{ID: id, Subject: "file " + id, Status: rules.StatusOpen}); err != nil {
				return err
			}
			h, err := tx.PutBlob(f)
			if err != nil {
				return err
			}
			hashes = append(hashes, h)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := d.Backup(bg, &buf); err != nil {
		t.Fatal(err)
	}
	copyPath := filepath.Join(dir, "copy.db")
	if err := os.WriteFile(copyPath, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	c := openTest(t, copyPath)
	defer c.Close()
	c.View(bg, func(tx store.Tx) error {
		for i, h := range hashes {
			if b, err := tx.Blob(h); err != nil || !bytes.Equal(b, files[i]) {
				t.Errorf("file %d in the copy: %d bytes, %v; want %d bytes", i, len(b), err, len(files[i]))
			}
			if tk, err := tx.Ticket(fmt.Sprintf("HS-%06d", i+1)); err != nil || tk.Subject == "" {
				t.Errorf("ticket %d in the copy: %+v %v", i+1, tk, err)
			}
		}
		return nil
	})
	if problems, err := c.Check(bg); err != nil || len(problems) > 0 {
		t.Errorf("check of the copy: %v %v", problems, err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".backup-*")); len(left) > 0 {
		t.Errorf("backup left %v beside the database", left)
	}
}
