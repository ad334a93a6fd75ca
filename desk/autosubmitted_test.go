package desk

import "testing"

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
