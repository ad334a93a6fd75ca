package desk

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"ticketgate/rules"
	"ticketgate/store"
)

// With sequential numbering ([tickets] numbers = "sequential") each new
// ticket takes the number after the newest ticket's, across a restart:
// after HS-999999 comes HS-000001, and a number in use (here left by the
// random numbering the desk had before) is passed over. Each customer's
// confirmation names their own ticket.
func TestSequentialTicketNumbers(t *testing.T) {
	g := startGateway(t)
	putEarlierTickets(t, g, "HS-000002", "HS-999997")
	g.pipeline.Sequential = true
	want := map[string]string{"ann@customer.example": "HS-999998", "bob@customer.example": "HS-999999", "cy@customer.example": "HS-000001"}
	for _, from := range []string{"ann@customer.example", "bob@customer.example", "cy@customer.example"} {
		sendNew(t, g, from, "Printer on fire", "seq-"+from)
	}
	g.shutdown()
	g.open()
	g.pipeline.Sequential = true
	sendNew(t, g, "dee@customer.example", "Scanner jammed", "seq-dee@customer.example")
	want["dee@customer.example"] = "HS-000003"
	g.settle()
	for from, id := range want {
		tk := ticketOf(t, g, from)
		if tk.ID != id {
			t.Errorf("%s's ticket is %s, want %s", from, tk.ID, id)
		}
		checkAutoReply(t, agOne(t, g, 0, from), tk, "seq-"+from)
	}
}

// Numbering goes on after the newest ticket, not the greatest number: a
// desk that came back to 000001 carries on from where it is.
func TestSequentialNumbersFollowTheNewestTicket(t *testing.T) {
	g := startGateway(t)
	putEarlierTickets(t, g, "HS-999000", "HS-000010")
	g.pipeline.Sequential = true
	sendNew(t, g, "ann@customer.example", "Printer on fire", "newest-ann@customer.example")
	if tk := ticketOf(t, g, "ann@customer.example"); tk.ID != "HS-000011" {
		t.Errorf("the new ticket is %s, want HS-000011 (after the newest, HS-000010)", tk.ID)
	}
}

// Customers writing at once each get their own number, one after
// another, none twice and none skipped.
func TestSequentialNumbersUnderConcurrentMail(t *testing.T) {
	g := startGateway(t)
	g.pipeline.Sequential = true
	const n = 16
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			from := fmt.Sprintf("c%02d@customer.example", i)
			errs <- g.send(from, []string{"support@example.com"}, msg(from, "support@example.com", "Question", "Hello."))
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	for _, tk := range g.tickets() {
		got = append(got, tk.ID)
	}
	slices.Sort(got)
	var want []string
	for i := range n {
		want = append(want, fmt.Sprintf("HS-%06d", i+1))
	}
	if !slices.Equal(got, want) {
		t.Errorf("ticket ids %v, want %v", got, want)
	}
}

// putEarlierTickets stores tickets ids, created an hour ago a minute
// apart in the order given (the last is the newest).
func putEarlierTickets(t *testing.T, g *gateway, ids ...string) {
	t.Helper()
	earlier := time.Now().Add(-time.Hour)
	err := g.store.Update(context.Background(), func(tx store.Tx) error {
		for i, id := range ids {
			tk := &store.Ticket{ID: id, Subject: "earlier", Status: rules.StatusOpen, Priority: rules.PriorityMedium,
				Requester: "old@customer.example", CreatedAt: earlier.Add(time.Duration(i) * time.Minute)}
			if err := tx.PutTicket(tk); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
