package desk

import (
	"context"
	"strings"
	"testing"
	"time"

	"ticketgate/mailin"
	"ticketgate/mailout/relaytest"
	"ticketgate/store"
	"ticketgate/store/postgres/pgtest"
)

// TestForgetOnPostgres: an erasure asked of one gateway is seen by
// another sharing the PostgreSQL database: the address, the text and the
// raw copy are gone, search finds nothing, another customer's ticket
// keeps its words, and the database's own check finds it whole.
func TestForgetOnPostgres(t *testing.T) {
	c := pgtest.Start(t)
	dsn := c.NewDatabase(t)
	relay := relaytest.Start(t)
	a, b := startPGGateway(t, dsn, relay), startPGGateway(t, dsn, relay)
	ctx := context.Background()
	deliver := func(from, msgid, body string) string {
		t.Helper()
		raw := []byte("From: " + from + "\r\nTo: support@example.com\r\nSubject: Printer on fire\r\nMessage-ID: <" + msgid + ">\r\n\r\n" + body + "\r\n")
		res, err := a.pipeline.Deliver(ctx, &mailin.Delivery{MailFrom: from, Rcpts: []string{"support@example.com"}, Raw: raw, Source: "smtp"})
		if err != nil {
			t.Fatal(err)
		}
		return res.TicketID
	}
	own := deliver("ann@customer.test", "pg1@customer.test", "my locker code is marmot-42")
	other := deliver("bo@customer.test", "pg2@customer.test", "my locker code is badger-17")
	relay.WaitFor(2, 10*time.Second)

	key := []byte("0123456789abcdef0123456789abcdef")
	res, err := a.pipeline.Forget(ctx, Forget{Addr: "Ann@Customer.test", Pseudonym: Pseudonym(key, "ann@customer.test"), Actor: "dpo@example.com"})
	if err != nil || len(res.Tickets) != 1 || res.Tickets[0] != own {
		t.Fatalf("forget: %+v %v", res, err)
	}
	if res.Pseudonym != Pseudonym(key, "ANN@customer.test") {
		t.Errorf("pseudonym %s depends on the address's case", res.Pseudonym)
	}
	err = b.store.View(ctx, func(tx store.Tx) error {
		tk, err := tx.TicketFull(own)
		if err != nil {
			return err
		}
		if tk.Requester != res.Pseudonym || tk.Messages[0].Text != "" || tk.Messages[0].Raw != "" || len(events(tk, "erased")) != 1 {
			t.Errorf("erased ticket read by the other gateway: requester %q first message %+v", tk.Requester, tk.Messages[0])
		}
		for _, q := range []string{"marmot", "ann"} {
			if l, _, err := tx.Tickets(store.Filter{Text: q}); err != nil || len(l) != 0 {
				t.Errorf("search %q after forget: %d tickets %v", q, len(l), err)
			}
		}
		if l, _, err := tx.Tickets(store.Filter{Text: "badger"}); err != nil || len(l) != 1 || l[0].ID != other {
			t.Errorf("search for another customer's word: %v %v", l, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	problems, err := b.store.Check(ctx)
	if err != nil || len(problems) != 0 {
		t.Errorf("check after forget: %v %s", err, strings.Join(problems, "; "))
	}
}

// TestForgetOnPostgresQuotedInOthersMail: the forgotten address, copied
// on another customer's ticket, is replaced by its pseudonym in each of
// that customer's messages that names it (a word new to them all), and
// the erasure is committed.
func TestForgetOnPostgresQuotedInOthersMail(t *testing.T) {
	dsn := pgtest.Start(t).NewDatabase(t)
	relay := relaytest.Start(t)
	a := startPGGateway(t, dsn, relay)
	ctx := context.Background()
	deliver := func(msgid, head, body string) string {
		t.Helper()
		raw := []byte("From: bo@customer.test\r\nTo: support@example.com\r\nCc: ann@customer.test\r\n" + head +
			"Subject: Printer on fire\r\nMessage-ID: <" + msgid + ">\r\n\r\n" + body + "\r\n")
		res, err := a.pipeline.Deliver(ctx, &mailin.Delivery{MailFrom: "bo@customer.test", Rcpts: []string{"support@example.com"}, Raw: raw, Source: "smtp"})
		if err != nil {
			t.Fatal(err)
		}
		return res.TicketID
	}
	id := deliver("q1@customer.test", "", "ann@customer.test says the printer smokes")
	if got := deliver("q2@customer.test", "In-Reply-To: <q1@customer.test>\r\n", "ann@customer.test says it is on fire now"); got != id {
		t.Fatalf("the reply went to %s, not %s", got, id)
	}
	key := []byte("0123456789abcdef0123456789abcdef")
	res, err := a.pipeline.Forget(ctx, Forget{Addr: "ann@customer.test", Pseudonym: Pseudonym(key, "ann@customer.test"), Actor: "dpo@example.com"})
	if err != nil || len(res.Tickets) != 1 || res.Tickets[0] != id {
		t.Fatalf("forget: %+v %v", res, err)
	}
	err = a.store.View(ctx, func(tx store.Tx) error {
		tk, err := tx.TicketFull(id)
		if err != nil {
			return err
		}
		for _, m := range tk.Messages {
			if strings.Contains(m.Text, "ann@customer.test") {
				t.Errorf("message %s still names the address: %q", m.MessageID, m.Text)
			}
		}
		if l, _, err := tx.Tickets(store.Filter{Text: "ann"}); err != nil || len(l) != 0 {
			t.Errorf("search for the forgotten address: %d tickets %v", len(l), err)
		}
		if l, _, err := tx.Tickets(store.Filter{Text: "smokes"}); err != nil || len(l) != 1 {
			t.Errorf("search for the other customer's word: %d tickets %v", len(l), err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
