package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

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

	dsn := pgtest.Start(t).NewDatabase(t)
	e := newEnv(t, false)
	if err := os.WriteFile(filepath.Join(e.dir, "dsn"), []byte(dsn), 0o600); err != nil {
		t.Fatal(err)
	}
	e.editConfig("[store]\n", "[store]\ndriver = \"postgres\"\ndsn_file = \"dsn\"\n")

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
