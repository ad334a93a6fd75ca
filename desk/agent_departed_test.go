package desk

import (
	"strings"
	"testing"

	"ticketgate/rules"
)

// TestQueueAnswersTicketOfAnAssigneeWhoLeft: a ticket whose assignee is
// no longer among the agents is the queue's, as its notifications are:
// the first queue agent to answer the customer reaches them and takes the
// ticket, instead of being held for an owner who cannot answer.
func TestQueueAnswersTicketOfAnAssigneeWhoLeft(t *testing.T) {
	g := startDesk(t)
	tk := agOpen(t, g, "Printer on fire", "It is really on fire.")
	agReply(g, "ana@example.com", agSigned(t, agKey, rules.TokenReply, tk.ID, "ana@example.com"), tk, "#assign me")
	g.pipeline.Agents = agAgents[1:] // ana has left
	g.mustSend("alice@customer.example", []string{"support@example.com"},
		msg("alice@customer.example", "support@example.com", "Re: ["+tk.ID+"] Printer on fire", "Still burning."))
	g.settle()
	before := len(g.relay.Mails())
	agReply(g, "ben@example.com", agSigned(t, agKey, rules.TokenReply, tk.ID, "ben@example.com"), tk, "Pull the plug, please.")
	if l := agMailsTo(g, before, "alice@customer.example"); len(l) != 1 || !strings.Contains(agBody(t, l[0].Data), "Pull the plug") {
		t.Errorf("the customer got %d mails, want ben's reply", len(l))
	}
	if l := agMailsTo(g, before, "ben@example.com"); len(l) != 0 {
		t.Errorf("ben got %d mails, want none (his reply was held: %q)", len(l), agBody(t, l[0].Data))
	}
	if now := g.ticket(tk.ID); now.Assignee != "ben@example.com" {
		t.Errorf("assignee %q after ben's reply, want ben@example.com", now.Assignee)
	}

	// A queue agent takes such a ticket with #assign me, as an unassigned one.
	other := agOpen(t, g, "Scanner jams", "It jams.")
	g.pipeline.Agents = agAgents
	agReply(g, "ana@example.com", agSigned(t, agKey, rules.TokenReply, other.ID, "ana@example.com"), other, "#assign me")
	g.pipeline.Agents = agAgents[1:]
	before = len(g.relay.Mails())
	agReply(g, "ben@example.com", agSigned(t, agKey, rules.TokenReply, other.ID, "ben@example.com"), other, "#assign me")
	if now := g.ticket(other.ID); now.Assignee != "ben@example.com" {
		t.Errorf("assignee %q after ben's #assign me, want ben@example.com", now.Assignee)
	}
	if l := agMailsTo(g, before, "ben@example.com"); len(l) != 0 {
		t.Errorf("ben got %d mails, want none (%q)", len(l), agBody(t, l[0].Data))
	}
}
