package desk

import (
	"fmt"
	"net/mail"
	"slices"
	"strings"
	"testing"

	"ticketgate/rules"
)

// An agent's reply is written by a person: unlike the auto-reply and the
// notification before it, it is not marked automatic, so the customer's
// vacation responder answers it as it would any person's mail (RFC 3834).
func TestAgentReplyIsNotMarkedAutomatic(t *testing.T) {
	g := startDesk(t)
	tk := agOpen(t, g, "Printer on fire", "It is really on fire.")
	for _, m := range g.relay.Mails() {
		if h := header(t, m.Data); h.Get("Auto-Submitted") == "" || h.Get("X-Auto-Response-Suppress") != "All" {
			t.Errorf("automatic mail to %v: Auto-Submitted %q, X-Auto-Response-Suppress %q", m.To, h.Get("Auto-Submitted"), h.Get("X-Auto-Response-Suppress"))
		}
	}
	notif := agOne(t, g, 0, "ana@example.com")
	before := len(g.relay.Mails())
	agReply(g, "Ana Lima <ana@example.com>", agReplyTo(t, notif), tk, "Please unplug it.")
	m := agOne(t, g, before, "alice@customer.example")
	if h := header(t, m.Data); h.Get("Auto-Submitted") != "" || h.Get("X-Auto-Response-Suppress") != "" || h.Get("Precedence") != "" {
		t.Errorf("the agent's reply is marked automatic: Auto-Submitted %q, X-Auto-Response-Suppress %q, Precedence %q",
			h.Get("Auto-Submitted"), h.Get("X-Auto-Response-Suppress"), h.Get("Precedence"))
	}
}

// TestAgentOutOfOfficeOpensNoTicket: an agent's own vacation reply to a
// notification, sent to the routing address the notification came from,
// opens no ticket (not even one linked to the ticket it names) and reaches
// no customer: naming a ticket it is kept on it, which it does not change,
// naming none it is dropped. Nor is one that came to the agent's signed
// address, marked only by its subject, sent to the customer as the
// agent's reply. A customer's own vacation reply is kept on their ticket
// as before.
func TestAgentOutOfOfficeOpensNoTicket(t *testing.T) {
	for _, c := range []struct {
		name    string
		from    string
		signed  bool // to the agent's signed reply address, not the routing address
		subject string
		named   bool // In-Reply-To the notification
		headers []string
		kept    bool // on the ticket, as a system message
	}{
		{"Exchange, naming the ticket", "Ana Lima <ana@example.com>", false, "Automatic reply: [%s] Printer on fire", true,
			[]string{"Auto-Submitted: auto-replied", "X-MS-Exchange-Inbox-Rules-Loop: ana@example.com"}, true},
		{"Gmail vacation, naming none", "ana@example.com", false, "Away until Monday", false,
			[]string{"Auto-Submitted: auto-replied", "Precedence: bulk"}, false},
		{"Precedence: auto_reply", "ana@example.com", false, "Re: Printer on fire", false, []string{"Precedence: auto_reply"}, false},
		{"X-Auto-Response-Suppress", "ana@example.com", false, "Out of Office: Printer on fire", true, []string{"X-Auto-Response-Suppress: All"}, true},
		{"subject only, to the routing address", "ana@example.com", false, "Automatic reply: [%s] Printer on fire", false, nil, true},
		{"subject only, to the signed address", "ana@example.com", true, "Automatic reply: Re: [%s] Printer on fire", true, nil, true},
		{"a customer's, naming the ticket", "alice@customer.example", false, "Automatic reply: [%s] Printer on fire", true,
			[]string{"Auto-Submitted: auto-replied"}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			g := startDesk(t)
			tk := agOpen(t, g, "Printer on fire", "It is really on fire.")
			notif := agOne(t, g, 0, "ana@example.com")
			to := "support@example.com"
			if c.signed {
				to = agReplyTo(t, notif)
			}
			subject := c.subject
			if strings.Contains(subject, "%s") {
				subject = fmt.Sprintf(subject, tk.ID)
			}
			headers := c.headers
			if c.named {
				headers = append(slices.Clone(headers), "In-Reply-To: "+header(t, notif.Data).Get("Message-Id"))
			}
			mark := len(g.relay.Mails())
			addr, _ := mail.ParseAddress(c.from)
			g.mustSend(addr.Address, []string{to}, msg(c.from, to, subject, "I am away until Monday and will answer then.", headers...))
			g.settle()

			if n := len(g.tickets()); n != 1 {
				t.Errorf("%d tickets, want only the customer's", n)
			}
			for _, m := range g.relay.Mails()[mark:] {
				if strings.Contains(agBody(t, m.Data), "I am away until Monday") || slices.Contains(m.To, "alice@customer.example") {
					t.Errorf("mail to %v after the vacation reply: %s", m.To, decodedSubject(t, m.Data))
				}
			}
			now := g.ticket(tk.ID)
			last := now.Messages[len(now.Messages)-1]
			if kept := last.Kind == "system" && strings.Contains(last.Text, "I am away until Monday"); kept != c.kept {
				t.Errorf("kept on %s: %v, want %v (last message %s from %s)", tk.ID, kept, c.kept, last.Kind, last.From)
			}
			if now.Status != rules.StatusNew || len(now.Linked) != 0 {
				t.Errorf("%s is %s, linked %v; want it unchanged", tk.ID, now.Status, now.Linked)
			}
		})
	}
}
