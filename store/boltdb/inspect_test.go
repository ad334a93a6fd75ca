package boltdb

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"ticketgate/rules"
	"ticketgate/store"
)

// fill writes two tickets with a message each, an outbox entry for the
// first, and makes the second due.
func fill(t *testing.T, d *DB) {
	t.Helper()
	now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	err := d.UpdateNow(context.Background(), func(tx store.Tx) error {
		for i, id := range []string{"HS-000001", "HS-000002"} {
			tk := &store.Ticket{ID: id, Status: rules.StatusNew, CreatedAt: now.Add(time.Duration(i) * time.Minute),
				Requester: "ann@customer.example", CC: []string{"bob@customer.example"}}
			if i == 1 {
				tk.Status, tk.Due = rules.StatusOpen, now.Add(time.Hour)
			}
			if err := tx.PutTicket(tk); err != nil {
				return err
			}
			raw, err := tx.PutBlob([]byte("raw of " + id))
			if err != nil {
				return err
			}
			if err := tx.AddMessage(id, &store.Message{MessageID: "<m" + id + "@x>", Raw: raw}); err != nil {
				return err
			}
		}
		return tx.Enqueue(&store.OutMail{TicketID: "HS-000001", To: []string{"a@x"}, Raw: []byte("reply"), Created: now})
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestCheckPassesAndCounts(t *testing.T) {
	d := openTest(t, filepath.Join(t.TempDir(), "t.db"))
	fill(t, d)
	problems, err := d.Check(context.Background())
	if err != nil || len(problems) != 0 {
		t.Fatalf("check of a whole database: %v %q", err, problems)
	}
	st, err := d.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.ByStatus[rules.StatusNew] != 1 || st.ByStatus[rules.StatusOpen] != 1 || st.Outbox != 1 || st.OldestDue.IsZero() {
		t.Errorf("stats: %+v", st)
	}
}

// TestCheckFindsEachKindOfDamage plants one inconsistency at a time and
// expects the line that names it.
func TestCheckFindsEachKindOfDamage(t *testing.T) {
	cases := []struct {
		name  string
		plant func(tx *bolt.Tx) error
		want  string
	}{
		{"ticket record gone", func(btx *bolt.Tx) error {
			k, _ := (&tx{ctx: bg, tx: btx}).ticketRecord("HS-000001")
			return btx.Bucket(bucketTickets).Delete(k)
		},
			"outbox 1: names ticket HS-000001, which has no record"},
		{"index entry gone", func(tx *bolt.Tx) error {
			return tx.Bucket(bucketIdxDue).Delete(dueKey(time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC), "HS-000002"))
		}, "ticket HS-000002: due 2026-03-01T10:00:00Z but no idx.due entry"},
		{"stray index entry", func(tx *bolt.Tx) error {
			return tx.Bucket(bucketIdxStatus).Put(statusKey(rules.StatusClosed, time.Now(), "HS-000009"), nil)
		}, "idx.status: entry for ticket HS-000009, which has no record"},
		{"status index disagrees", func(tx *bolt.Tx) error {
			return tx.Bucket(bucketIdxStatus).Put(statusKey(rules.StatusClosed, time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC), "HS-000001"), nil)
		}, `idx.status: entry says ticket HS-000001 is "closed", its record says "new"`},
		{"message-id of nobody", func(tx *bolt.Tx) error { return tx.Bucket(bucketIdxMsgID).Put([]byte("y@z"), []byte("HS-000404")) },
			`idx.msgid: y@z names ticket "HS-000404"`},
		{"outbox due entry gone", func(tx *bolt.Tx) error {
			k, _ := tx.Bucket(bucketIdxOutboxDue).Cursor().First()
			return tx.Bucket(bucketIdxOutboxDue).Delete(k)
		}, "outbox 1: no idx.outbox.due entry"},
		{"address entry gone", func(tx *bolt.Tx) error {
			return tx.Bucket(bucketIdxAddr).Delete(key([]byte("bob@customer.example"), []byte("HS-000002")))
		}, "ticket HS-000002: no idx.addr entry for bob@customer.example"},
		{"stray address entry", func(tx *bolt.Tx) error {
			return tx.Bucket(bucketIdxAddr).Put(key([]byte("eve@evil.example"), []byte("HS-000001")), nil)
		}, "idx.addr: eve@evil.example names ticket HS-000001, which is not theirs"},
		{"queue entry gone", func(tx *bolt.Tx) error {
			k, _ := tx.Bucket(bucketIdxOutboxQueue).Cursor().First()
			return tx.Bucket(bucketIdxOutboxQueue).Delete(k)
		}, "outbox 1: not in idx.outbox.queue"},
		{"queue entry of a mail gone", func(tx *bolt.Tx) error {
			// Ahead of every mail queued later to a@x about
			// HS-000001: it would hold them back for good.
			k, _ := tx.Bucket(bucketIdxOutboxQueue).Cursor().First()
			return tx.Bucket(bucketIdxOutboxQueue).Put(append(clone(k[:len(k)-8]), u64(9)...), nil)
		}, "idx.outbox.queue: entry for outbox 9, which is not in the outbox"},
		{"event does not decode", func(tx *bolt.Tx) error {
			return tx.Bucket(bucketEvents).Put(key([]byte("HS-000001"), u64(99)), []byte{eventV1, 0xff})
		}, "ticket HS-000001: event 99 does not decode"},
		{"rate counter does not decode", func(tx *bolt.Tx) error {
			return tx.Bucket(bucketRate).Put(rateKey("in:sender:ann@customer.example"), []byte{rateV1, 0xff})
		}, `rate counter "in:sender:ann@customer.example" does not decode`},
		{"sent record does not decode", func(tx *bolt.Tx) error {
			return tx.Bucket(bucketMeta).Put(key([]byte("sent"), u64(7)), []byte{sentV1, 0xff})
		}, "sent mail 7: record does not decode"},
		{"blob undercounted", func(tx *bolt.Tx) error {
			k, v := tx.Bucket(bucketBlobRefs).Cursor().First()
			// The count drops to 0; where the content lives stays.
			return tx.Bucket(bucketBlobRefs).Put(k, append(u64(0), v[8:]...))
		}, "counted 0 references but used 1 times"},
		{"blob content gone", func(tx *bolt.Tx) error {
			k, _ := tx.Bucket(bucketBlobData).Cursor().First()
			return tx.Bucket(bucketBlobData).Delete(k)
		}, "raw copy: blob " + sha([]byte("raw of HS-000001")) + " is missing"},
		{"blob content nobody counts", func(tx *bolt.Tx) error {
			return tx.Bucket(bucketBlobData).Put(u64(99), []byte("stray"))
		}, "blob.data 0000000000000063: no reference count"},
		{"two counts, one content", func(tx *bolt.Tx) error {
			k, v := tx.Bucket(bucketBlobRefs).Cursor().First()
			return tx.Bucket(bucketBlobRefs).Put(append(clone(k), 'x'), clone(v))
		}, "name the same content"},
		{"blob count malformed", func(tx *bolt.Tx) error {
			k, _ := tx.Bucket(bucketBlobRefs).Cursor().First()
			return tx.Bucket(bucketBlobRefs).Put(clone(k), []byte{1, 2, 3})
		}, "is malformed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := openTest(t, filepath.Join(t.TempDir(), "t.db"))
			fill(t, d)
			if err := d.db.Update(c.plant); err != nil {
				t.Fatal(err)
			}
			problems, err := d.Check(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(strings.Join(problems, "\n"), c.want) {
				t.Errorf("check does not report %q; it says:\n%s", c.want, strings.Join(problems, "\n"))
			}
		})
	}
}

// TestReplaceRefusesAnOpenDatabase: the lock of the database in use is
// honoured, and a replaced database is the copy, with the old one kept.
func TestReplaceRefusesAnOpenDatabase(t *testing.T) {
	dir := t.TempDir()
	src := openTest(t, filepath.Join(dir, "src.db"))
	fill(t, src)
	src.Close()
	dst := filepath.Join(dir, "live", "t.db")
	d, err := Open(dst, Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := Replace(dst, filepath.Join(dir, "src.db")); err == nil || !strings.Contains(err.Error(), store.ErrLocked.Error()) {
		t.Fatalf("replace of an open database: %v, want ErrLocked", err)
	}
	d.Close()
	if err := Replace(dst, filepath.Join(dir, "src.db")); err != nil {
		t.Fatal(err)
	}
	d = openTest(t, dst)
	if st, err := d.Stats(context.Background()); err != nil || st.Outbox != 1 {
		t.Errorf("replaced database: %+v %v", st, err)
	}
	if _, err := Open(dst+".pre-restore", Options{ReadOnly: true}, nil); err != nil {
		t.Errorf("the old database is not kept: %v", err)
	}
}

// TestReplaceRestoresADamagedDatabase: a database whose file was damaged
// (its first pages overwritten) is what a restore is for, and restore
// replaces it.
func TestReplaceRestoresADamagedDatabase(t *testing.T) {
	dir := t.TempDir()
	src := openTest(t, filepath.Join(dir, "src.db"))
	fill(t, src)
	src.Close()
	dst := filepath.Join(dir, "live", "t.db")
	openTest(t, dst).Close()
	f, err := os.OpenFile(dst, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(bytes.Repeat([]byte("damaged "), 2048), 0); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := Replace(dst, filepath.Join(dir, "src.db")); err != nil {
		t.Fatalf("restore over a damaged database: %v", err)
	}
	d := openTest(t, dst)
	defer d.Close()
	if st, err := d.Stats(bg); err != nil || st.Outbox != 1 || total(st.ByStatus) != 2 {
		t.Errorf("restored database: %+v %v", st, err)
	}
}

// TestOpenWaitingForARestoreOpensTheRestoredDatabase: a serve started
// while restore holds the lock waits for it, then runs on the restored
// database, not on the old one restore set aside as .pre-restore.
func TestOpenWaitingForARestoreOpensTheRestoredDatabase(t *testing.T) {
	dir := t.TempDir()
	src := openTest(t, filepath.Join(dir, "src.db"))
	fill(t, src)
	src.Close()
	backup, err := os.ReadFile(filepath.Join(dir, "src.db"))
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(dir, "live", "t.db")
	openTest(t, dst).Close() // the database before the restore: empty
	// Restore reads the backup from a pipe, so that it holds the lock
	// until the test writes the backup.
	pipe := filepath.Join(dir, "backup.pipe")
	if err := syscall.Mkfifo(pipe, 0o600); err != nil {
		t.Skip(err)
	}
	restored := make(chan error, 1)
	go func() { restored <- Replace(dst, pipe) }()
	// Restore opens the pipe once it holds the lock.
	var w *os.File
	for w == nil {
		if w, err = os.OpenFile(pipe, os.O_WRONLY|syscall.O_NONBLOCK, 0); err != nil && !errors.Is(err, syscall.ENXIO) {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond)
	}
	type opened struct {
		d   *DB
		err error
	}
	serve := make(chan opened, 1)
	go func() {
		d, err := Open(dst, Options{LockTimeout: 10 * time.Second}, nil)
		serve <- opened{d, err}
	}()
	time.Sleep(200 * time.Millisecond) // serve waits for the lock
	if _, err := w.Write(backup); err != nil {
		t.Fatal(err)
	}
	w.Close()
	if err := <-restored; err != nil {
		t.Fatal(err)
	}
	o := <-serve
	if o.err != nil {
		t.Fatal(o.err)
	}
	defer o.d.Close()
	if st, err := o.d.Stats(bg); err != nil || st.Outbox != 1 || total(st.ByStatus) != 2 {
		t.Errorf("serve opened a database with %+v %v; the restored one has 2 tickets and 1 queued mail", st, err)
	}
}

func total(m map[rules.Status]int) (n int) {
	for _, c := range m {
		n += c
	}
	return n
}
