// Package postgres is the PostgreSQL backend of store, for several
// gateways sharing one database. It is the only package that imports pgx.
//
// Layout: records are JSON (HTML escaping off) in a json column, beside
// the columns they are found and ordered by (status, creation time, due
// time, Message-ID, outbox due time and queue). Times in those columns are
// integers (Unix seconds and nanoseconds, or nanoseconds clamped to
// 1970..2262) so that order is exact to the nanosecond, as in bbolt.
// Keys taken from mail (Message-IDs, rate keys, outbox queues) are bytea:
// mail may hold bytes that are not text.
//
// Every Update, UpdateNow and DryRun is one SERIALIZABLE transaction,
// retried when PostgreSQL refuses it for a conflict with a concurrent one
// (serialization failure, deadlock): what one process decided from what it
// read cannot be overtaken by another process's commit. View is one
// REPEATABLE READ, read-only transaction: a consistent snapshot; DryRun
// one REPEATABLE READ transaction that is rolled back.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"ticketgate/store"
)

// Options tune Open.
type Options struct {
	// ReadOnly refuses writes (store.ErrReadOnly) and does not migrate:
	// the schema must be this program's.
	ReadOnly bool
	// MaxConns caps the connection pool (0: pgxpool's default, the
	// larger of 4 and the number of CPUs).
	MaxConns int32
}

// DB is a PostgreSQL database holding the store. It implements
// store.Store; any number of processes may open the same database.
type DB struct {
	pool     *pgxpool.Pool
	log      *slog.Logger
	readOnly bool
}

var _ store.Store = (*DB)(nil)

// maxAttempts bounds how often a transaction is tried when it keeps
// conflicting with others.
const maxAttempts = 40

// Open connects to the database dsn names (a libpq connection string or
// URL) and brings its schema up to date under an advisory lock, so that
// gateways starting together migrate once. ctx bounds connecting and
// waiting for the lock; a migration, once begun, runs to its end.
func Open(ctx context.Context, dsn string, opts Options, log *slog.Logger) (*DB, error) {
	if log == nil {
		log = slog.Default()
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres dsn: %w", err)
	}
	if opts.MaxConns > 0 {
		cfg.MaxConns = opts.MaxConns
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	d := &DB{pool: pool, log: log, readOnly: opts.ReadOnly}
	if opts.ReadOnly {
		err = d.checkSchema(ctx)
	} else {
		err = d.migrate(ctx)
	}
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("open postgres %s: %w", describe(cfg.ConnConfig), err)
	}
	return d, nil
}

// describe names a database for messages, without its password.
func describe(c *pgx.ConnConfig) string {
	return fmt.Sprintf("%s@%s:%d/%s", c.User, c.Host, c.Port, c.Database)
}

// Close waits for the transactions still running and closes every
// connection.
func (d *DB) Close() error {
	d.pool.Close()
	return nil
}

var (
	serializable = pgx.TxOptions{IsoLevel: pgx.Serializable}
	snapshot     = pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}
)

func (d *DB) writeOpts() pgx.TxOptions {
	if d.readOnly {
		return pgx.TxOptions{IsoLevel: pgx.Serializable, AccessMode: pgx.ReadOnly}
	}
	return serializable
}

// Update runs fn in a serializable transaction and commits it, running fn
// again if the database refuses the commit for a conflict with a
// concurrent transaction. PostgreSQL groups concurrent commits itself.
func (d *DB) Update(ctx context.Context, fn func(store.Tx) error) error {
	return d.run(ctx, d.writeOpts(), fn, true)
}

// UpdateNow is Update: PostgreSQL has no grouping to leave out.
func (d *DB) UpdateNow(ctx context.Context, fn func(store.Tx) error) error {
	return d.run(ctx, d.writeOpts(), fn, true)
}

// UpdateSoon is Update: it commits at once. PostgreSQL itself lets the
// transactions that commit together share one WAL flush.
func (d *DB) UpdateSoon(ctx context.Context, fn func(store.Tx) error) error {
	return d.run(ctx, d.writeOpts(), fn, true)
}

// Expect waits for nothing: each Update is its own transaction, and
// PostgreSQL shares WAL flushes among those that commit together.
func (d *DB) Expect() func() { return func() {} }

// View runs fn in a read-only transaction over one snapshot.
func (d *DB) View(ctx context.Context, fn func(store.Tx) error) error {
	return d.run(ctx, snapshot, fn, false)
}

// DryRun runs fn in a read-write transaction and always rolls it back.
// The transaction reads one snapshot (REPEATABLE READ), not SERIALIZABLE:
// nothing of it is committed, so no other process's commit can overtake
// what it decided, and a dry run over many tickets (sweep -dry-run) is
// not refused again and again while other gateways take mail. A row it
// writes that another process changed since its snapshot still makes
// PostgreSQL refuse it, and it runs again.
func (d *DB) DryRun(ctx context.Context, fn func(store.Tx) error) error {
	opts := pgx.TxOptions{IsoLevel: pgx.RepeatableRead}
	if d.readOnly {
		opts.AccessMode = pgx.ReadOnly
	}
	return d.run(ctx, opts, fn, false)
}

// run runs fn in a transaction with opts, committing it if commit, and
// tries again while the database refuses it for a conflict.
func (d *DB) run(ctx context.Context, opts pgx.TxOptions, fn func(store.Tx) error, commit bool) error {
	for attempt := 1; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		err := d.once(ctx, opts, fn, commit)
		if err == nil || !retryable(err) || attempt == maxAttempts {
			return mapErr(err)
		}
		// Back off a little, at random, so the transactions that
		// collided do not collide again.
		wait := time.Duration(rand.Int64N(int64(min(attempt, 10))*int64(2*time.Millisecond) + 1))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
}

func (d *DB) once(ctx context.Context, opts pgx.TxOptions, fn func(store.Tx) error, commit bool) error {
	conn, err := d.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	defer conn.Release()
	ptx, err := conn.BeginTx(ctx, opts)
	if err != nil {
		return connLost(conn, fmt.Errorf("begin transaction: %w", err))
	}
	t := &tx{ctx: ctx, tx: ptx}
	// The end of a transaction is not cut short by ctx: a half-sent
	// commit would leave the caller not knowing what happened.
	end := context.WithoutCancel(ctx)
	if err := fn(t); err != nil {
		ptx.Rollback(end)
		if t.conflict != nil {
			return t.conflict
		}
		return connLost(conn, err)
	}
	if !commit {
		ptx.Rollback(end)
		if t.conflict != nil {
			return t.conflict
		}
		return nil
	}
	if t.conflict != nil {
		// fn went on after a refused statement; the transaction is
		// aborted whatever fn made of it.
		ptx.Rollback(end)
		return t.conflict
	}
	if err := ptx.Commit(end); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// PostgreSQL error codes acted on.
const (
	codeSerialization = "40001"
	codeDeadlock      = "40P01"
	codeReadOnly      = "25006"
)

func pgCode(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// retryable reports whether err is a transaction refused for a conflict
// with a concurrent one, or one that lost its connection before its
// commit (errConnLost), which running it again resolves.
func retryable(err error) bool {
	c := pgCode(err)
	return c == codeSerialization || c == codeDeadlock || errors.As(err, new(errConnLost))
}

// errConnLost is a transaction that failed before its commit because its
// connection had ended: the server restarted (or failed over, or the
// link dropped) since the pool last used it, and the pool hands out such
// a connection once before it knows. Nothing of the transaction was
// committed; it runs again on another connection, which the pool opens
// if the server is back (and fails to open if it is not, ending the
// retries).
type errConnLost struct{ error }

func (e errConnLost) Unwrap() error { return e.error }

// connLost is err as errConnLost when conn has ended, else err.
func connLost(conn *pgxpool.Conn, err error) error {
	if conn.Conn().IsClosed() {
		return errConnLost{err}
	}
	return err
}

func mapErr(err error) error {
	switch pgCode(err) {
	case codeReadOnly:
		return fmt.Errorf("%w: %w", store.ErrReadOnly, err)
	case codeSerialization, codeDeadlock:
		return fmt.Errorf("%w: %w", store.ErrConflict, err)
	}
	return err
}

// tx implements store.Tx over one pgx transaction.
type tx struct {
	ctx context.Context
	tx  pgx.Tx
	// conflict is the first statement refused for a conflict: the
	// transaction is aborted and must run again, whatever fn returns.
	conflict error
	// notified is set once the transaction has asked to wake the
	// listeners (see DB.Listen) at its commit.
	notified bool
}

func (t *tx) Context() context.Context { return t.ctx }

// note records err if it is a conflict and returns it.
func (t *tx) note(err error) error {
	if err != nil && t.conflict == nil && retryable(err) {
		t.conflict = err
	}
	return err
}

func (t *tx) exec(sql string, args ...any) error {
	if err := t.ctx.Err(); err != nil {
		return err
	}
	_, err := t.tx.Exec(t.ctx, sql, args...)
	return t.note(err)
}

// row scans the one row of a query into dest; pgx.ErrNoRows when none.
func (t *tx) row(sql string, args []any, dest ...any) error {
	if err := t.ctx.Err(); err != nil {
		return err
	}
	return t.note(t.tx.QueryRow(t.ctx, sql, args...).Scan(dest...))
}

// rows calls fn for each row of a query, after scanning it into dest.
func (t *tx) rows(sql string, args []any, dest []any, fn func() error) error {
	if err := t.ctx.Err(); err != nil {
		return err
	}
	rs, err := t.tx.Query(t.ctx, sql, args...)
	if err != nil {
		return t.note(err)
	}
	defer rs.Close()
	for rs.Next() {
		if err := rs.Scan(dest...); err != nil {
			return t.note(err)
		}
		if err := fn(); err != nil {
			return err
		}
		if err := t.ctx.Err(); err != nil {
			return err
		}
	}
	return t.note(rs.Err())
}

func args(a ...any) []any { return a }
