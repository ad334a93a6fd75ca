package main

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"ticketgate/desk/view"
	"ticketgate/rules"
	"ticketgate/store/boltdb"
)

const agentsConfig = `
[agents]
secret_file = "data/agent.key"

[[agent]]
email = "Ana@Example.com"
name = "Ana Lima"
queues = ["support"]

[[agent]]
email = "meg@example.com"
name = "Meg Boss"
manager = true

[[plan]]
name = "gold"
match = ["@bigcorp.example"]
max_priority = "critical"
`

// agentEnv is an installation with agents and plans configured.
func agentEnv(t *testing.T, extra string) *env {
	t.Helper()
	e := newEnv(t, true)
	f, err := os.OpenFile(e.cfg, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(agentsConfig + extra); err != nil {
		t.Fatal(err)
	}
	f.Close()
	return e
}

func lastEvent(tk *view.Ticket, typ string) *view.Event {
	for i := len(tk.Events) - 1; i >= 0; i-- {
		if string(tk.Events[i].Type) == typ {
			return &tk.Events[i]
		}
	}
	return nil
}

func TestActionsFromTheCommandLineWithAndWithoutServe(t *testing.T) {
	e := agentEnv(t, "")
	id := e.injectOK(message("Bo <bo@bigcorp.example>", "support@example.com", "[Critical] Outage", "o1@bigcorp.example", "All down."),
		"-to", "support@example.com", "-from", "bo@bigcorp.example")

	// The key was made on first start, readable by the owner only.
	fi, err := os.Stat(filepath.Join(e.dir, "data", "agent.key"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("agent key: %v, mode %v", err, fi.Mode())
	}
	key1, _ := os.ReadFile(filepath.Join(e.dir, "data", "agent.key"))

	// Without serve: the command opens the database itself.
	if r := e.run(nil, "assign", "-as", "ana@example.com", id, "me"); r.code != 0 || !strings.Contains(r.stdout, "assigned") {
		t.Fatalf("assign me: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	tk := e.show(id)
	if tk.Assignee != "ana@example.com" || tk.Plan != "gold" || tk.Priority != rules.PriorityCritical || tk.Subject != "Outage" {
		t.Fatalf("after assign: assignee %q plan %q priority %s subject %q", tk.Assignee, tk.Plan, tk.Priority, tk.Subject)
	}
	if ev := lastEvent(tk, "assigned"); ev == nil || ev.Actor != "ana@example.com" {
		t.Errorf("assigned event: %+v", ev)
	}
	for _, bad := range [][]string{
		{"assign", id, "nobody@else.example"},
		{"assign", id, "me"}, // the default actor "operator" is no agent
		{"priority", id, "urgent"},
		{"status", id, "new"},
	} {
		if r := e.run(nil, bad[0], bad[1:]...); r.code != exDataErr || r.stderr == "" {
			t.Errorf("%v: exit %d, stderr %q; want %d and a reason", bad, r.code, r.stderr, exDataErr)
		}
	}
	if r := e.run(nil, "priority", "HS-000000", "low"); r.code != 1 || !strings.Contains(r.stderr, "no ticket HS-000000") {
		t.Errorf("unknown ticket: exit %d, stderr %q", r.code, r.stderr)
	}

	// With serve holding the database: handed over to the admin API.
	s := e.serve()
	// What inject queued goes out first: the auto-reply, and the
	// notifications of a critical ticket to its queue and to the manager.
	e.relay.WaitFor(3, 10*time.Second)
	before := 3
	for _, args := range [][]string{
		{"priority", id, "low"},
		{"status", "-as", "meg@example.com", id, "on_hold"},
		{"note", id, "Called", "the", "customer."},
	} {
		if r := e.run(nil, args[0], args[1:]...); r.code != 0 {
			t.Fatalf("%v with serve: exit %d\n%s%s", args, r.code, r.stdout, r.stderr)
		}
	}
	if r := e.run(nil, "assign", id, "nobody@else.example"); r.code != exDataErr {
		t.Errorf("refused assign with serve: exit %d, stderr %q", r.code, r.stderr)
	}
	// The note goes to the agents (ana is assignee, meg not on the queue).
	e.relay.WaitFor(before+1, 10*time.Second)
	if code := s.stop(t); code != 0 {
		t.Fatalf("serve exit %d", code)
	}
	mails := e.relay.Mails()[before:]
	if len(mails) != 1 || mails[0].To[0] != "ana@example.com" || !strings.Contains(string(mails[0].Data), "Called the customer.") {
		t.Errorf("want one note mail to ana, got %d", len(mails))
		for _, m := range mails {
			t.Logf("to %v:\n%s", m.To, m.Data)
		}
	}

	tk = e.show(id)
	if tk.Priority != rules.PriorityLow || tk.Status != rules.StatusOnHold {
		t.Errorf("after handover: priority %s status %s", tk.Priority, tk.Status)
	}
	// Handed over, the events say who acted through which door.
	if ev := lastEvent(tk, "status"); ev == nil || ev.Actor != "meg@example.com" ||
		!strings.HasSuffix(ev.Detail, "(status by meg@example.com via the admin API with the operator's token)") {
		t.Errorf("status event: %+v", ev)
	}
	if ev := lastEvent(tk, "priority"); ev == nil || ev.Actor != "operator" ||
		!strings.HasSuffix(ev.Detail, "(priority by operator via the admin API)") {
		t.Errorf("priority event: %+v", ev)
	}
	if ev := lastEvent(tk, "assigned"); ev == nil || !strings.HasSuffix(ev.Detail, "(assign by ana@example.com via the command line)") {
		t.Errorf("assigned event (without serve): %+v", ev)
	}
	last := tk.Messages[len(tk.Messages)-1]
	if last.Kind != "note" || last.VisibleText != "Called the customer." || last.From != "operator" {
		t.Errorf("note: %+v", last)
	}
	if key2, _ := os.ReadFile(filepath.Join(e.dir, "data", "agent.key")); string(key2) != string(key1) {
		t.Errorf("the agent key changed between starts")
	}
}

func TestAgentKeyRotationKeepsThePreviousKey(t *testing.T) {
	dir := t.TempDir()
	oldKey := filepath.Join(dir, "old.key")
	if err := os.WriteFile(oldKey, []byte("00112233445566778899aabbccddeeff\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "t.toml")
	text := "[store]\npath = " + quote(filepath.Join(dir, "db", "t.db")) + "\n[agents]\nsecret_file = " + quote(filepath.Join(dir, "new.key")) +
		"\nprevious_secret_file = " + quote(oldKey) + "\n[[agent]]\nemail = \"ana@example.com\"\nqueues = [\"support\"]\n"
	if err := os.WriteFile(cfgPath, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := loadConfig(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	a, err := openApp(cfg, newLogger(os.Stderr), boltdb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.close()
	old := rules.Signer{Keys: [][]byte{{0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff}}}
	tok := old.Token(rules.TokenReply, "HS-123456", "ana@example.com")
	s := a.pipeline.Signer
	if !s.Verify(tok, rules.TokenReply, "HS-123456", "ana@example.com") {
		t.Errorf("an address signed with the previous key is refused")
	}
	if s.Token(rules.TokenReply, "HS-123456", "ana@example.com") == tok {
		t.Errorf("new addresses are still signed with the previous key")
	}
}

func TestAgentConfigErrorsNameTheEntry(t *testing.T) {
	probe := message("x@customer.example", "support@example.com", "Probe", "p1@customer.example", "Hi.")
	for _, c := range []struct{ extra, want string }{
		{"[[plan]]\nname = \"vip\"\nmatch = [\"@x.example\"]\nmax_priority = \"urgent\"\n", `plan[1] (vip) max_priority "urgent"`},
		{"[[agent]]\nemail = \"tom@example.com\"\nqueues = [\"sales\"]\n", `agent[2] (tom@example.com) lists queue "sales"`},
		{"[[agent]]\nemail = \"ana@example.com\"\n", "agent ana@example.com is listed twice"},
	} {
		e := agentEnv(t, c.extra)
		if r := e.run(probe, "inject", "-to", "support@example.com"); r.code == 0 || !strings.Contains(r.stderr, c.want) {
			t.Errorf("exit %d, stderr %q; want it to say %q", r.code, r.stderr, c.want)
		}
	}
	e := newEnv(t, false)
	os.WriteFile(e.cfg, append(must(os.ReadFile(e.cfg)), "[agents]\nrequire_auth = true\n"...), 0o600)
	if r := e.run(probe, "inject", "-to", "support@example.com"); r.code == 0 || !strings.Contains(r.stderr, "trusted_authserv_id") {
		t.Errorf("require_auth without authserv-id: exit %d, stderr %q", r.code, r.stderr)
	}
}

// A [[request_type]] that could never apply is refused with its entry,
// not loaded to be passed over: one whose tag another type (a shipped one,
// or one listed before) already has, and one listed twice, whose second
// entry replaced the first.
func TestRequestTypeThatCannotApplyIsRefused(t *testing.T) {
	probe := message("x@customer.example", "support@example.com", "[Billing] Invoice", "rt1@customer.example", "Hi.")
	for _, c := range []struct{ extra, want string }{
		{"[[request_type]]\nname = \"sales\"\ntags = [\"Quote\", \"billing\"]\ncategory = \"sales\"\n",
			`request_type[0] (sales) tag "billing" is already request type "billing question"'s`},
		{"[[request_type]]\nname = \"quote\"\ntags = [\"Offer\"]\n[[request_type]]\nname = \"Quote\"\ntags = [\"Estimate\"]\n",
			`request_type[1] "Quote" is listed twice`},
		{"[[request_type]]\nname = \"sales\"\ntags = [\"Quote\"]\n[[request_type]]\nname = \"offers\"\ntags = [\"quote\"]\n",
			`request_type[1] (offers) tag "quote" is already request type "sales"'s`},
	} {
		e := newEnv(t, false)
		appendConfig(t, e.cfg, "\n"+c.extra)
		// inject refuses it as every command does, with 75 so that
		// Postfix keeps the mail until the fix (it bounces 78).
		if r := e.run(probe, "inject", "-to", "support@example.com"); r.code != exTempFail || !strings.Contains(r.stderr, c.want) {
			t.Errorf("exit %d, stderr %q; want %d saying %q", r.code, r.stderr, exTempFail, c.want)
		}
	}
	// Naming a shipped type replaces it, tags and all.
	e := newEnv(t, false)
	appendConfig(t, e.cfg, "\n[[request_type]]\nname = \"Billing Question\"\ntags = [\"Billing\", \"Invoice\"]\ncategory = \"accounts\"\n")
	id := e.injectOK(probe)
	if tk := e.show(id); tk.Category != "accounts" {
		t.Errorf("[Billing] with the billing question type replaced: category %q, want accounts", tk.Category)
	}
}

func quote(s string) string { return `"` + strings.ReplaceAll(s, `\`, `\\`) + `"` }

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

// startAdmin starts an in-process admin API on 127.0.0.1:0 and returns its
// base URL and token.
func startAdmin(t *testing.T) (base, token string) {
	t.Helper()
	dir := t.TempDir()
	cfg, err := loadConfig(writeFile(t, fmt.Sprintf("[store]\npath = %q\n[admin]\nlisten = \"127.0.0.1:0\"\n", filepath.Join(dir, "tickets.db"))))
	if err != nil {
		t.Fatal(err)
	}
	a, err := openApp(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), boltdb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.close() })
	s := &servers{}
	srv, err := a.listenAdmin(s)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	tok, err := readAdminToken(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return "http://" + s.adminAddr(), tok
}

// An over-large action or forget body is answered 413, as inject and explain answer, not 400.
func TestOversizedActionBodyIsTooLarge(t *testing.T) {
	base, tok := startAdmin(t)
	header := map[string]string{"Content-Type": "application/json", "Authorization": "Bearer " + tok}
	for _, c := range []struct{ path, body string }{
		{"/api/tickets/HS-000001/actions", `{"action":"note","value":"` + strings.Repeat("x", 2<<20) + `"}`},
		{"/api/forget", `{"address":"` + strings.Repeat("x", 1<<17) + `@customer.example"}`},
	} {
		if a := send(t, "POST", base+c.path, c.body, header); a.code != http.StatusRequestEntityTooLarge {
			t.Errorf("POST %s with %d bytes: %d %.200q; want 413", c.path, len(c.body), a.code, a.body)
		}
	}
	// A body in bounds that is not JSON stays a 400.
	if a := send(t, "POST", base+"/api/tickets/HS-000001/actions", "{", header); a.code != http.StatusBadRequest {
		t.Errorf("POST of a broken body: %d %q; want 400", a.code, a.body)
	}
}

// A long note is the same note whether the command opens the database
// or hands over to serve: one of under 1 MiB of text is stored whole
// both ways (quoted mail escapes to more bytes in JSON), and a longer one
// is refused with 65 both ways, never stored cut short.
func TestLongNoteIsTheSameWithAndWithoutServe(t *testing.T) {
	e := newEnv(t, true)
	id := e.injectOK(message("alice@customer.example", "support@example.com", "Printer", "long-note@customer.example", "Hello."))
	quoted := strings.Repeat("> a line quoted from the customer's mail\n", 24000) + "end of the quote" // under 1 MiB
	tooLong := strings.Repeat("x", 1<<20) + " end of the long note"
	check := func(how string) {
		t.Helper()
		before := len(e.show(id).Messages)
		if r := e.run([]byte(quoted), "note", id); r.code != 0 {
			t.Errorf("note of %d bytes %s: exit %d, stderr %q; want 0", len(quoted), how, r.code, r.stderr)
		}
		if r := e.run([]byte(tooLong), "note", id); r.code != exDataErr {
			t.Errorf("note of %d bytes %s: exit %d, stderr %q; want %d", len(tooLong), how, r.code, r.stderr, exDataErr)
		}
		var notes []string
		for _, m := range e.show(id).Messages[before:] {
			notes = append(notes, fmt.Sprintf("%d bytes ending %q", len(m.Text), m.Text[max(0, len(m.Text)-16):]))
		}
		if want := fmt.Sprintf("%d bytes ending %q", len(quoted), "end of the quote"); len(notes) != 1 || notes[0] != want {
			t.Errorf("notes stored %s: %v; want one, %s", how, notes, want)
		}
	}
	check("with the database closed")
	e.serve()
	check("handed over to serve")
}

// A parameter a route does not take is refused with 400, never ignored:
// an action asked for as an agent in the query (as=, as the listing takes
// the operator) is not done with the operator's rights, and a forget
// asked for as a dry run erases nothing.
func TestAdminRefusesParametersARouteDoesNotTake(t *testing.T) {
	e := agentEnv(t, "")
	id := e.injectOK(message("bo@customer.example", "support@example.com", "Outage", "params-1@customer.example", "All down."),
		"-to", "support@example.com", "-from", "bo@customer.example")
	e.serve()
	raw := string(message("cy@customer.example", "support@example.com", "Other", "params-2@customer.example", "Hello."))
	for _, c := range []struct{ method, path, ct, body string }{
		{"POST", "/api/tickets/" + id + "/actions?as=ana%40example.com", "application/json", `{"action":"status","value":"closed"}`},
		{"GET", "/api/tickets/" + id + "?messages=0", "", ""},
		{"GET", "/api/outbox?ticket=HS-000000", "", ""},
		{"GET", "/api/outbox/1?format=json", "", ""},
		{"GET", "/api/status?mailbox=support", "", ""},
		{"POST", "/api/forget?dry_run=1", "application/json", `{"address":"bo@customer.example"}`},
		{"POST", "/api/inject?rcpt=support%40example.com", "message/rfc822", raw},
		{"POST", "/api/inject?to=support%40example.com&from=cy%40customer.example&from=", "message/rfc822", raw},
		{"POST", "/api/explain?sender=cy%40customer.example", "message/rfc822", raw},
		{"GET", "/api/check?fix=1", "", ""},
		{"GET", "/api/backup?compress=1", "", ""},
	} {
		resp, err := e.apiDo(c.method, c.path, c.ct, c.body)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), `"error"`) {
			t.Errorf("%s %s: %s %.200q; want 400 with an error", c.method, c.path, resp.Status, b)
		}
	}
	tk := e.show(id)
	if tk.Status == rules.StatusClosed || tk.Requester != "bo@customer.example" {
		t.Errorf("refused requests changed %s: status %s, requester %s", id, tk.Status, tk.Requester)
	}
	if n := len(e.tickets()); n != 1 {
		t.Errorf("%d tickets after refused injects, want 1", n)
	}
}

// An action or forget body holding more than one JSON value is refused
// with 400, not done for its first value with the rest passed over.
func TestAdminRefusesMoreThanOneJSONValue(t *testing.T) {
	e := agentEnv(t, "")
	id := e.injectOK(message("bo@customer.example", "support@example.com", "Outage", "two-values@customer.example", "All down."),
		"-to", "support@example.com", "-from", "bo@customer.example")
	e.serve()
	for _, c := range []struct{ path, body string }{
		{"/api/tickets/" + id + "/actions", `{"action":"status","value":"closed"} {"action":"status","value":"open"}`},
		{"/api/tickets/" + id + "/actions", `{"action":"status","value":"closed"}, "and more"`},
		{"/api/forget", `{"address":"bo@customer.example"} {"address":"cy@customer.example"}`},
	} {
		resp, err := e.apiDo("POST", c.path, "application/json", c.body)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), `"error"`) {
			t.Errorf("POST %s with %s: %s %.200q; want 400 with an error", c.path, c.body, resp.Status, b)
		}
	}
	if tk := e.show(id); tk.Status == rules.StatusClosed || tk.Requester != "bo@customer.example" {
		t.Errorf("refused bodies changed %s: status %s, requester %s", id, tk.Status, tk.Requester)
	}
	// One value with white space after it is one value.
	if resp, err := e.apiDo("POST", "/api/tickets/"+id+"/actions", "application/json", "{\"action\":\"priority\",\"value\":\"high\"}\n \n"); err != nil {
		t.Fatal(err)
	} else if resp.Body.Close(); resp.StatusCode != http.StatusOK {
		t.Errorf("one value and a newline: %s, want 200", resp.Status)
	}
}

// A card number in an operator's note (the command line, or the API
// through serve) is removed before it is stored or mailed to the agents,
// as it is from a note an agent mails: nothing keeps it, and an event
// says so.
func TestNoteFromTheCommandLineIsRedacted(t *testing.T) {
	e := agentEnv(t, "")
	id := e.injectOK(message("bo@customer.example", "support@example.com", "Refund", "redact-note@customer.example", "Please refund."),
		"-to", "support@example.com", "-from", "bo@customer.example")
	if r := e.run(nil, "assign", "-as", "ana@example.com", id, "me"); r.code != 0 {
		t.Fatalf("assign: exit %d, stderr %q", r.code, r.stderr)
	}
	check := func(how string, r result) {
		t.Helper()
		if r.code != 0 {
			t.Fatalf("note %s: exit %d, stderr %q", how, r.code, r.stderr)
		}
		if !strings.Contains(r.stdout, "redacted") {
			t.Errorf("note %s: the operator is not told of the removal: %q", how, r.stdout)
		}
		tk := e.show(id)
		last := tk.Messages[len(tk.Messages)-1]
		if last.Kind != "note" || strings.Contains(last.Text+last.VisibleText, "4111") || !strings.Contains(last.Text, "refund") {
			t.Errorf("note %s stored as %q", how, last.Text)
		}
		if ev := lastEvent(tk, "redacted"); ev == nil {
			t.Errorf("note %s: no redacted event", how)
		}
	}
	check("without serve", e.run(nil, "note", id, "Card", "4111", "1111", "1111", "1111", "for", "the", "refund."))
	e.serve()
	check("through serve", e.run([]byte("Card 4111-1111-1111-1111 for the refund.\n"), "note", id))
	// Both notes went to ana, the assignee, by mail.
	deadline := time.Now().Add(10 * time.Second)
	for {
		var notes int
		for _, m := range e.relay.Mails() {
			if strings.Contains(string(m.Data), "for the refund") {
				notes++
				if strings.Contains(string(m.Data), "4111") {
					t.Fatalf("the note mailed to %v holds the card number:\n%s", m.To, m.Data)
				}
			}
		}
		if notes == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d note mails; want 2", notes)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
