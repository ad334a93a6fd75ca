package desk

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"ticketgate/mailin"
	"ticketgate/mailout"
	"ticketgate/mailout/relaytest"
	"ticketgate/store"
)

// ticketOf is the (full) ticket whose requester is addr; it fails unless
// there is exactly one.
func ticketOf(t *testing.T, g *gateway, addr string) *store.Ticket {
	t.Helper()
	var found []*store.Ticket
	for _, tk := range g.tickets() {
		if tk.Requester == addr {
			found = append(found, tk)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%s has %d tickets, want 1", addr, len(found))
	}
	return g.ticket(found[0].ID)
}

// checkAutoReply checks that m is the confirmation of ticket tk, opened by
// the message msgID: its token in the subject and body, threaded under
// that message, automatic, and stored on the ticket as what was sent.
func checkAutoReply(t *testing.T, m relaytest.Mail, tk *store.Ticket, msgID string) {
	t.Helper()
	h := header(t, m.Data)
	if want := "[" + tk.ID + "] " + tk.Subject; h.Get("Subject") != want {
		t.Errorf("auto-reply subject %q, want %q", h.Get("Subject"), want)
	}
	if h.Get("In-Reply-To") != "<"+msgID+">" || !strings.Contains(h.Get("References"), "<"+msgID+">") {
		t.Errorf("auto-reply of %s threads as In-Reply-To %q, References %q; want under <%s>", tk.ID, h.Get("In-Reply-To"), h.Get("References"), msgID)
	}
	if h.Get("Auto-Submitted") != "auto-replied" {
		t.Errorf("auto-reply Auto-Submitted %q", h.Get("Auto-Submitted"))
	}
	if body := agBody(t, m.Data); !strings.Contains(body, "opened\nticket "+tk.ID) || !strings.Contains(body, `keep "[`+tk.ID+`]"`) {
		t.Errorf("auto-reply body does not name %s:\n%s", tk.ID, body)
	}
	sentID := strings.Trim(h.Get("Message-ID"), "<>")
	stored := slices.IndexFunc(tk.Messages, func(s store.Message) bool { return s.Direction == "out" && s.MessageID == sentID })
	if stored < 0 {
		t.Errorf("the auto-reply <%s> is not stored on %s", sentID, tk.ID)
	}
	if !slices.Contains(tk.Thread, sentID) {
		t.Errorf("the auto-reply <%s> is not in %s's conversation %v", sentID, tk.ID, tk.Thread)
	}
}

// sendNew has from open a ticket with a message of the given Message-ID.
func sendNew(t *testing.T, g *gateway, from, subject, msgID string, extra ...string) {
	t.Helper()
	addr := from
	if i := strings.LastIndexByte(from, '<'); i >= 0 {
		addr = strings.Trim(from[i:], "<>")
	}
	g.mustSend(addr, []string{"support@example.com"}, msg(from, "support@example.com", subject, "Hello.", append(extra, "Message-ID: <"+msgID+">")...))
}

// The auto-reply of a new ticket is composed before the transaction, with
// the id the ticket then gets: it names the ticket, threads under the
// customer's mail and is stored on the ticket, also when subject tags set
// the request type and the ticket's subject.
func TestAutoReplyComposedBeforeTheCommit(t *testing.T) {
	g := startGateway(t)
	cases := []struct{ from, addr, subject, msgID, subjectWant, typeWant string }{
		{`"Ann Lee" <ann@customer.example>`, "ann@customer.example", "Printer on fire", "pc-ann@customer.example", "Printer on fire", "your message"},
		{"bob@customer.example", "bob@customer.example", "[Feature Request] Dark mode", "pc-bob@customer.example", "Dark mode", "your feature request"},
		{"cy@customer.example", "cy@customer.example", "Re: [Urgent] Server down", "pc-cy@customer.example", "Server down", "your urgent request"},
	}
	for _, c := range cases {
		sendNew(t, g, c.from, c.subject, c.msgID)
	}
	g.settle()
	for _, c := range cases {
		tk := ticketOf(t, g, c.addr)
		if tk.Subject != c.subjectWant {
			t.Errorf("%s: ticket subject %q, want %q", c.addr, tk.Subject, c.subjectWant)
		}
		m := agOne(t, g, 0, c.addr)
		checkAutoReply(t, m, tk, c.msgID)
		if body := agBody(t, m.Data); !strings.Contains(body, "received "+c.typeWant) {
			t.Errorf("%s: auto-reply does not say %q:\n%s", c.addr, c.typeWant, body)
		}
	}
	if body := agBody(t, agOne(t, g, 0, "ann@customer.example").Data); !strings.HasPrefix(body, "Hello Ann Lee,") {
		t.Errorf("auto-reply does not greet Ann by name:\n%s", body)
	}
	if s := g.pipeline.DraftStats(); s.Used != 3 || s.Recomposed != 0 {
		t.Errorf("drafted auto-replies: %+v; want all 3 queued as composed before the transaction", s)
	}
	ex, err := g.pipeline.Explain(context.Background(), &mailin.Delivery{MailFrom: "dee@customer.example", Rcpts: []string{"support@example.com"},
		Raw: msg("dee@customer.example", "support@example.com", "Scanner jammed", "Hi.")})
	if err != nil {
		t.Fatal(err)
	}
	if steps := strings.Join(ex.Steps, "\n"); !strings.Contains(steps, "auto-reply composed before the transaction") ||
		!strings.Contains(steps, "auto-reply queued as composed before the transaction") {
		t.Errorf("explain does not show the auto-reply composed before the transaction:\n%s", steps)
	}
}

// When the ticket id drawn before the transaction is taken by the time
// the message commits, the store draws another and the auto-reply is
// composed again for it: each customer gets one confirmation, naming
// their own ticket.
func TestDraftedTicketIDTakenMeanwhile(t *testing.T) {
	g := startGateway(t)
	g.pipeline.draw = func(prefix string) (string, error) { return prefix + "-424242", nil }
	sendNew(t, g, "ann@customer.example", "Printer on fire", "taken-ann@customer.example")
	sendNew(t, g, "bob@customer.example", "Scanner jammed", "taken-bob@customer.example")
	g.settle()
	ann, bob := ticketOf(t, g, "ann@customer.example"), ticketOf(t, g, "bob@customer.example")
	if ann.ID != "HS-424242" || bob.ID == ann.ID {
		t.Fatalf("tickets %s (ann) and %s (bob); want ann's to be the drawn HS-424242 and bob's another", ann.ID, bob.ID)
	}
	if n := len(ann.Messages); n != 2 {
		t.Errorf("ann's ticket holds %d messages, want her mail and its auto-reply", n)
	}
	checkAutoReply(t, agOne(t, g, 0, "ann@customer.example"), ann, "taken-ann@customer.example")
	checkAutoReply(t, agOne(t, g, 0, "bob@customer.example"), bob, "taken-bob@customer.example")
	if s := g.pipeline.DraftStats(); s.Used != 1 || s.Recomposed != 1 {
		t.Errorf("drafted auto-replies: %+v; want 1 used and 1 composed again", s)
	}
	ex, err := g.pipeline.Explain(context.Background(), &mailin.Delivery{MailFrom: "cy@customer.example", Rcpts: []string{"support@example.com"},
		Raw: msg("cy@customer.example", "support@example.com", "Fax broken", "Hi.")})
	if err != nil {
		t.Fatal(err)
	}
	if steps := strings.Join(ex.Steps, "\n"); !strings.Contains(steps, "HS-424242 was taken meanwhile") || !strings.Contains(steps, "the ticket id changed") {
		t.Errorf("explain does not show the taken id:\n%s", steps)
	}
}

// Customers writing at once whose mails all drew the same candidate id
// (committed together or one after the other) each get their own ticket
// and a confirmation that names it.
func TestConcurrentMailDrawingOneTicketID(t *testing.T) {
	g := startGateway(t)
	g.pipeline.draw = func(prefix string) (string, error) { return prefix + "-777777", nil }
	const n = 8
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			from := fmt.Sprintf("c%c@customer.example", 'a'+i)
			errs <- g.send(from, []string{"support@example.com"},
				msg(from, "support@example.com", "Question", "Hello.", fmt.Sprintf("Message-ID: <same-%c@customer.example>", 'a'+i)))
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	g.settle()
	ids := map[string]bool{}
	for i := range n {
		addr := fmt.Sprintf("c%c@customer.example", 'a'+i)
		tk := ticketOf(t, g, addr)
		ids[tk.ID] = true
		checkAutoReply(t, agOne(t, g, 0, addr), tk, fmt.Sprintf("same-%c@customer.example", 'a'+i))
	}
	if len(ids) != n || !ids["HS-777777"] {
		t.Errorf("ticket ids %v; want %d different ones, one of them the drawn HS-777777", ids, n)
	}
	if s := g.pipeline.DraftStats(); s.Used != 1 || s.Recomposed != n-1 {
		t.Errorf("drafted auto-replies: %+v; want 1 used and %d composed again", s, n-1)
	}
}

// A message with no ticket token that turns out to answer a ticket's mail
// joins that ticket: the auto-reply drafted for it is not sent, and the
// mail it does get (here the notice that a card number was removed) is
// composed in the transaction, threaded in the ticket's conversation.
func TestDraftDroppedWhenMailJoinsATicket(t *testing.T) {
	g := startGateway(t)
	sendNew(t, g, "ann@customer.example", "Printer on fire", "join-1@customer.example")
	g.settle()
	tk := ticketOf(t, g, "ann@customer.example")
	confirm := strings.Trim(header(t, agOne(t, g, 0, "ann@customer.example").Data).Get("Message-ID"), "<>")
	sent := len(g.relay.Mails())
	g.mustSend("ann@customer.example", []string{"support@example.com"}, msg("ann@customer.example", "support@example.com", "Re: Printer on fire",
		"Use my card "+cardSecret+" for the repair.", "Message-ID: <join-2@customer.example>", "In-Reply-To: <"+confirm+">", "References: <join-1@customer.example> <"+confirm+">"))
	g.settle()
	if n := len(g.tickets()); n != 1 {
		t.Fatalf("%d tickets; the reply should have joined %s", n, tk.ID)
	}
	tk = g.ticket(tk.ID)
	if !slices.ContainsFunc(tk.Messages, func(m store.Message) bool { return m.MessageID == "join-2@customer.example" }) {
		t.Fatalf("the reply is not on %s", tk.ID)
	}
	notice := agOne(t, g, sent, "ann@customer.example")
	h := header(t, notice.Data)
	body := agBody(t, notice.Data)
	if strings.Contains(body, "opened\nticket") || !strings.Contains(body, "card number") {
		t.Errorf("the reply got this mail instead of the redaction notice:\n%s", body)
	}
	if h.Get("Subject") != "["+tk.ID+"] Printer on fire" || h.Get("In-Reply-To") != "<join-2@customer.example>" ||
		!strings.Contains(h.Get("References"), "<join-1@customer.example>") || !strings.Contains(h.Get("References"), "<"+confirm+">") {
		t.Errorf("redaction notice: Subject %q, In-Reply-To %q, References %q; want it in %s's conversation",
			h.Get("Subject"), h.Get("In-Reply-To"), h.Get("References"), tk.ID)
	}
	if s := g.pipeline.DraftStats(); s.Used != 1 || s.Dropped != 1 || s.Recomposed != 0 {
		t.Errorf("drafted auto-replies: %+v; want 1 used (the first mail) and 1 dropped (the reply)", s)
	}
}

// A message whose Message-ID another message already has is stored under
// a derived id; the look at the store before the transaction finds it, so
// the drafted auto-reply threads under the derived id and is used.
func TestDraftedAutoReplyOfAReusedMessageID(t *testing.T) {
	g := startGateway(t)
	sendNew(t, g, "ann@customer.example", "Scan 1", "scan@scanner.example")
	sendNew(t, g, "bob@customer.example", "Scan 2", "scan@scanner.example")
	g.settle()
	bob := ticketOf(t, g, "bob@customer.example")
	in := bob.Messages[slices.IndexFunc(bob.Messages, func(m store.Message) bool { return m.Direction == "in" })]
	if in.MessageID == "scan@scanner.example" || !strings.HasPrefix(in.MessageID, "scan+") {
		t.Fatalf("bob's mail stored as <%s>, want a derived id", in.MessageID)
	}
	checkAutoReply(t, agOne(t, g, 0, "bob@customer.example"), bob, in.MessageID)
	checkAutoReply(t, agOne(t, g, 0, "ann@customer.example"), ticketOf(t, g, "ann@customer.example"), "scan@scanner.example")
	if s := g.pipeline.DraftStats(); s.Used != 2 {
		t.Errorf("drafted auto-replies: %+v; want both used", s)
	}
}

// An auto-reply template that reads the ticket itself is rendered in the
// transaction, with the ticket as the rules left it (an urgent subject
// raises the priority there), never from a copy drafted before.
func TestAutoReplyTemplateReadingTheTicket(t *testing.T) {
	g := startGateway(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "auto_reply.txt"), []byte("Ticket {{.TicketID}} has priority {{.Ticket.Priority}}.\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tpl, err := mailout.LoadTemplates(dir)
	if err != nil {
		t.Fatal(err)
	}
	g.pipeline.Desk.Templates = tpl
	sendNew(t, g, "ann@customer.example", "[Urgent] Server down", "tpl-1@customer.example")
	g.settle()
	tk := ticketOf(t, g, "ann@customer.example")
	if tk.Priority == "medium" {
		t.Fatalf("an urgent mail left the priority %s", tk.Priority)
	}
	if body, want := agBody(t, agOne(t, g, 0, "ann@customer.example").Data), "Ticket "+tk.ID+" has priority "+string(tk.Priority)+"."; !strings.Contains(body, want) {
		t.Errorf("auto-reply %q, want %q", body, want)
	}
	if s := g.pipeline.DraftStats(); s.Used != 0 || s.Recomposed != 0 {
		t.Errorf("drafted auto-replies: %+v; want none drafted", s)
	}
}
