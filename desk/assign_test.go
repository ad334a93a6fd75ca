package desk

import (
	"context"
	"strings"
	"testing"

	"ticketgate/rules"
)

// TestAssignedAgentIsTold: the manager meg gives alice's ticket to ben
// with a mail of only "#assign ben@example.com"; ben hears of it at once,
// by a note answering to his note address, not first when the customer
// writes again or at his SLA alert. An operator's assign (command line,
// API) tells ana the same way. Nobody is told of taking a ticket
// themselves (#assign me, assign -as meg me), and the customer hears of none.
func TestAssignedAgentIsTold(t *testing.T) {
	g := startDesk(t)
	tk := agOpen(t, g, "Printer on fire", "It is really on fire.")
	before := len(g.relay.Mails())
	agReply(g, "meg@example.com", agSigned(t, agKey, rules.TokenReply, tk.ID, "meg@example.com"), tk, "#assign ben@example.com")
	if tk = g.ticket(tk.ID); tk.Assignee != "ben@example.com" {
		t.Fatalf("assignee %q after meg's #assign, want ben", tk.Assignee)
	}
	l := agMailsTo(g, before, "ben@example.com")
	if len(l) != 1 {
		t.Fatalf("ben, given the ticket by meg, got %d mails, want 1", len(l))
	}
	if body := agBody(t, l[0].Data); !strings.Contains(body, tk.ID) || !strings.Contains(body, "#assign ben@example.com") || !strings.Contains(body, "Meg Boss") {
		t.Errorf("ben's mail of the assignment:\n%s", body)
	}
	if got, want := agReplyTo(t, l[0]), agSigned(t, agKey, rules.TokenNote, tk.ID, "ben@example.com"); got != want {
		t.Errorf("ben's mail answers to %s, want his note address %s", got, want)
	}
	for _, addr := range []string{"meg@example.com", "ana@example.com", "alice@customer.example", "carol@customer.example"} {
		if n := len(agMailsTo(g, before, addr)); n != 0 {
			t.Errorf("%s got %d mails of meg giving the ticket to ben", addr, n)
		}
	}

	before = len(g.relay.Mails())
	if _, err := g.pipeline.Act(context.Background(), tk.ID, Action{Name: "assign", Value: "ana@example.com"}); err != nil {
		t.Fatal(err)
	}
	g.settle()
	if l := agMailsTo(g, before, "ana@example.com"); len(l) != 1 || !strings.Contains(agBody(t, l[0].Data), tk.ID) {
		t.Errorf("ana, given the ticket by the operator, got %d mails, want 1", len(l))
	}
	if n := len(agMailsTo(g, before, "ben@example.com")) + len(agMailsTo(g, before, "alice@customer.example")); n != 0 {
		t.Errorf("ben and the customer got %d mails of the operator's assign", n)
	}

	other := agOpen(t, g, "Scanner jammed", "Paper stuck.")
	before = len(g.relay.Mails())
	agReply(g, "ana@example.com", agSigned(t, agKey, rules.TokenReply, other.ID, "ana@example.com"), other, "#assign me")
	if _, err := g.pipeline.Act(context.Background(), tk.ID, Action{Name: "assign", Value: "me", Actor: "meg@example.com"}); err != nil {
		t.Fatal(err)
	}
	g.settle()
	if g.ticket(other.ID).Assignee != "ana@example.com" || g.ticket(tk.ID).Assignee != "meg@example.com" {
		t.Fatalf("ana's #assign me or meg's assign -as not applied")
	}
	if n := len(g.relay.Mails()) - before; n != 0 {
		t.Errorf("%d mails of ana and meg taking tickets themselves, want none", n)
	}
}
