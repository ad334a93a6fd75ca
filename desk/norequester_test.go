package desk

import (
	"context"
	"slices"
	"strings"
	"testing"

	"ticketgate/rules"
	"ticketgate/store"
)

// A ticket whose sender could not be read (a From of two mailboxes and
// no Sender) has no requester. An agent's reply to it goes to those
// copied, addressed to them, not to an empty "<@>"; with no one copied
// it goes to no one, and the ticket says so instead of listing it sent.
func TestReplyToATicketWithoutRequester(t *testing.T) {
	for _, cc := range []string{"carol@customer.example", ""} {
		g := startDesk(t)
		extra := []string{"Message-ID: <two-froms@customer.example>"}
		if cc != "" {
			extra = append(extra, "Cc: "+cc)
		}
		g.mustSend("alice@customer.example", []string{"support@example.com"},
			msg("alice@customer.example, bob@customer.example", "support@example.com", "Two senders", "Hello.", extra...))
		g.settle()
		tk := g.onlyTicket()
		if tk.Requester != "" {
			t.Fatalf("requester %q; the test needs a ticket without one", tk.Requester)
		}
		notif := agOne(t, g, 0, "ana@example.com")
		before := len(g.relay.Mails())
		agReply(g, "Ana Lima <ana@example.com>", agReplyTo(t, notif), tk, "Who are you?")

		sent := g.relay.Mails()[before:]
		var sentTo []string
		for _, m := range sent {
			sentTo = append(sentTo, m.To...)
			h := header(t, m.Data)
			if to := h.Get("To"); strings.Contains(to, "<@>") || !strings.Contains(to, cc) {
				t.Errorf("cc %q: mail to %v has To %q", cc, m.To, to)
			}
		}
		after := g.ticket(tk.ID)
		var listed []string
		if err := g.store.View(context.Background(), func(tx store.Tx) error {
			_, l, err := tx.TicketMail(tk.ID)
			for _, s := range l {
				if s.Kind == "agent" {
					listed = append(listed, strings.Join(s.To, ","))
				}
			}
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if cc != "" {
			if len(sent) != 1 || !slices.Equal(sentTo, []string{cc}) {
				t.Errorf("the reply went to %v; want %s, who was copied", sentTo, cc)
			}
			if !slices.ContainsFunc(agEvents(after, string(rules.EventReply)), func(e store.Event) bool {
				return strings.HasSuffix(e.Detail, " queued to "+cc)
			}) {
				t.Errorf("no reply event names %s alone: %v", cc, agEvents(after, string(rules.EventReply)))
			}
			continue
		}
		if len(sent) != 0 || len(listed) != 0 {
			t.Errorf("the reply went out %d times and is listed sent to %q; there is no one to send it to", len(sent), listed)
		}
		if !slices.ContainsFunc(agEvents(after, string(rules.EventMailSuppressed)), func(e store.Event) bool {
			return strings.HasPrefix(e.Detail, "agent mail not sent")
		}) {
			var details []string
			for _, e := range after.Events {
				details = append(details, string(e.Type)+": "+e.Detail)
			}
			t.Errorf("no event says the reply was not sent: %q", details)
		}
	}
}
