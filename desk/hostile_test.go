package desk

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"
	"ticketgate/mailin"
	"ticketgate/mailin/mailintest"
	"ticketgate/rules"
	"ticketgate/store"
	"time"
)

func TestHostileMailStillBecomesATicket(t *testing.T) {
	for _, c := range mailintest.HostileCases() {
		if c.Problem == "" {
			continue
		}
		t.Run(c.Name, func(t *testing.T) {
			g := startGateway(t)
			big, err := mailin.Listen("127.0.0.1:0", false, mailin.Config{Hostname: "tickets.example.com", MaxMessageBytes: 8 << 20, MaxRecipients: 10},
				g.pipeline, testLogger(t))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { big.Close() })
			start := time.Now()
			if code := mailintest.SendBDAT(t, big.Addr(), "hostile@customer.example", "support@example.com", c.Raw); code != 250 {
				t.Fatalf("answer %d, want 250", code)
			}
			if took := time.Since(start); took > 20*time.Second {
				t.Errorf("delivery took %v", took)
			}
			tk := g.onlyTicket()
			m := tk.Messages[0]
			if notes := strings.Join(m.Notes, "; "); !strings.Contains(notes, c.Problem) || !strings.Contains(notes, "not parsed further") {
				t.Errorf("message notes %q do not say the structure was not parsed (%s)", notes, c.Problem)
			}
			if !strings.Contains(m.Text, c.Text) {
				t.Errorf("text lacks %q", c.Text)
			}
			var kept []byte
			g.store.View(context.Background(), func(tx store.Tx) error {
				kept, err = tx.Blob(m.Raw)
				return err
			})
			if want, _ := rules.RedactMessage(c.Raw); !bytes.Equal(kept, want) {
				t.Errorf("raw kept: %d bytes, sent %d", len(kept), len(c.Raw))
			}
		})
	}
}

// A Cc that does not parse, holding a carriage return, copies the
// addresses in it, not the return: with it in an address the relay
// was never offered the agent's reply, and the customer never got it.
func TestCcWithACarriageReturnDoesNotHoldTheAgentsReply(t *testing.T) {
	g := startDesk(t)
	g.mustSend("alice@customer.example", []string{"support@example.com"},
		msg(`"Alice Doe" <alice@customer.example>`, "support@example.com", "Printer on fire", "It is really on fire.",
			"Cc: carol@customer.example\rBcc: dave@customer.example"))
	g.settle()
	tk := g.onlyTicket()
	for _, a := range tk.CC {
		if strings.ContainsAny(a, "\r\n") {
			t.Errorf("participant %q", a)
		}
	}
	notif := agOne(t, g, 0, "ana@example.com")
	before := len(g.relay.Mails())
	agReply(g, "Ana Lima <ana@example.com>", agReplyTo(t, notif), tk, "Please unplug it and call us back.")
	out := agMailsTo(g, before, "alice@customer.example")
	if len(out) != 1 || !slices.Contains(out[0].To, "carol@customer.example") {
		t.Fatalf("reply to the customer: %d mails %v", len(out), out)
	}
}
