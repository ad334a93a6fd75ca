package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"ticketgate/store"
	"ticketgate/store/boltdb"
	"ticketgate/store/postgres"
)

// openTimeout bounds connecting to PostgreSQL and waiting for another
// gateway's migration of its schema; a migration this one runs takes as
// long as it takes (postgres.Open).
const openTimeout = 30 * time.Second

// openStore opens the backend [store] driver names. opts are bbolt's; with
// postgres only ReadOnly applies (any number of processes may open it, so
// there is no lock to wait for).
func openStore(cfg *Config, opts boltdb.Options, log *slog.Logger) (store.Store, error) {
	if !cfg.Store.Postgres() {
		return boltdb.Open(cfg.Store.Path, opts, log)
	}
	dsn, err := storeDSN(cfg)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), openTimeout)
	defer cancel()
	return postgres.Open(ctx, dsn, postgres.Options{ReadOnly: opts.ReadOnly}, log)
}

// storeDSN returns store.dsn, or the contents of store.dsn_file.
func storeDSN(cfg *Config) (string, error) {
	if cfg.Store.DSNFile == "" {
		return cfg.Store.DSN, nil
	}
	b, err := os.ReadFile(cfg.Store.DSNFile)
	if err != nil {
		return "", &exitError{code: exConfig, err: fmt.Errorf("store.dsn_file: %w", err)}
	}
	dsn := strings.TrimSpace(string(b))
	if dsn == "" {
		return "", &exitError{code: exConfig, err: fmt.Errorf("store.dsn_file %s is empty", cfg.Store.DSNFile)}
	}
	return dsn, nil
}

// storeName says where the store is, for messages: the bbolt file, or
// "postgres".
func storeName(cfg *Config) string {
	if cfg.Store.Postgres() {
		return "postgres"
	}
	return cfg.Store.Path
}

// needPostgres is needDatabase for PostgreSQL: the database must hold
// ticketgate's schema. A database that cannot be asked is the open's to
// report.
func needPostgres(cfg *Config) error {
	dsn, err := storeDSN(cfg)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), openTimeout)
	defer cancel()
	ok, err := postgres.Exists(ctx, dsn)
	if err == nil && !ok {
		key := "store.dsn"
		if cfg.Store.DSNFile != "" {
			key = "store.dsn_file " + cfg.Store.DSNFile
		}
		return &exitError{code: exNoInput, err: fmt.Errorf("%w: the PostgreSQL database (%s from %s) holds no ticketgate schema; serve or inject creates it",
			errNoDatabase, key, cfg.source())}
	}
	return nil
}
