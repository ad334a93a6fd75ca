// Package store declares what ticketgate keeps: tickets, their messages and
// events, the outbox of mail to send, blobs, IMAP checkpoints and rate
// counters. It holds the domain types and the interfaces a backend
// implements (store/boltdb is one); callers see nothing of how records are
// laid out on disk. store/storetest is the suite every backend passes.
//
// Durability: Update returns only after the transaction is committed and
// on disk. Callers answer "250" after Update returns.
package store

import (
	"context"
	"errors"
	"time"
)

// Config is the [store] section of the configuration file.
type Config struct {
	// Driver is the backend: "bbolt" (the default: one file, one
	// process) or "postgres" (several gateways sharing one database).
	Driver string `toml:"driver"`
	// Path of the bbolt database file; its directory is created if
	// missing. Unused by postgres.
	Path string `toml:"path"`
	// DSN is the PostgreSQL connection string (libpq keywords or a
	// postgres:// URL); DSNFile names a file holding it instead, so the
	// password stays out of the configuration. One of them with postgres.
	DSN     string `toml:"dsn"`
	DSNFile string `toml:"dsn_file"`
	// Lease is how long (a Go duration, default 30s) an instance's
	// claim on outbox mail, and its lease on the sweep or on an IMAP
	// mailbox, hold without renewal: another instance takes a dead
	// one's work over within it.
	Lease string `toml:"lease"`
}

// Postgres reports whether c names the PostgreSQL backend.
func (c Config) Postgres() bool { return c.Driver == "postgres" }

var (
	// ErrNotFound is returned when a ticket (or other record) does not exist.
	ErrNotFound = errors.New("not found")
	// ErrLocked is returned by a backend's Open when another process
	// (usually a running "serve") holds the database.
	ErrLocked = errors.New("database is in use by another process")
	// ErrReadOnly is returned when a write is attempted on a database
	// opened for reading only.
	ErrReadOnly = errors.New("database is open read-only")
	// ErrBadCursor is returned by Tx.Tickets for a cursor it did not
	// hand out.
	ErrBadCursor = errors.New("bad cursor")
	// ErrBadFilter is returned by Tx.Tickets for a Filter naming a view
	// or sort order that does not exist, or ViewMine without an
	// Operator.
	ErrBadFilter = errors.New("bad filter")
	// ErrConflict is returned by a backend shared between processes
	// (PostgreSQL) for a transaction it kept refusing for conflicts with
	// concurrent ones, after running it again as often as it does: a
	// smaller transaction (fewer tickets) conflicts less.
	ErrConflict = errors.New("transaction kept conflicting with concurrent ones")
	// ErrBadRecord is returned (wrapped, with the decoder's error) for a
	// ticket, message or event that is stored but does not decode: damage,
	// which check reports. The sweep passes such a ticket over, so that
	// one does not stop the work on all the others.
	ErrBadRecord = errors.New("record does not decode")
)

// Forever is an instant after every NextAt, for listing the whole outbox.
var Forever = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)

// Store is a ticket database. Every call takes the caller's context; a
// transaction whose context is done is not started, and long reads inside
// it stop early with ctx.Err().
type Store interface {
	// Update runs fn in a read-write transaction grouped with concurrent
	// callers: one commit (and fsync) covers them all. fn may run more
	// than once and must be idempotent apart from its effects on tx.
	// Update returns after the commit is on disk; if fn fails nothing of
	// it is kept.
	Update(ctx context.Context, fn func(Tx) error) error
	// UpdateNow is Update without grouping, for callers outside the
	// ingest path. fn runs once on a single-process backend (bbolt); a
	// backend shared between processes (PostgreSQL) runs it again when
	// the database refuses the transaction for a conflict with another
	// one, so fn must be idempotent apart from its effects on tx.
	UpdateNow(ctx context.Context, fn func(Tx) error) error
	// UpdateSoon is Update for a write in no hurry (a delivery outcome):
	// it may wait a short bound for another write to share a commit
	// instead of causing one (bbolt: boltdb.SoonWithin; PostgreSQL
	// commits at once). Like Update it returns once fn's changes are on
	// disk, or did not happen; Close commits the writes still waiting.
	UpdateSoon(ctx context.Context, fn func(Tx) error) error
	// Expect says the caller is preparing an Update (an ingested
	// message being parsed), so that a grouped commit starting meanwhile
	// may wait a short bound for it (bbolt: boltdb.ExpectWithin) instead
	// of leaving it to the next commit. The returned function says the
	// call was made or given up: call it just before Update and on every
	// way out; more than once is harmless. PostgreSQL waits for nothing.
	Expect() (arrived func())
	// View runs fn in a read-only transaction over a consistent snapshot.
	View(ctx context.Context, fn func(Tx) error) error
	// DryRun runs fn in a read-write transaction and always rolls it back,
	// so callers can see what a change would do without making it.
	DryRun(ctx context.Context, fn func(Tx) error) error
	// Close releases the database. Transactions still running finish first.
	Close() error
}

// Tx is one transaction. Values read from it are copies and stay valid after
// the transaction ends. A Tx is used by one goroutine and only inside the
// function it was passed to.
type Tx interface {
	Reader
	// PutTicket writes the ticket record and keeps its indexes in step,
	// indexing t.Due as given (zero: never due) and what Tickets filters,
	// sorts and searches on. Messages and Events on t are ignored (use
	// AddMessage and AddEvent).
	PutTicket(t *Ticket) error
	// AddMessage appends m to ticket id and indexes its Message-ID and
	// its words (MessageWords) for Tickets' search.
	AddMessage(id string, m *Message) error
	// IndexMessageID records that Message-ID msgid belongs to ticket id,
	// for threading by In-Reply-To and References.
	IndexMessageID(msgid, id string) error
	// AddEvent appends an event to ticket id's activity log.
	AddEvent(id string, e Event) error
	// PutBlob stores content once per SHA-256, counts one more reference
	// to it, and returns its hex hash.
	PutBlob(content []byte) (string, error)
	// PutRawBlob stores a message's raw copy for one use and returns its
	// blob id (Message.Raw): it does not look for the same content stored
	// before, since a raw mail is all but never stored twice. The id is
	// read, counted and released as PutBlob's are. A store may give the
	// content's SHA-256 as the id (and count it as PutBlob does); bbolt
	// numbers it instead, so storing a mail writes no page at a random
	// key for its hash.
	PutRawBlob(content []byte) (string, error)
	// Enqueue adds m to the outbox, or replaces the entry with m.ID, and
	// sets m.ID. m.Raw goes to a blob; when replacing, a nil m.Raw keeps
	// the entry's mail. The other fields are stored as given (Done, the
	// recipients already served, included).
	//
	// Enqueue keeps each queue (see OutMail.Queue) due in queue order: in
	// the same transaction it raises m.NextAt to the NextAt of the entry
	// before m in its queue, and the NextAt of the later entries of the
	// queue that fall due earlier to m's. So deferring an entry defers the
	// rest of its queue with it, and new mail queued behind a deferred
	// entry waits for it; other queues are untouched. m.NextAt is set to
	// what was stored. The cost grows with the entries moved, not with the
	// outbox.
	Enqueue(m *OutMail) error
	// ClaimOutbox claims for owner, until now+lease, the entries that
	// Outbox(now, limit) would return, less those another owner holds an
	// unexpired claim on and the entries queued behind those (so a queue
	// stays in order across processes). It returns the entries claimed,
	// with ClaimedBy and ClaimedUntil set. A claim ends when the entry is
	// enqueued again (Enqueue clears it) or dequeued, or when it expires;
	// the owner may renew it by claiming again. Processes sharing one
	// database each claim before sending, so no two send the same entry
	// while a claim holds.
	ClaimOutbox(owner string, now time.Time, lease time.Duration, limit int) ([]*OutMail, error)
	// NextOutboxID reserves the id the next outbox entry will have; pass
	// it in OutMail.ID to Enqueue.
	NextOutboxID() (uint64, error)
	// Dequeue removes an entry from the outbox (delivered or given up)
	// and releases its mail.
	Dequeue(id uint64) error
	// Sent records where an outgoing mail went, so that a bounce naming
	// its outbox id can be mapped back to the ticket and recipients after
	// the entry left the outbox.
	Sent(m *OutMail) error
	// PutCheckpoint records c, never moving the UID backwards within the
	// same UIDVALIDITY.
	PutCheckpoint(c Checkpoint) error
	// PutRateTimes replaces the recorded times under key (nil deletes).
	PutRateTimes(key string, ts []time.Time) error
	// MarkBouncing records that automatic mail to addr is suppressed until until.
	MarkBouncing(addr string, until time.Time) error
	// TakeLease takes the lease name for owner until now+ttl, or renews
	// owner's own, and reports whether owner holds it: false while
	// another owner holds it unexpired. Processes sharing one database
	// take a lease before one-at-a-time work (the sweep, polling an IMAP
	// mailbox) and renew it well within ttl; when the holder dies,
	// another takes it over once ttl has passed. On a backend one process
	// has open at a time (bbolt), a lease taken by an earlier open has
	// lapsed.
	TakeLease(name, owner string, now time.Time, ttl time.Duration) (bool, error)
	// DropLease ends owner's lease name at once; nothing when another
	// owner holds it.
	DropLease(name, owner string) error
	// PutPollTries replaces the failed tries recorded for mailbox: the
	// UIDs of messages that could not be taken, each with how often,
	// under UIDVALIDITY validity (an empty tries deletes them).
	PutPollTries(mailbox string, validity uint32, tries map[uint32]int) error
	// PutInstance records (or replaces, by ID) a serving process's
	// report of itself.
	PutInstance(in Instance) error

	// ReplaceMessages rewrites the messages of ticket id in place with
	// msgs, which must be as many as the ticket has, in the order
	// TicketFull returns them (data protection: erasure and retention).
	// The search index follows the new subjects and texts; blobs the new
	// messages name (Raw, Attachments' SHA256) are counted once more and
	// those the old ones named released, so a blob no message uses any
	// more is deleted. Message-IDs stay indexed.
	ReplaceMessages(id string, msgs []Message) error
	// ReplaceEvents rewrites ticket id's activity log in place with
	// events, as many as it holds, in order.
	ReplaceEvents(id string, events []Event) error
	// EraseAddress removes addr (any case) from the records kept by
	// address outside the tickets: where sent mail went (replaced by
	// pseudonym), rate counters and bounce marks (deleted).
	EraseAddress(addr, pseudonym string) error
}

// Reader is the reading half of a transaction: what deciding code may use.
// Whatever takes a Reader cannot change the database.
type Reader interface {
	// Context is the context the transaction was started with.
	Context() context.Context
	// NewTicketID allocates an unused ticket id: prefix, "-", six random
	// digits. Ids are not sequential. It checks the id against the
	// tickets already committed and those created earlier in the same
	// transaction.
	NewTicketID(prefix string) (string, error)
	// Ticket returns the ticket record (without messages and events).
	Ticket(id string) (*Ticket, error)
	// TicketFull returns the ticket with its messages and events in the
	// order they were added: oldest first, but for a merge's copies of the
	// source's, which follow the target's own (the views sort by time).
	TicketFull(id string) (*Ticket, error)
	// Tickets lists the ticket records f selects (never their messages
	// and events) in f's order, one page at a time: at most f.Limit (0
	// for all) after the cursor f.After. next is the cursor of the
	// following page, "" when this page is the last; a ticket created
	// or changed between pages does not make another ticket appear
	// twice or be skipped. A cursor that is not one gives ErrBadCursor;
	// a view, sort or operator that is not one gives ErrBadFilter. A
	// ticket on the page whose record does not decode is left out of it,
	// and its error (ErrBadRecord) returned with the rest of the page and
	// the next page's cursor: a caller that can do without it (the
	// sweep) goes on, one that must see every ticket fails. Its
	// cost is that of reading compact summaries of the tickets (a page,
	// when f has no condition besides Status and sorts by creation
	// time), never their messages.
	Tickets(f Filter) (list []*Ticket, next string, err error)
	// TicketsOfAddress returns the ids of the tickets addr (any case) is
	// the requester or a participant (Ticket.CC) of, in any status, in id
	// order. It reads an index: its cost grows with the number of such
	// tickets, not with the number of tickets.
	TicketsOfAddress(addr string) ([]string, error)
	// DueTickets returns the ids of tickets due at or before now, earliest
	// first, at most limit (0 = all). Its cost grows with the number due,
	// not with the number of tickets.
	DueTickets(now time.Time, limit int) ([]string, error)
	// MessageByID returns the first message on ticket ticketID with
	// Message-ID msgid (angle brackets and surrounding space ignored), and
	// whether there is one.
	MessageByID(ticketID, msgid string) (*Message, bool, error)
	// HasMessage reports whether ticket id already holds a message with
	// this Message-ID (for duplicate deliveries).
	HasMessage(id, msgid string) (bool, error)
	// TicketByMessageID returns the ticket a Message-ID belongs to, or "".
	TicketByMessageID(msgid string) (string, error)
	// Blob returns a copy of the content stored under hash (a blob id
	// from PutBlob or PutRawBlob).
	Blob(hash string) ([]byte, error)
	// Outbox returns the entries due at or before now (all when now is
	// zero), in queue (id) order, at most limit (0 = all; with a limit,
	// the earliest due are taken, earlier ids first among equals).
	// Entries carry no Raw (see OutboxRaw). Its cost grows with the number
	// due, not with the outbox.
	//
	// As Enqueue keeps every queue due in order, the entries of one queue
	// that Outbox returns are the first ones of that queue: an entry is
	// never returned while an earlier one of its queue waits.
	Outbox(now time.Time, limit int) ([]*OutMail, error)
	// OutboxList returns the whole outbox in id order, due or not, at most
	// limit entries (0 = all) with ids above after, for listings.
	OutboxList(after uint64, limit int) ([]*OutMail, error)
	// OutboxEntry returns one outbox entry, without Raw.
	OutboxEntry(id uint64) (*OutMail, error)
	// OutboxRaw returns the mail of outbox entry id.
	OutboxRaw(id uint64) ([]byte, error)
	// NextOutboxAt returns the earliest NextAt in the outbox, or zero if
	// it is empty.
	NextOutboxAt() (time.Time, error)
	// SentTo returns the ticket and recipients of an outbox id sent earlier.
	SentTo(id uint64) (ticketID string, to []string, err error)
	// TicketMail returns the mail of ticket id still in the outbox
	// (without Raw) and the mail sent for it, each in id order. A mail
	// the relay took for some recipients and not yet for others is in
	// both.
	TicketMail(id string) (queued []*OutMail, sent []SentMail, err error)
	// Checkpoint returns the mailbox's checkpoint; a zero Checkpoint (with
	// Mailbox set) if none.
	Checkpoint(mailbox string) (Checkpoint, error)
	// RateTimes returns the recorded times of a rate-limited event
	// (auto-replies to an address, inbound mail from a sender ...) under
	// key (case-insensitive). A counter that does not decode counts
	// nothing (none), here and in Rates.
	RateTimes(key string) ([]time.Time, error)
	// Rates returns up to limit rate counters, in the store's order, from
	// cursor after ("" for the first): each under its key as RateTimes
	// takes it, in lower case. next is the cursor of the next page, ""
	// after the last.
	Rates(after string, limit int) (list []Rate, next string, err error)
	// Bouncing reports whether automatic mail to addr is suppressed at now
	// because it bounced recently.
	Bouncing(addr string, now time.Time) (bool, error)
	// PollTries returns the failed tries recorded for mailbox by
	// PutPollTries and their UIDVALIDITY (0 and none when there are none).
	PollTries(mailbox string) (validity uint32, tries map[uint32]int, err error)
	// Lease returns the holder of lease name and when it ends ("" when
	// nobody holds it).
	Lease(name string) (owner string, until time.Time, err error)
	// Instances returns what every serving process reported of itself
	// (PutInstance), by ID.
	Instances() ([]Instance, error)
}
