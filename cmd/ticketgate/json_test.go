package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"ticketgate/rules"
	"ticketgate/store"
	"ticketgate/store/boltdb"
)

// The public JSON of a ticket, field for field: every key the contract
// names, and nothing else. The ticket in the test has every optional field
// set, so each must be there.
var (
	ticketKeys = []string{"id", "subject", "status", "priority", "queue", "category", "plan", "requester",
		"requester_name", "cc", "assignee", "escalated", "watchers", "links", "linked", "created_at",
		"updated_at", "closed_at", "sla", "satisfaction", "messages", "events"}
	messageKeys = []string{"message_id", "direction", "kind", "from", "to", "cc", "subject", "text",
		"visible_text", "created_at", "attachments", "notes"}
	attachmentKeys   = []string{"filename", "content_type", "size", "sha256", "content_id", "inline"}
	eventKeys        = []string{"at", "type", "detail", "actor"}
	slaKeys          = []string{"first_response_due", "resolution_due", "first_response_at", "breached"}
	satisfactionKeys = []string{"score", "comment", "at"}
	// mailKeys are those of a mail sent, or queued and not tried yet (the
	// auto-reply of the ticket, which serve may have sent by the time the
	// API is asked).
	mailKeys = []string{"id", "kind", "to", "state", "at"}
	// internalKeys are stored on the record for the gateway alone.
	internalKeys = []string{"lifecycle", "thread", "last_in_id", "due", "route", "survey_sent", "raw_sha256",
		"warned", "paused_at", "paused_for", "paused_business", "resolved_at"}
)

// TestTicketJSONIsThePublicView: show -json, the admin API (one ticket,
// the listing, an action's result) and tickets -json through the handover
// write the contract's fields and none of the record's internal ones, with
// times in UTC and mail text unescaped. Listings write summaries: the
// same fields without messages and events.
func TestTicketJSONIsThePublicView(t *testing.T) {
	e := newEnv(t, true)
	raw := message(`"Alice Doe" <alice@customer.example>`, "support@example.com", "Printer <on> fire",
		"json-1@customer.example", "> you wrote: is it on fire?\nYes & it smokes.")
	id := e.injectOK(raw, "-to", "support@example.com", "-from", "alice@customer.example")
	e.fillTicket(id)

	r := e.run(nil, "show", "-json", id)
	if r.code != 0 {
		t.Fatalf("show -json: exit %d: %s", r.code, r.stderr)
	}
	checkTicketJSON(t, "show -json", []byte(r.stdout), true)

	e.serve()
	checkTicketJSON(t, "GET /api/tickets/{id}", e.get("/api/tickets/"+id), true)
	var list []json.RawMessage
	if err := json.Unmarshal(e.get("/api/tickets"), &list); err != nil || len(list) != 1 {
		t.Fatalf("GET /api/tickets: %v, %d tickets", err, len(list))
	}
	checkSummaryJSON(t, "GET /api/tickets", list[0])
	r = e.run(nil, "tickets", "-json")
	if err := json.Unmarshal([]byte(r.stdout), &list); r.code != 0 || err != nil || len(list) != 1 {
		t.Fatalf("tickets -json via handover: exit %d, %v\n%s%s", r.code, err, r.stdout, r.stderr)
	}
	checkSummaryJSON(t, "tickets -json via handover", list[0])

	// An action handed over to serve: its answer is decoded by the CLI
	// and printed again.
	r = e.run(nil, "note", "-json", id, "Customer says 3 > 2.")
	if r.code != 0 {
		t.Fatalf("note -json via handover: exit %d: %s", r.code, r.stderr)
	}
	checkTicketJSON(t, "note -json via handover", []byte(r.stdout), false)
	resp, err := e.apiDo("POST", "/api/tickets/"+id+"/actions", "application/json",
		`{"action":"priority","value":"high"}`)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var res map[string]json.RawMessage
	if err := json.Unmarshal(body, &res); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("POST actions: %s, %v\n%s", resp.Status, err, body)
	}
	if got := sortedKeys(res); !slices.Equal(got, []string{"events", "ticket"}) {
		t.Errorf("action result keys %v, want events and ticket", got)
	}
	checkTicketJSON(t, "POST /api/tickets/{id}/actions", res["ticket"], false)
	var events []map[string]json.RawMessage
	if err := json.Unmarshal(res["events"], &events); err != nil || len(events) != 1 {
		t.Fatalf("action result events: %v\n%s", err, res["events"])
	}
	wantKeys(t, "action result event", events[0], eventKeys)
	if !strings.HasSuffix(string(events[0]["at"]), `Z"`) {
		t.Errorf("action result event at %s, want UTC", events[0]["at"])
	}
}

// fillTicket opens the database (no serve running) and gives ticket id
// every optional public field, internal fields that must stay hidden,
// and times in a zone other than UTC.
func (e *env) fillTicket(id string) {
	e.t.Helper()
	st, err := boltdb.Open(filepath.Join(e.dir, "data", "tickets.db"), boltdb.Options{}, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	defer st.Close()
	zone := time.FixedZone("CEST", 2*60*60)
	at := time.Date(2026, 11, 21, 12, 0, 0, 0, zone)
	err = st.Update(context.Background(), func(tx store.Tx) error {
		tk, err := tx.Ticket(id)
		if err != nil {
			return err
		}
		tk.Category, tk.Plan, tk.RequesterName = "billing", "gold", "Alice Doe"
		tk.CC, tk.Escalated, tk.Watchers, tk.Linked = []string{"bob@customer.example"}, true, []string{"mia@example.com"}, []string{"HS-000001"}
		tk.CreatedAt, tk.UpdatedAt = at, at.Add(time.Hour)
		closed := at.Add(2 * time.Hour)
		tk.ClosedAt = &closed
		first := at.Add(30 * time.Minute)
		tk.SLA = &rules.SLA{FirstResponseDue: at.Add(time.Hour), ResolutionDue: at.Add(8 * time.Hour), FirstResponseAt: &first,
			Breached: []string{rules.KindResolution}, Warned: []string{rules.KindResolution}, CreatedAt: at,
			PausedAt: at, PausedFor: time.Minute, PausedBusiness: time.Minute, ResolvedAt: at}
		tk.Satisfaction = &store.Satisfaction{Score: 5, Comment: "fast > slow", At: closed}
		tk.Route, tk.LastInID, tk.Thread, tk.SurveySent = "support@example.com", "<x@y>", []string{"<x@y>"}, true
		tk.Clock = rules.Clock{Status: rules.StatusWaiting, AwaitingSince: at, Reminded: true, ResolvedAt: at}
		tk.Due = at.Add(24 * time.Hour)
		if err := tx.PutTicket(tk); err != nil {
			return err
		}
		if err := tx.AddEvent(id, store.Event{At: at, Type: "linked", Detail: "linked to HS-000001", Actor: "ana@example.com"}); err != nil {
			return err
		}
		return tx.AddMessage(id, &store.Message{
			MessageID: "json-2@example.com", Direction: "out", Kind: "agent", From: "support@example.com",
			To: []string{"alice@customer.example"}, Cc: []string{"bob@customer.example"}, Subject: "Re: Printer <on> fire",
			Text: "> Yes & it smokes.\nCall us.", VisibleText: "Call us.", CreatedAt: at, Raw: "0123", Notes: []string{"one note"},
			Attachments: []store.Attachment{{Filename: "a.png", ContentType: "image/png", Size: 3, SHA256: "abc", ContentID: "<a1>", Inline: true}},
		})
	})
	if err != nil {
		e.t.Fatal(err)
	}
}

// get fetches path from the running serve's admin API.
func (e *env) get(path string) []byte {
	e.t.Helper()
	resp, err := e.apiGet(path)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		e.t.Fatalf("GET %s: %s, %v\n%s", path, resp.Status, err, b)
	}
	return b
}

// checkTicketJSON checks one ticket's JSON against the contract. An
// action's result holds the ticket record without its messages and
// events (empty lists); withMessages says whether they must be there.
func checkTicketJSON(t *testing.T, what string, b []byte, withMessages bool) {
	t.Helper()
	if strings.Contains(string(b), `\u003e`) || strings.Contains(string(b), `\u003c`) || strings.Contains(string(b), `\u0026`) ||
		!strings.Contains(string(b), "Printer <on> fire") || !strings.Contains(string(b), "fast > slow") ||
		(withMessages && !strings.Contains(string(b), "> you wrote")) {
		t.Errorf("%s: <, > and & are escaped or missing:\n%s", what, b)
	}
	for _, k := range internalKeys {
		if strings.Contains(string(b), `"`+k+`"`) {
			t.Errorf("%s: internal field %q in the JSON", what, k)
		}
	}
	var tk map[string]json.RawMessage
	if err := json.Unmarshal(b, &tk); err != nil {
		t.Fatalf("%s: %v\n%s", what, err, b)
	}
	if withMessages {
		wantKeys(t, what, tk, append(slices.Clone(ticketKeys), "mail"))
		var mail []map[string]json.RawMessage
		if err := json.Unmarshal(tk["mail"], &mail); err != nil || len(mail) != 1 {
			t.Fatalf("%s: mail %s, want the queued auto-reply", what, tk["mail"])
		}
		wantKeys(t, what+" mail", mail[0], mailKeys)
		if st := string(mail[0]["state"]); string(mail[0]["kind"]) != `"auto"` || (st != `"queued"` && st != `"sent"`) {
			t.Errorf("%s: mail %s, want the auto-reply, queued or sent", what, tk["mail"])
		}
	} else {
		wantKeys(t, what, tk, ticketKeys)
	}
	if string(tk["links"]) != string(tk["linked"]) || !strings.Contains(string(tk["links"]), "HS-000001") {
		t.Errorf("%s: links %s, linked %s; want the same list", what, tk["links"], tk["linked"])
	}
	sub := func(name string, keys []string) {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(tk[name], &m); err != nil {
			t.Fatalf("%s %s: %v", what, name, err)
		}
		wantKeys(t, what+" "+name, m, keys)
	}
	sub("sla", slaKeys)
	sub("satisfaction", satisfactionKeys)
	var all any
	json.Unmarshal(b, &all)
	walkTimes(t, what, all)
	var msgs, events []map[string]json.RawMessage
	if err := json.Unmarshal(tk["messages"], &msgs); err != nil || msgs == nil {
		t.Errorf("%s: messages %s, want a list", what, tk["messages"])
	}
	if err := json.Unmarshal(tk["events"], &events); err != nil || events == nil {
		t.Errorf("%s: events %s, want a list", what, tk["events"])
	}
	if !withMessages {
		return
	}
	if len(msgs) < 2 || len(events) == 0 {
		t.Fatalf("%s: %d messages, %d events", what, len(msgs), len(events))
	}
	// The message fillTicket added, with every optional field: dated
	// before the injected one, it is listed first (oldest first).
	var full map[string]json.RawMessage
	for _, m := range msgs {
		if string(m["message_id"]) == `"json-2@example.com"` {
			full = m
		}
	}
	wantKeys(t, what+" message", full, messageKeys)
	var atts []map[string]json.RawMessage
	json.Unmarshal(full["attachments"], &atts)
	if len(atts) != 1 {
		t.Fatalf("%s: attachments %s", what, full["attachments"])
	}
	wantKeys(t, what+" attachment", atts[0], attachmentKeys)
	for _, ev := range events {
		if ev["actor"] != nil {
			wantKeys(t, what+" event", ev, eventKeys)
		}
	}
}

func wantKeys(t *testing.T, what string, m map[string]json.RawMessage, want []string) {
	t.Helper()
	got := sortedKeys(m)
	want = slices.Sorted(slices.Values(want))
	if !slices.Equal(got, want) {
		t.Errorf("%s: keys\n %v\nwant\n %v", what, got, want)
	}
}

func sortedKeys(m map[string]json.RawMessage) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// walkTimes fails for any time in v that is not in UTC.
func walkTimes(t *testing.T, what string, v any) {
	t.Helper()
	switch v := v.(type) {
	case map[string]any:
		for _, x := range v {
			walkTimes(t, what, x)
		}
	case []any:
		for _, x := range v {
			walkTimes(t, what, x)
		}
	case string:
		if _, err := time.Parse(time.RFC3339Nano, v); err == nil && !strings.HasSuffix(v, "Z") {
			t.Errorf("%s: time %s is not in UTC", what, v)
		}
	}
}

// GET /api/status and POST /api/sweep write their times in UTC, as every
// time of the API's JSON, on a host whose time zone is another; so does
// status -json, handed over.
func TestStatusAndSweepJSONTimesAreUTC(t *testing.T) {
	t.Setenv("TZ", "Europe/Berlin")
	e := newEnv(t, true)
	e.relay.Down()
	e.injectOK(message("alice@customer.example", "support@example.com", "Printer", "utc-1@customer.example", "Hello."))
	e.serve()
	var status []byte
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if status = e.get("/api/status"); strings.Contains(string(status), "relay_last_error_at") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET /api/status: no relay error within 10s with the relay down\n%s", status)
		}
	}
	check := func(what string, b []byte) {
		t.Helper()
		var v any
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatalf("%s: %v\n%s", what, err, b)
		}
		walkTimes(t, what, v)
	}
	check("GET /api/status", status)
	r := e.run(nil, "status", "-json")
	if r.code != 0 || !strings.Contains(r.stdout, "relay_last_error_at") {
		t.Fatalf("status -json: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	check("status -json", []byte(r.stdout))
	resp, err := e.apiDo("POST", "/api/sweep?now=2026-11-21T12:00:00%2B02:00", "", "")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), `"now": "2026-11-21T10:00:00Z"`) {
		t.Errorf("POST /api/sweep?now=2026-11-21T12:00:00+02:00: %s\n%s; want now 2026-11-21T10:00:00Z", resp.Status, b)
	}
	check("POST /api/sweep", b)
}

// explain -json and status -json write text as it is, as every JSON of
// the contract: the subject and text of the mail explain would send, and
// the relay's last error, keep their <, > and &, from the database and
// handed over to serve alike.
func TestExplainAndStatusJSONWriteTextUnescaped(t *testing.T) {
	e := newEnv(t, true)
	e.relay.FailData(&smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "<queue> full & busy"})
	e.injectOK(message("alice@customer.example", "support@example.com", "Printer", "esc-1@customer.example", "Hello."))
	raw := message(`"Bob Doe" <bob@customer.example>`, "support@example.com", "Printer <on> fire & smoke",
		"esc-2@customer.example", "Yes, it smokes.")
	escaped := func(s string) bool {
		return strings.Contains(s, `\u003c`) || strings.Contains(s, `\u003e`) || strings.Contains(s, `\u0026`)
	}
	explain := func(how string) {
		t.Helper()
		r := e.run(raw, "explain", "-json")
		if r.code != 0 || escaped(r.stdout) || !strings.Contains(r.stdout, `"subject": "[HS-`) ||
			!strings.Contains(r.stdout, `    Printer <on> fire & smoke\n`) {
			t.Errorf("explain -json %s: exit %d, <, > and & escaped or missing\n%s%s", how, r.code, r.stdout, r.stderr)
		}
	}
	explain("with the database closed")
	e.serve()
	explain("handed over to serve")
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if strings.Contains(string(e.get("/api/status")), "full & busy") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET /api/status: no relay error within 10s\n%s", e.get("/api/status"))
		}
	}
	r := e.run(nil, "status", "-json")
	if r.code != 0 || escaped(r.stdout) || !strings.Contains(r.stdout, "<queue> full & busy") {
		t.Errorf("status -json: exit %d, the relay's error escaped or missing\n%s%s", r.code, r.stdout, r.stderr)
	}
}
