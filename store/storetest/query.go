package storetest

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"ticketgate/rules"
	"ticketgate/store"
)

var q0 = time.Date(2026, 4, 6, 8, 0, 0, 0, time.UTC)

// desk writes seven tickets, HS-000001 oldest, a minute apart, as a
// support desk might hold them, and messages on some of them.
//
//	id  status    assignee          requester                  queue    priority  updated  SLA due
//	1   new       -                 ann@customer.example (Ann) support  medium    +5h      +10h (first response)
//	2   open      ana@example.com   bob@customer.example       billing  high      +1h      +8h (resolution)
//	3   waiting   Bo@Example.com    ann@customer.example       support  critical  +7h      +9h (first response)
//	4   resolved  ana@example.com   cy@customer.example        support  low       +3h      none (resolved)
//	5   closed    -                 ann@customer.example       billing  medium    +2h      none
//	6   on_hold   -                 dee@customer.example       support  high      +6h      none
//	7   open      ana@example.com   ann@customer.example       support  critical  +4h      +2h (resolution)
func desk(t *testing.T, s store.Store) {
	t.Helper()
	at := func(h int) time.Time { return q0.Add(time.Duration(h) * time.Hour) }
	responded := at(1)
	tks := []*store.Ticket{
		{Subject: "Printer on fire", Status: rules.StatusNew, Requester: "ann@customer.example", RequesterName: "Ann Smith",
			Queue: "support", Priority: rules.PriorityMedium, UpdatedAt: at(5),
			SLA: &rules.SLA{FirstResponseDue: at(10), ResolutionDue: at(30)}},
		{Subject: "Invoice copy", Status: rules.StatusOpen, Assignee: "ana@example.com", Requester: "bob@customer.example",
			Queue: "billing", Priority: rules.PriorityHigh, UpdatedAt: at(1),
			SLA: &rules.SLA{FirstResponseDue: at(3), FirstResponseAt: &responded, ResolutionDue: at(8)}},
		{Subject: "VPN down", Status: rules.StatusWaiting, Assignee: "Bo@Example.com", Requester: "ann@customer.example",
			Queue: "support", Priority: rules.PriorityCritical, UpdatedAt: at(7),
			SLA: &rules.SLA{FirstResponseDue: at(9), ResolutionDue: at(12)}},
		{Subject: "Password reset", Status: rules.StatusResolved, Assignee: "ana@example.com", Requester: "cy@customer.example",
			Queue: "support", Priority: rules.PriorityLow, UpdatedAt: at(3),
			SLA: &rules.SLA{FirstResponseDue: at(1), ResolutionDue: at(4), ResolvedAt: at(3)}},
		{Subject: "Refund", Status: rules.StatusClosed, Requester: "ann@customer.example",
			Queue: "billing", Priority: rules.PriorityMedium, UpdatedAt: at(2)},
		{Subject: "Monitor flickers", Status: rules.StatusOnHold, Requester: "dee@customer.example",
			Queue: "support", Priority: rules.PriorityHigh, UpdatedAt: at(6)},
		{Subject: "Toner low", Status: rules.StatusOpen, Assignee: "ana@example.com", Requester: "ann@customer.example",
			Queue: "support", Priority: rules.PriorityCritical, UpdatedAt: at(4),
			SLA: &rules.SLA{FirstResponseDue: at(1), FirstResponseAt: &responded, ResolutionDue: at(2)}},
	}
	msgs := map[int][]store.Message{
		1: {{MessageID: "q1@x", Direction: "in", Kind: "customer", Subject: "help", Text: "The toner cartridge is SMOKING.\nWhat now?"}},
		2: {{MessageID: "q2@x", Direction: "in", Kind: "customer", Subject: "Invoice copy", Text: "Please send the invoice for March."},
			{MessageID: "q2a@x", Direction: "out", Kind: "auto", Subject: "[HS-000002] Invoice copy", Text: "Thank you for contacting us."}},
		5: {{MessageID: "q5@x", Direction: "out", Kind: "survey", Subject: "[HS-000005] How did we do? Refund", Text: "How satisfied were you with our help?"}},
		7: {{MessageID: "q7@x", Direction: "in", Kind: "note", Subject: "Note", Text: "Customer called about the toner (again)."}},
	}
	update(t, s, func(tx store.Tx) error {
		for i, tk := range tks {
			tk.ID = fmt.Sprintf("HS-%06d", i+1)
			tk.CreatedAt = q0.Add(time.Duration(i) * time.Minute)
			for _, m := range msgs[i+1] {
				if err := tx.AddMessage(tk.ID, &m); err != nil {
					return err
				}
			}
			if err := tx.PutTicket(tk); err != nil {
				return err
			}
		}
		return nil
	})
}

// list returns the ids (numbers only: "1" for HS-000001) of every ticket
// f lists, in its order, paging through pages of f.Limit.
func list(t *testing.T, s store.Store, f store.Filter) string {
	t.Helper()
	ids, _ := pages(t, s, f)
	for i, id := range ids {
		ids[i] = strings.TrimLeft(strings.TrimPrefix(id, "HS-"), "0")
	}
	return "[" + strings.Join(ids, " ") + "]"
}

func testViewsListTheirTickets(t *testing.T, b Backend) {
	h := b.openT(t)
	desk(t, h.s)
	for _, c := range []struct {
		f    store.Filter
		want string
	}{
		{store.Filter{Sort: store.SortCreated}, "[1 2 3 4 5 6 7]"},
		{store.Filter{View: store.ViewNew, Sort: store.SortCreated}, "[1 6]"},
		{store.Filter{View: store.ViewActive, Sort: store.SortCreated}, "[2 3 7]"},
		{store.Filter{View: store.ViewCompleted, Sort: store.SortCreated}, "[4 5]"},
		{store.Filter{View: store.ViewMine, Operator: "ana@example.com", Sort: store.SortCreated}, "[2 7]"},
		{store.Filter{View: store.ViewMine, Operator: "ANA@example.com", Sort: store.SortCreated}, "[2 7]"},
		{store.Filter{View: store.ViewMine, Operator: "bo@example.com", Sort: store.SortCreated}, "[3]"},
		{store.Filter{View: store.ViewMine, Operator: "nobody@example.com", Sort: store.SortCreated}, "[]"},
		// The zero Filter: every ticket, newest first.
		{store.Filter{}, "[7 6 5 4 3 2 1]"},
		{store.Filter{View: store.ViewNew}, "[6 1]"},
	} {
		if got := list(t, h.s, c.f); got != c.want {
			t.Errorf("%+v: %s, want %s", c.f, got, c.want)
		}
	}
	// Views follow every change to a ticket.
	update(t, h.s, func(tx store.Tx) error {
		tk, err := tx.Ticket("HS-000001")
		if err != nil {
			return err
		}
		tk.Assignee = "ana@example.com"
		if err := tx.PutTicket(tk); err != nil {
			return err
		}
		tk, err = tx.Ticket("HS-000007")
		if err != nil {
			return err
		}
		tk.Status = rules.StatusResolved
		return tx.PutTicket(tk)
	})
	for v, want := range map[store.View]string{store.ViewNew: "[6]", store.ViewActive: "[1 2 3]", store.ViewCompleted: "[4 5 7]",
		store.ViewMine: "[1 2]"} {
		if got := list(t, h.s, store.Filter{View: v, Operator: "ana@example.com", Sort: store.SortCreated}); got != want {
			t.Errorf("%s after HS-000001 was assigned and HS-000007 resolved: %s, want %s", v, got, want)
		}
	}
	view(t, h.s, func(tx store.Tx) error {
		for _, f := range []store.Filter{{View: store.ViewMine}, {View: "unknown"}, {Sort: "size"}} {
			if _, _, err := tx.Tickets(f); !errors.Is(err, store.ErrBadFilter) {
				t.Errorf("%+v: %v, want store.ErrBadFilter", f, err)
			}
		}
		return nil
	})
}

func testFiltersCombine(t *testing.T, b Backend) {
	h := b.openT(t)
	desk(t, h.s)
	for _, c := range []struct {
		f    store.Filter
		want string
	}{
		{store.Filter{Requester: "ann@customer.example"}, "[1 3 5 7]"},
		{store.Filter{Requester: "ANN@Customer.Example"}, "[1 3 5 7]"},
		{store.Filter{Requester: "ann@customer.example", View: store.ViewNew}, "[1]"},
		{store.Filter{Requester: "ann@customer"}, "[]"},
		{store.Filter{Assignee: "ana@example.com"}, "[2 4 7]"},
		{store.Filter{Assignee: "bo@example.com"}, "[3]"},
		{store.Filter{Unassigned: true}, "[1 5 6]"},
		{store.Filter{Unassigned: true, View: store.ViewCompleted}, "[5]"},
		{store.Filter{Queue: "billing"}, "[2 5]"},
		{store.Filter{Queue: "support", View: store.ViewActive}, "[3 7]"},
		{store.Filter{Status: rules.StatusOpen}, "[2 7]"},
		{store.Filter{Status: rules.StatusOpen, View: store.ViewCompleted}, "[]"},
		{store.Filter{Status: rules.StatusOpen, Assignee: "ana@example.com", Queue: "support"}, "[7]"},
		{store.Filter{Status: rules.StatusOpen, Limit: 1}, "[2 7]"},
	} {
		c.f.Sort = store.SortCreated
		if got := list(t, h.s, c.f); got != c.want {
			t.Errorf("%+v: %s, want %s", c.f, got, c.want)
		}
	}
}

func testSearchFindsWords(t *testing.T, b Backend) {
	h := b.openT(t)
	desk(t, h.s)
	search := func(text string, v store.View) string {
		t.Helper()
		return list(t, h.s, store.Filter{Text: text, View: v, Sort: store.SortCreated})
	}
	for _, c := range []struct {
		text string
		view store.View
		want string
	}{
		{"toner", "", "[1 7]"},         // a customer's message and a note; 7's subject too
		{"smoking", "", "[1]"},         // only in a message body, in capitals there
		{"TONER Cartridge", "", "[1]"}, // every word, in any case
		{"toner march", "", "[]"},      // on different tickets
		{"printer", "", "[1]"},         // the subject
		{"march", "", "[2]"},           //
		{"invoice", "", "[2]"},         // subject and message
		{"tone", "", "[]"},             // whole words only
		{"contacting", "", "[]"},       // automatic replies are not searched
		{"satisfied", "", "[]"},        // nor the desk's other mail from its templates
		{"refund", "", "[5]"},          // the subject stays found
		{"ann", "", "[1 3 5 7]"},       // the requester's address
		{"smith", "", "[1]"},           // the requester's name
		{"ann@customer.example", "", "[1 3 5 7]"},
		{"toner", store.ViewNew, "[1]"}, // with a view
		{"?!", "", "[1 2 3 4 5 6 7]"},   // no words: no condition
		{"again)", store.ViewActive, "[7]"},
	} {
		if got := search(c.text, c.view); got != c.want {
			t.Errorf("search %q (view %q): %s, want %s", c.text, c.view, got, c.want)
		}
	}
	// Changes to the subject and the requester are searched as they are
	// now; words a message has stay found.
	update(t, h.s, func(tx store.Tx) error {
		for id, change := range map[string]func(*store.Ticket){
			"HS-000001": func(tk *store.Ticket) { tk.Subject = "Paper jam" },
			"HS-000007": func(tk *store.Ticket) { tk.Subject = "Supplies" },
			"HS-000006": func(tk *store.Ticket) { tk.Requester, tk.RequesterName = "eve@other.example", "Eve" },
		} {
			tk, err := tx.Ticket(id)
			if err != nil {
				return err
			}
			change(tk)
			if err := tx.PutTicket(tk); err != nil {
				return err
			}
		}
		return tx.AddMessage("HS-000004", &store.Message{MessageID: "q4@x", Direction: "in", Kind: "customer",
			Text: "Thanks, the printer works again."})
	})
	for text, want := range map[string]string{"printer": "[4]", "jam": "[1]", "fire": "[]", "toner": "[1 7]", "low": "[]",
		"supplies": "[7]", "dee": "[]", "eve": "[6]", "other": "[6]", "customer": "[1 2 3 4 5 7]"} {
		if got := search(text, ""); got != want {
			t.Errorf("search %q after the changes: %s, want %s", text, got, want)
		}
	}
	if b.Reopen != nil {
		b.reopen(t, h)
		if got := search("smoking", ""); got != "[1]" {
			t.Errorf("search after reopening: %s, want [1]", got)
		}
	}
}

func testSortOrders(t *testing.T, b Backend) {
	h := b.openT(t)
	desk(t, h.s)
	for _, c := range []struct {
		sort    store.Sort
		reverse bool
		want    string
	}{
		{store.SortNewest, false, "[7 6 5 4 3 2 1]"},
		{store.SortCreated, false, "[1 2 3 4 5 6 7]"},
		{store.SortCreated, true, "[7 6 5 4 3 2 1]"},
		{store.SortUpdated, false, "[2 5 4 7 1 6 3]"},
		{store.SortUpdated, true, "[3 6 1 7 4 5 2]"},
		{store.SortPriority, false, "[3 7 2 6 1 5 4]"},
		{store.SortPriority, true, "[4 5 1 6 2 7 3]"},
		{store.SortDue, false, "[7 2 3 1 4 5 6]"},
	} {
		for _, limit := range []int{0, 1, 3} {
			f := store.Filter{Sort: c.sort, Reverse: c.reverse, Limit: limit}
			if got := list(t, h.s, f); got != c.want {
				t.Errorf("sort %q reverse %v, pages of %d: %s, want %s", c.sort, c.reverse, limit, got, c.want)
			}
		}
	}
	if got := list(t, h.s, store.Filter{View: store.ViewActive, Sort: store.SortDue}); got != "[7 2 3]" {
		t.Errorf("active by due: %s", got)
	}
	// A cursor is only good for the order it came from.
	view(t, h.s, func(tx store.Tx) error {
		_, next, err := tx.Tickets(store.Filter{Sort: store.SortUpdated, Limit: 2})
		if err != nil || next == "" {
			return fmt.Errorf("first page by update: %q %v", next, err)
		}
		for _, f := range []store.Filter{{Sort: store.SortPriority, After: next}, {Sort: store.SortDue, After: "zz"},
			{View: store.ViewNew, After: "00"}} {
			if _, _, err := tx.Tickets(f); !errors.Is(err, store.ErrBadCursor) {
				t.Errorf("%+v: %v, want store.ErrBadCursor", f, err)
			}
		}
		return nil
	})
}

// Paging through a view gives each of its tickets once, in order, for
// every sort and page size, and a ticket changed between two pages moves
// without making another one appear twice or go missing.
func testViewPagesEachTicketOnce(t *testing.T, b Backend) {
	h := b.openT(t)
	const n = 90
	rng := rand.New(rand.NewPCG(1, 2))
	prios := []rules.Priority{rules.PriorityLow, rules.PriorityMedium, rules.PriorityHigh, rules.PriorityCritical}
	statuses := []rules.Status{rules.StatusNew, rules.StatusOpen, rules.StatusWaiting, rules.StatusOnHold, rules.StatusResolved, rules.StatusClosed}
	var all []*store.Ticket
	update(t, h.s, func(tx store.Tx) error {
		for i := range n {
			tk := &store.Ticket{ID: fmt.Sprintf("HS-%06d", i), Subject: "ticket", Status: statuses[rng.IntN(len(statuses))],
				Priority: prios[rng.IntN(len(prios))], Requester: "x@customer.example",
				CreatedAt: q0.Add(time.Duration(i) * time.Minute), UpdatedAt: q0.Add(time.Duration(rng.IntN(40)) * time.Hour)}
			if rng.IntN(2) == 0 {
				tk.Assignee = "ana@example.com"
			}
			if rng.IntN(3) > 0 {
				tk.SLA = &rules.SLA{FirstResponseDue: q0.Add(time.Duration(rng.IntN(20)) * time.Hour), ResolutionDue: q0.Add(48 * time.Hour)}
			}
			all = append(all, tk)
			if err := tx.PutTicket(tk); err != nil {
				return err
			}
		}
		return nil
	})
	// The expected order, worked out here from the records.
	less := map[store.Sort]func(a, b *store.Ticket) int{
		store.SortCreated: func(a, b *store.Ticket) int { return a.CreatedAt.Compare(b.CreatedAt) },
		store.SortUpdated: func(a, b *store.Ticket) int { return a.UpdatedAt.Compare(b.UpdatedAt) },
		store.SortPriority: func(a, b *store.Ticket) int {
			if d := b.Priority.Rank() - a.Priority.Rank(); d != 0 {
				return d
			}
			return a.CreatedAt.Compare(b.CreatedAt)
		},
		store.SortDue: func(a, b *store.Ticket) int {
			da, db := a.SLADue(), b.SLADue()
			switch {
			case da.IsZero() != db.IsZero():
				if da.IsZero() {
					return 1
				}
				return -1
			case !da.Equal(db):
				return da.Compare(db)
			}
			return a.CreatedAt.Compare(b.CreatedAt)
		},
	}
	for _, v := range []store.View{store.ViewAll, store.ViewNew, store.ViewActive, store.ViewCompleted} {
		for sort, cmp := range less {
			var want []string
			sorted := slices.Clone(all)
			slices.SortStableFunc(sorted, func(a, b *store.Ticket) int {
				if c := cmp(a, b); c != 0 {
					return c
				}
				return strings.Compare(a.ID, b.ID)
			})
			for _, tk := range sorted {
				if v.Lists(tk, "") {
					want = append(want, tk.ID)
				}
			}
			for _, size := range []int{0, 1, 7, 25} {
				got, _ := pages(t, h.s, store.Filter{View: v, Sort: sort, Limit: size})
				if !slices.Equal(got, want) {
					t.Errorf("view %q by %s, pages of %d:\n got %v\nwant %v", v, sort, size, got, want)
				}
				got, _ = pages(t, h.s, store.Filter{View: v, Sort: sort, Reverse: true, Limit: size})
				if slices.Reverse(got); !slices.Equal(got, want) {
					t.Errorf("view %q by %s reversed, pages of %d: %v", v, sort, size, got)
				}
			}
		}
	}

	// Between two pages of the new view by update, one ticket of the
	// first page and one of the rest are assigned, and a new ticket is
	// updated last.
	f := store.Filter{View: store.ViewNew, Sort: store.SortUpdated, Limit: 10}
	var first []*store.Ticket
	var next string
	view(t, h.s, func(tx store.Tx) error {
		var err error
		first, next, err = tx.Tickets(f)
		return err
	})
	before, _ := pages(t, h.s, store.Filter{View: store.ViewNew, Sort: store.SortUpdated})
	if len(first) != 10 || next == "" || len(before) < 15 {
		t.Fatalf("first page of %d of %d, next %q", len(first), len(before), next)
	}
	moved := before[12]
	update(t, h.s, func(tx store.Tx) error {
		for _, id := range []string{first[3].ID, moved} {
			tk, err := tx.Ticket(id)
			if err != nil {
				return err
			}
			tk.Assignee = "bo@example.com"
			if err := tx.PutTicket(tk); err != nil {
				return err
			}
		}
		return tx.PutTicket(&store.Ticket{ID: "HS-999999", Status: rules.StatusNew, CreatedAt: q0, UpdatedAt: q0.Add(1000 * time.Hour)})
	})
	f.After = next
	rest, _ := pages(t, h.s, f)
	want := slices.DeleteFunc(slices.Clone(before[10:]), func(id string) bool { return id == moved })
	want = append(want, "HS-999999")
	if !slices.Equal(rest, want) {
		t.Errorf("the pages after the changes:\n got %v\nwant %v", rest, want)
	}
}
