package desk

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"ticketgate/rules"
	"ticketgate/store"
)

// deleteBodies decides retention's deletion on c's ticket (full holds its
// messages): every message keeps who, when and its subject, and loses its
// text, raw copy and attachments.
func deleteBodies(c *Change, full *store.Ticket, now time.Time) SweepAction {
	msgs := slices.Clone(full.Messages)
	n := 0
	for i := range msgs {
		m := &msgs[i]
		if emptied(m) {
			continue
		}
		n++
		m.Text, m.VisibleText, m.Raw, m.Attachments = "", "", "", []store.Attachment{}
		m.Notes = append(m.Notes, "body and attachments deleted by the retention policy")
	}
	c.Rewrite = &Rewrite{Messages: msgs}
	c.Ticket.BodiesDeletedAt = &now
	c.Ticket.Files, c.Ticket.FileBytes = 0, 0
	detail := fmt.Sprintf("retention: bodies and attachments of %d messages deleted (closed %s)", n, full.ClosedAt.UTC().Format(time.RFC3339))
	c.log(store.Event{At: now, Type: rules.EventBodiesDeleted, Detail: detail})
	return SweepAction{Ticket: full.ID, Kind: string(rules.EventBodiesDeleted), Detail: detail}
}

// retentionSlack is how long past its due time check lets retention's
// deletion wait before it reports it: the sweep runs every few minutes,
// and a gateway may be down for a while.
const retentionSlack = 24 * time.Hour

// RetentionProblems checks the tickets of s against retention, page by
// page in read transactions, and returns one line per ticket that
// breaks a rule: a message older than the ticket's bodies_deleted still
// holding its body, raw copy or files; or, with [retention] on, a ticket
// closed more than closed_after (and a day) ago whose messages still hold
// them.
func (p *Policy) RetentionProblems(ctx context.Context, s store.Store, now time.Time) ([]string, error) {
	var problems []string
	after := ""
	for {
		var next string
		err := s.View(ctx, func(tx store.Tx) error {
			// A ticket that does not decode is left out: check
			// lists it as damaged already.
			list, cursor, err := tx.Tickets(store.Filter{Sort: store.SortCreated, Limit: forgetPage, After: after})
			if err != nil && !errors.Is(err, store.ErrBadRecord) {
				return err
			}
			next = cursor
			for _, t := range list {
				due := p.Retention.Due(t.Status, t.ClosedAt, t.BodiesDeletedAt)
				overdue := !due.IsZero() && now.After(due.Add(retentionSlack))
				if t.BodiesDeletedAt == nil && !overdue {
					continue
				}
				full, err := tx.TicketFull(t.ID)
				if errors.Is(err, store.ErrBadRecord) {
					continue
				}
				if err != nil {
					return err
				}
				problems = append(problems, retentionProblems(full, overdue)...)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("check retention: %w", err)
		}
		if next == "" {
			return problems, nil
		}
		after = next
	}
}

func retentionProblems(t *store.Ticket, overdue bool) []string {
	var out []string
	kept := 0
	for _, m := range t.Messages {
		if emptied(&m) {
			continue
		}
		kept++
		if t.BodiesDeletedAt != nil && !m.CreatedAt.After(*t.BodiesDeletedAt) {
			out = append(out, fmt.Sprintf("ticket %s: message %s still holds its body or files after retention deleted them at %s",
				t.ID, m.MessageID, t.BodiesDeletedAt.UTC().Format(time.RFC3339)))
		}
	}
	if overdue && kept > 0 {
		out = append(out, fmt.Sprintf("ticket %s: closed at %s, longer ago than [retention] closed_after, and %d messages still hold their bodies (has the sweep run?)",
			t.ID, t.ClosedAt.UTC().Format(time.RFC3339), kept))
	}
	return out
}
