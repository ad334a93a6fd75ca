package desk

import (
	"errors"
	"net/mail"
	"strings"
	"time"

	"ticketgate/mailin"
	"ticketgate/mailout"
	"ticketgate/rules"
	"ticketgate/store"
)

// ListingSubjectLine is the subject of the mail that lists a customer's
// unresolved tickets.
const ListingSubjectLine = "Your open tickets"

// isListing reports whether the message in pl asks for its sender's list
// of tickets (see rules.IsListingRequest). On a route of tickets, mail to
// a plus address naming a ticket (support+hs-123456@, an agent's signed
// reply address) is about that ticket, whatever its subject.
func (p *Pipeline) isListing(pl *plan) bool {
	if pl.verp != 0 {
		return false
	}
	if pl.route.Kind != rules.RouteStatus {
		for _, r := range pl.d.Rcpts {
			if _, tag, ok := p.Routes.Match(r); ok && tag != "" {
				if _, named := rules.TicketToken(tag, p.Prefix); named {
					return false
				}
			}
		}
	}
	return rules.IsListingRequest(pl.route, pl.in.Subject, p.Prefix)
}

// answeredKey is the counter that records that the request with this
// Message-ID was answered, so a redelivery of it is not answered again.
func answeredKey(msgid string) string { return "list:answered:" + strings.ToLower(msgid) }

// commitListing answers a request for the sender's list of unresolved
// tickets. The request itself opens, joins and changes no ticket and is
// not stored; what became of it is the result's Action ("status_" and the
// outcome), which the gateway logs and counts in
// ticketgate_messages_received_total.
func (p *Pipeline) commitListing(tx store.Tx, pl *plan, res *mailin.Result) error {
	c, dec, err := p.decideListing(tx, pl)
	if err != nil {
		return err
	}
	res.Action = "status_" + dec.Outcome
	if !dec.Send {
		pl.note("status request: no reply: %s", dec.Reason)
		return nil
	}
	pl.note("status request: the list of %d unresolved tickets goes to %s", len(dec.Tickets)+dec.More, dec.To)
	return p.apply(tx, pl.now, c)
}

// decideListing reads what rules.DecideListing needs about the sender of
// the request in pl and returns its decision, with the change that sends
// the list when one goes out.
func (p *Pipeline) decideListing(r store.Reader, pl *plan) (*Change, rules.Listing, error) {
	from := strings.ToLower(pl.in.From.Address)
	req := rules.ListingRequest{From: from, SenderProblem: pl.in.SenderProblem, Auto: pl.auto,
		Limits: p.Desk.AutoLimits, Now: pl.now}
	_, req.Agent = p.agent(from)
	if from != "" {
		var err error
		if req.Tickets, err = p.ticketsOf(r, from); err != nil {
			return nil, rules.Listing{}, err
		}
		answered, err := r.RateTimes(answeredKey(pl.origID))
		if err != nil {
			return nil, rules.Listing{}, err
		}
		req.Answered = len(answered) > 0
		if req.Bouncing, err = r.Bouncing(from, pl.now); err != nil {
			return nil, rules.Listing{}, err
		}
		if req.AutoTimes, err = r.RateTimes(mailout.AutoKey(from)); err != nil {
			return nil, rules.Listing{}, err
		}
	}
	dec := rules.DecideListing(req)
	if !dec.Send {
		return nil, dec, nil
	}
	c := &Change{
		Direct:   &Direct{Route: strings.ToLower(pl.route.Address), InReplyTo: pl.origID},
		Counters: map[string][]time.Time{answeredKey(pl.origID): {pl.now}},
	}
	c.send(Intent{Out: mailout.Out{Kind: "list", To: []mail.Address{{Name: personName(pl.in.From.Name), Address: dec.To}},
		Subject: ListingSubjectLine, Template: "ticket_list", Auto: "auto-replied",
		Data: map[string]any{"Name": personName(pl.in.From.Name), "Tickets": dec.Tickets, "More": dec.More}}})
	return c, dec, nil
}

// ticketsOf are the tickets addr is the requester or a participant of,
// in any status, found through the store's address index.
func (p *Pipeline) ticketsOf(r store.Reader, addr string) ([]rules.Listed, error) {
	ids, err := r.TicketsOfAddress(addr)
	if err != nil {
		return nil, err
	}
	out := make([]rules.Listed, 0, len(ids))
	for _, id := range ids {
		t, err := r.Ticket(id)
		if errors.Is(err, store.ErrBadRecord) {
			continue // damage, which check reports: the others are listed
		}
		if err != nil {
			return nil, err
		}
		out = append(out, rules.Listed{ID: t.ID, Subject: t.Subject, Status: t.Status, UpdatedAt: t.UpdatedAt, MergedInto: t.MergedInto})
	}
	return out, nil
}
