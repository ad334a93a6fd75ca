package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"ticketgate/rules"
	"ticketgate/store"
	"ticketgate/store/boltdb"
)

// checkSummaryJSON checks one ticket of a listing: the contract's fields
// without messages and events, nothing internal, times in UTC.
func checkSummaryJSON(t *testing.T, what string, b []byte) {
	t.Helper()
	if strings.Contains(string(b), `\u003e`) || !strings.Contains(string(b), "Printer <on> fire") {
		t.Errorf("%s: escaped or missing subject:\n%s", what, b)
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
	var want []string
	for _, k := range ticketKeys {
		if k != "messages" && k != "events" {
			want = append(want, k)
		}
	}
	wantKeys(t, what, tk, want)
	if strings.Contains(string(b), "you wrote") {
		t.Errorf("%s: a listing carries message text:\n%s", what, b)
	}
	var all any
	json.Unmarshal(b, &all)
	walkTimes(t, what, all)
}

// A listing is summaries: no messages, no events, whether read from the
// database or from a running serve.
func TestTicketListingHasNoMessages(t *testing.T) {
	e := newEnv(t, true)
	raw := message(`"Alice Doe" <alice@customer.example>`, "support@example.com", "Printer <on> fire",
		"list-1@customer.example", "> you wrote: is it on fire?\nYes.")
	id := e.injectOK(raw, "-to", "support@example.com", "-from", "alice@customer.example")
	e.fillTicket(id) // every optional field set, so each must be listed
	if tk := e.show(id); len(tk.Messages) == 0 || len(tk.Events) == 0 {
		t.Fatalf("show: %d messages, %d events; want the whole ticket", len(tk.Messages), len(tk.Events))
	}
	check := func(what string) {
		r := e.run(nil, "tickets", "-json")
		var list []json.RawMessage
		if err := json.Unmarshal([]byte(r.stdout), &list); r.code != 0 || err != nil || len(list) != 1 {
			t.Fatalf("tickets -json %s: exit %d, %v\n%s%s", what, r.code, err, r.stdout, r.stderr)
		}
		checkSummaryJSON(t, "tickets -json "+what, list[0])
	}
	check("from the database")
	e.serve()
	check("via handover")
	var list []json.RawMessage
	if err := json.Unmarshal(e.get("/api/tickets?status=new"), &list); err != nil || len(list) != 1 {
		t.Fatalf("GET /api/tickets?status=new: %v, %d tickets", err, len(list))
	}
	checkSummaryJSON(t, "GET /api/tickets", list[0])
}

// putTickets writes n tickets straight into the database, HS-000000
// oldest, one minute apart, and returns their ids newest first.
func (e *env) putTickets(n int) []string {
	e.t.Helper()
	st, err := boltdb.Open(filepath.Join(e.dir, "data", "tickets.db"), boltdb.Options{}, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	defer st.Close()
	base := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	var ids []string
	err = st.UpdateNow(context.Background(), func(tx store.Tx) error {
		for i := range n {
			id := fmt.Sprintf("HS-%06d", i)
			at := base.Add(time.Duration(i) * time.Minute)
			if err := tx.PutTicket(&store.Ticket{ID: id, Subject: "ticket " + id, Status: rules.StatusOpen,
				Priority: rules.PriorityMedium, Queue: "support", Requester: "someone@customer.example",
				CreatedAt: at, UpdatedAt: at}); err != nil {
				return err
			}
			ids = append(ids, id)
		}
		return nil
	})
	if err != nil {
		e.t.Fatal(err)
	}
	slices.Reverse(ids)
	return ids
}

// Paging through 120 tickets 50 at a time gives each ticket exactly once,
// oldest first, in three pages; the cursor is the "next:" line (stderr
// with -json, the table's last line without) or the X-Next-Cursor header.
func TestTicketsPagesEachTicketOnceInOrder(t *testing.T) {
	e := newEnv(t, true)
	want := e.putTickets(120)
	slices.Reverse(want)

	pageJSON := func(cursor string) (ids []string, next string) {
		t.Helper()
		args := []string{"-json", "-limit", "50"}
		if cursor != "" {
			args = append(args, "-cursor", cursor)
		}
		r := e.run(nil, "tickets", args...)
		var list []struct{ ID string }
		if err := json.Unmarshal([]byte(r.stdout), &list); r.code != 0 || err != nil {
			t.Fatalf("tickets %v: exit %d, %v\n%s%s", args, r.code, err, r.stdout, r.stderr)
		}
		for _, x := range list {
			ids = append(ids, x.ID)
		}
		for _, line := range strings.Split(r.stderr, "\n") {
			if c, ok := strings.CutPrefix(line, "next: "); ok {
				next = c
			}
		}
		return ids, next
	}
	pageText := func(cursor string) (ids []string, next string) {
		t.Helper()
		args := []string{"-limit", "50"}
		if cursor != "" {
			args = append(args, "-cursor", cursor)
		}
		r := e.run(nil, "tickets", args...)
		if r.code != 0 {
			t.Fatalf("tickets %v: exit %d\n%s", args, r.code, r.stderr)
		}
		lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
		if c, ok := strings.CutPrefix(lines[len(lines)-1], "next: "); ok {
			next, lines = c, lines[:len(lines)-1]
		}
		for _, l := range lines[1:] {
			ids = append(ids, strings.Fields(l)[0])
		}
		return ids, next
	}
	pageAPI := func(cursor string) (ids []string, next string) {
		t.Helper()
		resp, err := e.apiGet("/api/tickets?limit=50&cursor=" + cursor)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var list []struct{ ID string }
		if err := json.NewDecoder(resp.Body).Decode(&list); err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /api/tickets: %s %v", resp.Status, err)
		}
		for _, x := range list {
			ids = append(ids, x.ID)
		}
		return ids, resp.Header.Get("X-Next-Cursor")
	}
	walk := func(what string, page func(string) ([]string, string)) {
		t.Helper()
		var got []string
		var sizes []int
		cursor := ""
		for range 5 {
			ids, next := page(cursor)
			got = append(got, ids...)
			sizes = append(sizes, len(ids))
			if next == "" {
				break
			}
			cursor = next
		}
		if fmt.Sprint(sizes) != "[50 50 20]" || !slices.Equal(got, want) {
			t.Errorf("%s: pages of %v, %d tickets; want [50 50 20], each of the 120 once, oldest first\ngot %v", what, sizes, len(got), got)
		}
	}
	walk("tickets -json", pageJSON)
	walk("tickets", pageText)
	if r := e.run(nil, "tickets", "-json"); strings.Count(r.stdout, `"id"`) != 120 || strings.Contains(r.stderr, "next:") {
		t.Errorf("tickets -json without -limit: %d tickets, stderr %q; want all 120 and no cursor", strings.Count(r.stdout, `"id"`), r.stderr)
	}
	if r := e.run(nil, "tickets", "-limit", "50", "-cursor", "nonsense"); r.code != 64 || !strings.Contains(r.stderr, "cursor") {
		t.Errorf("a bad cursor: exit %d, %q; want 64 and a message about the cursor", r.code, r.stderr)
	}

	e.serve()
	walk("GET /api/tickets", pageAPI)
	walk("tickets -json via handover", pageJSON)
	if r := e.run(nil, "tickets", "-limit", "50", "-cursor", "nonsense"); r.code != 64 || !strings.Contains(r.stderr, "cursor") {
		t.Errorf("a bad cursor via handover: exit %d, %q; want 64 and a message about the cursor", r.code, r.stderr)
	}
	resp, err := e.apiGet("/api/tickets?limit=-1")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("GET /api/tickets?limit=-1: %s, want 400", resp.Status)
	}
}

// BenchmarkTicketsAPIPage is GET /api/tickets?limit=50 with 100,000
// tickets (each with a message): the first page, and the page the first
// page's cursor leads to, through the admin handler.
func BenchmarkTicketsAPIPage(b *testing.B) {
	const total = 100000
	st, err := boltdb.Open(filepath.Join(b.TempDir(), "t.db"), boltdb.Options{}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for start := 0; start < total; start += 10000 {
		err := st.UpdateNow(context.Background(), func(tx store.Tx) error {
			for i := start; i < start+10000; i++ {
				at := base.Add(time.Duration(i) * time.Minute)
				tk := &store.Ticket{ID: fmt.Sprintf("HS-%06d", i), Subject: "a ticket of ordinary length", Status: rules.StatusOpen,
					Priority: rules.PriorityMedium, Queue: "support", Requester: "someone@customer.example", CreatedAt: at, UpdatedAt: at}
				if err := tx.PutTicket(tk); err != nil {
					return err
				}
				if err := tx.AddMessage(tk.ID, &store.Message{MessageID: tk.ID + "@x", Text: "a message body"}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	h := (&app{store: st}).adminHandler()
	get := func(query string) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", "/api/tickets?"+query, nil))
		return w
	}
	second := get("limit=50").Header().Get(headerNextCursor)
	for _, c := range []struct{ name, query, first string }{
		{"first", "limit=50", `"HS-000000"`},
		{"second", "limit=50&cursor=" + second, `"HS-000050"`},
	} {
		b.Run(c.name, func(b *testing.B) {
			var w *httptest.ResponseRecorder
			for b.Loop() {
				w = get(c.query)
			}
			body := w.Body.String()
			if w.Code != http.StatusOK || strings.Count(body, `"id"`) != 50 || !strings.Contains(body[:100], c.first) {
				b.Fatalf("%d, %d tickets, want 50 from %s:\n%.200s", w.Code, strings.Count(body, `"id"`), c.first, body)
			}
			if per := b.Elapsed() / time.Duration(b.N); per > 50*time.Millisecond {
				b.Errorf("%v a page, want < 50ms", per)
			}
		})
	}
}

// tickets refuses a filter given twice, as GET /api/tickets refuses a
// parameter given twice: "-status new -status open" must not quietly
// list the open tickets only.
func TestTicketsRefusesAFlagGivenTwice(t *testing.T) {
	e := newEnv(t, false)
	e.injectOK(message("ann@customer.example", "support@example.com", "Printer", "twice-1@customer.example", "Hello."))
	for _, args := range [][]string{{"-status", "new", "-status", "open"}, {"-limit", "1", "-limit", "2"},
		{"-q", "printer", "-q", "toner"}, {"-json", "-view", "new", "-view", "completed"}} {
		r := e.run(nil, "tickets", args...)
		name := args[len(args)-2]
		if r.code != 64 || !strings.Contains(r.stderr, name) || !strings.Contains(r.stderr, "twice") {
			t.Errorf("tickets %v: exit %d, stdout %q, stderr %q; want 64 naming %s given twice", args, r.code, r.stdout, r.stderr, name)
		}
	}
	// Once each is a listing.
	if r := e.run(nil, "tickets", "-status", "new", "-limit", "1", "-json"); r.code != 0 || !strings.Contains(r.stdout, "Printer") {
		t.Errorf("tickets -status new -limit 1: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}
