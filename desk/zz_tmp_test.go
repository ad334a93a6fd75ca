package desk

import (
	"context"
	"testing"

	"ticketgate/mailin"
)

func TestTmpAgentReplyPipedTechFirst(t *testing.T) {
	g := startDesk(t)
	tk := agOpen(t, g, "Printer on fire", "It is really on fire.")
	signed := agReplyTo(t, agOne(t, g, 0, "ana@example.com"))
	before := len(g.relay.Mails())
	body := "We are sending a technician.\n\nOn Sat, 21 Nov 2026 at 10:00, Alice Doe via Example Support wrote:\n> " + replyMarker + "\n>\n> It is really on fire.\n> " + endMarker + "\n"
	raw := msg("Ana Lima <ana@example.com>", signed, "Re: ["+tk.ID+"] "+tk.Subject, body, "Cc: tech@example.com")
	for _, rcpt := range []string{"tech@example.com", signed} {
		res, err := g.pipeline.Deliver(context.Background(), &mailin.Delivery{MailFrom: "ana@example.com", Rcpts: []string{rcpt}, Raw: raw, Source: "inject"})
		t.Logf("%s: %+v %v", rcpt, res, err)
	}
	g.settle()
	t.Logf("to alice: %d", len(agMailsTo(g, before, "alice@customer.example")))
	for _, x := range g.tickets() {
		full := g.ticket(x.ID)
		for _, m := range full.Messages {
			t.Logf("%s %s %s %s", x.ID, m.Kind, m.From, m.Subject)
		}
	}
}
