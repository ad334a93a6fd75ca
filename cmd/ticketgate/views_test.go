package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"ticketgate/rules"
	"ticketgate/store"
	"ticketgate/store/boltdb"
)

// putDesk writes six tickets straight into the database, HS-000001
// oldest, a minute apart:
//
//	id  status    assignee         requester             priority  SLA due  message
//	1   new       -                ann@customer.example  medium    +5h      "the toner cartridge is smoking"
//	2   open      ana@example.com  bob@customer.example  high      +2h      "please send the invoice"
//	3   waiting   bo@example.com   ann@customer.example  critical  +9h      -
//	4   resolved  ana@example.com  cy@customer.example   low       -        -
//	5   closed    -                ann@customer.example  medium    -        -
//	6   open      -                dee@customer.example  high      +1h      "toner again" (a note)
func (e *env) putDesk() {
	e.t.Helper()
	st, err := boltdb.Open(filepath.Join(e.dir, "data", "tickets.db"), boltdb.Options{}, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	defer st.Close()
	base := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	h := func(n int) time.Time { return base.Add(time.Duration(n) * time.Hour) }
	sla := func(due time.Time) *rules.SLA {
		return &rules.SLA{FirstResponseDue: due, ResolutionDue: due.Add(24 * time.Hour)}
	}
	tks := []*store.Ticket{
		{Subject: "Printer on fire", Status: rules.StatusNew, Requester: "ann@customer.example", Priority: rules.PriorityMedium, SLA: sla(h(5))},
		{Subject: "Invoice copy", Status: rules.StatusOpen, Assignee: "ana@example.com", Requester: "bob@customer.example", Priority: rules.PriorityHigh, SLA: sla(h(2))},
		{Subject: "VPN down", Status: rules.StatusWaiting, Assignee: "bo@example.com", Requester: "ann@customer.example", Priority: rules.PriorityCritical, SLA: sla(h(9))},
		{Subject: "Password reset", Status: rules.StatusResolved, Assignee: "ana@example.com", Requester: "cy@customer.example", Priority: rules.PriorityLow},
		{Subject: "Refund", Status: rules.StatusClosed, Requester: "ann@customer.example", Priority: rules.PriorityMedium},
		{Subject: "Monitor flickers", Status: rules.StatusOpen, Requester: "dee@customer.example", Priority: rules.PriorityHigh, SLA: sla(h(1))},
	}
	msgs := map[int]store.Message{
		1: {MessageID: "v1@customer.example", Direction: "in", Kind: "customer", From: "ann@customer.example", Subject: "Printer on fire",
			Text: "The toner cartridge is smoking."},
		2: {MessageID: "v2@customer.example", Direction: "in", Kind: "customer", From: "bob@customer.example", Subject: "Invoice copy",
			Text: "Please send the invoice."},
		6: {MessageID: "v6@example.com", Direction: "in", Kind: "note", From: "ana@example.com", Subject: "Note", Text: "Toner again?"},
	}
	err = st.UpdateNow(context.Background(), func(tx store.Tx) error {
		for i, tk := range tks {
			tk.ID = fmt.Sprintf("HS-%06d", i+1)
			tk.Queue, tk.CC = "support", []string{}
			tk.CreatedAt = base.Add(time.Duration(i) * time.Minute)
			tk.UpdatedAt = tk.CreatedAt
			if i == 1 {
				tk.Queue = "billing"
			}
			if err := tx.PutTicket(tk); err != nil {
				return err
			}
			if m, ok := msgs[i+1]; ok {
				if err := tx.AddMessage(tk.ID, &m); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		e.t.Fatal(err)
	}
}

// listCLI runs "tickets -json" with args and returns the ids it listed
// (numbers only) and the next cursor.
func (e *env) listCLI(args ...string) (string, string) {
	e.t.Helper()
	r := e.run(nil, "tickets", append([]string{"-json"}, args...)...)
	if r.code != 0 {
		e.t.Fatalf("tickets -json %v: exit %d\n%s", args, r.code, r.stderr)
	}
	var next string
	for _, line := range strings.Split(r.stderr, "\n") {
		if c, ok := strings.CutPrefix(line, "next: "); ok {
			next = c
		}
	}
	return shortIDs(e.t, []byte(r.stdout)), next
}

// listAPI is GET /api/tickets?query on the running serve.
func (e *env) listAPI(query string) (ids, next string) {
	e.t.Helper()
	resp, err := e.apiGet("/api/tickets?" + query)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		e.t.Fatalf("GET /api/tickets?%s: %s\n%s", query, resp.Status, b)
	}
	return shortIDs(e.t, b), resp.Header.Get(headerNextCursor)
}

func shortIDs(t *testing.T, b []byte) string {
	t.Helper()
	var list []struct{ ID string }
	if err := json.Unmarshal(b, &list); err != nil {
		t.Fatalf("not a list of tickets: %v\n%s", err, b)
	}
	var ids []string
	for _, x := range list {
		ids = append(ids, strings.TrimLeft(strings.TrimPrefix(x.ID, "HS-"), "0"))
	}
	return "[" + strings.Join(ids, " ") + "]"
}

// The views, filters, search and sort orders list the same tickets from
// the command line (reading the database, and handing over to a running
// serve) and from GET /api/tickets, under the same names.
func TestTicketViewsFiltersAndSearch(t *testing.T) {
	e := newEnv(t, true)
	e.putDesk()
	cases := []struct {
		args []string // flags of "tickets"; the API takes them as parameters
		want string
	}{
		{nil, "[1 2 3 4 5 6]"}, // oldest first: the order they were submitted
		{[]string{"-view", "new"}, "[1 6]"},
		{[]string{"-view", "active"}, "[2 3]"},
		{[]string{"-view", "completed"}, "[4 5]"},
		{[]string{"-view", "mine", "-as", "ana@example.com"}, "[2]"},
		{[]string{"-view", "mine", "-as", "Bo@Example.com"}, "[3]"},
		{[]string{"-requester", "ann@customer.example"}, "[1 3 5]"},
		{[]string{"-requester", "ann@customer.example", "-view", "new"}, "[1]"},
		{[]string{"-assignee", "ana@example.com"}, "[2 4]"},
		{[]string{"-assignee", "none"}, "[1 5 6]"},
		{[]string{"-queue", "billing"}, "[2]"},
		{[]string{"-status", "open"}, "[2 6]"},
		{[]string{"-status", "open", "-view", "new"}, "[6]"},
		{[]string{"-q", "smoking"}, "[1]"},         // a word of a message body only
		{[]string{"-q", "TONER"}, "[1 6]"},         // a customer's message and a note
		{[]string{"-q", "toner cartridge"}, "[1]"}, // every word
		{[]string{"-q", "printer"}, "[1]"},         // the subject
		{[]string{"-q", "ann@customer.example"}, "[1 3 5]"},
		{[]string{"-q", "toner", "-view", "new", "-status", "open"}, "[6]"},
		{[]string{"-sort", "priority"}, "[3 2 6 1 5 4]"},
		{[]string{"-sort", "due"}, "[6 2 1 3 4 5]"},
		{[]string{"-sort", "-created"}, "[6 5 4 3 2 1]"},
		{[]string{"-view", "new", "-sort", "-priority"}, "[1 6]"},
	}
	query := func(args []string) string {
		var q []string
		for i := 0; i+1 < len(args); i += 2 {
			q = append(q, strings.TrimPrefix(args[i], "-")+"="+strings.ReplaceAll(args[i+1], " ", "+"))
		}
		return strings.Join(q, "&")
	}
	for _, c := range cases {
		if got, _ := e.listCLI(c.args...); got != c.want {
			t.Errorf("tickets %v: %s, want %s", c.args, got, c.want)
		}
	}
	if r := e.run(nil, "tickets", "-view", "mine"); r.code != 64 || !strings.Contains(r.stderr, "-as") {
		t.Errorf("-view mine without -as: exit %d, %q; want 64 and a word about -as", r.code, r.stderr)
	}
	if r := e.run(nil, "tickets", "-view", "open"); r.code != 64 || !strings.Contains(r.stderr, "view") {
		t.Errorf("-view open: exit %d, %q; want 64", r.code, r.stderr)
	}

	e.serve()
	for _, c := range cases {
		if got, _ := e.listAPI(query(c.args)); got != c.want {
			t.Errorf("GET /api/tickets?%s: %s, want %s", query(c.args), got, c.want)
		}
	}
	for _, c := range cases[:6] {
		if got, _ := e.listCLI(c.args...); got != c.want {
			t.Errorf("tickets %v via handover: %s, want %s", c.args, got, c.want)
		}
	}
	// A parameter the API does not take is refused, never ignored.
	for _, q := range []string{"assigned=ana@example.com", "view=new&views=active", "status=open&status=new", "view=mine",
		"sort=size", "limit=-1", "cursor=nonsense"} {
		resp, err := e.apiGet("/api/tickets?" + q)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), `"error"`) {
			t.Errorf("GET /api/tickets?%s: %s %s, want 400 with an error", q, resp.Status, b)
		}
	}
}

// Paging through a view, in the command line and the API: each ticket
// of the view once, in the view's order.
func TestTicketViewPages(t *testing.T) {
	e := newEnv(t, true)
	e.putDesk()
	walk := func(what string, page func(cursor string) (string, string)) {
		t.Helper()
		var got []string
		cursor := ""
		for range 10 {
			ids, next := page(cursor)
			got = append(got, ids)
			if next == "" {
				break
			}
			cursor = next
		}
		if g := strings.Join(got, ""); g != "[3 2][6 1][5 4]" {
			t.Errorf("%s: pages %s, want [3 2][6 1][5 4]", what, g)
		}
	}
	cli := func(cursor string) (string, string) {
		args := []string{"-sort", "priority", "-limit", "2"}
		if cursor != "" {
			args = append(args, "-cursor", cursor)
		}
		return e.listCLI(args...)
	}
	walk("tickets -sort priority -limit 2", cli)
	active := func(cursor string) (string, string) {
		return e.listCLI("-view", "active", "-limit", "1", "-cursor", cursor)
	}
	if p1, next := active(""); p1 != "[2]" || next == "" {
		t.Errorf("first page of the active view: %s, next %q", p1, next)
	} else if p2, next := active(next); p2 != "[3]" || next != "" {
		t.Errorf("second page of the active view: %s, next %q; want [3] and the end", p2, next)
	}
	e.serve()
	walk("GET /api/tickets?sort=priority&limit=2", func(cursor string) (string, string) {
		return e.listAPI("sort=priority&limit=2&cursor=" + cursor)
	})
	walk("tickets -sort priority -limit 2 via handover", cli)
}
