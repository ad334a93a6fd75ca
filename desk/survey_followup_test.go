package desk

import (
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
