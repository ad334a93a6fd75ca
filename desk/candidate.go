package desk

import (
	"errors"
	"fmt"
	"sync"

	"ticketgate/mailin"
	"ticketgate/rules"
	"ticketgate/store"
)

// candidate finds the ticket a message names: by subject token first, then
// by a token in a plus address (support+HS-123456@), then by In-Reply-To,
// then References (newest first). Whoever is named, the sender check in
// rules.DecideThread still decides whether the mail may join it.
func (p *Pipeline) candidate(tx store.Tx, pl *plan) (*rules.Candidate, error) {
	// Read only for mail that names a ticket: most new mail names none.
	rating := sync.OnceValue(func() bool {
		_, ok := rules.ParseRating(pl.visible)
		return ok
	})
	c, err := p.namedTicket(tx, pl.in, pl.d.Rcpts, rating)
	if c != nil {
		c.Rating = rating()
		c.Automatic = p.kind(pl) != "customer"
	}
	return c, err
}

// namedTicket is the ticket a message names, nil when none. A rating
// (rating reports whether the message reads as one) of a closed ticket
// that asked for one is about that ticket, even when it was merged into
// another since.
func (p *Pipeline) namedTicket(tx store.Tx, in *mailin.Inbound, rcpts []string, rating func() bool) (*rules.Candidate, error) {
	tokens := []struct{ text, via string }{{in.Subject, "token"}}
	for _, r := range rcpts {
		if _, tag, ok := p.Routes.Match(r); ok && tag != "" {
			tokens = append(tokens, struct{ text, via string }{tag, "plus-address token"})
		}
	}
	for _, tok := range tokens {
		id, ok := rules.TicketToken(tok.text, p.Prefix)
		if !ok {
			continue
		}
		if t, err := tx.Ticket(id); err == nil {
			return mergedCandidate(tx, t, tok.via, rating)
		} else if !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
	}
	refs := append([]string(nil), in.InReplyTo...)
	for i := len(in.References) - 1; i >= 0; i-- {
		refs = append(refs, in.References[i])
	}
	for _, ref := range refs {
		id, err := tx.TicketByMessageID(ref)
		if err != nil {
			return nil, err
		}
		if id != "" {
			t, err := tx.Ticket(id)
			if err != nil {
				return nil, err
			}
			return mergedCandidate(tx, t, "reference", rating)
		}
	}
	return nil, nil
}

// mergedCandidate is t as the candidate, or when t was merged into another
// ticket (and that one perhaps into a third) the ticket it went into; but
// a rating of t, closed with its survey sent, stays on t.
func mergedCandidate(tx store.Reader, t *store.Ticket, via string, rating func() bool) (*rules.Candidate, error) {
	if t.Status == rules.StatusClosed && t.SurveySent && rating() {
		return candidateOf(t, via), nil
	}
	t, hops, err := mergedEnd(tx, t)
	if err != nil {
		return nil, err
	}
	for _, h := range hops {
		via += " (" + h + ")"
	}
	return candidateOf(t, via), nil
}

// mergedEnd is t, or when t was merged into another ticket (and that one
// perhaps into a third) the ticket it went into, where its conversation
// goes on; hops says each merge followed ("HS-1 was merged into HS-2").
func mergedEnd(tx store.Reader, t *store.Ticket) (*store.Ticket, []string, error) {
	var hops []string
	for len(hops) < 8 && t.MergedInto != "" {
		next, err := tx.Ticket(t.MergedInto)
		if errors.Is(err, store.ErrNotFound) {
			break
		}
		if err != nil {
			return nil, nil, err
		}
		hops = append(hops, fmt.Sprintf("%s was merged into %s", t.ID, next.ID))
		t = next
	}
	return t, hops, nil
}

func candidateOf(t *store.Ticket, via string) *rules.Candidate {
	c := &rules.Candidate{ID: t.ID, Status: t.Status, Requester: t.Requester, Participants: t.CC, Via: via, SurveySent: t.SurveySent}
	if t.ClosedAt != nil {
		c.ClosedAt = *t.ClosedAt
	}
	return c
}
