package rules

import "time"

// Retention is how long the bodies and attachments of a closed ticket are
// kept: After its closing they are deleted, the ticket itself (subject,
// addresses, status, events) stays. Zero keeps them for ever.
type Retention struct {
	After time.Duration
}

// Due returns when a ticket in status st, closed at closed, has bodies to
// delete: After past its closing, unless they were deleted since (deleted
// at or after closed). Zero when none are due: retention off, the ticket
// not closed, or its bodies already gone.
func (r Retention) Due(st Status, closed, deleted *time.Time) time.Time {
	if r.After <= 0 || st != StatusClosed || closed == nil {
		return time.Time{}
	}
	if deleted != nil && !deleted.Before(*closed) {
		return time.Time{}
	}
	return closed.Add(r.After)
}
