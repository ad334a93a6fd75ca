package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"ticketgate/store"
	"ticketgate/store/boltdb"
)

// runBackup is "ticketgate backup -config F -o FILE": a consistent copy of
// the database, taken through a running serve's admin API (serve carries
// on) or from the file when no serve holds it.
func runBackup(ctx context.Context, args []string, _ io.Reader, stdout io.Writer) error {
	fs, cfgPath := flags("backup")
	out := fs.String("o", "", "file to write the copy to (required); written beside, then renamed into place")
	if err := parseFlags(fs, args, 0, 0); err != nil {
		return err
	}
	if *out == "" || fs.NArg() > 0 {
		return &exitError{code: 64, err: errors.New("usage: backup -config F -o FILE")}
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return &exitError{code: exConfig, err: err}
	}
	if err := notPostgres(cfg); err != nil {
		return err
	}
	dst, err := filepath.Abs(*out)
	if err != nil {
		return err
	}
	if isDatabase(cfg, dst) {
		// Renamed over it, the copy would take the place of the file a
		// running serve writes to, and what serve commits after would
		// be gone once it starts again.
		return &exitError{code: 64, err: fmt.Errorf("backup -o %s is the database itself (store.path): write the copy to another file", *out)}
	}
	log := newLogger(os.Stderr)
	f, err := os.CreateTemp(filepath.Dir(dst), ".ticketgate-backup-*")
	if err != nil {
		return &exitError{code: 73, err: fmt.Errorf("backup: %w", err)} // EX_CANTCREAT
	}
	defer os.Remove(f.Name()) // gone after the rename; left by a failure
	n, how, err := backup(ctx, cfg, log, f)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	// The copy must open like a database before it replaces anything.
	st, err := backupStats(f.Name())
	if err != nil {
		return fmt.Errorf("backup written to %s does not open: %w", f.Name(), err)
	}
	if err := os.Rename(f.Name(), dst); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	// The rename is in the directory: without this, a power loss after
	// "backup written" could leave only the hidden temporary name.
	if err := boltdb.SyncDir(filepath.Dir(dst)); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	fmt.Fprintf(stdout, "%s: %d bytes, %d tickets, %d queued mails (%s)\n", dst, n, total(st.ByStatus), st.Outbox, how)
	return nil
}

// isDatabase reports whether path names the database file of cfg. A
// symbolic link to it does not: a rename replaces the link, not the
// database.
func isDatabase(cfg *Config, path string) bool {
	name, err := os.Lstat(path)
	if err != nil {
		return false
	}
	db, err := os.Stat(cfg.Store.Path)
	return err == nil && os.SameFile(name, db)
}

// notPostgres refuses backup and restore with a PostgreSQL store: they
// copy a bbolt file, and the one at store.path (from before a move to
// PostgreSQL) is not the database the gateways use.
func notPostgres(cfg *Config) error {
	if !cfg.Store.Postgres() {
		return nil
	}
	return &exitError{code: exConfig, err: fmt.Errorf("%s has store.driver \"postgres\": backup and restore copy a bbolt database; use PostgreSQL's own tools (pg_dump, pg_restore, pg_basebackup)", cfg.source())}
}

// backup writes the copy to w and says how it was taken.
func backup(ctx context.Context, cfg *Config, log *slog.Logger, w io.Writer) (int64, string, error) {
	path, err := existingDB(cfg)
	if err != nil {
		return 0, "", err
	}
	db, err := boltdb.Open(path, boltdb.Options{ReadOnly: true, LockTimeout: time.Millisecond}, log)
	if errors.Is(err, store.ErrLocked) {
		if cfg.Admin.Listen == "" {
			return 0, "", &exitError{code: exTempFail, err: fmt.Errorf("%w, and admin.listen is off so serve cannot be asked for a copy", err)}
		}
		c, err := newAdminClient(cfg)
		if err != nil {
			return 0, "", adminClientExit(cfg, err)
		}
		n, err := fetchBackup(ctx, c, w)
		return n, "from the running serve at " + cfg.Admin.Listen, err
	}
	var old *boltdb.OldSchemaError
	if errors.As(err, &old) {
		// An earlier release's database, before this release's serve
		// migrates it: copied as it is, so that release can restore it.
		n, err := boltdb.BackupFile(path, w, time.Millisecond)
		if errors.Is(err, store.ErrLocked) {
			err = &exitError{code: exTempFail, err: err}
		}
		return n, fmt.Sprintf("from %s, schema %d of an earlier release, not migrated", path, old.Have), err
	}
	if err != nil {
		return 0, "", &exitError{code: exTempFail, err: err}
	}
	defer db.Close()
	n, err := db.Backup(ctx, w)
	return n, "from " + path, err
}

// existingDB returns the absolute path of the database, or exit 66 when
// there is none (a backup or check must not create one).
func existingDB(cfg *Config) (string, error) {
	path, err := filepath.Abs(cfg.Store.Path)
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(path); err != nil {
		return "", &exitError{code: 66, err: fmt.Errorf("no database at %s: %w", path, err)} // EX_NOINPUT
	}
	return path, nil
}

// fetchBackup streams GET /api/backup into w. A copy cut short is an
// error (serve aborts the response when its read fails).
func fetchBackup(ctx context.Context, c *adminClient, w io.Writer) (int64, error) {
	base := c.base
	req, err := http.NewRequestWithContext(ctx, "GET", base+"/api/backup", nil)
	if err != nil {
		return 0, err
	}
	// The copy may take longer than a command's answer: no client timeout.
	client := *c.client
	client.Timeout = 0
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := client.Do(req)
	if err != nil {
		return 0, &exitError{code: exTempFail, err: fmt.Errorf("database is in use, and the admin API at %s: %w (%v)", base, errAdminDown, err)}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return 0, &exitError{code: exTempFail, err: fmt.Errorf("backup through %s: %s: %s", base, resp.Status, b)}
	}
	n, err := io.Copy(w, resp.Body)
	if err != nil {
		return n, &exitError{code: exTempFail, err: fmt.Errorf("backup through %s cut short after %d bytes: %w", base, n, err)}
	}
	return n, nil
}

// handleBackup is GET /api/backup: the database file as of one read
// transaction, while writers carry on.
func (g *gateway) handleBackup(w http.ResponseWriter, r *http.Request) {
	db, ok := g.db.(*boltdb.DB)
	if !ok {
		httpError(w, http.StatusNotImplemented, "backup copies a bbolt database; back up PostgreSQL with its own tools (pg_dump, pg_basebackup)")
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	n, err := db.Backup(r.Context(), w)
	if err != nil {
		g.log.Error("backup failed", "err", err, "bytes", n)
		panic(http.ErrAbortHandler) // the client sees a broken copy, not a short one
	}
	g.log.Info("backup taken", "bytes", n, "remote", r.RemoteAddr)
}

// runRestore is "ticketgate restore -config F FILE": the database becomes a
// copy of FILE, atomically, unless a process (serve) has it open.
func runRestore(_ context.Context, args []string, _ io.Reader, stdout io.Writer) error {
	fs, cfgPath := flags("restore")
	force := fs.Bool("force", false, "restore even when FILE fails the consistency check")
	if err := parseFlags(fs, args, 1, 1); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return &exitError{code: 64, err: errors.New("usage: restore -config F [-force] FILE")}
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return &exitError{code: exConfig, err: err}
	}
	if err := notPostgres(cfg); err != nil {
		return err
	}
	from, err := filepath.Abs(fs.Arg(0))
	if err != nil {
		return err
	}
	dst, err := filepath.Abs(cfg.Store.Path)
	if err != nil {
		return err
	}
	if _, err := os.Stat(from); err != nil {
		return &exitError{code: exNoInput, err: fmt.Errorf("restore: no backup to restore: %w", err)}
	}
	if isDatabase(cfg, from) {
		// Replaced by itself, the database would only push out the copy
		// an earlier restore kept (.pre-restore).
		return &exitError{code: 64, err: fmt.Errorf("restore %s is the database itself (store.path): name a backup", fs.Arg(0))}
	}
	src := from
	problems, err := checkFile(src)
	var old *boltdb.OldSchemaError
	if errors.As(err, &old) {
		// A backup an earlier release took: a copy of it is migrated as
		// serve would migrate it, then checked and restored; FILE stays
		// as it is.
		if src, err = migratedCopy(from, filepath.Dir(dst)); err != nil {
			return &exitError{code: exDataErr, err: fmt.Errorf("%s has schema %d: migrate a copy: %w", from, old.Have, err)}
		}
		defer os.Remove(src)
		fmt.Fprintf(stdout, "%s has schema %d: restoring a copy migrated to schema %d\n", from, old.Have, old.Want)
		problems, err = checkFile(src)
	}
	if err != nil {
		return &exitError{code: exDataErr, err: fmt.Errorf("%s is not a ticketgate database: %w", from, err)}
	}
	if len(problems) > 0 && !*force {
		printProblems(stdout, problems)
		return &exitError{code: exDataErr, err: fmt.Errorf("%s fails the check (%d problems); -force restores it anyway", from, len(problems))}
	}
	if err := boltdb.Replace(dst, src); err != nil {
		if errors.Is(err, store.ErrLocked) {
			return &exitError{code: exTempFail, err: fmt.Errorf("%w: stop serve before restoring", err)}
		}
		return err
	}
	st, err := dbStats(dst)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s restored from %s: %d tickets, %d queued mails; the previous database (if any) is %s.pre-restore\n",
		dst, from, total(st.ByStatus), st.Outbox, dst)
	return nil
}

// migratedCopy copies the database file from into a new file in dir and
// opens it for writing, which brings it to this program's schema; it
// returns the copy's name.
func migratedCopy(from, dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return "", err
	}
	f, err := os.CreateTemp(dir, ".migrated-*")
	if err != nil {
		return "", err
	}
	err = copyFile(f, from)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		var db *boltdb.DB
		if db, err = boltdb.Open(f.Name(), boltdb.Options{LockTimeout: time.Second}, slog.New(slog.DiscardHandler)); err == nil {
			err = db.Close()
		}
	}
	if err != nil {
		os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}

func copyFile(w io.Writer, from string) error {
	r, err := os.Open(from)
	if err != nil {
		return err
	}
	defer r.Close()
	_, err = io.Copy(w, r)
	return err
}

// backupStats is dbStats of a backup; one of an earlier release's schema
// is counted from a copy migrated beside it, as restore would migrate it.
func backupStats(path string) (store.Stats, error) {
	st, err := dbStats(path)
	var old *boltdb.OldSchemaError
	if !errors.As(err, &old) {
		return st, err
	}
	migrated, err := migratedCopy(path, filepath.Dir(path))
	if err != nil {
		return store.Stats{}, fmt.Errorf("schema %d: migrate a copy: %w", old.Have, err)
	}
	defer os.Remove(migrated)
	return dbStats(migrated)
}

// dbStats opens a database file no process holds and counts it.
func dbStats(path string) (store.Stats, error) {
	db, err := boltdb.Open(path, boltdb.Options{ReadOnly: true, LockTimeout: time.Second}, slog.New(slog.DiscardHandler))
	if err != nil {
		return store.Stats{}, err
	}
	defer db.Close()
	return db.Stats(context.Background())
}

func total[K comparable](m map[K]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}
