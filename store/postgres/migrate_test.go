package postgres

import (
	"context"
	"fmt"
	"testing"
	"time"

	"ticketgate/rules"
	"ticketgate/store"
	"ticketgate/store/postgres/pgtest"
)

// A schema-2 database has no ticket_addrs. Migrating builds it from the
// tickets' requesters and participants, and PutTicket keeps it after.
func TestMigrateFromV2BuildsAddressIndex(t *testing.T) {
	dsn := pgtest.Start(t).NewDatabase(t)
	d := openTest(t, dsn)
	t0 := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	err := d.UpdateNow(bg, func(tx store.Tx) error {
		for _, tk := range []*store.Ticket{
			{ID: "HS-000001", Status: rules.StatusOpen, Requester: "Ann@customer.example", CC: []string{"cy@customer.example"}, CreatedAt: t0},
			{ID: "HS-000002", Status: rules.StatusClosed, Requester: "bob@customer.example", CC: []string{"ann@customer.example"}, CreatedAt: t0},
			{ID: "HS-000003", Status: rules.StatusNew, Requester: "", CreatedAt: t0},
		} {
			if err := tx.PutTicket(tk); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.pool.Exec(bg, `DROP TABLE ticket_addrs; UPDATE ticketgate_schema SET version = 2`); err != nil {
		t.Fatal(err)
	}
	d.Close()

	d = openTest(t, dsn)
	defer d.Close()
	check := func(what string, want map[string]string) {
		t.Helper()
		d.View(bg, func(tx store.Tx) error {
			for a, w := range want {
				if ids, err := tx.TicketsOfAddress(a); err != nil || fmt.Sprint(ids) != w {
					t.Errorf("%s: tickets of %s: %v %v, want %s", what, a, ids, err, w)
				}
			}
			return nil
		})
	}
	check("migrated", map[string]string{"ann@customer.example": "[HS-000001 HS-000002]", "cy@customer.example": "[HS-000001]",
		"bob@customer.example": "[HS-000002]", "": "[]"})
	err = d.UpdateNow(bg, func(tx store.Tx) error {
		tk, err := tx.Ticket("HS-000001")
		if err != nil {
			return err
		}
		tk.CC = nil
		return tx.PutTicket(tk)
	})
	if err != nil {
		t.Fatal(err)
	}
	check("changed", map[string]string{"ann@customer.example": "[HS-000001 HS-000002]", "cy@customer.example": "[]"})
}

// A schema-5 database indexed the words of the desk's own mail (here a
// survey): a search for one of them found every ticket that got one.
// Migrating fills ticket_words again without them, and the customer's
// words are still found.
func TestMigrateFromV5DropsTheDesksOwnWords(t *testing.T) {
	dsn := pgtest.Start(t).NewDatabase(t)
	d := openTest(t, dsn)
	t0 := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	err := d.UpdateNow(bg, func(tx store.Tx) error {
		tk := &store.Ticket{ID: "HS-000001", Status: rules.StatusClosed, Subject: "Printer on fire", Requester: "ann@customer.example", CreatedAt: t0}
		if err := tx.PutTicket(tk); err != nil {
			return err
		}
		for _, m := range []*store.Message{
			{MessageID: "in@x", Direction: "in", Kind: "customer", Text: "Smoke everywhere."},
			{MessageID: "survey@x", Direction: "out", Kind: "survey", Text: "How satisfied were you with our help?"},
		} {
			if err := tx.AddMessage(tk.ID, m); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// What schema 5 indexed of the survey.
	if _, err := d.pool.Exec(bg, `INSERT INTO ticket_words (word, ticket_id, places) VALUES ('satisfied', 'HS-000001', 2);
		UPDATE ticketgate_schema SET version = 5`); err != nil {
		t.Fatal(err)
	}
	d.Close()

	d = openTest(t, dsn)
	defer d.Close()
	d.View(bg, func(tx store.Tx) error {
		for text, want := range map[string]string{"satisfied": "[]", "smoke": "[HS-000001]", "printer": "[HS-000001]", "ann": "[HS-000001]"} {
			l, _, err := tx.Tickets(store.Filter{Text: text})
			var ids []string
			for _, tk := range l {
				ids = append(ids, tk.ID)
			}
			if err != nil || fmt.Sprint(ids) != want {
				t.Errorf("search %q after migrating: %v %v, want %s", text, ids, err, want)
			}
		}
		return nil
	})
}

// A schema-6 database indexed a word as it was written in lower case
// ("οδος", with its final sigma): a search folds "ΟΔΟΣ" to "οδοσ" now,
// and would not find it. Migrating fills ticket_words again, folded.
func TestMigrateFromV6FoldsTheIndexedWords(t *testing.T) {
	dsn := pgtest.Start(t).NewDatabase(t)
	d := openTest(t, dsn)
	t0 := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	err := d.UpdateNow(bg, func(tx store.Tx) error {
		tk := &store.Ticket{ID: "HS-000001", Status: rules.StatusOpen, Subject: "Κλειστή", Requester: "nikos@customer.example", CreatedAt: t0}
		if err := tx.PutTicket(tk); err != nil {
			return err
		}
		return tx.AddMessage(tk.ID, &store.Message{MessageID: "in@x", Direction: "in", Kind: "customer", Text: "η οδος"})
	})
	if err != nil {
		t.Fatal(err)
	}
	// The rows as schema 6 wrote them.
	if _, err := d.pool.Exec(bg, `DELETE FROM ticket_words;
		INSERT INTO ticket_words (word, ticket_id, places) VALUES ('η', 'HS-000001', 2), ('οδος', 'HS-000001', 2);
		UPDATE ticketgate_schema SET version = 6`); err != nil {
		t.Fatal(err)
	}
	d.Close()

	d = openTest(t, dsn)
	defer d.Close()
	d.View(bg, func(tx store.Tx) error {
		for _, text := range []string{"ΟΔΟΣ", "οδος", "nikos"} {
			l, _, err := tx.Tickets(store.Filter{Text: text})
			if err != nil || len(l) != 1 || l[0].ID != "HS-000001" {
				t.Errorf("search %q after migrating: %d tickets %v, want HS-000001", text, len(l), err)
			}
		}
		return nil
	})
}

// TestMigrateFromV7IndexesChineseJapaneseKorean: schema 7 indexed a run
// of Chinese as one word, so a search for a word within it (打印机 in
// 你好，打印机坏了) found nothing; after the upgrade it finds the ticket.
func TestMigrateFromV7IndexesChineseJapaneseKorean(t *testing.T) {
	dsn := pgtest.Start(t).NewDatabase(t)
	d := openTest(t, dsn)
	t0 := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	err := d.UpdateNow(bg, func(tx store.Tx) error {
		tk := &store.Ticket{ID: "HS-000001", Status: rules.StatusOpen, Subject: "打印机坏了", Requester: "li@customer.example", CreatedAt: t0}
		if err := tx.PutTicket(tk); err != nil {
			return err
		}
		return tx.AddMessage(tk.ID, &store.Message{MessageID: "in@x", Direction: "in", Kind: "customer", Text: "你好，打印机坏了"})
	})
	if err != nil {
		t.Fatal(err)
	}
	// The rows as schema 7 wrote them.
	if _, err := d.pool.Exec(bg, `DELETE FROM ticket_words;
		INSERT INTO ticket_words (word, ticket_id, places) VALUES ('你好', 'HS-000001', 2), ('打印机坏了', 'HS-000001', 3), ('li', 'HS-000001', 1);
		UPDATE ticketgate_schema SET version = 7`); err != nil {
		t.Fatal(err)
	}
	d.Close()

	d = openTest(t, dsn)
	defer d.Close()
	d.View(bg, func(tx store.Tx) error {
		for _, text := range []string{"打印机", "坏了", "你好", "li"} {
			l, _, err := tx.Tickets(store.Filter{Text: text})
			if err != nil || len(l) != 1 || l[0].ID != "HS-000001" {
				t.Errorf("search %q after migrating: %d tickets %v, want HS-000001", text, len(l), err)
			}
		}
		return nil
	})
}

// TestMigrateFromV6BesideADamagedTicket: the upgrade that builds the word
// index again reads every ticket; one whose record does not decode must
// not keep the database from opening (serve from starting). It is left
// out of the index, as the indexer leaves it out.
func TestMigrateFromV6BesideADamagedTicket(t *testing.T) {
	dsn := pgtest.Start(t).NewDatabase(t)
	d := openTest(t, dsn)
	t0 := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	err := d.UpdateNow(bg, func(tx store.Tx) error {
		for i, id := range []string{"HS-000001", "HS-000002"} {
			tk := &store.Ticket{ID: id, Status: rules.StatusOpen, Subject: "invoice", Requester: "nikos@customer.example", CreatedAt: t0.Add(time.Duration(i) * time.Minute)}
			if err := tx.PutTicket(tk); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.pool.Exec(bg, `UPDATE tickets SET rec = '{"created_at": "not a time"}' WHERE id = 'HS-000001';
		UPDATE ticketgate_schema SET version = 6`); err != nil {
		t.Fatal(err)
	}
	d.Close()

	d, err = Open(bg, dsn, Options{}, nil)
	if err != nil {
		t.Fatalf("open after the upgrade beside a damaged ticket: %v", err)
	}
	defer d.Close()
	d.View(bg, func(tx store.Tx) error {
		l, _, err := tx.Tickets(store.Filter{Text: "invoice"})
		if len(l) != 1 || l[0].ID != "HS-000002" {
			t.Errorf("search after the upgrade: %d tickets %v, want HS-000002", len(l), err)
		}
		return nil
	})
}

// TestMigrateOutlastsTheOpenDeadline: the upgrade that builds the word
// index again reads every message, which takes minutes on a large
// database, while the one who opens it bounds the open (serve gives it
// 30 s) to connect and to wait for another gateway's migration. The
// migration runs to its end: cut at the deadline, it was rolled back at
// every start, and serve never started again after the upgrade.
func TestMigrateOutlastsTheOpenDeadline(t *testing.T) {
	dsn := pgtest.Start(t).NewDatabase(t)
	d := openTest(t, dsn)
	_, err := d.pool.Exec(bg, `
INSERT INTO tickets (id, status, k_created, k_updated, k_priority, k_due, completed, assignee_l, requester_l, queue_l, words_src, rec)
SELECT 'HS-' || lpad(g::text, 6, '0'), 'open', '\x00', '\x00', '\x00', '\x00', false, '', '', '', '\x00',
	json_build_object('id', 'HS-' || lpad(g::text, 6, '0'), 'status', 'open', 'subject', 'Printer ' || g, 'requester', 'c' || g || '@customer.example')
FROM generate_series(1, 1000) g;
INSERT INTO messages (ticket_id, msgid, rec)
SELECT 'HS-' || lpad((g % 1000 + 1)::text, 6, '0'), ('m' || g)::bytea,
	json_build_object('message_id', '<m' || g || '@x>', 'text', repeat('The printer on the third floor makes a noise and prints nothing. ', 40) || 'marmot' || g)
FROM generate_series(1, 10000) g;
UPDATE ticketgate_schema SET version = 7`)
	if err != nil {
		t.Fatal(err)
	}
	d.Close()

	// Time enough to connect, not to read ten thousand messages.
	ctx, cancel := context.WithTimeout(bg, 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	d, err = Open(ctx, dsn, Options{}, nil)
	if err != nil {
		t.Fatalf("open of a database whose upgrade took longer than the open's deadline: %v", err)
	}
	defer d.Close()
	t.Logf("migrated in %s", time.Since(start).Round(time.Millisecond))
	d.View(bg, func(tx store.Tx) error {
		l, _, err := tx.Tickets(store.Filter{Text: "marmot9999"})
		if err != nil || len(l) != 1 || l[0].ID != "HS-001000" {
			t.Errorf("search after the upgrade: %d tickets %v, want HS-001000", len(l), err)
		}
		return nil
	})
}
