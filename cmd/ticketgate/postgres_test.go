package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"ticketgate/rules"
	"ticketgate/store"
	"ticketgate/store/postgres"
	"ticketgate/store/postgres/pgtest"
)

// With [store] driver = "postgres", the commands use the database the DSN
// file (relative to the config file) names: on an empty database every
// command but serve and inject exits 66 and creates nothing; inject
// creates the schema and stores the message; the others then see it,
// wherever they are started. No bbolt file is made.
func TestPostgresStore(t *testing.T) {
	c := pgtest.Start(t)
	dsn := c.NewDatabase(t)
	e := newEnv(t, false)
	e.usePostgres(dsn, "")
	elsewhere := t.TempDir()
	for _, args := range [][]string{{"tickets"}, {"show", "HS-123456"}, {"sweep"}} {
		r := runIn(t, elsewhere, nil, append([]string{args[0], "-config", e.cfg}, args[1:]...)...)
		if r.code != exNoInput || !strings.Contains(r.stderr, "no ticketgate schema") {
			t.Errorf("%v on an empty database: exit %d, stderr %q; want %d", args, r.code, r.stderr, exNoInput)
		}
	}
	id := e.injectOK(message("ida@customer.example", "support@example.com", "Printer", "pg-1@customer.example", "on fire"))
	r := runIn(t, elsewhere, nil, "show", "-config", e.cfg, id)
	if r.code != 0 || !strings.Contains(r.stdout, "Printer") {
		t.Errorf("show %s from another directory: exit %d, stdout %q, stderr %q", id, r.code, r.stdout, r.stderr)
	}
	if list := e.tickets(); len(list) != 1 || list[0].ID != id {
		t.Errorf("tickets: %+v", list)
	}
	if _, err := os.Stat(filepath.Join(e.dir, "data", "tickets.db")); err == nil {
		t.Error("a bbolt file was created though the driver is postgres")
	}
}

// On an empty PostgreSQL database named by store.dsn_file, the refusal
// names that key and the file, where the operator looks for the
// connection string, not store.dsn, which the config does not set.
func TestPostgresNoSchemaNamesTheDSNFile(t *testing.T) {
	e := newEnv(t, false)
	e.usePostgres(pgtest.Start(t).NewDatabase(t), "")
	dsnFile := filepath.Join(e.dir, "dsn")
	r := e.run(nil, "tickets")
	if r.code != exNoInput || !strings.Contains(r.stderr, "store.dsn_file "+dsnFile) {
		t.Errorf("tickets on an empty database: exit %d, stderr %q; want %d naming store.dsn_file %s", r.code, r.stderr, exNoInput, dsnFile)
	}
}

// A ticket id or filter with a byte no ticket's text holds (not UTF-8,
// or zero) finds nothing with postgres, as with bbolt: the API answers
// 404 for the ticket and an empty list, not 500.
func TestPostgresAPIStrayBytesFindNothing(t *testing.T) {
	st, err := postgres.Open(context.Background(), pgtest.Start(t).NewDatabase(t), postgres.Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	err = st.UpdateNow(context.Background(), func(tx store.Tx) error {
		return tx.PutTicket(&store.Ticket{ID: "HS-000001", Status: rules.StatusOpen, Requester: "ida@customer.example", CreatedAt: time.Now()})
	})
	if err != nil {
		t.Fatal(err)
	}
	h := (&app{store: st}).adminHandler()
	for _, c := range []struct {
		path string
		code int
		body string
	}{
		{"/api/tickets/HS-00000%00", http.StatusNotFound, "not found"},
		{"/api/tickets?requester=ida%40customer.example%00", http.StatusOK, "[]"},
		{"/api/tickets?queue=%00", http.StatusOK, "[]"},
		{"/api/tickets?requester=ida%40customer.example", http.StatusOK, "HS-000001"},
	} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", c.path, nil))
		if w.Code != c.code || !strings.Contains(w.Body.String(), c.body) {
			t.Errorf("GET %s: %d %q, want %d with %q", c.path, w.Code, w.Body.String(), c.code, c.body)
		}
	}
}

func TestStoreDriverConfig(t *testing.T) {
	for _, c := range []struct{ text, err string }{
		{"[store]\ndriver = \"postgres\"\ndsn = \"host=db\"\n", ""},
		{"[store]\ndriver = \"postgres\"\ndsn_file = \"dsn\"\n", ""},
		{"[store]\ndriver = \"postgres\"\n", "store.dsn or store.dsn_file"},
		{"[store]\ndriver = \"postgres\"\ndsn = \"host=db\"\ndsn_file = \"dsn\"\n", "store.dsn or store.dsn_file"},
		{"[store]\ndriver = \"mysql\"\n", `store.driver "mysql"`},
	} {
		cfg, err := loadConfig(writeFile(t, c.text))
		if c.err == "" && err != nil || c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)) {
			t.Errorf("%q: %v, want %q", c.text, err, c.err)
		}
		if err == nil && cfg.Store.DSNFile != "" && !filepath.IsAbs(cfg.Store.DSNFile) {
			t.Errorf("dsn_file %q not resolved against the config file", cfg.Store.DSNFile)
		}
	}
}

// With PostgreSQL any process may open the database, so status used to
// read it itself even while serve ran, and said "gateway: not running"
// about a gateway that was serving. It asks the running serve of its
// configuration first, as with bbolt, and reads the database itself
// only when none answers.
func TestStatusOnPostgresAsksTheRunningServe(t *testing.T) {
	c := pgtest.Start(t)
	e := newEnv(t, true)
	e.usePostgres(c.NewDatabase(t), "")
	e.injectOK(message("ida@customer.example", "support@example.com", "Printer", "pg-status-1@customer.example", "on fire"))
	if r := e.run(nil, "status"); r.code != 0 || !strings.Contains(r.stdout, "gateway: not running") {
		t.Errorf("status without serve: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	e.serve()
	if r := e.run(nil, "status"); r.code != 0 || !strings.Contains(r.stdout, "gateway: serving") {
		t.Errorf("status with serve running: exit %d, stdout %q, stderr %q; want gateway: serving", r.code, r.stdout, r.stderr)
	}
	if r := e.run(nil, "status", "-json"); r.code != 0 || !strings.Contains(r.stdout, `"serving": true`) {
		t.Errorf("status -json with serve running: exit %d, stdout %q, stderr %q; want serving true", r.code, r.stdout, r.stderr)
	}
}
