package desk

import (
	"strings"
	"testing"

	"ticketgate/rules"
)

// TestCorrectedNoteStaysANote: a mail to the note address whose commands
// are refused tells the agent so; answering that mail with the commands
// corrected, as it asks, adds the note again: the text never reaches the
// customer.
func TestCorrectedNoteStaysANote(t *testing.T) {
	g := startDesk(t)
	tk := agOpen(t, g, "Printer on fire", "It is really on fire.")
	before := len(g.relay.Mails())
	agReply(g, "ana@example.com", agSigned(t, agKey, rules.TokenNote, tk.ID, "ana@example.com"), tk, "#stauts on_hold\nThe customer broke it himself.")
	refusal := agOne(t, g, before, "ana@example.com")
	if !strings.Contains(agBody(t, refusal.Data), "not applied") {
		t.Fatalf("ana was not told her commands were refused:\n%s", agBody(t, refusal.Data))
	}
	before = len(g.relay.Mails())
	answer(t, g, refusal, "ana@example.com", "#status on_hold\nThe customer broke it himself.")
	if l := agMailsTo(g, before, "alice@customer.example"); len(l) != 0 {
		t.Fatalf("the internal note reached the customer:\n%s", agBody(t, l[0].Data))
	}
	now := g.ticket(tk.ID)
	if last := now.Messages[len(now.Messages)-1]; now.Status != rules.StatusOnHold || last.Kind != "note" || !strings.Contains(last.VisibleText, "broke it himself") {
		t.Errorf("after the corrected note: status %s, last message %s %q", now.Status, last.Kind, last.VisibleText)
	}
}
