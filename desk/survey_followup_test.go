package desk

import (
	"strings"
	"testing"
	"time"

	"ticketgate/rules"
	"ticketgate/store"
)

// Proves a customer's follow-up to a ticket closed with its survey sent,
// opening with "One more thing" or a numbered list, reopens the ticket and reaches the
// agents instead of being taken as a rating of 1.
func TestFollowUpAfterTheSurveyIsNoRating(t *testing.T) {
	for _, text := range []string{
		"One more thing: the scanner on the second floor jams on every page now.",
		"Two things: the toner light stays on, and the tray will not close.",
		"1. The scanner jams on every page.\n2. The fax line is silent.",
	} {
		t.Run(text[:9], func(t *testing.T) {
			g := startDesk(t)
			g.pipeline.Policy = &Policy{ReopenWindow: 7 * 24 * time.Hour}
			g.mustSend("q@customer.example", []string{"support@example.com"}, msg("q@customer.example", "support@example.com", "Printer", "It smokes."))
			tk := g.onlyTicket()
			closedAt := time.Now()
			g.change(tk.ID, func(t *store.Ticket) { t.Status, t.ClosedAt, t.SurveySent = rules.StatusClosed, &closedAt, true })
			g.settle()
			before := len(g.relay.Mails())
			g.mustSend("q@customer.example", []string{"support@example.com"}, msg("q@customer.example", "support@example.com", "Re: ["+tk.ID+"] Printer", text))
			got := g.ticket(tk.ID)
			if got.Satisfaction != nil || got.Status != rules.StatusOpen {
				t.Fatalf("follow-up %q: satisfaction %+v, status %s; want no rating and the ticket reopened", text, got.Satisfaction, got.Status)
			}
			g.settle()
			if len(agMailsTo(g, before, "ana@example.com")) != 1 {
				t.Errorf("the queue's agent was not told of the follow-up")
			}
		})
	}
}

// Proves a participant's short answer to a closed ticket ("5 more printers
// broke" read as a score, or a bare "1") is no rating in the requester's
// name: the survey went to the requester only, so the ticket reopens for
// the agents and its satisfaction stays unset.
func TestParticipantsReplyIsNoRating(t *testing.T) {
	g := startDesk(t)
	g.pipeline.Policy = &Policy{ReopenWindow: 7 * 24 * time.Hour}
	g.mustSend("q@customer.example", []string{"support@example.com"},
		msg("q@customer.example", "support@example.com", "Printer", "It smokes.", "Cc: boss@customer.example"))
	tk := g.onlyTicket()
	closedAt := time.Now()
	g.change(tk.ID, func(t *store.Ticket) { t.Status, t.ClosedAt, t.SurveySent = rules.StatusClosed, &closedAt, true })
	g.mustSend("boss@customer.example", []string{"support@example.com"}, msg("boss@customer.example", "support@example.com", "Re: ["+tk.ID+"] Printer", "1"))
	got := g.ticket(tk.ID)
	if got.Satisfaction != nil || got.Status != rules.StatusOpen {
		t.Fatalf("a participant's reply: satisfaction %+v, status %s; want no rating and the ticket reopened", got.Satisfaction, got.Status)
	}
}

// Proves the customer who answers the survey of a ticket closed a second
// time (reopened by them after their first rating) is thanked again: the
// thanks went only to the first rating ever given on the ticket, so the
// second survey's answer went unanswered. A second answer to the same
// survey is still not thanked twice.
func TestRatingOfTheNextClosingIsThanked(t *testing.T) {
	g := startDesk(t)
	agPolicy(t, g)
	tk := agOpen(t, g, "Printer on fire", "It is really on fire.")
	signed := agSigned(t, agKey, rules.TokenReply, tk.ID, "ana@example.com")
	rate := func(text string) int {
		t.Helper()
		before := len(g.relay.Mails())
		g.mustSend("alice@customer.example", []string{"support@example.com"},
			msg("alice@customer.example", "support@example.com", "Re: ["+tk.ID+"] How did we do? Printer on fire", text))
		g.settle()
		n := 0
		for _, m := range agMailsTo(g, before, "alice@customer.example") {
			if strings.Contains(agBody(t, m.Data), "thank you for rating") {
				n++
			}
		}
		return n
	}
	agReply(g, "ana@example.com", signed, tk, "#close\nReplace the fuse.")
	if n := rate("2 - slow"); n != 1 {
		t.Fatalf("first rating: %d thanks, want 1", n)
	}
	g.mustSend("alice@customer.example", []string{"support@example.com"},
		msg("alice@customer.example", "support@example.com", "Re: ["+tk.ID+"] Printer on fire", "It is burning again since this morning."))
	if got := g.ticket(tk.ID); got.Status != rules.StatusOpen {
		t.Fatalf("status %s after the customer's reply, want open", got.Status)
	}
	g.settle()
	agReply(g, "ana@example.com", signed, tk, "#close\nThe new fuse holds.")
	if n := rate("5 - great"); n != 1 {
		t.Errorf("rating of the second closing: %d thanks, want 1", n)
	}
	if s := g.ticket(tk.ID).Satisfaction; s == nil || s.Score != 5 {
		t.Errorf("satisfaction %+v, want 5", s)
	}
	if n := rate("4"); n != 0 {
		t.Errorf("a second answer to the same survey: %d thanks, want none", n)
	}
}

// Proves the thanks for a rating answers the rating: its In-Reply-To
// names the customer's rating, so their mail program shows it below
// what they sent; it named the first message of the ticket.
func TestSurveyThanksAnswersTheRating(t *testing.T) {
	g := startDesk(t)
	agPolicy(t, g)
	tk := agOpen(t, g, "Printer on fire", "It is really on fire.")
	agReply(g, "ana@example.com", agSigned(t, agKey, rules.TokenReply, tk.ID, "ana@example.com"), tk, "#close\nReplace the fuse.")
	before := len(g.relay.Mails())
	g.mustSend("alice@customer.example", []string{"support@example.com"},
		msg("alice@customer.example", "support@example.com", "Re: ["+tk.ID+"] How did we do? Printer on fire", "5 - great",
			"Message-ID: <rating-5@customer.example>"))
	g.settle()
	thanks := agOne(t, g, before, "alice@customer.example")
	h := header(t, thanks.Data)
	if got := h.Get("In-Reply-To"); got != "<rating-5@customer.example>" {
		t.Errorf("the thanks answers %s, want the rating <rating-5@customer.example>", got)
	}
	if refs := h.Get("References"); !strings.HasSuffix(refs, "<rating-5@customer.example>") {
		t.Errorf("References %q do not end with the rating", refs)
	}
}
