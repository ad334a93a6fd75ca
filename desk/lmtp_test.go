package desk

import (
	"bytes"
	"errors"
	"net"
	"slices"
	"testing"

	"github.com/emersion/go-smtp"
)

// lmtpAnswers delivers raw in one LMTP transaction and returns the answer
// to DATA for each recipient: nil for 250, the error otherwise.
func lmtpAnswers(t *testing.T, g *gateway, from string, rcpts []string, raw []byte) map[string]*smtp.SMTPError {
	t.Helper()
	conn, err := net.Dial("tcp", g.lmtp.Addr())
	if err != nil {
		t.Fatal(err)
	}
	c := smtp.NewClientLMTP(conn)
	defer c.Close()
	if err := c.Hello("mx.example.com"); err != nil {
		t.Fatal(err)
	}
	if err := c.Mail(from, nil); err != nil {
		t.Fatal(err)
	}
	for _, r := range rcpts {
		if err := c.Rcpt(r, nil); err != nil {
			t.Fatalf("RCPT %s: %v", r, err)
		}
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(raw); err != nil {
		t.Fatal(err)
	}
	resps, err := w.CloseWithLMTPResponse()
	var refused smtp.LMTPDataError
	if err != nil && !errors.As(err, &refused) {
		t.Fatalf("DATA: %v", err)
	}
	out := map[string]*smtp.SMTPError{}
	for r := range resps {
		out[r] = nil
	}
	for r, e := range refused {
		out[r] = e
	}
	if len(out) != len(rcpts) {
		t.Fatalf("%d answers for %d recipients: %v", len(out), len(rcpts), out)
	}
	return out
}

// One message to several routing addresses is one ticket, so LMTP gives
// every recipient the same answer: all accepted, or all asked to retry.
// Never is the message taken for one recipient and refused for another,
// which would have the MTA deliver it again to some and open a second
// ticket.
func TestLMTPEveryRecipientGetsTheSameAnswer(t *testing.T) {
	g := startGateway(t)
	g.pipeline.Policies = Policies{PerSender: 1}
	rcpts := []string{"support@example.com", "tech@example.com", "billing+invoice@example.com"}
	first := msg("h@customer.example", "support@example.com, tech@example.com, billing+invoice@example.com", "three desks", "x")
	for r, e := range lmtpAnswers(t, g, "h@customer.example", rcpts, first) {
		if e != nil {
			t.Errorf("%s: %v, want 250", r, e)
		}
	}
	tk := g.onlyTicket()
	g.settle()

	// The sender is past its limit: the next message is refused for all.
	second := msg("h@customer.example", "support@example.com, tech@example.com, billing+invoice@example.com", "three desks again", "y",
		"Message-ID: <again@customer.example>")
	answers := lmtpAnswers(t, g, "h@customer.example", rcpts, second)
	for _, r := range rcpts {
		e := answers[r]
		if e == nil || e.Code != 451 || e.EnhancedCode != (smtp.EnhancedCode{4, 7, 1}) {
			t.Errorf("%s: %v, want 451 4.7.1 like every other recipient", r, e)
		}
	}
	if list := g.tickets(); len(list) != 1 || list[0].ID != tk.ID {
		t.Fatalf("refused message stored: %d tickets", len(list))
	}

	// The MTA retries for every recipient at once; with the limit lifted
	// all are accepted and the message is one new ticket.
	g.pipeline.Policies = Policies{}
	for r, e := range lmtpAnswers(t, g, "h@customer.example", rcpts, second) {
		if e != nil {
			t.Errorf("retry %s: %v, want 250", r, e)
		}
	}
	list := g.tickets()
	if len(list) != 2 {
		t.Fatalf("%d tickets after the retry, want 2", len(list))
	}
	g.settle()
	var to []string
	for _, m := range g.relay.Mails() {
		to = append(to, m.To...)
		if !bytes.Contains(m.Data, []byte("three desks")) {
			t.Errorf("unexpected mail: %s", m.Data)
		}
	}
	if !slices.Equal(to, []string{"h@customer.example", "h@customer.example"}) {
		t.Errorf("mail went to %v, want one auto-reply per stored message", to)
	}
}
