package desk

import (
	"context"
	"strings"
	"testing"
	"ticketgate/mailin"
)

func TestExplainChangesNothingAndSaysWhy(t *testing.T) {
	g := startGateway(t)
	g.mustSend("s@customer.example", []string{"support@example.com"}, msg("s@customer.example", "support@example.com", "original", "x"))
	tk := g.onlyTicket()
	g.settle()
	sentBefore := len(g.relay.Mails())

	cases := []struct {
		name, from, subject string
		want                []string
	}{
		{"stranger", "eve@evil.example", "Re: [" + tk.ID + "] original", []string{`rule "sender check"`, "eve@evil.example is not a participant", "new ticket", "mail: auto"}},
		{"requester", "s@customer.example", "Re: [" + tk.ID + "] original", []string{`rule "token"`, "added to " + tk.ID, "nothing would be sent"}},
		{"automatic", "s@customer.example", "newsletter", []string{"classified: automatic mail", "nothing would be sent"}},
		{"secret", "u@customer.example", "card 4111 1111 1111 1111", []string{"redacted: 1 card number", "mail: redaction"}},
	}
	for _, c := range cases {
		var extra []string
		if c.name == "automatic" {
			extra = []string{"Precedence: bulk"}
		}
		ex, err := g.pipeline.Explain(context.Background(), &mailin.Delivery{MailFrom: c.from, Rcpts: []string{"support@example.com"},
			Raw: msg(c.from, "support@example.com", c.subject, "hello", extra...)})
		if err != nil {
			t.Fatal(err)
		}
		all := strings.Join(ex.Steps, "\n")
		for _, w := range c.want {
			if !strings.Contains(all, w) {
				t.Errorf("%s: explanation lacks %q:\n%s", c.name, w, all)
			}
		}
	}
	if n := len(g.tickets()); n != 1 {
		t.Errorf("explain stored tickets: %d", n)
	}
	if n := len(g.ticket(tk.ID).Messages); n != 2 {
		t.Errorf("explain stored messages: %d", n)
	}
	g.settle()
	if n := len(g.relay.Mails()); n != sentBefore {
		t.Errorf("explain sent mail: %d → %d", sentBefore, n)
	}
}

// Explaining a new customer's mail with sequential numbering takes no
// number: the next real ticket gets the one after the newest ticket.
func TestExplainDoesNotSkipATicketNumber(t *testing.T) {
	g := startGateway(t)
	putEarlierTickets(t, g, "HS-000041")
	g.pipeline.Sequential = true
	sendNew(t, g, "ann@customer.example", "Printer on fire", "explain-ann@customer.example")
	for range 2 {
		ex, err := g.pipeline.Explain(context.Background(), &mailin.Delivery{MailFrom: "eve@customer.example", Rcpts: []string{"support@example.com"},
			Raw: msg("eve@customer.example", "support@example.com", "Scanner jammed", "hello")})
		if err != nil || !ex.Result.NewTicket {
			t.Fatalf("explain: %v %+v", err, ex)
		}
	}
	sendNew(t, g, "bob@customer.example", "Fax is silent", "explain-bob@customer.example")
	if tk := ticketOf(t, g, "bob@customer.example"); tk.ID != "HS-000043" {
		t.Errorf("the ticket after HS-000042 is %s, want HS-000043: explain took numbers", tk.ID)
	}
}
