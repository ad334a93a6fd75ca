package main

import (
	"strings"
	"testing"
)

// explain -from "" explains mail from the null sender as inject -from ""
// (Postfix's -from ${sender} for a bounce or an auto-responder) delivers
// it: automatic, answered by no auto-reply. Without -from the sender is
// the message's From. The same when serve holds the database.
func TestExplainNullSenderAsInjectDelivers(t *testing.T) {
	e := newEnv(t, true)
	e.injectOK(message("alice@customer.example", "support@example.com", "First", "first@customer.example", "Hello."))
	raw := message("bob@customer.example", "support@example.com", "Away", "away@customer.example", "I am away this week.")
	check := func(how string) {
		t.Helper()
		r := e.run(raw, "explain", "-from", "")
		if r.code != 0 || !strings.Contains(r.stdout, "null reverse path") || strings.Contains(r.stdout, "mail: auto to") {
			t.Errorf("explain -from \"\" %s: exit %d, want the null sender's mail taken as automatic\n%s%s", how, r.code, r.stdout, r.stderr)
		}
		r = e.run(raw, "explain")
		if r.code != 0 || !strings.Contains(r.stdout, "mail: auto to [bob@customer.example]") {
			t.Errorf("explain %s: exit %d, want an auto-reply to the From address\n%s%s", how, r.code, r.stdout, r.stderr)
		}
	}
	check("with the database closed")
	e.serve()
	check("handed over to serve")

	id := e.injectOK(raw, "-from", "")
	if evs := eventTypes(e.show(id)); !strings.Contains(strings.Join(evs, " "), "auto_reply_suppressed") {
		t.Errorf("inject -from \"\" recorded %v, want the auto-reply suppressed as explain says", evs)
	}
}
