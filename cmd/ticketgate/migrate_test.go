package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"ticketgate/store"
	"ticketgate/store/boltdb"
	"ticketgate/store/postgres/pgtest"
)

// migrate copies a bbolt installation's tickets (with messages, events
// and attachments) and queued mail into PostgreSQL; check passes on the
// result, the commands show the same tickets, and the queued mail is
// there. Run again it copies nothing; run after more mail arrived in the
// old database it copies only that (a run cut short resumes the same way).
func TestMigrateBboltIntoPostgres(t *testing.T) {
	old := newEnv(t, false)
	var ids []string
	ids = append(ids, old.injectOK(message("ann@customer.example", "support@example.com", "Printer", "m1@customer.example", "on fire")))
	ids = append(ids, old.injectOK(message("bob@customer.example", "support@example.com", "VPN", "m2@customer.example", "down")))
	if r := old.run(message("ann@customer.example", "support@example.com", "Re: Printer ["+ids[0]+"]", "m3@customer.example", "still burning"), "inject"); r.code != 0 {
		t.Fatalf("reply: exit %d, %s", r.code, r.stderr)
	}
	oldDB := filepath.Join(old.dir, "data", "tickets.db")

	e := newEnv(t, false)
	e.usePostgres(pgtest.Start(t).NewDatabase(t), "")

	r := e.run(nil, "migrate", "-from", oldDB)
	if r.code != 0 || !strings.Contains(r.stdout, "2 tickets copied, 0 already there") {
		t.Fatalf("migrate: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if r := e.run(nil, "check"); r.code != 0 || !strings.Contains(r.stdout, "ok, 2 tickets") {
		t.Errorf("check after migrate: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	var got []string
	for _, tk := range e.tickets() {
		got = append(got, tk.ID)
	}
	slices.Sort(got)
	slices.Sort(ids)
	if !slices.Equal(got, ids) {
		t.Errorf("tickets after migrate %v, want %v", got, ids)
	}
	for _, id := range ids {
		was, now := old.show(id), e.show(id)
		if len(now.Messages) != len(was.Messages) || len(now.Events) != len(was.Events) || now.Subject != was.Subject {
			t.Errorf("%s: %d messages, %d events, subject %q after migrate; was %d, %d, %q",
				id, len(now.Messages), len(now.Events), now.Subject, len(was.Messages), len(was.Events), was.Subject)
		}
	}
	queued := func(e *env) string {
		r := e.run(nil, "status")
		for _, l := range strings.Split(r.stdout, "\n") {
			if strings.HasPrefix(strings.TrimSpace(l), "outbox") {
				// "outbox: N waiting", without the oldest mail's age,
				// which grows between the two readings.
				l, _, _ = strings.Cut(l, ",")
				return l
			}
		}
		return r.stdout
	}
	if q := queued(e); q != queued(old) {
		t.Errorf("outbox after migrate %q, want %q", q, queued(old))
	}

	r = e.run(nil, "migrate", "-from", oldDB)
	if r.code != 0 || !strings.Contains(r.stdout, "0 tickets copied, 2 already there") || !strings.Contains(r.stdout, "0 outbox mails copied") {
		t.Errorf("migrate again: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	ids = append(ids, old.injectOK(message("cy@customer.example", "support@example.com", "Late", "m4@customer.example", "after the copy")))
	r = e.run(nil, "migrate", "-from", oldDB)
	if r.code != 0 || !strings.Contains(r.stdout, "1 tickets copied, 2 already there") {
		t.Errorf("migrate after new mail: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if r := e.run(nil, "check"); r.code != 0 || !strings.Contains(r.stdout, "ok, 3 tickets") {
		t.Errorf("check after the second migrate: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if len(e.tickets()) != 3 {
		t.Errorf("%d tickets, want 3", len(e.tickets()))
	}
}

// migrate copies from the database of an earlier release (schema 1,
// store/boltdb/testdata/v1.db) by way of a copy migrated beside it: all
// its tickets arrive, search finds them, and the file is unchanged.
func TestMigrateAnEarlierReleasesDatabaseIntoPostgres(t *testing.T) {
	orig, err := os.ReadFile("../../store/boltdb/testdata/v1.db")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	oldDB := filepath.Join(dir, "old.db")
	if err := os.WriteFile(oldDB, orig, 0o600); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, false)
	e.usePostgres(pgtest.Start(t).NewDatabase(t), "")
	r := e.run(nil, "migrate", "-from", oldDB)
	if r.code != 0 || !strings.Contains(r.stdout, "has schema 1: copying from a copy migrated to schema") || !strings.Contains(r.stdout, "3 tickets copied") {
		t.Fatalf("migrate from schema 1: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if r := e.run(nil, "check"); r.code != 0 || !strings.Contains(r.stdout, "ok, 3 tickets") {
		t.Errorf("check after migrate: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if r := e.run(nil, "tickets", "-q", "fire printer"); r.code != 0 || !strings.Contains(r.stdout, "HS-000001") {
		t.Errorf("search after migrate: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if after, err := os.ReadFile(oldDB); err != nil || !bytes.Equal(after, orig) {
		t.Errorf("the old database changed (%v)", err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".migrated-*")); len(left) > 0 {
		t.Errorf("migrate left %v behind", left)
	}
}

// migrate into a database that already holds another desk's mail under
// the same ids refuses, instead of skipping the old desk's queued mail
// as "already there" and losing it.
func TestMigrateRefusesATargetHoldingOtherMailUnderTheSameIds(t *testing.T) {
	old := newEnv(t, false)
	oldID := old.injectOK(message("ann@customer.example", "support@example.com", "Printer", "other-1@customer.example", "on fire"))
	oldDB := filepath.Join(old.dir, "data", "tickets.db")

	e := newEnv(t, false)
	e.usePostgres(pgtest.Start(t).NewDatabase(t), "")
	e.injectOK(message("bob@customer.example", "support@example.com", "VPN", "other-2@customer.example", "down"))

	r := e.run(nil, "migrate", "-from", oldDB)
	if r.code == 0 || !strings.Contains(r.stderr, "outbox mail 1") {
		t.Errorf("migrate into a database with other queued mail: exit %d, stdout %q, stderr %q; want a refusal naming outbox mail 1", r.code, r.stdout, r.stderr)
	}
	for _, tk := range e.tickets() {
		if tk.ID == oldID {
			t.Errorf("refused migrate copied %s all the same", oldID)
		}
	}
}

// A migrate that stops partway through the outbox (here at a queued mail
// whose body is missing) leaves the mail it copied where new mail cannot
// take its place: mail queued afterwards in PostgreSQL gets ids of its own.
func TestMigrateCutShortKeepsTheMailItCopied(t *testing.T) {
	old := newEnv(t, false)
	oldID := old.injectOK(message("ann@customer.example", "support@example.com", "Printer", "cut-1@customer.example", "on fire"))
	oldDB := filepath.Join(old.dir, "data", "tickets.db")
	db, err := boltdb.Open(oldDB, boltdb.Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.UpdateNow(context.Background(), func(tx store.Tx) error {
		return tx.Enqueue(&store.OutMail{TicketID: oldID, Kind: "notify", To: []string{"ann@customer.example"}, Created: time.Now()})
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}

	e := newEnv(t, false)
	e.usePostgres(pgtest.Start(t).NewDatabase(t), "")
	if r := e.run(nil, "migrate", "-from", oldDB); r.code == 0 || !strings.Contains(r.stderr, "outbox mail 2") {
		t.Fatalf("migrate with a queued mail missing its body: exit %d, stdout %q, stderr %q; want it to stop at outbox mail 2", r.code, r.stdout, r.stderr)
	}
	newID := e.injectOK(message("bob@customer.example", "support@example.com", "VPN", "cut-2@customer.example", "down"))
	r := e.run(nil, "outbox", "-json")
	var list []outboxEntry
	if err := json.Unmarshal([]byte(r.stdout), &list); r.code != 0 || err != nil {
		t.Fatalf("outbox: exit %d, %v, stdout %q, stderr %q", r.code, err, r.stdout, r.stderr)
	}
	tickets := map[string]int{}
	for _, m := range list {
		tickets[m.Ticket]++
	}
	if tickets[oldID] != 1 || tickets[newID] != 1 {
		t.Errorf("outbox after a cut-short migrate and new mail: %+v; want one mail for %s (copied) and one for %s (new)", list, oldID, newID)
	}
}

// A gateway already serving from PostgreSQL may open a ticket or queue a
// mail while migrate runs, under an id of the old database's (sequential
// numbers, the outbox's own ids): migrate stops with the ids instead of
// skipping the old desk's ticket and mail as "already there" and losing
// them.
func TestMigrateRefusesRecordsMadeMeanwhileUnderTheSameIds(t *testing.T) {
	old := newEnv(t, false)
	appendConfig(t, old.cfg, "\n[tickets]\nnumbers = \"sequential\"\n")
	oldID := old.injectOK(message("ann@customer.example", "support@example.com", "Printer", "meanwhile-1@customer.example", "on fire"))
	e := newEnv(t, false)
	e.usePostgres(pgtest.Start(t).NewDatabase(t), "")
	appendConfig(t, e.cfg, "\n[tickets]\nnumbers = \"sequential\"\n")

	src, err := boltdb.Open(filepath.Join(old.dir, "data", "tickets.db"), boltdb.Options{ReadOnly: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst := e.openStore()
	m := &migration{src: src, dst: dst}
	ctx := context.Background()
	if err := m.refuseOthers(ctx); err != nil {
		t.Fatalf("an empty target refused: %v", err)
	}
	// Meanwhile (after the check above, as migrate makes it before
	// copying) the new gateway opens HS-000001 and queues mail 1.
	newID := e.injectOK(message("bob@customer.example", "support@example.com", "VPN", "meanwhile-2@customer.example", "down"))
	if newID != oldID {
		t.Fatalf("the new gateway opened %s, want %s as in the old database", newID, oldID)
	}
	terr, oerr := m.tickets(ctx), m.outbox(ctx)
	dst.Close()
	if terr == nil || !strings.Contains(terr.Error(), oldID) || m.skipped != 0 {
		t.Errorf("copy tickets: %v, %d already there; want an error naming %s, none taken as already there", terr, m.skipped, oldID)
	}
	if oerr == nil || !strings.Contains(oerr.Error(), "outbox mail 1") || m.outSkipped != 0 {
		t.Errorf("copy outbox: %v, %d already there; want an error naming outbox mail 1, none taken as already there", oerr, m.outSkipped)
	}
}

// migrate run again once the new gateway sent the mail it copied does
// not queue that mail a second time: the customer would get it twice.
func TestMigrateAgainDoesNotQueueMailSentMeanwhile(t *testing.T) {
	old := newEnv(t, false)
	old.injectOK(message("ann@customer.example", "support@example.com", "Printer", "again-1@customer.example", "on fire"))
	oldDB := filepath.Join(old.dir, "data", "tickets.db")
	e := newEnv(t, false)
	e.usePostgres(pgtest.Start(t).NewDatabase(t), "")
	if r := e.run(nil, "migrate", "-from", oldDB); r.code != 0 || !strings.Contains(r.stdout, "1 outbox mails copied") {
		t.Fatalf("migrate: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	s := e.serve()
	if mails := e.relay.WaitFor(1, 10*time.Second); len(mails) != 1 {
		t.Fatalf("relayed %d mails after migrate, want the auto-reply", len(mails))
	}
	waitEmptyOutbox(t, e)
	if code := s.stop(t); code != 0 {
		t.Fatalf("serve exited %d", code)
	}
	r := e.run(nil, "migrate", "-from", oldDB)
	if r.code != 0 || !strings.Contains(r.stdout, "0 outbox mails copied, 1 already there") {
		t.Errorf("migrate again after the mail was sent: exit %d, stdout %q, stderr %q; want it taken as already there", r.code, r.stdout, r.stderr)
	}
	if r := e.run(nil, "outbox", "-json"); r.code != 0 || strings.TrimSpace(r.stdout) != "[]" {
		t.Errorf("outbox after migrating again: exit %d, %s; want nothing queued to be sent again", r.code, r.stdout)
	}
}

// waitEmptyOutbox waits (bounded) until the installation's outbox is
// empty: what was delivered is recorded.
func waitEmptyOutbox(t *testing.T, e *env) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := e.run(nil, "outbox", "-json")
		if r.code == 0 && strings.TrimSpace(r.stdout) == "[]" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("outbox not empty after 10s: exit %d, %s%s", r.code, r.stdout, r.stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// migrate carries over which addresses bounce: a customer whose address
// bounced before the move gets no automatic mail after it either, as
// before it.
func TestMigrateKeepsBouncingAddressesHeld(t *testing.T) {
	old := newEnv(t, true)
	s := old.serve()
	old.injectOK(message("gone@customer.example", "support@example.com", "Hello", "held-1@customer.example", "x"),
		"-to", "support@example.com", "-from", "gone@customer.example")
	mails := old.relay.WaitFor(1, 10*time.Second)
	if len(mails) != 1 || !strings.HasPrefix(mails[0].From, "bounces+") {
		t.Fatalf("relayed %+v, want the auto-reply with a bounce return path", mails)
	}
	if code := s.stop(t); code != 0 {
		t.Fatalf("serve exited %d", code)
	}
	if r := old.run(dsn(mails[0].From, "held-dsn@mx.customer.example"), "inject", "-to", mails[0].From, "-from", ""); r.code != 0 {
		t.Fatalf("inject the bounce: exit %d, %s", r.code, r.stderr)
	}
	again := message("gone@customer.example", "support@example.com", "Another thing", "held-2@customer.example", "y")
	if evs := eventTypes(old.show(old.injectOK(again))); !slices.Contains(evs, "auto_reply_suppressed") {
		t.Fatalf("before the move: events %v, want the auto-reply to the bouncing address suppressed", evs)
	}

	e := newEnv(t, false)
	e.usePostgres(pgtest.Start(t).NewDatabase(t), "")
	if r := e.run(nil, "migrate", "-from", filepath.Join(old.dir, "data", "tickets.db")); r.code != 0 {
		t.Fatalf("migrate: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	after := message("gone@customer.example", "support@example.com", "A third thing", "held-3@customer.example", "z")
	if evs := eventTypes(e.show(e.injectOK(after))); !slices.Contains(evs, "auto_reply_suppressed") || slices.Contains(evs, "auto_reply") {
		t.Errorf("after the move: events %v, want the auto-reply to the bouncing address suppressed, as before it", evs)
	}
}

// A delivery report for mail the bbolt gateway sent before the move names
// that mail's outbox id. The gateway on PostgreSQL hands its new mail ids
// of its own, so the report is not taken as one about another customer's
// mail: it is not kept on their ticket.
func TestMigrateDoesNotGiveNewMailTheIdsOfMailSentBefore(t *testing.T) {
	old := newEnv(t, true)
	s := old.serve()
	old.injectOK(message("gone@customer.example", "support@example.com", "Hello", "ids-1@customer.example", "x"),
		"-to", "support@example.com", "-from", "gone@customer.example")
	mails := old.relay.WaitFor(1, 10*time.Second)
	if len(mails) != 1 || !strings.HasPrefix(mails[0].From, "bounces+") {
		t.Fatalf("relayed %+v, want the auto-reply with a bounce return path", mails)
	}
	waitEmptyOutbox(t, old)
	if code := s.stop(t); code != 0 {
		t.Fatalf("serve exited %d", code)
	}

	e := newEnv(t, false)
	e.usePostgres(pgtest.Start(t).NewDatabase(t), "")
	// The same keys on the new gateway, as docs/scale.md asks.
	key, err := os.ReadFile(filepath.Join(old.dir, "data", "verp.key"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(e.dir, "data"), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(e.dir, "data", "verp.key"), key, 0o600); err != nil {
		t.Fatal(err)
	}
	if r := e.run(nil, "migrate", "-from", filepath.Join(old.dir, "data", "tickets.db")); r.code != 0 {
		t.Fatalf("migrate: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	other := e.injectOK(message("bob@customer.example", "support@example.com", "VPN", "ids-2@customer.example", "down"))
	if r := e.run(dsn(mails[0].From, "ids-dsn@mx.customer.example"), "inject", "-to", mails[0].From, "-from", ""); r.code != 0 {
		t.Fatalf("inject the bounce: exit %d, %s", r.code, r.stderr)
	}
	tk := e.show(other)
	for _, m := range tk.Messages {
		if m.Kind == "system" {
			t.Errorf("%s (bob's) holds the delivery report about the mail to gone@customer.example sent before the move: %q", other, m.Text)
		}
	}
	for _, ev := range tk.Events {
		if strings.Contains(ev.Detail, "delivery report") || ev.Type == "delivery_failed" {
			t.Errorf("%s (bob's): event %s %q", other, ev.Type, ev.Detail)
		}
	}
}

// A bbolt gateway killed just after the relay took a mail leaves a note
// of it in its hand-off log (<store.path>.handoff), and the mail queued:
// its next start takes it as delivered. migrate run instead of that start
// carries the note over, so the gateway on PostgreSQL does not send the
// customer the mail a second time.
func TestMigrateDoesNotSendAgainMailTheKilledGatewayHandedOver(t *testing.T) {
	old := newEnv(t, false)
	id := old.injectOK(message("ann@customer.example", "support@example.com", "Printer", "handed-1@customer.example", "on fire"))
	oldDB := filepath.Join(old.dir, "data", "tickets.db")
	r := old.run(nil, "outbox", "-json")
	var list []outboxEntry
	if err := json.Unmarshal([]byte(r.stdout), &list); r.code != 0 || err != nil || len(list) != 1 || list[0].Ticket != id {
		t.Fatalf("outbox before the kill: exit %d, %v, %s; want the auto-reply of %s", r.code, err, r.stdout, id)
	}
	// What the worker writes before reading the relay's answer to the
	// first attempt, when the kill came before the outcome's commit.
	note := fmt.Sprintf(`{"id":%d,"attempts":0,"to":["ann@customer.example"]}`+"\n", list[0].ID)
	if err := os.WriteFile(oldDB+".handoff", []byte(note), 0o640); err != nil {
		t.Fatal(err)
	}

	e := newEnv(t, false)
	e.usePostgres(pgtest.Start(t).NewDatabase(t), "")
	if r := e.run(nil, "migrate", "-from", oldDB); r.code != 0 {
		t.Fatalf("migrate: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	s := e.serve()
	defer s.stop(t)
	waitEmptyOutbox(t, e)
	if mails := e.relay.WaitFor(1, time.Second); len(mails) != 0 {
		t.Errorf("relayed %d mails after migrate, want none: the relay had the auto-reply before the kill", len(mails))
	}
}
