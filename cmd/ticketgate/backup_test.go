package main

import (
	"bytes"
	"context"
	enc "encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt" // only to plant damage the store's API cannot make

	"ticketgate/store"
	"ticketgate/store/postgres/pgtest"
)

// TestBackupUnderLoadRestoresEveryAcknowledgedTicket takes a backup through
// serve's admin API while mail pours in over SMTP and auto-replies go out,
// wipes the database, restores the backup, and finds every message
// acknowledged before the backup began; check passes before and after.
func TestBackupUnderLoadRestoresEveryAcknowledgedTicket(t *testing.T) {
	e := newEnv(t, true)
	s := e.serve()
	l := startLoad(t, e.smtp, 4)
	l.waitAcked(t, 40)
	before := l.ackedSoFar()
	backupFile := filepath.Join(t.TempDir(), "tickets.backup")
	r := e.run(nil, "backup", "-o", backupFile)
	if r.code != 0 || !strings.Contains(r.stdout, "from the running serve") {
		l.stop()
		t.Fatalf("backup under load: exit %d\nstdout %s\nstderr %s", r.code, r.stdout, r.stderr)
	}
	l.waitAcked(t, len(before)+20) // serve kept taking mail during and after the copy
	r = e.run(nil, "check")
	acked := l.stop()
	if r.code != 0 || !strings.Contains(r.stdout, "ok") {
		t.Fatalf("check through serve under load: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if code := s.stop(t); code != 0 {
		t.Fatalf("serve exit %d", code)
	}
	t.Logf("%d messages acknowledged before the backup, %d in all", len(before), len(acked))

	if err := os.Remove(e.dbPath()); err != nil {
		t.Fatal(err)
	}
	if r := e.run(nil, "restore", backupFile); r.code != 0 {
		t.Fatalf("restore: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := e.run(nil, "check"); r.code != 0 {
		t.Fatalf("check after restore: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if missing := e.missingMessages(before); len(missing) > 0 {
		t.Errorf("%d of %d messages acknowledged before the backup are not in the restored database: %v", len(missing), len(before), missing)
	}

	// A restore must not pull the database from under a running serve.
	s = e.serve()
	r = e.run(nil, "restore", backupFile)
	if r.code == 0 || !strings.Contains(r.stderr, "in use") {
		t.Errorf("restore while serve runs: exit %d, stderr %q; want a refusal naming the lock", r.code, r.stderr)
	}
	if code := s.stop(t); code != 0 {
		t.Fatalf("serve exit %d", code)
	}

	// Without serve the copy is taken from the file.
	r = e.run(nil, "backup", "-o", filepath.Join(t.TempDir(), "offline.backup"))
	if r.code != 0 || !strings.Contains(r.stdout, e.dbPath()) {
		t.Errorf("backup without serve: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// TestCheckFindsPlantedInconsistencies damages a database the way a bug
// or a bad disk would and expects check to list each problem and exit 1,
// from the file and through a running serve; restore refuses the damaged
// copy.
func TestCheckFindsPlantedInconsistencies(t *testing.T) {
	e := newEnv(t, true)
	var ids []string
	for i := range 3 {
		from := fmt.Sprintf("olga%d@customer.example", i)
		ids = append(ids, e.injectOK(message(from, "support@example.com", "Check me", fmt.Sprintf("check-%d@customer.example", i), "Body."), "-to", "support@example.com"))
	}
	if r := e.run(nil, "check"); r.code != 0 || !strings.Contains(r.stdout, "3 tickets") {
		t.Fatalf("check of a whole database: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	var victim string
	st := e.openStore()
	err := st.View(context.Background(), func(tx store.Tx) error {
		tk, err := tx.TicketFull(ids[0])
		if err != nil || len(tk.Messages) == 0 || tk.Messages[0].Raw == "" {
			return fmt.Errorf("message of %s: %v", ids[0], err)
		}
		victim = tk.Messages[0].Raw
		return nil
	})
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	db, err := bolt.Open(e.dbPath(), 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		// Its content: in blob.data under the number its count names
		// (schema 8), else in blobs under its hash.
		b, k := tx.Bucket([]byte("blobs")), []byte(victim)
		if ref := tx.Bucket([]byte("blobrefs")).Get(k); len(ref) == 16 {
			b, k = tx.Bucket([]byte("blob.data")), ref[8:]
		}
		if err := b.Delete(k); err != nil {
			return err
		}
		c := tx.Bucket([]byte("idx.status")).Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			if strings.HasSuffix(string(k), ids[1]) {
				return c.Delete()
			}
		}
		return fmt.Errorf("no idx.status key for %s", ids[1])
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}

	wantProblems := []string{"message check-0@customer.example: raw copy: blob " + victim + " is missing",
		"ticket " + ids[1] + ": no idx.status entry"}
	r := e.run(nil, "check")
	if r.code != 1 {
		t.Fatalf("check of a damaged database: exit %d, want 1\n%s%s", r.code, r.stdout, r.stderr)
	}
	for _, p := range wantProblems {
		if !strings.Contains(r.stdout, p) {
			t.Errorf("check output does not list %q:\n%s", p, r.stdout)
		}
	}

	s := e.serve()
	r = e.run(nil, "check")
	if r.code != 1 || !strings.Contains(r.stdout, wantProblems[0]) {
		t.Errorf("check through serve: exit %d, want 1 listing the missing blob\n%s%s", r.code, r.stdout, r.stderr)
	}
	damaged := filepath.Join(t.TempDir(), "damaged.backup")
	if r := e.run(nil, "backup", "-o", damaged); r.code != 0 {
		t.Fatalf("backup: exit %d\n%s", r.code, r.stderr)
	}
	s.stop(t)
	if r := e.run(nil, "restore", damaged); r.code != exDataErr || !strings.Contains(r.stdout, wantProblems[0]) {
		t.Errorf("restore of a damaged copy: exit %d, want %d listing the problems\n%s%s", r.code, exDataErr, r.stdout, r.stderr)
	}
}

// TestRestoreMigratesABackupOfAnEarlierRelease: a backup taken by an
// earlier release (schema 1, store/boltdb/testdata/v1.db) is restored as
// a copy migrated to this release's schema: its tickets, messages and
// search words are there and check passes; the backup file is unchanged.
func TestRestoreMigratesABackupOfAnEarlierRelease(t *testing.T) {
	e := newEnv(t, false)
	backup := filepath.Join(t.TempDir(), "old.backup")
	orig, err := os.ReadFile("../../store/boltdb/testdata/v1.db")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(backup, orig, 0o600); err != nil {
		t.Fatal(err)
	}
	r := e.run(nil, "restore", backup)
	if r.code != 0 || !strings.Contains(r.stdout, "has schema 1: restoring a copy migrated to schema") || !strings.Contains(r.stdout, "3 tickets") {
		t.Fatalf("restore of a schema-1 backup: exit %d\nstdout %s\nstderr %s", r.code, r.stdout, r.stderr)
	}
	if after, err := os.ReadFile(backup); err != nil || !bytes.Equal(after, orig) {
		t.Errorf("the backup file changed (%v)", err)
	}
	if r := e.run(nil, "check"); r.code != 0 {
		t.Errorf("check after restore: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := e.run(nil, "show", "HS-000001"); r.code != 0 || !strings.Contains(r.stdout, "It is on fire.") {
		t.Errorf("show HS-000001: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := e.run(nil, "tickets", "-q", "fire printer"); r.code != 0 || !strings.Contains(r.stdout, "HS-000001") || strings.Contains(r.stdout, "HS-000002") {
		t.Errorf("search after restore: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	left, _ := filepath.Glob(filepath.Join(filepath.Dir(e.dbPath()), ".*-*"))
	if len(left) > 0 {
		t.Errorf("restore left %v behind", left)
	}
}

// An operator who installed this release takes a backup before its first
// serve migrates the database, to be able to go back: backup copies the
// earlier release's database as it is (it is not migrated, so that
// release can restore it) instead of refusing it until serve has run; a
// restore of that copy with this release migrates it on the way.
func TestBackupOfAnEarlierReleasesDatabaseBeforeUpgrading(t *testing.T) {
	e := newEnv(t, false)
	orig, err := os.ReadFile("../../store/boltdb/testdata/v1.db")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(e.dbPath()), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(e.dbPath(), orig, 0o600); err != nil {
		t.Fatal(err)
	}
	backup := filepath.Join(t.TempDir(), "before-upgrade.db")
	r := e.run(nil, "backup", "-o", backup)
	if r.code != 0 || !strings.Contains(r.stdout, "3 tickets, 2 queued mails") {
		t.Fatalf("backup of a schema-1 database: exit %d\nstdout %s\nstderr %s", r.code, r.stdout, r.stderr)
	}
	if after, err := os.ReadFile(e.dbPath()); err != nil || !bytes.Equal(after, orig) {
		t.Errorf("backup changed the database (%v)", err)
	}
	other := newEnv(t, false)
	r = other.run(nil, "restore", backup)
	if r.code != 0 || !strings.Contains(r.stdout, "has schema 1: restoring a copy migrated to schema") || !strings.Contains(r.stdout, "3 tickets") {
		t.Fatalf("restore of the backup: exit %d\nstdout %s\nstderr %s", r.code, r.stdout, r.stderr)
	}
	if r := other.run(nil, "show", "HS-000001"); r.code != 0 || !strings.Contains(r.stdout, "It is on fire.") {
		t.Errorf("show HS-000001 after restoring the backup: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(backup), ".*")); len(left) > 0 {
		t.Errorf("backup left %v behind", left)
	}
}

// check and backup while serve holds the database but its token file is
// missing or not a token: 75 (try again) and 78 (fix the setup), as the
// other commands that hand over answer; never check's 1, which says the
// database has problems.
func TestCheckAndBackupWithoutAUsableTokenDoNotReportProblems(t *testing.T) {
	e := newEnv(t, true)
	s := e.serve()
	token := filepath.Join(e.dir, "data", "admin.token")
	for _, c := range []struct {
		what string
		set  func()
		code int
	}{
		{"missing", func() { os.Remove(token) }, exTempFail},
		{"not a token", func() { os.WriteFile(token, []byte("not hex\n"), 0o600) }, exConfig},
	} {
		c.set()
		if r := e.run(nil, "check"); r.code != c.code || !strings.Contains(r.stderr, "token_file") {
			t.Errorf("check, token file %s: exit %d, stdout %q, stderr %q; want %d", c.what, r.code, r.stdout, r.stderr, c.code)
		}
		if r := e.run(nil, "backup", "-o", filepath.Join(t.TempDir(), "b.db")); r.code != c.code || !strings.Contains(r.stderr, "token_file") {
			t.Errorf("backup, token file %s: exit %d, stderr %q; want %d", c.what, r.code, r.stderr, c.code)
		}
	}
	if code := s.stop(t); code != 0 {
		t.Fatalf("serve exit %d", code)
	}
}

// With PostgreSQL, backup and restore refuse (78) and name PostgreSQL's
// tools, also when the bbolt file of before the move is still at
// store.path: they copied or replaced that stale file and exited 0.
func TestBackupAndRestoreRefuseAPostgresStore(t *testing.T) {
	e := newEnv(t, false)
	e.injectOK(message("ann@customer.example", "support@example.com", "Before the move", "pg-backup-1@customer.example", "In bbolt."))
	old := filepath.Join(t.TempDir(), "bbolt.backup")
	if r := e.run(nil, "backup", "-o", old); r.code != 0 {
		t.Fatalf("backup of bbolt: exit %d, %s", r.code, r.stderr)
	}
	e.usePostgres(pgtest.Start(t).NewDatabase(t), "")
	if r := e.run(nil, "migrate", "-from", e.dbPath()); r.code != 0 {
		t.Fatalf("migrate: exit %d, %s", r.code, r.stderr)
	}
	e.injectOK(message("bob@customer.example", "support@example.com", "After the move", "pg-backup-2@customer.example", "In PostgreSQL."))

	out := filepath.Join(t.TempDir(), "pg.backup")
	if r := e.run(nil, "backup", "-o", out); r.code != exConfig || !strings.Contains(r.stderr, "pg_dump") {
		t.Errorf("backup with postgres: exit %d, stdout %q, stderr %q; want %d naming pg_dump", r.code, r.stdout, r.stderr, exConfig)
	}
	if _, err := os.Stat(out); err == nil {
		t.Errorf("backup with postgres wrote %s", out)
	}
	if r := e.run(nil, "restore", old); r.code != exConfig || !strings.Contains(r.stderr, "pg_dump") {
		t.Errorf("restore with postgres: exit %d, stdout %q, stderr %q; want %d naming pg_dump", r.code, r.stdout, r.stderr, exConfig)
	}
	if n := len(e.tickets()); n != 2 {
		t.Errorf("%d tickets in PostgreSQL after the refused restore, want 2", n)
	}
}

// backup -o naming the database itself, with serve running: the copy
// must not be renamed over the file serve writes to. It was, and every
// message serve acknowledged after went to the replaced file and was
// gone once serve started again.
func TestBackupRefusesToWriteOverTheDatabase(t *testing.T) {
	e := newEnv(t, true)
	s := e.serve()
	c, err := dialSender(e.smtp)
	if err != nil {
		t.Fatal(err)
	}
	defer c.c.Close()
	if err := c.send("ann@customer.example", "support@example.com", message("ann@customer.example", "support@example.com", "Before", "over-1@customer.example", "x")); err != nil {
		t.Fatal(err)
	}
	for _, out := range []string{e.dbPath(), "data/../data/tickets.db"} {
		if r := e.run(nil, "backup", "-o", out); r.code == 0 || !strings.Contains(r.stderr, "database") {
			t.Errorf("backup -o %s: exit %d\n%s%s; want a refusal naming the database", out, r.code, r.stdout, r.stderr)
		}
	}
	if err := c.send("ann@customer.example", "support@example.com", message("ann@customer.example", "support@example.com", "After", "over-2@customer.example", "x")); err != nil {
		t.Fatal(err)
	}
	c.c.Quit()
	if code := s.stop(t); code != 0 {
		t.Fatalf("serve exit %d", code)
	}
	if missing := e.missingMessages([]string{"over-1@customer.example", "over-2@customer.example"}); len(missing) > 0 {
		t.Errorf("acknowledged messages lost after backup -o the database: %v", missing)
	}
}

// check while a short-lived command (an inject from Postfix) holds the
// database and no serve runs: it waits for the lock, as the other
// commands do, and checks; it answered 75 at once.
func TestCheckWaitsForAnotherCommandsLock(t *testing.T) {
	e := newEnv(t, false)
	e.injectOK(message("ann@customer.example", "support@example.com", "Printer", "lock-1@customer.example", "It jams."))
	db, err := bolt.Open(e.dbPath(), 0o600, nil) // its lock, as inject takes it
	if err != nil {
		t.Fatal(err)
	}
	released := make(chan struct{})
	time.AfterFunc(time.Second, func() { db.Close(); close(released) })
	r := e.run(nil, "check")
	<-released
	if r.code != 0 || !strings.Contains(r.stdout, "ok, 1 tickets") {
		t.Errorf("check while another command held the database for a second: exit %d, stdout %q, stderr %q; want it checked", r.code, r.stdout, r.stderr)
	}
}

// TestCheckReportsADamagedFile overwrites one page of the database file,
// as a bad disk or a copy cut short would: deep in the tickets, then at
// the root every read starts from. check says the file is damaged and
// exits 1, as for any problem it finds, instead of crashing with a Go
// stack; restore refuses such a copy (65) and leaves the database alone.
func TestCheckReportsADamagedFile(t *testing.T) {
	for _, where := range []string{"tickets", "root"} {
		t.Run(where, func(t *testing.T) {
			e := newEnv(t, false)
			e.injectOK(message("olga@customer.example", "support@example.com", "Check me", "damage@customer.example", "Body."))
			e.putTickets(300)
			good, err := os.ReadFile(e.dbPath())
			if err != nil {
				t.Fatal(err)
			}
			damagePage(t, e.dbPath(), where)

			r := e.run(nil, "check")
			if r.code != 1 || !strings.Contains(r.stdout, "database file is damaged") || strings.Contains(r.stderr, "goroutine") {
				t.Errorf("check of a file with a damaged page: exit %d, want 1 saying so\nstdout %s\nstderr %s", r.code, r.stdout, r.stderr)
			}

			damaged := filepath.Join(t.TempDir(), "damaged.backup")
			if err := os.Rename(e.dbPath(), damaged); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(e.dbPath(), good, 0o640); err != nil {
				t.Fatal(err)
			}
			r = e.run(nil, "restore", damaged)
			if r.code != exDataErr || !strings.Contains(r.stderr, "damaged") || strings.Contains(r.stderr, "goroutine") {
				t.Errorf("restore of a damaged copy: exit %d, want %d saying it is damaged\nstdout %s\nstderr %s", r.code, exDataErr, r.stdout, r.stderr)
			}
			if r := e.run(nil, "check"); r.code != 0 || !strings.Contains(r.stdout, "301 tickets") {
				t.Errorf("check after the refused restore: exit %d\n%s%s", r.code, r.stdout, r.stderr)
			}
		})
	}
}

// damagePage overwrites the header of one page of the bbolt file at path:
// the root page of the tickets bucket, or the root page of the file.
func damagePage(t *testing.T, path, where string) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var page uint64
	err = db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("tickets"))
		if where == "root" {
			// The root bucket's page, from the newer meta page (the
			// page header is 16 bytes; the meta's root follows its
			// magic, version, page size and flags).
			raw, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			size := db.Info().PageSize
			meta := func(i int) []byte { return raw[i*size+16:] }
			m := meta(0)
			if txid := func(m []byte) uint64 { return enc.LittleEndian.Uint64(m[48:]) }; txid(meta(1)) > txid(m) {
				m = meta(1)
			}
			page = enc.LittleEndian.Uint64(m[16:])
			return nil
		}
		if b == nil || b.Root() == 0 {
			return fmt.Errorf("the tickets bucket has no page of its own")
		}
		page = uint64(b.Root())
		return nil
	})
	size := db.Info().PageSize
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(bytes.Repeat([]byte{0xa5}, 16), int64(page)*int64(size)); err != nil {
		t.Fatal(err)
	}
}

// A backup that is not there (a mistyped name, a copy not mounted) is
// named as missing and exits 66 (EX_NOINPUT), as migrate's -from and the
// commands without a database do; it is not called "not a ticketgate
// database", and the database stays as it is.
func TestRestoreOfAMissingFileExitsNoInput(t *testing.T) {
	e := newEnv(t, false)
	id := e.injectOK(message("ida@customer.example", "support@example.com", "Kept", "restore-missing@customer.example", "hi"))
	missing := filepath.Join(t.TempDir(), "ticketgate-2026-11-21.db")
	r := e.run(nil, "restore", missing)
	if r.code != exNoInput || !strings.Contains(r.stderr, missing) || strings.Contains(r.stderr, "not a ticketgate database") {
		t.Errorf("restore of a missing file: exit %d, stderr %q; want %d naming %s as missing", r.code, r.stderr, exNoInput, missing)
	}
	if _, err := os.Stat(missing); err == nil {
		t.Errorf("restore created %s", missing)
	}
	if tk := e.show(id); tk.Subject != "Kept" {
		t.Errorf("after the refused restore: %+v", tk)
	}
}

// A delivery report names the mail it is about by its outbox id. Mail
// sent after the backup was taken keeps its id after a restore of that
// backup: the first mail queued after the restore does not get it again,
// so a late bounce of the mail sent before the restore is not kept on
// another customer's ticket.
func TestRestoreDoesNotGiveNewMailTheIdsOfMailSentBefore(t *testing.T) {
	e := newEnv(t, true)
	s := e.serve()
	e.injectOK(message("alice@customer.example", "support@example.com", "Printer", "ids-0@customer.example", "x"))
	e.relay.WaitFor(1, 10*time.Second)
	waitEmptyOutbox(t, e)
	backup := filepath.Join(t.TempDir(), "before.db")
	if r := e.run(nil, "backup", "-o", backup); r.code != 0 {
		t.Fatalf("backup: exit %d, %s", r.code, r.stderr)
	}
	e.injectOK(message("gone@customer.example", "support@example.com", "Hello", "ids-1@customer.example", "x"),
		"-to", "support@example.com", "-from", "gone@customer.example")
	mails := e.relay.WaitFor(2, 10*time.Second)
	if len(mails) != 2 || !strings.HasPrefix(mails[1].From, "bounces+") {
		t.Fatalf("relayed %+v, want the second auto-reply with a bounce return path", mails)
	}
	waitEmptyOutbox(t, e)
	if code := s.stop(t); code != 0 {
		t.Fatalf("serve exited %d", code)
	}

	if r := e.run(nil, "restore", backup); r.code != 0 {
		t.Fatalf("restore: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	other := e.injectOK(message("bob@customer.example", "support@example.com", "VPN", "ids-2@customer.example", "down"))
	if r := e.run(dsn(mails[1].From, "ids-dsn@mx.customer.example"), "inject", "-to", mails[1].From, "-from", ""); r.code != 0 {
		t.Fatalf("inject the bounce: exit %d, %s", r.code, r.stderr)
	}
	tk := e.show(other)
	for _, m := range tk.Messages {
		if m.Kind == "system" {
			t.Errorf("%s (bob's) holds the delivery report about the mail to gone@customer.example sent before the restore: %q", other, m.Text)
		}
	}
	for _, ev := range tk.Events {
		if strings.Contains(ev.Detail, "delivery report") || ev.Type == "delivery_failed" {
			t.Errorf("%s (bob's): event %s %q", other, ev.Type, ev.Detail)
		}
	}
}

// check of a database holding a ticket whose record does not decode
// lists it with every other problem and exits 1; the retention part of
// the check, which reads every ticket, does not end it with an error
// that hides the list.
func TestCheckListsATicketThatDoesNotDecode(t *testing.T) {
	e := newEnv(t, false)
	var ids []string
	for i := range 2 {
		from := fmt.Sprintf("olga%d@customer.example", i)
		ids = append(ids, e.injectOK(message(from, "support@example.com", "Check me", fmt.Sprintf("check-%d@customer.example", i), "Body."), "-to", "support@example.com"))
	}
	db, err := bolt.Open(e.dbPath(), 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("tickets"))
		c := b.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if bytes.Contains(v, []byte(ids[0])) {
				return b.Put(bytes.Clone(k), []byte{1, 0xff})
			}
		}
		return fmt.Errorf("no record of %s", ids[0])
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	r := e.run(nil, "check")
	if r.code != 1 || !strings.Contains(r.stdout, "ticket "+ids[0]+": record does not decode") {
		t.Errorf("check: exit %d, want 1 listing the ticket\nstdout %s\nstderr %s", r.code, r.stdout, r.stderr)
	}
}

// A backup of a database holding a queued mail whose record does not
// decode is taken (check names the entry; restore -force takes it back):
// the count of queued mail the copy is checked with does not refuse it,
// which left the installation without a backup when one was needed most.
func TestBackupOfADatabaseWithADamagedQueuedMail(t *testing.T) {
	e := newEnv(t, false)
	e.injectOK(message("olga@customer.example", "support@example.com", "Back me up", "bk-1@customer.example", "Body."))
	e.injectOK(message("pete@customer.example", "support@example.com", "Me too", "bk-2@customer.example", "Body."))
	db, err := bolt.Open(e.dbPath(), 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("outbox"))
		k, _ := b.Cursor().First()
		if k == nil {
			return fmt.Errorf("nothing queued")
		}
		return b.Put(bytes.Clone(k), []byte{1, 0xff})
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "copy.db")
	if r := e.run(nil, "backup", "-o", out); r.code != 0 || !strings.Contains(r.stdout, "2 tickets") {
		t.Errorf("backup: exit %d, want 0\nstdout %s\nstderr %s", r.code, r.stdout, r.stderr)
	}
	if _, err := os.Stat(out); err != nil {
		t.Errorf("no backup written: %v", err)
	}
	if r := e.run(nil, "check"); r.code != 1 || !strings.Contains(r.stdout, "does not decode") {
		t.Errorf("check: exit %d, want 1 listing the entry\nstdout %s\nstderr %s", r.code, r.stdout, r.stderr)
	}
}

// TestCheckRefusesAConfigurationTheOtherCommandsRefuse: a request type
// given another's tag, or a template file no mail uses, makes serve,
// reload and every other command refuse the file (exit 78); check, run to
// try a changed file before the restart, said "ok" and exited 0.
func TestCheckRefusesAConfigurationTheOtherCommandsRefuse(t *testing.T) {
	e := newEnv(t, false)
	e.injectOK(message("ed@customer.example", "support@example.com", "Hi", "cc1@customer.example", "Hello."),
		"-to", "support@example.com", "-from", "ed@customer.example")
	base, err := os.ReadFile(e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	tpl := filepath.Join(e.dir, "tpl")
	if err := os.MkdirAll(tpl, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tpl, "auto-reply.txt"), []byte("Hello {{.TicketID}}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(base), "[outbound]\n") {
		t.Fatalf("the test's configuration has no [outbound]:\n%s", base)
	}
	for _, c := range []struct{ what, toml, say string }{
		{"a tag twice", string(base) + "\n[[request_type]]\nname = \"a\"\ntags = [\"Rush\"]\n[[request_type]]\nname = \"b\"\ntags = [\"Rush\"]\n", "Rush"},
		{"a misnamed template", strings.Replace(string(base), "[outbound]\n", "[outbound]\ntemplates = \""+tpl+"\"\n", 1), "auto-reply"},
	} {
		cfg := filepath.Join(e.dir, "changed.toml")
		if err := os.WriteFile(cfg, []byte(c.toml), 0o600); err != nil {
			t.Fatal(err)
		}
		if r := e.runConfig(cfg, nil, "tickets"); r.code != exConfig {
			t.Fatalf("tickets with %s: exit %d, want %d (the test's premise)\n%s", c.what, r.code, exConfig, r.stderr)
		}
		if r := e.runConfig(cfg, nil, "check"); r.code != exConfig || !strings.Contains(r.stderr, c.say) {
			t.Errorf("check with %s: exit %d, want %d naming %q\n%s%s", c.what, r.code, exConfig, c.say, r.stdout, r.stderr)
		}
	}
	if r := e.run(nil, "check"); r.code != 0 {
		t.Errorf("check of the unchanged configuration: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// Restoring the database onto itself (a FILE naming store.path, as
// backup -o may not either) is refused with 64: it would have replaced
// the copy an earlier restore kept (.pre-restore) with the database.
func TestRestoreOfTheDatabaseItselfIsRefused(t *testing.T) {
	e := newEnv(t, false)
	id := e.injectOK(message("ida@customer.example", "support@example.com", "Kept", "restore-self@customer.example", "hi"))
	db := filepath.Join(e.dir, "data", "tickets.db")
	if _, err := os.Stat(db); err != nil {
		t.Fatal(err)
	}
	r := e.run(nil, "restore", db)
	if r.code != 64 || !strings.Contains(r.stderr, "database itself") {
		t.Errorf("restore of the database onto itself: exit %d, stderr %q; want 64 saying it is the database itself", r.code, r.stderr)
	}
	if _, err := os.Stat(db + ".pre-restore"); err == nil {
		t.Errorf("restore wrote %s.pre-restore", db)
	}
	if tk := e.show(id); tk.Subject != "Kept" {
		t.Errorf("after the refused restore: %+v", tk)
	}
}

// TestCheckRefusesAnAdminSetupServeRefuses: an [admin] tls_cert that does
// not load (a renewed certificate's path mistyped) or a listen address
// not on loopback without one makes serve refuse to start (exit 78);
// check, run to try the changed file before the restart, said "ok" and
// exited 0, and the gateway stayed down after it.
func TestCheckRefusesAnAdminSetupServeRefuses(t *testing.T) {
	e := newEnv(t, false)
	e.injectOK(message("ed@customer.example", "support@example.com", "Hi", "adm1@customer.example", "Hello."),
		"-to", "support@example.com", "-from", "ed@customer.example")
	missing := filepath.Join(e.dir, "no-such")
	port := strings.TrimPrefix(freePort(t), "127.0.0.1:")
	for _, c := range []struct {
		what, listen, more, say string
		serve                   bool // run serve too (it opens no listener on 0.0.0.0 in a test)
	}{
		{"a certificate that is not there", "127.0.0.1:" + port, "tls_cert = \"" + missing + ".pem\"\ntls_key = \"" + missing + ".key\"\n", "admin.tls_cert", true},
		{"a listen address not on loopback without TLS", "0.0.0.0:" + port, "", "admin.listen", false},
	} {
		cfg := e.writeConfig("changed.toml", c.listen)
		f, err := os.OpenFile(cfg, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString(c.more)
		f.Close()
		if c.serve {
			if r := e.runConfig(cfg, nil, "serve"); r.code != exConfig {
				t.Fatalf("serve with %s: exit %d, want %d (the test's premise)\n%s", c.what, r.code, exConfig, r.stderr)
			}
		}
		if r := e.runConfig(cfg, nil, "check"); r.code != exConfig || !strings.Contains(r.stderr, c.say) {
			t.Errorf("check with %s: exit %d, want %d naming %q\n%s%s", c.what, r.code, exConfig, c.say, r.stdout, r.stderr)
		}
	}
}
