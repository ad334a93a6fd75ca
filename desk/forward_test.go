package desk

import (
	"strings"
	"testing"
)

// TestForwardedMailReachesTheAgents: a customer forwards a mail inline
// with a line of their own (Gmail, Outlook); the agents' notification and
// the ticket show the forwarded mail, not only "see below".
func TestForwardedMailReachesTheAgents(t *testing.T) {
	for _, c := range []struct{ name, subject, body string }{
		{"gmail", "Fwd: Your account is suspended", "Hi, I got this from your billing system, see below.\n\nThanks,\nAlice\n\n" +
			"---------- Forwarded message ---------\nFrom: Billing <billing@vendor.example>\nDate: Fri, Nov 20, 2026 at 9:00 AM\n" +
			"Subject: Your account is suspended\nTo: <alice@customer.example>\n\nYour account 4711 has been suspended because invoice 2026-88 is unpaid.\n"},
		{"outlook", "FW: Your account is suspended", "Hi, I got this from your billing system, see below.\n\nAlice\n\n" +
			"________________________________\nFrom: Billing <billing@vendor.example>\nSent: Friday, November 20, 2026 9:00 AM\n" +
			"To: Alice Doe <alice@customer.example>\nSubject: Your account is suspended\n\nYour account 4711 has been suspended because invoice 2026-88 is unpaid.\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			g := startDesk(t)
			tk := agOpen(t, g, c.subject, c.body)
			body := agBody(t, agOne(t, g, 0, "ana@example.com").Data)
			for _, want := range []string{"see below", "Your account 4711 has been suspended", "From: Billing <billing@vendor.example>"} {
				if !strings.Contains(body, want) {
					t.Errorf("the agent's notification lacks %q:\n%s", want, body)
				}
			}
			if v := tk.Messages[0].VisibleText; !strings.Contains(v, "see below") || !strings.Contains(v, "invoice 2026-88 is unpaid") {
				t.Errorf("the ticket shows:\n%s", v)
			}
		})
	}
}
