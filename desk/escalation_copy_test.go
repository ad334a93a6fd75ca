package desk

import (
	"context"
	"strings"
	"testing"

	"ticketgate/mailin"
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

// Proves mail taken from a mailbox, whose recipients are those its header
// names, escalates when it copies the escalation address, as explain and
// inject (which read the same header) say it does.
func TestMailFromAMailboxCopiedToTheEscalationAddressEscalates(t *testing.T) {
	g := startDesk(t)
	srv := startMemIMAP(t)
	srv.appendMsg(t, "INBOX", msg("dora@customer.example", "support@example.com", "Nobody answers me", "Three days and no answer.",
		"Cc: escalation@example.com", "Delivered-To: support@example.com"))
	if n := runOnce(t, newTestPoller(t, g, srv.config(t, "move"))); n != 1 {
		t.Fatalf("took %d, want 1", n)
	}
	tk := g.onlyTicket()
	if !tk.Escalated || tk.Priority != rules.PriorityHigh {
		t.Fatalf("mail to support@ and escalation@ from a mailbox: escalated %v, priority %s", tk.Escalated, tk.Priority)
	}
}

// Proves mail that copies the escalation address escalates when Postfix
// hands it over one recipient at a time, as the guide's pipe transport
// does (ticketgate_destination_recipient_limit=1): inject runs once for
// support@ and once for escalation@, in either order. The copy to
// escalation@ coming second was a duplicate of the message already
// stored, and the ticket was never escalated.
func TestMailCopiedToTheEscalationAddressEscalatesOneRecipientAtATime(t *testing.T) {
	g := startDesk(t)
	raw := msg("dora@customer.example", "support@example.com", "Nobody answers me", "Three days and no answer.",
		"Cc: escalation@example.com")
	for _, rcpt := range []string{"support@example.com", "escalation@example.com"} {
		if _, err := g.pipeline.Deliver(context.Background(), &mailin.Delivery{MailFrom: "dora@customer.example",
			Rcpts: []string{rcpt}, Raw: raw, Source: "inject"}); err != nil {
			t.Fatalf("inject -to %s: %v", rcpt, err)
		}
	}
	tk := g.onlyTicket()
	if !tk.Escalated || tk.Priority != rules.PriorityHigh || !hasEvent(tk, "escalated", "escalation@example.com") {
		t.Fatalf("mail to support@ and escalation@, one at a time: escalated %v, priority %s, events %+v", tk.Escalated, tk.Priority, tk.Events)
	}
}

// TestNewTicketAskingToEscalateGetsOneMail: a customer's first mail that
// asks to escalate opens an escalated ticket and gets the confirmation
// alone, as a first mail to the escalation address does; it got the
// escalation's acknowledgement too, before the confirmation of the
// ticket it named.
func TestNewTicketAskingToEscalateGetsOneMail(t *testing.T) {
	g := startDesk(t)
	g.mustSend("alice@customer.example", []string{"support@example.com"},
		msg(`"Alice Doe" <alice@customer.example>`, "support@example.com", "Outage", "Everything is down. Please escalate this."))
	g.settle()
	tk := g.onlyTicket()
	if !tk.Escalated || tk.Priority != rules.PriorityHigh {
		t.Fatalf("new ticket: escalated %v, priority %s", tk.Escalated, tk.Priority)
	}
	got := agMailsTo(g, 0, "alice@customer.example")
	if len(got) != 1 {
		t.Fatalf("the customer got %d mails for one message, want the confirmation alone", len(got))
	}
	if body := agBody(t, got[0].Data); !strings.Contains(body, "opened\nticket "+tk.ID) {
		t.Errorf("the one mail is not the confirmation:\n%s", body)
	}
}

// TestParticipantAskingToEscalateIsTheOneTold: a participant's reply
// that asks to escalate is acknowledged to them, as the notices about
// their own mail are; the requester, who asked for nothing, got it.
func TestParticipantAskingToEscalateIsTheOneTold(t *testing.T) {
	g := startDesk(t)
	tk := agOpen(t, g, "Printer on fire", "It is really on fire.")
	before := len(g.relay.Mails())
	g.mustSend("carol@customer.example", []string{"support@example.com"},
		msg(`"Carol Roe" <carol@customer.example>`, "support@example.com", "Re: ["+tk.ID+"] Printer on fire", "Still burning. Please escalate this."))
	g.settle()
	if now := g.ticket(tk.ID); !now.Escalated {
		t.Fatal("the participant's request did not escalate the ticket")
	}
	if n := len(agMailsTo(g, before, "alice@customer.example")); n != 0 {
		t.Errorf("the requester got %d mails for the participant's request", n)
	}
	ack := agOne(t, g, before, "carol@customer.example")
	if body := agBody(t, ack.Data); !strings.Contains(body, "Hello Carol Roe,") || !strings.Contains(body, "we have escalated") {
		t.Errorf("acknowledgement to the participant:\n%s", body)
	}
}
