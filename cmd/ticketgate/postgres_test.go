package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

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
