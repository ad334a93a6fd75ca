package main

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"ticketgate/mailout/relaytest"
)

// A relay whose certificate cannot be verified (a self-signed one, as
// Debian's Postfix has) stops the outbox at the first attempt with an
// error log line, a status line and an event on the ticket; with the
// default tls = "auto" a relay on 127.0.0.1 is used without TLS and the
// waiting mail leaves.
func TestRelayTLSFailureIsLoudAtTheFirstAttempt(t *testing.T) {
	e := newEnv(t, true)
	relay := relaytest.StartTLS(t)
	e.outboxConfig(relay.Addr, "tls = \"starttls\"\nretry_base = \"1h\"\n")
	s := e.serve()
	id := e.injectOK(message("carol@customer.example", "support@example.com", "Anyone there?", "tls1@customer.example", "Hello."))

	deadline := time.Now().Add(10 * time.Second)
	var tk = e.show(id)
	for !slices.Contains(eventTypes(tk), "relay_tls_failed") {
		if time.Now().After(deadline) {
			t.Fatalf("no relay_tls_failed event on %s after the first attempt: %v", id, eventTypes(tk))
		}
		time.Sleep(50 * time.Millisecond)
		tk = e.show(id)
	}
	for _, ev := range tk.Events {
		if ev.Type == "relay_tls_failed" && !strings.Contains(ev.Detail, "x509") {
			t.Errorf("event detail %q does not say why", ev.Detail)
		}
	}
	s.waitLog(t, "relay TLS failed")
	if list := e.outboxJSON(); len(list) != 1 || list[0]["attempts"] != 1.0 {
		t.Errorf("the event came after attempt %v, want the first: %v", list[0]["attempts"], list)
	}
	r := e.run(nil, "status")
	if r.code != 0 || !strings.Contains(r.stdout, "relay: TLS FAILED") || !strings.Contains(r.stdout, "x509") ||
		!strings.Contains(r.stdout, "oldest queued") {
		t.Errorf("status: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	var st statusReport
	r = e.run(nil, "status", "-json")
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil || !st.RelayTLSFailed || st.RelayLastErrorAt.IsZero() {
		t.Errorf("status -json: %+v (%v)", st, err)
	}
	if n := len(relay.Mails()); n != 0 {
		t.Fatalf("relay got %d mails over a TLS session that failed", n)
	}
	if code := s.stop(t); code != 0 {
		t.Fatalf("serve exit %d", code)
	}
	// Not serving: status reads the error recorded on the queued mail.
	if r := e.run(nil, "status"); !strings.Contains(r.stdout, "relay: TLS FAILED") {
		t.Errorf("status without serve: %q", r.stdout)
	}

	// The default: no TLS with a relay on a loopback address.
	e.outboxConfig(relay.Addr, "retry_base = \"1h\"\n")
	s = e.serve()
	if r := e.run(nil, "outbox", "retry", "-all"); r.code != 0 {
		t.Fatalf("outbox retry -all: exit %d, %s", r.code, r.stderr)
	}
	mails := relay.WaitFor(1, 10*time.Second)
	if len(mails) != 1 || mails[0].TLS {
		t.Fatalf("with tls = auto the loopback relay got %d mails (over TLS: %v), want the auto-reply in plain SMTP", len(mails), len(mails) == 1 && mails[0].TLS)
	}
	if r := e.run(nil, "status"); !strings.Contains(r.stdout, "relay: last error none") {
		t.Errorf("status after the relay took the mail: %q", r.stdout)
	}
	s.stop(t)
}
