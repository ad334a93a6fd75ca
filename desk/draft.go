package desk

import (
	"crypto/rand"
	"errors"
	"fmt"
	"math/big"
	"strings"

	"ticketgate/mailout"
	"ticketgate/rules"
	"ticketgate/store"
)

// draft is what is prepared, before the transaction, for a message that
// looks like it opens a ticket: a candidate ticket id and the auto-reply
// composed for the ticket it would open under that id. Inside the
// transaction the decision is made as always; the candidate is used when
// still free, and the auto-reply's bytes when what they were built from
// still holds (mailout.Prepared).
type draft struct {
	id    string
	reply *mailout.Prepared // nil: the auto-reply cannot be prepared
	// outcome is what became of the draft in the committed run: draftUsed,
	// draftRecomposed or draftDropped.
	outcome int
}

const (
	draftDropped = iota
	draftUsed
	draftRecomposed
)

// DraftStats counts what became of the auto-replies composed before the
// transaction, over the messages this pipeline committed (explain counts
// nothing).
type DraftStats struct {
	// Used were queued as composed before the transaction.
	Used uint64
	// Recomposed were composed again inside it (the candidate ticket id
	// was taken, the message got another Message-ID, a rate limit dropped
	// a recipient...).
	Recomposed uint64
	// Dropped were not needed: the message joined a ticket, or no
	// auto-reply went out.
	Dropped uint64
}

// DraftStats reports what became of the drafted auto-replies.
func (p *Pipeline) DraftStats() DraftStats {
	return DraftStats{Used: p.drafts[draftUsed].Load(), Recomposed: p.drafts[draftRecomposed].Load(), Dropped: p.drafts[draftDropped].Load()}
}

// draft prepares, on the caller's goroutine, what a message that will
// likely open a ticket needs and does not depend on the store: a
// candidate ticket id and its auto-reply, rendered and encoded. Mail that
// names a ticket (it will most likely join it), mail that gets no
// auto-reply and mail handled elsewhere (bounces, listings) get none.
func (p *Pipeline) draft(pl *plan) {
	if pl.verp != 0 || p.suppressReason(pl) != "" || p.forgedFrom(pl) || pl.listing || p.namesTicket(pl) {
		return
	}
	id, err := p.drawID(pl.numbers)
	if err != nil {
		return // the transaction draws one
	}
	t := p.ticketFor(id, pl)
	subject, requestType := p.openingSubject(pl.in.Subject)
	if subject != "" {
		t.Subject = subject
	}
	reply := autoReply(t, pl, requestType)
	pl.draft = &draft{id: id, reply: p.Desk.Prepare(t, reply.Out, pl.now)}
	if pl.draft.reply != nil {
		pl.note("draft: candidate ticket id %s, auto-reply composed before the transaction", id)
	} else {
		pl.note("draft: candidate ticket id %s (the auto-reply template reads values composed only in the transaction)", id)
	}
}

// namesTicket reports whether the message names a ticket by a token in
// its subject or a plus address: it will most likely join that ticket.
func (p *Pipeline) namesTicket(pl *plan) bool {
	if _, ok := rules.TicketToken(pl.in.Subject, p.Prefix); ok {
		return true
	}
	for _, r := range pl.d.Rcpts {
		if _, tag, ok := p.Routes.Match(r); ok && tag != "" {
			if _, ok := rules.TicketToken(tag, p.Prefix); ok {
				return true
			}
		}
	}
	return false
}

// openingSubject is the subject of a ticket a customer's mail with
// subject s opens, and the request type its tags name, as customerRules
// decides them ("" subject: ticketFor's stands).
func (p *Pipeline) openingSubject(s string) (subject, requestType string) {
	tagged := rules.Tags(p.requestTypes(), s)
	requestType = tagged.Type.Name
	if tagged.Urgent && requestType == "" {
		requestType = "urgent request"
	}
	return rules.BaseSubject(tagged.Clean, p.Prefix), requestType
}

// drawID draws a candidate ticket id: the next sequential number of nums, or
// the way the store does, a random number of six digits after the prefix.
func (p *Pipeline) drawID(nums *numbers) (string, error) {
	if p.draw != nil {
		return p.draw(p.idPrefix())
	}
	if p.Sequential {
		return nums.drawNumber(p.idPrefix())
	}
	n, err := rand.Int(rand.Reader, big.NewInt(1000000))
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%s-%06d", p.idPrefix(), n.Int64()), nil
}

// idPrefix is the prefix of new ticket ids, in upper case: the form in
// which tokens, signed addresses and commands name a ticket
// (rules.TicketToken), whatever case the configuration writes it in.
func (p *Pipeline) idPrefix() string { return strings.ToUpper(p.Prefix) }

// newTicketID is the id of the ticket the message in pl opens: the
// candidate drawn before the transaction when no ticket has it (one
// lookup), else the next sequential number no ticket has, or one the
// store draws at random.
func (p *Pipeline) newTicketID(tx store.Tx, pl *plan) (string, error) {
	id, err := p.freeTicketID(tx, pl)
	if d := pl.draft; err == nil && d != nil && id != d.id {
		pl.note("draft: ticket id %s was taken meanwhile; the new ticket is %s", d.id, id)
	}
	return id, err
}

// freeTicketID finds newTicketID's id: the draft's candidate, then (with
// sequential numbering) the next numbers in turn, each tried with one
// lookup, then one the store draws.
func (p *Pipeline) freeTicketID(tx store.Tx, pl *plan) (string, error) {
	id := ""
	if d := pl.draft; d != nil {
		id = d.id
	}
	for range maxNumberTries {
		if id == "" {
			if !p.Sequential {
				break
			}
			var err error
			if id, err = pl.numbers.take(tx, p.idPrefix()); err != nil {
				return "", err
			}
		}
		_, err := tx.Ticket(id)
		if errors.Is(err, store.ErrNotFound) {
			return id, nil
		}
		// A ticket whose record does not decode (damage, which check
		// reports) holds its number as any other.
		if err != nil && !errors.Is(err, store.ErrBadRecord) {
			return "", err
		}
		id = ""
	}
	return tx.NewTicketID(p.idPrefix())
}

// draftOutcome notes in pl what became of its drafted auto-reply, from
// the applied changes c of a new ticket (nil: the message opened none).
func draftOutcome(pl *plan, c *Change, why string) {
	d := pl.draft
	if d == nil || d.reply == nil {
		return
	}
	d.outcome = draftDropped
	switch {
	case c != nil && c.Precomposed > 0:
		d.outcome = draftUsed
		pl.note("draft: auto-reply queued as composed before the transaction")
	case c != nil && len(c.Recomposed) > 0:
		d.outcome = draftRecomposed
		pl.note("draft: auto-reply composed again in the transaction: %s", c.Recomposed[0])
	default:
		pl.note("draft: not used: %s", why)
	}
}
