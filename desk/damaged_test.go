package desk

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt" // only to plant damage the store's API cannot make

	"ticketgate/rules"
	"ticketgate/store"
)

// damageTicket overwrites ticket id's record in the database file with
// bytes that do not decode, as a damaged disk or a -force restore leaves
// it.
func (e *env) damageTicket(id string) {
	e.t.Helper()
	e.store.Close()
	db, err := bolt.Open(e.path, 0o600, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("tickets"))
		var k []byte
		b.ForEach(func(key, v []byte) error {
			if bytes.Contains(v, []byte(id)) {
				k = bytes.Clone(key)
			}
			return nil
		})
		if k == nil {
			e.t.Fatalf("no record of %s", id)
		}
		return b.Put(k, []byte{1, 0xff, 0xff})
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		e.t.Fatal(err)
	}
	e.open()
}

// TestDamagedTicketStopsNoSweep: one ticket whose record no longer
// decodes is reported by the sweep and passed over; every other ticket
// still gets its reminder, rather than nobody's being sent at any sweep.
func TestDamagedTicketStopsNoSweep(t *testing.T) {
	e := newEnv(t)
	for _, id := range []string{"HS-300101", "HS-300102", "HS-300103"} {
		e.create(id, "cy@customer.example", day0, rules.PriorityLow)
		e.agentReply(id, day0)
	}
	e.damageTicket("HS-300102")
	rep := e.run(day(3))
	if got := kinds(t, e, 0); !slices.Equal(got, []string{"reminder", "reminder"}) {
		t.Errorf("sent %v, want the reminders of the two readable tickets", got)
	}
	for _, id := range []string{"HS-300101", "HS-300103"} {
		if tk := e.ticket(id); len(events(tk, "reminder_sent")) != 1 {
			t.Errorf("%s: no reminder_sent event: %+v", id, tk.Events)
		}
	}
	var damaged []SweepAction
	for _, a := range rep.Actions {
		if a.Ticket == "HS-300102" {
			damaged = append(damaged, a)
		}
	}
	if len(damaged) != 1 || damaged[0].Kind != "damaged" || !strings.Contains(damaged[0].Detail, "does not decode") {
		t.Errorf("report on the damaged ticket: %+v, want one damaged action", damaged)
	}
	// The next sweep reports it again and sends nothing twice.
	rep = e.run(day(3.5))
	if got := kinds(t, e, 2); len(got) != 0 {
		t.Errorf("second sweep sent %v", got)
	}
	if len(rep.Actions) != 1 || rep.Actions[0].Kind != "damaged" {
		t.Errorf("second sweep: %+v, want the damaged ticket reported", rep.Actions)
	}
}

// TestDamagedRateCounterRefusesNoMail: a customer whose inbound or
// auto-reply counter no longer decodes is not refused (451) at every
// message for good, nor left without the auto-reply: a counter is only a
// count of recent mail, and a damaged one counts nothing.
func TestDamagedRateCounterRefusesNoMail(t *testing.T) {
	g := startGateway(t)
	g.mustSend("n@customer.example", []string{"support@example.com"}, msg("n@customer.example", "support@example.com", "first", "x"))
	g.relay.WaitFor(1, 5*time.Second)
	g.shutdown()
	db, err := bolt.Open(g.dbPath, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("rate"))
		for _, kind := range []string{"in:sender:", "in:domain:", "auto:"} {
			if err := b.Put([]byte("n@customer.example\x00"+kind), []byte{1, 0xff, 0xff}); err != nil {
				return err
			}
			if err := b.Put([]byte("customer.example\x00"+kind), []byte{1, 0xff, 0xff}); err != nil {
				return err
			}
		}
		return nil
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	g.open()
	g.pipeline.Policies = Policies{PerSender: 10, PerDomain: 10}
	if err := g.send("n@customer.example", []string{"support@example.com"}, msg("n@customer.example", "support@example.com", "second", "x")); err != nil {
		t.Fatalf("message from the sender whose counters are damaged: %v, want it taken", err)
	}
	if n := len(g.tickets()); n != 2 {
		t.Errorf("%d tickets, want 2", n)
	}
	if got := g.relay.WaitFor(2, 5*time.Second); len(got) != 2 {
		t.Errorf("relay got %d mails, want the second ticket's auto-reply too", len(got))
	}
}

// TestDamagedTicketLeavesTheListOfTheOthers: a customer one of whose
// tickets no longer decodes, asking for their tickets, gets the list of
// the others, rather than a 451 at every try until their server gives up
// and bounces the request.
func TestDamagedTicketLeavesTheListOfTheOthers(t *testing.T) {
	g := startGateway(t)
	g.mustSend("alice@customer.example", []string{"support@example.com"}, msg("alice@customer.example", "support@example.com", "Printer on fire", "x"))
	g.mustSend("alice@customer.example", []string{"support@example.com"}, msg("alice@customer.example", "support@example.com", "VPN down", "y"))
	g.relay.WaitFor(2, 5*time.Second)
	var damaged, other string
	for _, tk := range g.tickets() {
		if tk.Subject == "Printer on fire" {
			damaged = tk.ID
		} else {
			other = tk.ID
		}
	}
	g.shutdown()
	db, err := bolt.Open(g.dbPath, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("tickets"))
		c := b.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if bytes.Contains(v, []byte(damaged)) {
				return b.Put(bytes.Clone(k), []byte{1, 0xff})
			}
		}
		return nil
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	g.open()
	if err := g.send("alice@customer.example", []string{"support@example.com"}, msg("alice@customer.example", "support@example.com", "my tickets", "which?")); err != nil {
		t.Fatalf("asking for the list: %v, want it answered", err)
	}
	mails := g.relay.WaitFor(3, 5*time.Second)
	if len(mails) != 3 {
		t.Fatalf("relay got %d mails, want the list", len(mails))
	}
	if _, body := parse(t, mails[2]); !strings.Contains(body, other) || strings.Contains(body, damaged) {
		t.Errorf("list:\n%s\nwant %s alone", body, other)
	}
}

// TestDamagedNewestTicketLeavesSequentialNumbering: with sequential
// numbers, a gateway started beside a newest ticket whose record does
// not decode numbers the next ticket after the others; a new customer's
// mail was answered 451 at every try, the numbers never read.
func TestDamagedNewestTicketLeavesSequentialNumbering(t *testing.T) {
	g := startGateway(t)
	g.pipeline.Sequential = true
	g.mustSend("alice@customer.example", []string{"support@example.com"}, msg("alice@customer.example", "support@example.com", "Printer on fire", "x"))
	g.mustSend("bob@customer.example", []string{"support@example.com"}, msg("bob@customer.example", "support@example.com", "VPN down", "y"))
	g.relay.WaitFor(2, 5*time.Second)
	g.shutdown()
	db, err := bolt.Open(g.dbPath, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("tickets"))
		c := b.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if bytes.Contains(v, []byte("HS-000002")) {
				return b.Put(bytes.Clone(k), []byte{1, 0xff})
			}
		}
		t.Fatal("no record of HS-000002")
		return nil
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	g.open()
	g.pipeline.Sequential = true
	if err := g.send("cy@customer.example", []string{"support@example.com"}, msg("cy@customer.example", "support@example.com", "Mail bounces", "z")); err != nil {
		t.Fatalf("a new customer's mail after the restart: %v, want a ticket", err)
	}
	var got string
	g.store.View(context.Background(), func(tx store.Tx) error {
		list, _, _ := tx.Tickets(store.Filter{}) // HS-000002 left out
		for _, tk := range list {
			if tk.Subject == "Mail bounces" {
				got = tk.ID
			}
		}
		return nil
	})
	if got != "HS-000003" {
		t.Errorf("new ticket %q, want HS-000003, after HS-000001 and the number the damaged ticket holds", got)
	}
}
