package desk

import (
	"context"
	"strings"
	"testing"
	"time"

	"ticketgate/mailin"
	"ticketgate/rules"
	"ticketgate/store"
)

// Proves an out-of-office reply to a closed ticket's last mail is kept on
// the ticket, which stays closed, and that explain and the result say so
// instead of "reopen".
func TestOutOfOfficeToAClosedTicketIsNoReopen(t *testing.T) {
	g := startGateway(t)
	g.mustSend("q@customer.example", []string{"support@example.com"}, msg("q@customer.example", "support@example.com", "Printer", "x"))
	tk := g.onlyTicket()
	closedAt := time.Now()
	g.change(tk.ID, func(t *store.Ticket) { t.Status, t.ClosedAt = rules.StatusClosed, &closedAt })
	raw := msg("q@customer.example", "support@example.com", "Automatic reply: ["+tk.ID+"] Printer", "I am away until Monday.",
		"Auto-Submitted: auto-replied")
	d := &mailin.Delivery{MailFrom: "q@customer.example", Rcpts: []string{"support@example.com"}, Raw: raw}
	ex, err := g.pipeline.Explain(context.Background(), d)
	if err != nil {
		t.Fatal(err)
	}
	res, err := g.pipeline.Deliver(context.Background(), d)
	if err != nil {
		t.Fatal(err)
	}
	got := g.ticket(tk.ID)
	if got.Status != rules.StatusClosed || len(messagesOfKind(got, "system")) != 1 {
		t.Fatalf("after the out-of-office reply: status %s, %d system messages", got.Status, len(messagesOfKind(got, "system")))
	}
	if res.Action != "append" || ex.Result.Action != "append" {
		t.Errorf("the ticket stays closed, but the result says %q and explain %q:\n%s", res.Action, ex.Result.Action, strings.Join(ex.Steps, "\n"))
	}
}

// Proves an out-of-office reply that comes after the reopen window (to the
// closed-notice or the survey, read late) is kept on the closed ticket
// too: no new ticket lands in the queue for the agents, and nobody is
// mailed.
func TestOutOfOfficePastTheReopenWindowOpensNoTicket(t *testing.T) {
	g := startGateway(t)
	g.pipeline.Agents = []Agent{{Email: "ana@example.com", Name: "Ana"}}
	g.mustSend("q@customer.example", []string{"support@example.com"}, msg("q@customer.example", "support@example.com", "Printer", "x"))
	tk := g.onlyTicket()
	g.settle()
	before := len(g.relay.Mails())
	closedAt := time.Now().Add(-8 * 24 * time.Hour)
	g.change(tk.ID, func(t *store.Ticket) { t.Status, t.ClosedAt = rules.StatusClosed, &closedAt })
	g.mustSend("q@customer.example", []string{"support@example.com"}, msg("q@customer.example", "support@example.com",
		"Automatic reply: ["+tk.ID+"] Printer", "I am away until Monday.", "Auto-Submitted: auto-replied"))
	g.settle()
	if n := len(g.tickets()); n != 1 {
		t.Fatalf("%d tickets after the out-of-office reply, want the one closed ticket", n)
	}
	got := g.ticket(tk.ID)
	if got.Status != rules.StatusClosed || len(messagesOfKind(got, "system")) != 1 {
		t.Fatalf("after the out-of-office reply: status %s, %d system messages", got.Status, len(messagesOfKind(got, "system")))
	}
	if after := len(g.relay.Mails()); after != before {
		t.Errorf("%d mails sent for an out-of-office reply to a closed ticket", after-before)
	}
}
