package desk

import (
	"context"
	"strings"
	"testing"
	"time"

	"ticketgate/rules"
	"ticketgate/store"
)

// Proves the notice of a ticket an agent closes (by a reply with #close,
// a bare #status closed, or from the command line) tells the customer
// how long a reply reopens it, as the lifecycle's closing notice does: it
// said "the ticket will be reopened" whenever they replied, and a reply
// after [tickets] reopen_window opened a new ticket instead.
func TestAgentsClosingNoticeNamesTheReopenWindow(t *testing.T) {
	g := startDesk(t)
	g.pipeline.Policy = &Policy{ReopenWindow: 7 * 24 * time.Hour}
	now := time.Now()
	g.pipeline.Now = func() time.Time { return now }
	ana := func(id string) string { return agSigned(t, agKey, rules.TokenReply, id, "ana@example.com") }
	open := func(customer, subject string) *store.Ticket {
		t.Helper()
		g.mustSend(customer, []string{"support@example.com"}, msg(customer, "support@example.com", subject, "Help."))
		for _, x := range g.tickets() {
			if x.Requester == customer {
				return g.ticket(x.ID)
			}
		}
		t.Fatalf("no ticket of %s", customer)
		return nil
	}
	notice := func(from int, customer string) string {
		t.Helper()
		g.settle()
		for _, m := range agMailsTo(g, from, customer) {
			if b := agBody(t, m.Data); strings.Contains(b, "as closed") {
				return b
			}
		}
		t.Fatalf("%s got no closing notice", customer)
		return ""
	}
	want := func(how, body string) {
		t.Helper()
		if !strings.Contains(body, "within 7 days") || !strings.Contains(body, "please write to us as a new request") {
			t.Errorf("closing notice (%s) does not name the 7 days a reply reopens the ticket:\n%s", how, body)
		}
	}

	tk := agOpen(t, g, "Printer on fire", "It is really on fire.")
	before := len(g.relay.Mails())
	agReply(g, "ana@example.com", ana(tk.ID), tk, "#close\nThe fuse was the culprit.")
	body := notice(before, "alice@customer.example")
	if !strings.Contains(body, "The fuse was the culprit.") {
		t.Errorf("closing notice lacks the agent's text:\n%s", body)
	}
	want("a reply with #close", body)

	bare := open("bo@customer.example", "Scanner jams")
	before = len(g.relay.Mails())
	agReply(g, "ana@example.com", ana(bare.ID), bare, "#status closed")
	want("#status closed", notice(before, "bo@customer.example"))

	cli := open("cy@customer.example", "Fax is silent")
	before = len(g.relay.Mails())
	if _, err := g.pipeline.Act(context.Background(), cli.ID, Action{Name: "status", Value: "closed", Actor: "meg@example.com"}); err != nil {
		t.Fatal(err)
	}
	want("the command line", notice(before, "cy@customer.example"))

	// What the notice says is what the desk does: past the window, a
	// reply opens a new ticket.
	now = now.Add(8 * 24 * time.Hour)
	n := len(g.tickets())
	g.mustSend("alice@customer.example", []string{"support@example.com"},
		msg("alice@customer.example", "support@example.com", "Re: ["+tk.ID+"] Printer on fire", "It burns again."))
	if got := g.ticket(tk.ID); got.Status != rules.StatusClosed || len(g.tickets()) != n+1 {
		t.Errorf("a reply 8 days after the close: %s is %s, %d tickets (want it closed and a new one)", tk.ID, got.Status, len(g.tickets()))
	}
}
