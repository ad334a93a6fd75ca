package desk

import (
	"strings"
	"testing"

	"ticketgate/rules"
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

// TestAgentForwardToTheNoteAddressKeepsTheForwardedMail: a customer wrote
// to an agent directly; the agent forwards that mail (Gmail, Outlook) to
// the ticket's note address to add it to the ticket. The note on the
// ticket and the note mail to the other agents hold the customer's mail,
// not only the agent's line above it, and the customer gets nothing.
func TestAgentForwardToTheNoteAddressKeepsTheForwardedMail(t *testing.T) {
	for _, c := range []struct{ name, subject, body string }{
		{"gmail", "Fwd: Printer", "Alice wrote to me directly, adding it here.\n\n" +
			"---------- Forwarded message ---------\nFrom: Alice Doe <alice@customer.example>\nDate: Sat, Nov 21, 2026 at 11:00 AM\n" +
			"Subject: Printer\nTo: Ana Lima <ana@example.com>\n\nThe printer caught fire again after the firmware update.\n"},
		{"outlook", "FW: Printer", "Alice wrote to me directly, adding it here.\n\nAna\n\n" +
			"________________________________\nFrom: Alice Doe <alice@customer.example>\nSent: Saturday, November 21, 2026 11:00 AM\n" +
			"To: Ana Lima <ana@example.com>\nSubject: Printer\n\nThe printer caught fire again after the firmware update.\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			g := startDesk(t)
			tk := agOpen(t, g, "Printer on fire", "It is really on fire.")
			before := len(g.relay.Mails())
			g.mustSend("ana@example.com", []string{agSigned(t, agKey, rules.TokenNote, tk.ID, "ana@example.com")},
				msg("Ana Lima <ana@example.com>", "support@example.com", c.subject, c.body))
			g.settle()
			if n := len(agMailsTo(g, before, "alice@customer.example")); n != 0 {
				t.Fatalf("the customer got %d mails of a note", n)
			}
			tk = g.ticket(tk.ID)
			last := tk.Messages[len(tk.Messages)-1]
			if last.Kind != "note" || !strings.Contains(last.VisibleText, "adding it here") || !strings.Contains(last.VisibleText, "caught fire again after the firmware update") {
				t.Errorf("the note on the ticket (%s):\n%s", last.Kind, last.VisibleText)
			}
			body := agBody(t, agOne(t, g, before, "ben@example.com").Data)
			if !strings.Contains(body, "caught fire again after the firmware update") || !strings.Contains(body, "From: Alice Doe <alice@customer.example>") {
				t.Errorf("ben's note mail lacks the forwarded mail:\n%s", body)
			}
		})
	}
}
