package rules

import (
	"slices"
	"strings"
	"time"
)

// Route kinds ([[route]] kind in the configuration).
const (
	// RouteTickets is the default kind: mail opens and joins tickets.
	RouteTickets = ""
	// RouteEscalation escalates the ticket its subject names.
	RouteEscalation = "escalation"
	// RouteStatus answers the sender with the list of their unresolved
	// tickets and makes no ticket.
	RouteStatus = "status"
)

// RouteKinds are the route kinds the configuration accepts.
var RouteKinds = []string{RouteTickets, RouteEscalation, RouteStatus}

// ListingSubject is the subject that asks, on any route, for the list of
// the sender's unresolved tickets.
const ListingSubject = "my tickets"

// MaxListed caps the tickets one list names; the rest are counted.
const MaxListed = 50

// IsListingRequest reports whether a message to route with subject asks
// for the sender's list of tickets: every message to a status route, and
// on any route a subject that is "my tickets" in any case, behind any
// chain of Re:/Fwd: prefixes, with surrounding white space and a final
// "?", "!" or "." allowed. A subject naming a ticket is about that ticket,
// never a request for the list.
func IsListingRequest(route Route, subject, prefix string) bool {
	if route.Kind == RouteStatus {
		return true
	}
	if _, ok := TicketToken(subject, prefix); ok {
		return false
	}
	s := strings.TrimRight(BaseSubject(subject, prefix), "?!. ")
	return strings.EqualFold(s, ListingSubject)
}

// Listed is one ticket as the list names it.
type Listed struct {
	ID        string
	Subject   string
	Status    Status
	UpdatedAt time.Time
	// MergedInto is the ticket it went into, "" when none: a merged
	// ticket lives on in the other one and is not listed.
	MergedInto string
}

// ListingRequest is what DecideListing needs to know about one request.
type ListingRequest struct {
	// From is the sender's address ("" when none could be read) and
	// SenderProblem why it cannot be trusted ("" when it can).
	From          string
	SenderProblem string
	// Auto is how the message was classified (automatic mail gets no
	// answer, as with every automatic reply).
	Auto Auto
	// Agent says From is one of the team's addresses.
	Agent bool
	// Tickets are the tickets From is the requester or a participant of,
	// in any status. None means From is a stranger.
	Tickets []Listed
	// Answered says this very message was answered before (a redelivery).
	Answered bool
	// Bouncing says automatic mail to From is held because it bounced.
	Bouncing bool
	// AutoTimes are when automatic mail went to From, and Limits the
	// automatic-mail limits (the auto-reply rate limit).
	AutoTimes []time.Time
	Limits    []Limit
	Now       time.Time
}

// Listing outcomes: what became of a request for the list.
const (
	ListingSent        = "sent"         // the list goes to the sender
	ListingNoSender    = "no_sender"    // no trustworthy sender address
	ListingAutomatic   = "automatic"    // automatic mail is never answered
	ListingAgent       = "agent"        // the team's own addresses get no list
	ListingStranger    = "stranger"     // neither requester nor participant of any ticket
	ListingRepeat      = "repeat"       // the same message was answered already
	ListingBouncing    = "bouncing"     // the sender's address bounces
	ListingRateLimited = "rate_limited" // automatic mail to the sender is over its limit
)

// Listing is the decision on a request for the list of tickets.
type Listing struct {
	// Outcome is one of the Listing* values; Send is Outcome == ListingSent.
	Outcome string
	Send    bool
	// To is the one address the list goes to: the sender, never a
	// Reply-To or a Cc.
	To string
	// Reason says in words why no list goes out ("" when one does).
	Reason string
	// Tickets are the unresolved tickets to name, the most recently
	// updated first, at most MaxListed; More counts the others.
	Tickets []Listed
	More    int
}

// DecideListing decides whether the sender of a request for their list
// of tickets gets one, and what it names. The list goes only to the
// sender's own address, only when that address is the requester or a
// participant of a ticket, and only as far as the automatic-mail limits
// allow; automatic mail, the team's own addresses and a message answered
// before get nothing.
func DecideListing(r ListingRequest) Listing {
	from := strings.ToLower(strings.TrimSpace(r.From))
	no := func(outcome, reason string) Listing { return Listing{Outcome: outcome, Reason: reason} }
	switch {
	case from == "" || r.SenderProblem != "":
		return no(ListingNoSender, "no trustworthy sender address")
	case r.Auto.Automatic || r.Auto.Bounce || r.Auto.OutOfOffice:
		why := "automatic mail"
		if r.Auto.Reason != "" {
			why += " (" + r.Auto.Reason + ")"
		}
		return no(ListingAutomatic, why+" is never answered")
	case r.Agent:
		return no(ListingAgent, from+" is an agent; agents list their tickets with \"ticketgate tickets -view mine\"")
	case len(r.Tickets) == 0:
		return no(ListingStranger, from+" is not the requester or a participant of any ticket")
	case r.Answered:
		return no(ListingRepeat, "this message was answered already")
	case r.Bouncing:
		return no(ListingBouncing, from+" is bouncing")
	case !Allow(r.AutoTimes, r.Now, r.Limits...):
		return no(ListingRateLimited, "automatic-mail rate limit reached for "+from)
	}
	open := make([]Listed, 0, len(r.Tickets))
	for _, t := range r.Tickets {
		if t.MergedInto == "" && !isDone(t.Status) {
			open = append(open, t)
		}
	}
	slices.SortStableFunc(open, func(a, b Listed) int {
		if c := b.UpdatedAt.Compare(a.UpdatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	l := Listing{Outcome: ListingSent, Send: true, To: from, Tickets: open}
	if len(open) > MaxListed {
		l.Tickets, l.More = open[:MaxListed], len(open)-MaxListed
	}
	return l
}
