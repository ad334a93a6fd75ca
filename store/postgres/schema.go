package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// migrations run in order on Open; migrations[i] brings the schema from i
// to i+1. Each runs in the one transaction that also records the new
// version, under an advisory lock, so a crash leaves the old schema whole
// and two gateways starting together do not both migrate.
var migrations = []string{
	// 1: everything the store keeps.
	`
-- What Tx.Tickets filters and sorts on is kept in columns of its own,
-- written by PutTicket: the sort keys (each ends in the id, so it is
-- total; a cursor is one in hex), and the addresses and queue in lower
-- case.
CREATE TABLE tickets (
	id text COLLATE "C" PRIMARY KEY,
	status text NOT NULL,
	due_ns bigint,              -- Due in Unix nanoseconds (clamped), NULL for never
	k_created bytea NOT NULL,   -- CreatedAt, id
	k_updated bytea NOT NULL,   -- 'u', UpdatedAt, id
	k_priority bytea NOT NULL,  -- 'p', urgency, CreatedAt, id
	k_due bytea NOT NULL,       -- 'd', SLADue (0xff... for none), CreatedAt, id
	completed boolean NOT NULL,
	assignee_l text COLLATE "C" NOT NULL,
	requester_l text COLLATE "C" NOT NULL,
	queue_l text COLLATE "C" NOT NULL,
	words_src bytea NOT NULL,   -- what TicketWords reads, to tell a change
	rec json NOT NULL
);
CREATE INDEX tickets_created ON tickets (k_created);
CREATE INDEX tickets_status ON tickets (status, k_created);
CREATE INDEX tickets_updated ON tickets (k_updated);
CREATE INDEX tickets_priority ON tickets (k_priority);
CREATE INDEX tickets_sla_due ON tickets (k_due);
CREATE INDEX tickets_assignee ON tickets (assignee_l, k_created);
CREATE INDEX tickets_requester ON tickets (requester_l, k_created);
CREATE INDEX tickets_due ON tickets (due_ns, id) WHERE due_ns IS NOT NULL;

-- The words Filter.Text searches: one row per word and ticket, places a
-- bit set (1: the subject or requester, 2: a message), so a changed
-- subject drops a word only when no message has it.
CREATE TABLE ticket_words (
	word text COLLATE "C" NOT NULL,
	ticket_id text COLLATE "C" NOT NULL,
	places smallint NOT NULL,
	PRIMARY KEY (word, ticket_id)
);
CREATE INDEX ticket_words_ticket ON ticket_words (ticket_id);

CREATE TABLE messages (
	seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	ticket_id text COLLATE "C" NOT NULL,
	msgid bytea NOT NULL, -- store.NormMessageID
	rec json NOT NULL
);
CREATE INDEX messages_ticket ON messages (ticket_id, seq);
CREATE INDEX messages_msgid ON messages (ticket_id, msgid);

CREATE TABLE events (
	seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	ticket_id text COLLATE "C" NOT NULL,
	rec json NOT NULL
);
CREATE INDEX events_ticket ON events (ticket_id, seq);

-- One row per Message-ID: two gateways storing the same message cannot
-- both commit.
CREATE TABLE msgids (
	msgid bytea PRIMARY KEY,
	ticket_id text COLLATE "C" NOT NULL
);

CREATE TABLE blobs (
	hash text COLLATE "C" PRIMARY KEY,
	content bytea NOT NULL,
	refs bigint NOT NULL
);

CREATE SEQUENCE outbox_id;
CREATE TABLE outbox (
	id bigint PRIMARY KEY,
	queue bytea NOT NULL,   -- store.OutMail.Queue
	next_ns bigint NOT NULL, -- NextAt in Unix nanoseconds (clamped)
	raw_hash text NOT NULL,
	claimed_by text,        -- Tx.ClaimOutbox
	claimed_until_ns bigint,
	rec json NOT NULL
);
CREATE INDEX outbox_due ON outbox (next_ns, id);
CREATE INDEX outbox_queue ON outbox (queue, id);

CREATE TABLE sent (
	id bigint PRIMARY KEY,
	rec json NOT NULL
);

CREATE TABLE checkpoints (
	mailbox text COLLATE "C" PRIMARY KEY,
	uidvalidity bigint NOT NULL,
	uid bigint NOT NULL
);

-- Leases for one-at-a-time work (Tx.TakeLease): the sweep, each IMAP
-- mailbox's poller.
CREATE TABLE leases (
	name text COLLATE "C" PRIMARY KEY,
	owner text NOT NULL,
	until_ns bigint NOT NULL
);

-- What each serving process reported of itself (Tx.PutInstance).
CREATE TABLE instances (
	id text COLLATE "C" PRIMARY KEY,
	rec json NOT NULL
);

-- Failed tries of each IMAP mailbox's messages (Tx.PutPollTries).
CREATE TABLE poll_tries (
	mailbox text COLLATE "C" PRIMARY KEY,
	validity bigint NOT NULL,
	tries json NOT NULL
);

CREATE TABLE rates (
	key bytea PRIMARY KEY, -- lower case
	times json NOT NULL
);
`,
	// 2: sent mail by ticket (Tx.TicketMail).
	`
ALTER TABLE sent ADD COLUMN ticket_id text COLLATE "C";
UPDATE sent SET ticket_id = rec->>'ticket_id';
CREATE INDEX sent_ticket ON sent (ticket_id, id);
`,
	// 3: the requester's and participants' addresses of each ticket
	// (Tx.TicketsOfAddress), in lower case, written by PutTicket.
	`
CREATE TABLE ticket_addrs (
	addr text COLLATE "C" NOT NULL,
	ticket_id text COLLATE "C" NOT NULL,
	PRIMARY KEY (addr, ticket_id)
);
CREATE INDEX ticket_addrs_ticket ON ticket_addrs (ticket_id);
INSERT INTO ticket_addrs (addr, ticket_id)
SELECT DISTINCT lower(btrim(a)), id FROM (
	SELECT id, rec->>'requester' AS a FROM tickets
	UNION ALL
	SELECT id, json_array_elements_text(CASE WHEN json_typeof(rec->'cc') = 'array' THEN rec->'cc' ELSE '[]'::json END) FROM tickets
) s WHERE a IS NOT NULL AND btrim(a) <> '';
`,
	// 4: no table changes. From this schema on the outbox may keep a
	// mail deflated (a whole mail beginning with byte 5, besides the
	// notification drafts), which a program of schema 3 would hand to
	// the relay as it is: the version makes such a program refuse the
	// database instead.
	`SELECT 1;`,
	// 5: no table changes. From this schema on the outbox keeps its
	// mails and drafts packed (leading bytes 6 and 7, see mailout's
	// pack), which a program of schema 4 would hand to the relay as
	// they are, or fail to read: it refuses the database instead.
	`SELECT 1;`,
	// 6: no table changes. From this schema on the mail the desk writes
	// from its templates (notices, reminders, the survey) has no words,
	// and the rows earlier schemas made of them would find every ticket
	// that got one: 7, which every database that comes to schema 6 runs
	// after it, fills ticket_words again without them.
	`SELECT 1;`,
	// 7: no table changes. From this schema on words are read composed
	// (NFC) and case folded (store.Words), and a search would not find
	// the rows earlier schemas made of a word written otherwise ("οδος"
	// in lower case, an accent typed apart): 8, which every database
	// that comes to schema 7 runs next, fills ticket_words again.
	`SELECT 1;`,
	// 8: ticket_words is filled again (rebuildWords, after this): from
	// this schema on Chinese, Japanese and Korean are indexed a
	// character and a pair of characters at a time (store.Words), and
	// the rows earlier schemas made of a whole run of them would find
	// nothing a search is for.
	`DELETE FROM ticket_words;`,
}

// afterMigration are the steps, written in Go, that complete the
// migration to a schema (the key), in its transaction, after its SQL.
var afterMigration = map[int]func(context.Context, pgx.Tx) error{
	8: rebuildWords,
}

// schemaVersion is the schema this program writes.
var schemaVersion = len(migrations)

// migrateLock is the advisory lock key held while migrating.
const migrateLock = 0x7467_6d69_6772_6174 // "tgmigrat"

const versionTable = `CREATE TABLE IF NOT EXISTS ticketgate_schema (version integer NOT NULL)`

func (d *DB) migrate(ctx context.Context) error {
	conn, err := d.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, int64(migrateLock)); err != nil {
		return fmt.Errorf("lock for migration: %w", err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, int64(migrateLock))
	if _, err := conn.Exec(ctx, versionTable); err != nil {
		return fmt.Errorf("create schema table: %w", err)
	}
	version, err := readVersion(ctx, conn.Conn())
	if err != nil {
		return err
	}
	if version > schemaVersion {
		return fmt.Errorf("database schema %d is newer than this program (%d)", version, schemaVersion)
	}
	// ctx bounds connecting and waiting for another process's migration,
	// not the migration: one that reads every message (8) takes minutes
	// on a large database, and cut short it is rolled back, at every
	// start again.
	ctx = context.WithoutCancel(ctx)
	if version > 0 && version < schemaVersion {
		d.log.Info("migrating the database schema; on a large database this takes a while", "from", version, "to", schemaVersion)
	}
	for i := version; i < schemaVersion; i++ {
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, migrations[i]); err != nil {
				return err
			}
			if step := afterMigration[i+1]; step != nil {
				if err := step(ctx, tx); err != nil {
					return err
				}
			}
			if _, err := tx.Exec(ctx, `DELETE FROM ticketgate_schema`); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO ticketgate_schema (version) VALUES ($1)`, i+1)
			return err
		})
		if err != nil {
			return fmt.Errorf("migrate schema %d to %d: %w", i, i+1, err)
		}
		d.log.Info("database schema migrated", "from", i, "to", i+1)
	}
	return nil
}

func readVersion(ctx context.Context, conn *pgx.Conn) (int, error) {
	var v int
	err := conn.QueryRow(ctx, `SELECT version FROM ticketgate_schema`).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return v, nil
}

// checkSchema refuses, on a read-only open, a schema this program cannot
// read: it cannot migrate without writing.
func (d *DB) checkSchema(ctx context.Context) error {
	conn, err := d.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	v, err := schemaOf(ctx, conn.Conn())
	switch {
	case err != nil:
		return err
	case v > schemaVersion:
		return fmt.Errorf("database schema %d is newer than this program (%d)", v, schemaVersion)
	case v < schemaVersion:
		return fmt.Errorf("database schema %d must be migrated to %d: open it once for writing (run serve)", v, schemaVersion)
	}
	return nil
}

// schemaOf returns the schema version of the database conn is connected
// to, 0 when it holds no ticketgate schema.
func schemaOf(ctx context.Context, conn *pgx.Conn) (int, error) {
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT to_regclass('ticketgate_schema') IS NOT NULL`).Scan(&exists); err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	if !exists {
		return 0, nil
	}
	return readVersion(ctx, conn)
}

// Exists reports whether the database dsn names holds a ticketgate schema,
// without creating anything: the CLI's "is there a database" question.
// An error means the database could not be asked (down, refused login).
func Exists(ctx context.Context, dsn string) (bool, error) {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return false, fmt.Errorf("connect to postgres: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	v, err := schemaOf(ctx, conn)
	return v > 0, err
}
