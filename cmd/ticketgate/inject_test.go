package main

import (
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"ticketgate/mailin"
)

// dsn is a delivery status report to the return path to.
func dsn(to, msgid string) []byte {
	return []byte("From: MAILER-DAEMON@mx.customer.example\r\nTo: " + to + "\r\nSubject: Undelivered Mail Returned to Sender\r\n" +
		"Message-ID: <" + msgid + ">\r\nMIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=RR\r\n\r\n" +
		"--RR\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n" +
		"--RR\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.customer.example\r\n\r\n" +
		"Final-Recipient: rfc822; gone@customer.example\r\nAction: failed\r\nStatus: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 user unknown\r\n" +
		"--RR--\r\n")
}

// Postfix hands bounces for our return paths to inject like any other
// mail: through a running serve's admin API, and locally when none runs.
func TestInjectAcceptsBounceAddresses(t *testing.T) {
	e := newEnv(t, true)
	s := e.serve()
	id := e.injectOK(message("gone@customer.example", "support@example.com", "Hello", "bounce-1@customer.example", "x"),
		"-to", "support@example.com", "-from", "gone@customer.example")
	mails := e.relay.WaitFor(1, 10*time.Second)
	if len(mails) != 1 || !strings.HasPrefix(mails[0].From, "bounces+") {
		t.Fatalf("relayed %+v, want the auto-reply with a bounce return path", mails)
	}
	bounce := mails[0].From
	for i, msgid := range []string{"dsn-api@mx.customer.example", "dsn-local@mx.customer.example"} {
		if i == 1 {
			if code := s.stop(t); code != 0 {
				t.Fatalf("serve exited %d", code)
			}
		}
		r := e.run(dsn(bounce, msgid), "inject", "-to", bounce, "-from", "")
		if r.code != 0 || r.stdout != id+" bounce\n" {
			t.Fatalf("inject -to %s (%s): exit %d, stdout %q, stderr %q; want 0 and %q", bounce, msgid, r.code, r.stdout, r.stderr, id+" bounce")
		}
	}
	tk := e.show(id)
	kept := 0
	for _, m := range tk.Messages {
		if m.Kind == "system" {
			kept++
		}
	}
	failed := 0
	for _, ev := range tk.Events {
		if ev.Type == "delivery_failed" && strings.Contains(ev.Detail, "gone@customer.example") {
			failed++
		}
	}
	if kept != 2 || failed != 2 || len(e.tickets()) != 1 {
		t.Errorf("%d reports kept, %d delivery_failed events, %d tickets; want 2, 2, 1", kept, failed, len(e.tickets()))
	}
	// A made-up bounce address is still an unknown recipient.
	if r := e.run(dsn("x", "dsn-forged@mx.customer.example"), "inject", "-to", "bounces+aaaaaaaaaaaaaaaaaaaaaaaaaaaaa@tickets.example.com"); r.code != exNoUser {
		t.Errorf("forged bounce address: exit %d, want %d", r.code, exNoUser)
	}
}

// POST /api/inject without a from parameter takes the sender from the
// message, as inject without -from does and as POST /api/explain without
// one explains it: a customer's mail gets its auto-reply. An empty from
// stays the null sender (a bounce, an auto-responder): no auto-reply.
func TestInjectAPIWithoutFromTakesTheMessagesFrom(t *testing.T) {
	e := newEnv(t, true)
	e.serve()
	post := func(query string, raw []byte) string {
		t.Helper()
		resp, err := e.apiDo("POST", "/api/inject?"+query, "message/rfc822", string(raw))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var res mailin.Result
		if err := json.Unmarshal(b, &res); err != nil || resp.StatusCode != http.StatusOK || res.TicketID == "" {
			t.Fatalf("POST /api/inject?%s: %s, %v\n%s", query, resp.Status, err, b)
		}
		return res.TicketID
	}
	raw := message("bob@customer.example", "support@example.com", "Printer jammed", "api-inject-1@customer.example", "Please help.")
	resp, err := e.apiDo("POST", "/api/explain?to=support%40example.com", "message/rfc822", string(raw))
	if err != nil {
		t.Fatal(err)
	}
	explained, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(explained), "mail: auto to [bob@customer.example]") {
		t.Fatalf("POST /api/explain without from: want an auto-reply to bob\n%s", explained)
	}
	id := post("to=support%40example.com", raw)
	if evs := eventTypes(e.show(id)); !slices.Contains(evs, "auto_reply") || slices.Contains(evs, "auto_reply_suppressed") {
		t.Errorf("POST /api/inject without from: events %v, want the auto-reply explain announced", evs)
	}
	id = post("to=support%40example.com&from=", message("away@customer.example", "support@example.com", "Out of office",
		"api-inject-2@customer.example", "I am away."))
	if evs := eventTypes(e.show(id)); !slices.Contains(evs, "auto_reply_suppressed") {
		t.Errorf("POST /api/inject with from= (the null sender): events %v, want the auto-reply suppressed", evs)
	}
}

// POST /api/inject is inject's handover and refuses what inject refuses:
// text with no header field at all is answered 422 (inject's 65), and no
// ticket is opened for it.
func TestInjectAPIRefusesTextWithoutHeader(t *testing.T) {
	e := newEnv(t, true)
	e.serve()
	resp, err := e.apiDo("POST", "/api/inject?to=support%40example.com&from=ann%40customer.example", "message/rfc822", "Hello, my printer is broken.\r\n")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(string(b), "no header") {
		t.Errorf("POST /api/inject of text without a header: %s %s; want 422 saying it has no header", resp.Status, b)
	}
	if r := e.run([]byte("Hello, my printer is broken.\r\n"), "inject", "-to", "support@example.com"); r.code != exDataErr {
		t.Errorf("inject of text without a header: exit %d, want %d", r.code, exDataErr)
	}
	if n := len(e.ticketsAfterRefusal()); n != 0 {
		t.Errorf("%d tickets opened for text without a header, want none", n)
	}
}
