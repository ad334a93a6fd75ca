package desk

import (
	"context"
	"encoding/base64"
	"slices"
	"strings"
	"testing"
	"ticketgate/mailin"
	"time"

	"ticketgate/rules"
	"ticketgate/store"
)

// TestForgetReplacesWholeAddressesOnly: the address is replaced where it
// stands as an address of its own, in any case, and nowhere it is only
// part of another one.
func TestForgetReplacesWholeAddressesOnly(t *testing.T) {
	f := Forget{Addr: "ann@customer.example", Pseudonym: "p-1@forgotten.invalid"}
	for _, c := range []struct{ in, want string }{
		{"from Ann@Customer.Example to support", "from p-1@forgotten.invalid to support"},
		{"<ann@customer.example>, ann@customer.example.", "<p-1@forgotten.invalid>, p-1@forgotten.invalid."},
		{"joann@customer.example wrote", "joann@customer.example wrote"},
		{"jo.ann@customer.example wrote", "jo.ann@customer.example wrote"},
		{"ann@customer.example.org wrote", "ann@customer.example.org wrote"},
		{"ann@customer.examples", "ann@customer.examples"},
		{"Grüße, ANN@customer.example", "Grüße, p-1@forgotten.invalid"},
	} {
		if got := f.replace(c.in, ""); got != c.want {
			t.Errorf("replace(%q) = %q, want %q", c.in, got, c.want)
		}
		if got, want := f.in(c.in), c.want != c.in; got != want {
			t.Errorf("in(%q) = %v, want %v", c.in, got, want)
		}
	}
}

// TestForgetDropsMailQueuedToTheAddress: an auto-reply still waiting for
// the relay when its customer is forgotten is never sent, while later
// mail to another customer is.
func TestForgetDropsMailQueuedToTheAddress(t *testing.T) {
	g := startGateway(t)
	g.relay.Down()
	if err := g.send("ann@customer.example", []string{"support@example.com"}, msg("ann@customer.example", "support@example.com", "Help", "My parcel is late.")); err != nil {
		t.Fatal(err)
	}
	res, err := g.pipeline.Forget(context.Background(), Forget{Addr: "ann@customer.example", Pseudonym: Pseudonym([]byte("k"), "ann@customer.example")})
	if err != nil || res.Outbox != 1 {
		t.Fatalf("forget: %+v %v; want the auto-reply dropped", res, err)
	}
	g.relay.Up(t)
	if err := g.send("bo@customer.example", []string{"support@example.com"}, msg("bo@customer.example", "support@example.com", "Help", "Mine too.")); err != nil {
		t.Fatal(err)
	}
	g.relay.WaitFor(1, 10*time.Second)
	time.Sleep(200 * time.Millisecond) // room for a mail to ann, were one coming
	for _, m := range g.relay.Mails() {
		if len(m.To) != 1 || m.To[0] != "bo@customer.example" {
			t.Errorf("mail to %v after forget", m.To)
		}
	}
	if len(g.relay.Mails()) != 1 {
		t.Errorf("relay got %d mails, want bo's auto-reply only", len(g.relay.Mails()))
	}
}

// TestForgetPassesOverATicketThatNoLongerNamesTheAddress: a ticket found
// by the search but changed before the erasure's write (here: one that
// never named the address) is passed over, and the tickets after it are
// still erased in the same write.
func TestForgetPassesOverATicketThatNoLongerNamesTheAddress(t *testing.T) {
	g := startGateway(t)
	for _, from := range []string{"bo@customer.example", "ann@customer.example"} {
		if err := g.send(from, []string{"support@example.com"}, msg(from, "support@example.com", "Help", "My parcel is late.")); err != nil {
			t.Fatal(err)
		}
	}
	var bo, ann string
	if err := g.store.View(context.Background(), func(tx store.Tx) error {
		list, _, err := tx.Tickets(store.Filter{})
		for _, tk := range list {
			if tk.Requester == "ann@customer.example" {
				ann = tk.ID
			} else {
				bo = tk.ID
			}
		}
		return err
	}); err != nil || ann == "" || bo == "" {
		t.Fatalf("tickets: ann %q, bo %q, %v", ann, bo, err)
	}
	f := Forget{Addr: "ann@customer.example", Pseudonym: Pseudonym([]byte("k"), "ann@customer.example"), Actor: "operator", Via: "a test"}
	var res *ForgetResult
	if err := g.store.Update(context.Background(), func(tx store.Tx) error {
		var err error
		res, err = g.pipeline.erase(tx, f, []string{bo, ann}, nil)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if res == nil || !slices.Equal(res.Tickets, []string{ann}) {
		t.Fatalf("erased %+v, want ann's ticket %s", res, ann)
	}
	if err := g.store.View(context.Background(), func(tx store.Tx) error {
		tk, err := tx.TicketFull(ann)
		if err != nil {
			return err
		}
		if tk.Requester != f.Pseudonym || tk.Messages[0].Text != "" {
			t.Errorf("ann's ticket after the erasure: requester %q, first text %q", tk.Requester, tk.Messages[0].Text)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// TestForgetErasesTheAddressFromMessageNotes: a note on a message that
// quotes the address (a From naming several mailboxes) no longer shows it.
func TestForgetErasesTheAddressFromMessageNotes(t *testing.T) {
	g := startGateway(t)
	g.mustSend("ann@customer.example", []string{"support@example.com"}, msg("ann@customer.example, bo@customer.example", "support@example.com", "Help", "My parcel is late."))
	g.settle()
	id := g.onlyTicket().ID
	f := Forget{Addr: "ann@customer.example", Pseudonym: Pseudonym([]byte("k"), "ann@customer.example")}
	if _, err := g.pipeline.Forget(context.Background(), f); err != nil {
		t.Fatal(err)
	}
	for _, m := range g.ticket(id).Messages {
		for _, n := range m.Notes {
			if strings.Contains(n, "ann@") {
				t.Errorf("note after forget: %q", n)
			}
		}
	}
}

// TestForgetKeepsWordsThatOnlyContainTheName: the requester's name is
// erased where it stands as a word, not inside other words or addresses.
func TestForgetKeepsWordsThatOnlyContainTheName(t *testing.T) {
	f := Forget{Addr: "ann@customer.example", Pseudonym: "p-1@forgotten.invalid"}
	for _, c := range []struct{ in, want string }{
		{"Annual invoice for Ann", "Annual invoice for [erased]"},
		{"Thanks, ANN. Ann's order", "Thanks, [erased]. [erased]'s order"},
		{"assigned to hannah@example.com", "assigned to hannah@example.com"},
		{"cc ann.lee@example.com and Ann-Marie", "cc ann.lee@example.com and Ann-Marie"},
		{"Grüße, Ännchen und Ann", "Grüße, Ännchen und [erased]"},
	} {
		if got := f.replace(c.in, "Ann"); got != c.want {
			t.Errorf("replace(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// TestForgetErasesATicketTheAddressWasCopiedOnSinceTheSearch: a ticket
// opened with the address in Cc between the search and the erasure's
// write is erased by that write too.
func TestForgetErasesATicketTheAddressWasCopiedOnSinceTheSearch(t *testing.T) {
	g := startGateway(t)
	g.mustSend("bo@customer.example", []string{"support@example.com"}, msg("bo@customer.example", "support@example.com", "Help", "My parcel is late.", "Cc: ann@customer.example"))
	g.settle()
	bo := g.onlyTicket().ID
	f := Forget{Addr: "ann@customer.example", Pseudonym: Pseudonym([]byte("k"), "ann@customer.example"), Actor: "operator", Via: "a test"}
	var res *ForgetResult
	if err := g.store.Update(context.Background(), func(tx store.Tx) error {
		var err error
		res, err = g.pipeline.erase(tx, f, nil, nil) // the search found nothing yet
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Tickets, []string{bo}) || slices.Contains(g.ticket(bo).CC, "ann@customer.example") {
		t.Errorf("erased %v, Cc after: %v; want %s erased", res.Tickets, g.ticket(bo).CC, bo)
	}
}

// TestForgetErasesTheSatisfactionComment: the comment a customer wrote
// with their rating goes with the rest of their words, from the ticket's
// satisfaction and from its activity log; the score stays.
func TestForgetErasesTheSatisfactionComment(t *testing.T) {
	g := startDesk(t)
	agPolicy(t, g)
	tk := agOpen(t, g, "Printer on fire", "It is really on fire.")
	if _, err := g.pipeline.Act(context.Background(), tk.ID, Action{Name: "status", Value: "closed"}); err != nil {
		t.Fatal(err)
	}
	g.settle()
	g.mustSend("alice@customer.example", []string{"support@example.com"},
		msg("alice@customer.example", "support@example.com", "Re: ["+tk.ID+"] "+tk.Subject, "2 - slow, call me back on 0176 5550123"))
	g.settle()
	if s := g.ticket(tk.ID).Satisfaction; s == nil || s.Score != 2 || !strings.Contains(s.Comment, "5550123") {
		t.Fatalf("the rating was not kept: %+v", s)
	}
	if _, err := g.pipeline.Forget(context.Background(), Forget{Addr: "alice@customer.example", Pseudonym: Pseudonym([]byte("k"), "alice@customer.example")}); err != nil {
		t.Fatal(err)
	}
	after := g.ticket(tk.ID)
	if s := after.Satisfaction; s == nil || s.Score != 2 || s.Comment != "" {
		t.Errorf("satisfaction after forget: %+v, want score 2 without the comment", s)
	}
	rated := agEvents(after, string(rules.EventSatisfaction))
	if len(rated) != 1 || !strings.HasPrefix(rated[0].Detail, "rated 2/5") {
		t.Fatalf("satisfaction events after forget: %+v, want one that keeps the score", rated)
	}
	for _, e := range after.Events {
		if strings.Contains(e.Detail, "5550123") {
			t.Errorf("%s event after forget still holds the comment: %q", e.Type, e.Detail)
		}
	}
}

// TestForgetErasesTheCommentOfARatingMergedElsewhere: a rated ticket
// merged into another ticket leaves a copy of its rating there, where
// the customer is only a participant; forget erases that comment too.
func TestForgetErasesTheCommentOfARatingMergedElsewhere(t *testing.T) {
	g := startDesk(t)
	agPolicy(t, g)
	ctx := context.Background()
	dst := agOpenFrom(t, g, "bo@customer.example", "Router down", "No lights.")
	src := agOpen(t, g, "Printer on fire", "It is really on fire.")
	if _, err := g.pipeline.Act(ctx, src.ID, Action{Name: "status", Value: "closed"}); err != nil {
		t.Fatal(err)
	}
	g.settle()
	g.mustSend("alice@customer.example", []string{"support@example.com"},
		msg("alice@customer.example", "support@example.com", "Re: ["+src.ID+"] "+src.Subject, "2 - slow, call me back on 0176 5550123"))
	g.settle()
	if _, err := g.pipeline.Act(ctx, src.ID, Action{Name: "merge", Value: dst.ID}); err != nil {
		t.Fatal(err)
	}
	if _, err := g.pipeline.Forget(ctx, Forget{Addr: "alice@customer.example", Pseudonym: Pseudonym([]byte("k"), "alice@customer.example")}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{src.ID, dst.ID} {
		tk := g.ticket(id)
		if len(agEvents(tk, string(rules.EventSatisfaction))) != 1 {
			t.Errorf("%s: satisfaction events %+v, want one", id, agEvents(tk, string(rules.EventSatisfaction)))
		}
		for _, e := range tk.Events {
			if strings.Contains(e.Detail, "5550123") {
				t.Errorf("%s: %s event after forget still holds the comment: %q", id, e.Type, e.Detail)
			}
		}
	}
	if e := agEvents(g.ticket(dst.ID), string(rules.EventSatisfaction)); len(e) == 1 && e[0].Detail != "["+src.ID+"] rated 2/5" {
		t.Errorf("copied rating after forget: %q, want the score kept", e[0].Detail)
	}
}

// TestForgetSendsNoMailToThePseudonym: once a customer with an open
// ticket is forgotten, neither the assignee's reply nor the lifecycle
// mails (reminder, waiting and closing notices, survey) go to the
// pseudonym, which can never receive mail. The reply is still kept on
// the ticket, and the ticket says why nothing went to the customer.
func TestForgetSendsNoMailToThePseudonym(t *testing.T) {
	g := startDesk(t)
	sw := agPolicy(t, g)
	tk := agOpen(t, g, "Printer on fire", "It is really on fire.")
	for _, addr := range []string{"alice@customer.example", "carol@customer.example"} {
		if _, err := g.pipeline.Forget(context.Background(), Forget{Addr: addr, Pseudonym: Pseudonym(agKey, addr)}); err != nil {
			t.Fatal(err)
		}
	}
	before := len(g.relay.Mails())
	agReply(g, "ana@example.com", agSigned(t, agKey, rules.TokenReply, tk.ID, "ana@example.com"), tk, "Which model is it?")
	for _, days := range []time.Duration{4, 8, 15} {
		agSweep(t, g, sw, time.Now().Add(days*24*time.Hour))
	}

	for _, m := range g.relay.Mails()[before:] {
		for _, to := range m.To {
			if strings.HasSuffix(to, "@"+PseudonymDomain) {
				t.Errorf("relay got mail to %s:\n%s", to, agBody(t, m.Data))
			}
		}
	}
	if err := g.store.View(context.Background(), func(tx store.Tx) error {
		queued, err := tx.Outbox(time.Now().Add(365*24*time.Hour), 0)
		for _, m := range queued {
			if slices.ContainsFunc(m.To, func(a string) bool { return strings.HasSuffix(a, "@"+PseudonymDomain) }) {
				t.Errorf("outbox holds %s mail to %v", m.Kind, m.To)
			}
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	after := g.ticket(tk.ID)
	if !slices.ContainsFunc(after.Messages, func(m store.Message) bool {
		return m.Kind == "agent" && strings.Contains(m.VisibleText, "Which model is it?")
	}) {
		t.Error("the agent's reply is not kept on the ticket")
	}
	held := agEvents(after, string(rules.EventMailSuppressed))
	if !slices.ContainsFunc(held, func(e store.Event) bool {
		return strings.HasPrefix(e.Detail, "agent mail not sent") && strings.Contains(e.Detail, "the customer was forgotten")
	}) {
		t.Errorf("no mail_suppressed event saying the reply did not go to the forgotten customer: %+v", held)
	}
	for _, e := range agEvents(after, string(rules.EventReply)) {
		if strings.Contains(e.Detail, "queued") {
			t.Errorf("reply event after forget: %q", e.Detail)
		}
	}
}

// TestForgetKeepsMailToTheOthersCopied: with the requester forgotten, the
// people copied on the ticket still get an agent's reply.
func TestForgetKeepsMailToTheOthersCopied(t *testing.T) {
	g := startDesk(t)
	tk := agOpen(t, g, "Printer on fire", "It is really on fire.")
	addr := "alice@customer.example"
	if _, err := g.pipeline.Forget(context.Background(), Forget{Addr: addr, Pseudonym: Pseudonym(agKey, addr)}); err != nil {
		t.Fatal(err)
	}
	before := len(g.relay.Mails())
	agReply(g, "ana@example.com", agSigned(t, agKey, rules.TokenReply, tk.ID, "ana@example.com"), tk, "Which model is it?")
	l := agMailsTo(g, before, "carol@customer.example")
	if len(l) != 1 || !strings.Contains(agBody(t, l[0].Data), "Which model is it?") {
		t.Fatalf("carol, copied on the ticket, got %d mails; want the agent's reply", len(l))
	}
	for _, to := range l[0].To {
		if rules.Forgotten(to) {
			t.Errorf("the reply went to %s too", to)
		}
	}
	for _, e := range agEvents(g.ticket(tk.ID), string(rules.EventReply)) {
		if strings.Contains(e.Detail, rules.PseudonymDomain) || !strings.Contains(e.Detail, "queued to carol@customer.example") {
			t.Errorf("reply event %q, want it queued to carol alone", e.Detail)
		}
	}
}

// TestForgetErasesTheRawCopyNamingTheAddressInAnEncodedBody: another
// customer's mail that names the address in a base64 or quoted-printable
// body loses its raw copy, as one naming it in plain text does; the
// address is not left on disk in the encoded copy.
func TestForgetErasesTheRawCopyNamingTheAddressInAnEncodedBody(t *testing.T) {
	for _, c := range []struct{ name, cte, body string }{
		{"base64", "base64", base64.StdEncoding.EncodeToString([]byte("Please also write to my colleague ann@customer.example about it.\r\n"))},
		{"quoted-printable split", "quoted-printable", "Please also write to my colleague ann@cust=\r\nomer.example about it."},
	} {
		t.Run(c.name, func(t *testing.T) {
			g := startGateway(t)
			raw := strings.Replace(string(msg("bo@customer.example", "support@example.com", "Parcel", "BODY")),
				"Content-Type: text/plain; charset=utf-8\r\n", "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: "+c.cte+"\r\n", 1)
			g.mustSend("bo@customer.example", []string{"support@example.com"}, []byte(strings.Replace(raw, "BODY", c.body, 1)))
			g.settle()
			id := g.onlyTicket().ID
			if m := g.ticket(id).Messages[0]; !strings.Contains(m.Text, "ann@customer.example") || m.Raw == "" {
				t.Fatalf("stored message before forget: text %q, raw %q", m.Text, m.Raw)
			}
			f := Forget{Addr: "ann@customer.example", Pseudonym: Pseudonym([]byte("k"), "ann@customer.example")}
			if _, err := g.pipeline.Forget(context.Background(), f); err != nil {
				t.Fatal(err)
			}
			m := g.ticket(id).Messages[0]
			if strings.Contains(m.Text, "ann@") || !strings.Contains(m.Text, f.Pseudonym) {
				t.Errorf("text after forget: %q", m.Text)
			}
			if m.Raw == "" {
				return
			}
			if err := g.store.View(context.Background(), func(tx store.Tx) error {
				b, err := tx.Blob(m.Raw)
				if err != nil {
					return err
				}
				in, err := mailin.Parse(b, mailin.Limits{})
				if err != nil {
					return err
				}
				if strings.Contains(in.Text, "ann@") {
					t.Errorf("raw copy kept after forget still names the address: %q", in.Text)
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestForgetDropsAnAlertStillQueuedThatNamesTheCustomer: an SLA alert to
// the agents, still waiting for the relay when its customer is forgotten,
// names the customer ("Requester: alice@..."); it is dropped with a
// mail_suppressed event, as a notification carrying their words is, and
// never sent.
func TestForgetDropsAnAlertStillQueuedThatNamesTheCustomer(t *testing.T) {
	g := startDesk(t)
	sw := agPolicy(t, g)
	tk := agOpen(t, g, "Printer on fire", "It is really on fire.")
	g.relay.Down()
	rep, err := sw.Sweep(context.Background(), time.Now().Add(4*24*time.Hour), false)
	if err != nil || rep.Mails == 0 {
		t.Fatalf("sweep: %+v %v; want SLA alerts queued", rep, err)
	}
	addr := "alice@customer.example"
	res, err := g.pipeline.Forget(context.Background(), Forget{Addr: addr, Pseudonym: Pseudonym(agKey, addr)})
	if err != nil {
		t.Fatal(err)
	}
	before := len(g.relay.Mails())
	g.relay.Up(t)
	g.worker.Wake()
	g.settle()
	for _, m := range g.relay.Mails()[before:] {
		if strings.Contains(strings.ToLower(agBody(t, m.Data)), addr) {
			t.Errorf("after forget, mail to %v names the forgotten customer:\n%s", m.To, agBody(t, m.Data))
		}
	}
	if res.Outbox == 0 {
		t.Errorf("forget dropped no queued mail: %+v", res)
	}
	if len(agEvents(g.ticket(tk.ID), string(rules.EventMailSuppressed))) == 0 {
		t.Error("no mail_suppressed event for the alerts dropped")
	}
}
