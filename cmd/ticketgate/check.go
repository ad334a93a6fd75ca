package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"time"

	"ticketgate/store"
	"ticketgate/store/boltdb"
)

// checkReport is what GET /api/check answers.
type checkReport struct {
	Tickets  int      `json:"tickets"`
	Outbox   int      `json:"outbox"`
	Problems []string `json:"problems"`
	// damaged says the walk met a damaged page of the file: the last
	// problem says so, and nothing more can be read from it.
	damaged bool
}

// damagedFile is the problem line of a database file check found damaged.
func damagedFile(err error) string {
	return err.Error() + "; restore a backup"
}

// runCheck is "ticketgate check -config F": every record against its
// indexes and references. Exit 0 when all hold, 1 with the list when not.
// While serve runs the walk is done by serve (it holds the database).
func runCheck(ctx context.Context, args []string, _ io.Reader, stdout io.Writer) error {
	fs, cfgPath := flags("check")
	if err := parseFlags(fs, args, 0, 0); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return &exitError{code: 64, err: errors.New("usage: check -config F")}
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return &exitError{code: exConfig, err: err}
	}
	// What serve and every other command refuse (templates, request
	// types, agents, policy), check refuses too: it is how a changed file
	// is tried before a restart. Key files it reports as problems below.
	anyKey := func(string) ([]byte, error) { return make([]byte, 32), nil }
	if _, err := buildApp(cfg, slog.New(slog.DiscardHandler), nil, anyKey); err != nil {
		return &exitError{code: exConfig, err: err}
	}
	if err := checkAdminSetup(cfg); err != nil {
		return &exitError{code: exConfig, err: err}
	}
	if cfg.Store.Postgres() {
		return checkPostgres(ctx, cfg, stdout)
	}
	path, err := existingDB(cfg)
	if err != nil {
		return err
	}
	var rep checkReport
	db, err := openToCheck(ctx, cfg, path, &rep)
	switch {
	case errors.Is(err, boltdb.ErrDamaged):
		// Not a failure to look: what the check found.
		rep.Problems = append(rep.Problems, damagedFile(err))
	case err != nil:
		return err
	case db != nil:
		rep, err = inspect(ctx, db)
		if err == nil && !rep.damaged {
			err = rep.addRetention(ctx, db, cfg)
		}
		db.Close()
		if err != nil {
			return err
		}
	}
	rep.Problems = append(rep.Problems, keyProblems(cfg)...)
	if len(rep.Problems) > 0 {
		printProblems(stdout, rep.Problems)
		return &exitError{code: 1, err: fmt.Errorf("%s: %d inconsistencies", path, len(rep.Problems))}
	}
	fmt.Fprintf(stdout, "%s: ok, %d tickets, %d queued mails, every record and index agree\n", path, rep.Tickets, rep.Outbox)
	return nil
}

// checkAdminSetup is what serve refuses of [admin] before it starts
// (listen): a listen address off loopback without TLS, a certificate or
// key that does not load.
func checkAdminSetup(cfg *Config) error {
	if cfg.Admin.Listen == "" {
		return nil
	}
	if err := checkAdminListen(cfg); err != nil {
		return err
	}
	_, err := adminTLS(cfg)
	return err
}

// checkPostgres is check with [store] driver = "postgres": any number of
// processes may read the database, so it is asked directly, serve running
// or not.
func checkPostgres(ctx context.Context, cfg *Config, stdout io.Writer) error {
	if err := needDatabase(cfg); err != nil {
		return err
	}
	st, err := openStore(cfg, boltdb.Options{ReadOnly: true}, newLogger(os.Stderr))
	if err != nil {
		return &exitError{code: exTempFail, err: err}
	}
	defer st.Close()
	db, ok := st.(store.Inspector)
	if !ok {
		return fmt.Errorf("store %s cannot check itself", storeName(cfg))
	}
	rep, err := inspect(ctx, db)
	if err == nil {
		err = rep.addRetention(ctx, st, cfg)
	}
	if err != nil {
		return err
	}
	if _, err := warnInstances(st, ctx, stdout); err != nil {
		return err
	}
	rep.Problems = append(rep.Problems, keyProblems(cfg)...)
	if len(rep.Problems) > 0 {
		printProblems(stdout, rep.Problems)
		return &exitError{code: 1, err: fmt.Errorf("%s: %d inconsistencies", storeName(cfg), len(rep.Problems))}
	}
	fmt.Fprintf(stdout, "%s: ok, %d tickets, %d queued mails, every record and index agree\n", storeName(cfg), rep.Tickets, rep.Outbox)
	return nil
}

// addRetention adds the tickets that break the retention rules of cfg
// (desk.Policy.RetentionProblems) to the report.
func (rep *checkReport) addRetention(ctx context.Context, st store.Store, cfg *Config) error {
	p, err := policyFromConfig(cfg)
	if err != nil {
		return err
	}
	problems, err := p.RetentionProblems(ctx, st, time.Now())
	rep.Problems = append(rep.Problems, problems...)
	return err
}

// keyProblems checks the key files the database's records depend on: the
// VERP key signs bounce addresses and makes forget's pseudonyms (the same
// address gets the same one only under the same key). A missing file is
// made by serve; one that cannot be read or is not a key is a problem.
func keyProblems(cfg *Config) []string {
	f := verpKeyFile(cfg)
	if _, err := os.Stat(f); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if _, err := readKey(f); err != nil {
		return []string{fmt.Sprintf("outbound.verp_key_file %s: %v (bounces cannot be verified, forget cannot make pseudonyms)", f, err)}
	}
	return nil
}

func inspect(ctx context.Context, db store.Inspector) (checkReport, error) {
	problems, err := db.Check(ctx)
	if errors.Is(err, boltdb.ErrDamaged) {
		return checkReport{Problems: append(append([]string{}, problems...), damagedFile(err)), damaged: true}, nil
	}
	if err != nil {
		return checkReport{}, fmt.Errorf("check: %w", err)
	}
	st, err := db.Stats(ctx)
	if err != nil {
		return checkReport{}, fmt.Errorf("check: %w", err)
	}
	return checkReport{Tickets: total(st.ByStatus), Outbox: st.Outbox, Problems: append([]string{}, problems...)}, nil
}

// checkFile checks a database file no process holds (a backup).
func checkFile(path string) ([]string, error) {
	db, err := boltdb.Open(path, boltdb.Options{ReadOnly: true, LockTimeout: time.Second}, slog.New(slog.DiscardHandler))
	if err != nil {
		return nil, err
	}
	defer db.Close()
	return db.Check(context.Background())
}

func printProblems(w io.Writer, problems []string) {
	for _, p := range problems {
		fmt.Fprintln(w, p)
	}
}

// handleCheck is GET /api/check, over one read transaction while serve
// writes.
func (g *gateway) handleCheck(w http.ResponseWriter, r *http.Request) {
	rep, err := inspect(r.Context(), g.db)
	if err == nil && !rep.damaged {
		err = rep.addRetention(r.Context(), g.db, g.current().cfg)
	}
	if err != nil {
		httpError(w, http.StatusInternalServerError, err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(rep)
}

// openToCheck opens the database at path to check it, or when a running
// serve holds it, has serve check it into rep (and returns no database).
// A short-lived command holding it (an inject from Postfix) is waited
// for, as the other commands wait.
func openToCheck(ctx context.Context, cfg *Config, path string, rep *checkReport) (*boltdb.DB, error) {
	log := newLogger(os.Stderr)
	db, err := boltdb.Open(path, boltdb.Options{ReadOnly: true, LockTimeout: time.Millisecond}, log)
	if !errors.Is(err, store.ErrLocked) {
		if err != nil {
			return nil, &exitError{code: exTempFail, err: err}
		}
		return db, nil
	}
	why, err := handOver(cfg, func(c *adminClient) error { return c.do(ctx, "GET", "/api/check", nil, nil, rep) })
	var ee *exitError
	switch {
	case err == nil:
		return nil, nil
	case errors.As(err, &ee):
		return nil, err
	case !errors.Is(err, errAdminDown):
		return nil, &exitError{code: exTempFail, err: err}
	}
	db, err = boltdb.Open(path, boltdb.Options{ReadOnly: true, LockTimeout: lockWait}, log)
	if errors.Is(err, store.ErrLocked) {
		return nil, &exitError{code: exTempFail, err: fmt.Errorf("%w and %s", err, why)}
	}
	if err != nil {
		return nil, &exitError{code: exTempFail, err: err}
	}
	return db, nil
}
