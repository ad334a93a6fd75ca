package store

import (
	"context"
	"time"

	"ticketgate/rules"
)

// Stats are counts a backend reads without decoding records, for metrics
// scraped every few seconds.
type Stats struct {
	// ByStatus counts tickets per status.
	ByStatus map[rules.Status]int
	// Outbox counts the mails waiting in the outbox, due or not.
	Outbox int
	// OldestDue is when the mail waiting longest in the outbox fell due:
	// when it was queued (mail is queued due at once), however often the
	// relay deferred it since. Zero when the outbox is empty.
	OldestDue time.Time
}

// Inspector is implemented by backends that can count and check
// themselves. Both walks are backend-specific: they read the records and
// indexes as the backend lays them out.
type Inspector interface {
	// Stats returns the counts. Its cost grows with the number of index
	// keys, not with the size of the records.
	Stats(ctx context.Context) (Stats, error)
	// Check verifies the records against their indexes and references and
	// returns one line per inconsistency found (none: the database is
	// whole). The error is for a walk that could not be done.
	Check(ctx context.Context) ([]string, error)
}
