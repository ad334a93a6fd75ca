package desk

import (
	"testing"

	"ticketgate/rules"
)

// Proves mail that copies the escalation address escalates whichever
// routing address comes first in the envelope.
func TestMailCopiedToTheEscalationAddressEscalates(t *testing.T) {
	g := startDesk(t)
	g.mustSend("dora@customer.example", []string{"support@example.com", "escalation@example.com"},
		msg("dora@customer.example", "support@example.com", "Nobody answers me", "Three days and no answer.",
			"Cc: escalation@example.com"))
	tk := g.onlyTicket()
	if !tk.Escalated || tk.Priority != rules.PriorityHigh || !hasEvent(tk, "escalated", "escalation@example.com") {
		t.Fatalf("mail to support@ and escalation@: escalated %v, priority %s, events %+v", tk.Escalated, tk.Priority, tk.Events)
	}
	g.settle()
	if len(agMailsTo(g, 0, "meg@example.com")) != 1 {
		t.Errorf("the manager was not told of the escalation")
	}
}
