package main

import (
	"strings"
	"testing"
	"time"
)

// TestStatusRouteOverSMTP: with kind = "status" in the config file, a
// running serve answers a requester's mail to status@ with one list of
// their open tickets, sends nothing to a stranger, opens no ticket for
// either, counts both by outcome, and "explain" says what would happen.
func TestStatusRouteOverSMTP(t *testing.T) {
	e := newEnv(t, true)
	e.opsConfig("", "[[route]]\naddress = \"status@example.com\"\nkind = \"status\"\n")
	e.serve()
	c, err := dialSender(e.smtp)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.send("alice@customer.example", "support@example.com",
		message("alice@customer.example", "support@example.com", "Printer on fire", "p1@customer.example", "It burns.")); err != nil {
		t.Fatal(err)
	}
	e.relay.WaitFor(1, 10*time.Second)
	list := e.tickets()
	if len(list) != 1 {
		t.Fatalf("%d tickets, want 1", len(list))
	}
	id := list[0].ID

	if err := c.send("alice@customer.example", "status@example.com",
		message("alice@customer.example", "status@example.com", "hello", "ask@customer.example", "what is open?")); err != nil {
		t.Fatalf("the status request was not taken: %v", err)
	}
	if err := c.send("mallory@evil.example", "status@example.com",
		message("mallory@evil.example", "status@example.com", "hello", "evil@evil.example", "what is open?")); err != nil {
		t.Fatalf("the stranger's request was not taken: %v", err)
	}
	e.waitMetric(`ticketgate_messages_received_total{outcome="status_stranger",route="status@example.com",source="smtp"}`, 1)
	m := e.waitMetric(`ticketgate_messages_received_total{outcome="status_sent",route="status@example.com",source="smtp"}`, 1)
	if n := m[`ticketgate_messages_received_total{outcome="status_sent",route="status@example.com",source="smtp"}`]; n != 1 {
		t.Errorf("%v lists counted, want 1", n)
	}
	// Both requests were answered 250, so whatever they queued is in the
	// outbox: wait until it is empty.
	e.relay.WaitFor(2, 10*time.Second)
	for deadline := time.Now().Add(10 * time.Second); e.scrape()["ticketgate_outbox_depth"] != 0; {
		if time.Now().After(deadline) {
			t.Fatal("the outbox did not drain")
		}
		time.Sleep(20 * time.Millisecond)
	}
	mails := e.relay.Mails()
	if len(mails) != 2 {
		t.Fatalf("relay got %d mails, want the auto-reply and one list", len(mails))
	}
	if got := mails[1]; len(got.To) != 1 || got.To[0] != "alice@customer.example" || !strings.Contains(string(got.Data), "["+id+"] Printer on fire") {
		t.Errorf("the list went to %v:\n%s", got.To, got.Data)
	}
	if n := len(e.tickets()); n != 1 {
		t.Errorf("%d tickets after the status requests, want 1", n)
	}

	r := e.run(message("alice@customer.example", "status@example.com", "hello", "ask2@customer.example", "again?"), "explain")
	if r.code != 0 || !strings.Contains(r.stdout, "status request: the list of 1 unresolved tickets goes to alice@customer.example") ||
		!strings.Contains(r.stdout, "mail: list to [alice@customer.example]") {
		t.Errorf("explain: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}
