package storetest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"ticketgate/rules"
	"ticketgate/store"
)

func testCommittedTicketSurvivesReopen(t *testing.T, b Backend) {
	h := b.openT(t)
	var id string
	err := h.s.Update(bg, func(tx store.Tx) error {
		var err error
		if id, err = tx.NewTicketID("HS"); err != nil {
			return err
		}
		tk := &store.Ticket{ID: id, Subject: "hello", Status: rules.StatusNew, Priority: rules.PriorityMedium, CreatedAt: time.Now()}
		if err := tx.AddMessage(id, &store.Message{MessageID: "<m1@x>", Direction: "in", Kind: "customer", Text: "hi"}); err != nil {
			return err
		}
		if err := tx.AddEvent(id, store.Event{At: time.Now(), Type: "created"}); err != nil {
			return err
		}
		return tx.PutTicket(tk)
	})
	if err != nil {
		t.Fatal(err)
	}
	b.reopen(t, h)
	view(t, h.s, func(tx store.Tx) error {
		tk, err := tx.TicketFull(id)
		if err != nil {
			return err
		}
		if tk.Subject != "hello" || len(tk.Messages) != 1 || tk.Messages[0].Text != "hi" || len(tk.Events) != 1 {
			return fmt.Errorf("after reopen: %+v", tk)
		}
		if got, err := tx.TicketByMessageID("m1@x"); err != nil || got != id {
			return fmt.Errorf("message id index: %q %v", got, err)
		}
		return nil
	})
}

// fullTicket has every field set.
func fullTicket(id string, created time.Time) *store.Ticket {
	closed := created.Add(time.Hour)
	return &store.Ticket{ID: id, Subject: "printer <on> fire & smoke", Status: rules.StatusOpen, Priority: rules.PriorityHigh,
		Queue: "support", Route: "support@example.com", Category: "hardware", Plan: "gold",
		Requester: "ann@customer.example", RequesterName: "Ann", CC: []string{"bob@customer.example"},
		Assignee: "agent@example.com", Escalated: true, Watchers: []string{"w@example.com"}, Linked: []string{"HS-000009"},
		CreatedAt: created, UpdatedAt: created.Add(time.Minute), ClosedAt: &closed,
		LastInID: "m1@x", Thread: []string{"m1@x", "r1@y"},
		Clock:        rules.Clock{},
		Satisfaction: &store.Satisfaction{Score: 4, Comment: "good > bad", At: closed}, SurveySent: true,
		Due: created.Add(4 * time.Hour)}
}

func testTicketRecordAndFull(t *testing.T, b Backend) {
	h := b.openT(t)
	c0 := time.Date(2026, 2, 3, 4, 5, 6, 7, time.UTC)
	want := fullTicket("HS-000001", c0)
	view(t, h.s, func(tx store.Tx) error {
		if _, err := tx.Ticket("HS-000001"); !isNotFound(err) {
			return fmt.Errorf("missing ticket: %v, want ErrNotFound", err)
		}
		if _, err := tx.TicketFull("HS-000001"); !isNotFound(err) {
			return fmt.Errorf("missing full ticket: %v, want ErrNotFound", err)
		}
		return nil
	})
	update(t, h.s, func(tx store.Tx) error {
		in := *want
		in.Messages = []store.Message{{Text: "ignored"}}
		in.Events = []store.Event{{Type: "ignored"}}
		return tx.PutTicket(&in)
	})
	view(t, h.s, func(tx store.Tx) error {
		got, err := tx.Ticket("HS-000001")
		if err != nil {
			return err
		}
		if got.Messages != nil || got.Events != nil {
			return fmt.Errorf("record carries messages or events: %+v", got)
		}
		if g, w := jsonOf(got), jsonOf(want); g != w {
			return fmt.Errorf("ticket record\n got %s\nwant %s", g, w)
		}
		full, err := tx.TicketFull("HS-000001")
		if err != nil {
			return err
		}
		if full.Messages == nil || len(full.Messages) != 0 || full.Events == nil || len(full.Events) != 0 {
			return fmt.Errorf("full ticket without messages: %+v %+v", full.Messages, full.Events)
		}
		return nil
	})
}

func testPutTicketKeepsStatusIndex(t *testing.T, b Backend) {
	h := b.openT(t)
	d0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tk := &store.Ticket{ID: "HS-000001", Status: rules.StatusOpen, CreatedAt: d0}
	update(t, h.s, func(tx store.Tx) error { return tx.PutTicket(tk) })
	update(t, h.s, func(tx store.Tx) error { return tx.PutTicket(tk) }) // unchanged
	count := func(st rules.Status) int {
		var n int
		view(t, h.s, func(tx store.Tx) error {
			l, _, err := tx.Tickets(store.Filter{Status: st})
			n = len(l)
			return err
		})
		return n
	}
	if o, w, all := count(rules.StatusOpen), count(rules.StatusWaiting), count(""); o != 1 || w != 0 || all != 1 {
		t.Errorf("open %d waiting %d all %d", o, w, all)
	}
	tk.Status = rules.StatusWaiting
	update(t, h.s, func(tx store.Tx) error { return tx.PutTicket(tk) })
	if o, w, all := count(rules.StatusOpen), count(rules.StatusWaiting), count(""); o != 0 || w != 1 || all != 1 {
		t.Errorf("after status change: open %d waiting %d all %d", o, w, all)
	}
	// A changed creation time moves the ticket in the listings, not twice.
	tk.CreatedAt = d0.Add(time.Hour)
	update(t, h.s, func(tx store.Tx) error { return tx.PutTicket(tk) })
	if w, all := count(rules.StatusWaiting), count(""); w != 1 || all != 1 {
		t.Errorf("after created change: waiting %d all %d", w, all)
	}
}

func testDueIndexFollowsEveryTicketChange(t *testing.T, b Backend) {
	h := b.openT(t)
	base := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	due := map[string]time.Time{"HS-000001": base.Add(3 * time.Hour), "HS-000002": base.Add(time.Hour), "HS-000003": {}}
	s := store.WithDue(h.s, func(t *store.Ticket) time.Time { return due[t.ID] })
	put := func() {
		err := s.UpdateNow(bg, func(tx store.Tx) error {
			for id := range due {
				if err := tx.PutTicket(&store.Ticket{ID: id, Status: rules.StatusOpen}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	dueAt := func(now time.Time) (ids []string) {
		view(t, s, func(tx store.Tx) error {
			var err error
			ids, err = tx.DueTickets(now, 0)
			return err
		})
		return ids
	}
	put()
	if got := dueAt(base.Add(2 * time.Hour)); fmt.Sprint(got) != "[HS-000002]" {
		t.Errorf("due at +2h: %v", got)
	}
	if got := dueAt(base.Add(5 * time.Hour)); fmt.Sprint(got) != "[HS-000002 HS-000001]" {
		t.Errorf("due at +5h, earliest first: %v", got)
	}
	view(t, s, func(tx store.Tx) error {
		if ids, err := tx.DueTickets(base.Add(5*time.Hour), 1); err != nil || fmt.Sprint(ids) != "[HS-000002]" {
			t.Errorf("due with limit 1: %v %v", ids, err)
		}
		return nil
	})
	// A change moves the entry; the old one is gone.
	due["HS-000002"] = base.Add(10 * time.Hour)
	put()
	if got := dueAt(base.Add(5 * time.Hour)); fmt.Sprint(got) != "[HS-000001]" {
		t.Errorf("after moving HS-000002: %v", got)
	}
	due["HS-000001"] = time.Time{}
	put()
	if got := dueAt(base.Add(24 * time.Hour)); fmt.Sprint(got) != "[HS-000002]" {
		t.Errorf("after clearing HS-000001: %v", got)
	}
	// The due function's value is what the record keeps, too.
	view(t, s, func(tx store.Tx) error {
		tk, err := tx.Ticket("HS-000002")
		if err == nil && !tk.Due.Equal(base.Add(10*time.Hour)) {
			t.Errorf("record due %v", tk.Due)
		}
		return err
	})
}

func testDueIsIndexedAsGiven(t *testing.T, b Backend) {
	h := b.openT(t)
	at := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	update(t, h.s, func(tx store.Tx) error {
		return tx.PutTicket(&store.Ticket{ID: "HS-000001", Status: rules.StatusOpen, Due: at})
	})
	view(t, h.s, func(tx store.Tx) error {
		if ids, err := tx.DueTickets(at.Add(-time.Second), 0); err != nil || len(ids) != 0 {
			t.Errorf("due before its time: %v %v", ids, err)
		}
		if ids, err := tx.DueTickets(at, 0); err != nil || fmt.Sprint(ids) != "[HS-000001]" {
			t.Errorf("due at its time: %v %v", ids, err)
		}
		return nil
	})
}

// putMany writes n tickets created a minute apart (HS-000000 oldest);
// every third is waiting, the rest open.
func putMany(t *testing.T, s store.Store, n int) time.Time {
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	update(t, s, func(tx store.Tx) error {
		for i := range n {
			st := rules.StatusOpen
			if i%3 == 0 {
				st = rules.StatusWaiting
			}
			id := fmt.Sprintf("HS-%06d", i)
			if err := tx.PutTicket(&store.Ticket{ID: id, Status: st, CreatedAt: base.Add(time.Duration(i) * time.Minute)}); err != nil {
				return err
			}
			if err := tx.AddMessage(id, &store.Message{MessageID: id + "@x", Text: "body"}); err != nil {
				return err
			}
		}
		return nil
	})
	return base
}

func pages(t *testing.T, s store.Store, f store.Filter) (ids []string, npages int) {
	t.Helper()
	for {
		var list []*store.Ticket
		var next string
		view(t, s, func(tx store.Tx) error {
			var err error
			list, next, err = tx.Tickets(f)
			return err
		})
		npages++
		if f.Limit > 0 && len(list) > f.Limit {
			t.Fatalf("page of %d, limit %d", len(list), f.Limit)
		}
		for _, tk := range list {
			if tk.Messages != nil || tk.Events != nil {
				t.Fatalf("listing loaded messages or events of %s", tk.ID)
			}
			ids = append(ids, tk.ID)
		}
		if next == "" {
			return ids, npages
		}
		if npages > 1000 {
			t.Fatal("paging does not end")
		}
		f.After = next
	}
}

func testTicketsNewestFirstInPages(t *testing.T, b Backend) {
	h := b.openT(t)
	view(t, h.s, func(tx store.Tx) error {
		l, next, err := tx.Tickets(store.Filter{Limit: 10})
		if err != nil || len(l) != 0 || next != "" || l == nil {
			t.Errorf("empty store: %v %q %v (want an empty, non-nil list)", l, next, err)
		}
		return nil
	})
	putMany(t, h.s, 25)
	all, n := pages(t, h.s, store.Filter{})
	if len(all) != 25 || n != 1 || all[0] != "HS-000024" || all[24] != "HS-000000" {
		t.Fatalf("unpaged: %d in %d pages, %v", len(all), n, all)
	}
	for _, size := range []int{1, 7, 10, 25, 100} {
		got, n := pages(t, h.s, store.Filter{Limit: size})
		if fmt.Sprint(got) != fmt.Sprint(all) {
			t.Errorf("pages of %d: %v", size, got)
		}
		if want := (25 + size - 1) / size; n != want {
			t.Errorf("pages of %d: %d pages, want %d", size, n, want)
		}
	}
	// A ticket created between pages does not upset the cursor.
	var first []*store.Ticket
	var next string
	view(t, h.s, func(tx store.Tx) error {
		var err error
		first, next, err = tx.Tickets(store.Filter{Limit: 10})
		return err
	})
	update(t, h.s, func(tx store.Tx) error {
		return tx.PutTicket(&store.Ticket{ID: "HS-999999", Status: rules.StatusOpen, CreatedAt: time.Now()})
	})
	rest, _ := pages(t, h.s, store.Filter{Limit: 10, After: next})
	if len(first) != 10 || len(rest) != 15 || rest[0] != "HS-000014" {
		t.Errorf("after an insert: first %d rest %v", len(first), rest)
	}
}

func testTicketsPagedByStatus(t *testing.T, b Backend) {
	h := b.openT(t)
	putMany(t, h.s, 30)
	var want []string
	for i := 29; i >= 0; i-- {
		if i%3 == 0 {
			want = append(want, fmt.Sprintf("HS-%06d", i))
		}
	}
	for _, size := range []int{0, 3, 4} {
		got, _ := pages(t, h.s, store.Filter{Status: rules.StatusWaiting, Limit: size})
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("waiting, pages of %d: %v, want %v", size, got, want)
		}
	}
	open, _ := pages(t, h.s, store.Filter{Status: rules.StatusOpen, Limit: 6})
	closed, _ := pages(t, h.s, store.Filter{Status: rules.StatusClosed, Limit: 6})
	if len(open) != 20 || len(closed) != 0 {
		t.Errorf("open %d closed %d", len(open), len(closed))
	}
	view(t, h.s, func(tx store.Tx) error {
		if _, _, err := tx.Tickets(store.Filter{After: "not a cursor"}); !errors.Is(err, store.ErrBadCursor) {
			t.Errorf("a bad cursor: %v, want store.ErrBadCursor", err)
		}
		return nil
	})
}

func testTicketIDsNeverCollide(t *testing.T, b Backend) {
	h := b.openT(t)
	seen := map[string]bool{}
	update(t, h.s, func(tx store.Tx) error {
		for range 3000 {
			id, err := tx.NewTicketID("HS")
			if err != nil {
				return err
			}
			if seen[id] {
				return fmt.Errorf("%s allocated twice", id)
			}
			seen[id] = true
			if len(id) != len("HS-000000") || id[:3] != "HS-" {
				return fmt.Errorf("id %q", id)
			}
			if err := tx.PutTicket(&store.Ticket{ID: id, Status: rules.StatusNew}); err != nil {
				return err
			}
		}
		return nil
	})
	// Committed ids are not handed out again either.
	update(t, h.s, func(tx store.Tx) error {
		for range 3000 {
			id, err := tx.NewTicketID("HS")
			if err != nil {
				return err
			}
			if seen[id] {
				return fmt.Errorf("committed %s allocated again", id)
			}
		}
		return nil
	})
}

// An id, address or filter with bytes no record holds as text (not UTF-8,
// or a zero byte: a mistyped id in an API path) finds nothing, as any
// other unknown one does, and the transaction goes on.
func testLookupsOfStrayBytesFindNothing(t *testing.T, b Backend) {
	h := b.openT(t)
	d0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	update(t, h.s, func(tx store.Tx) error {
		return tx.PutTicket(&store.Ticket{ID: "HS-000001", Status: rules.StatusOpen, CreatedAt: d0, Requester: "ann@customer.example"})
	})
	view(t, h.s, func(tx store.Tx) error {
		for _, bad := range []string{"HS-00000\xff", "HS-00000\x00", "ann@customer.example\x00"} {
			if _, err := tx.Ticket(bad); !isNotFound(err) {
				t.Errorf("Ticket(%q): %v, want ErrNotFound", bad, err)
			}
			if _, err := tx.TicketFull(bad); !isNotFound(err) {
				t.Errorf("TicketFull(%q): %v, want ErrNotFound", bad, err)
			}
			if ok, err := tx.HasMessage(bad, "m1@x"); ok || err != nil {
				t.Errorf("HasMessage(%q): %v %v", bad, ok, err)
			}
			if queued, sent, err := tx.TicketMail(bad); len(queued)+len(sent) != 0 || err != nil {
				t.Errorf("TicketMail(%q): %v %v %v", bad, queued, sent, err)
			}
			if ids, err := tx.TicketsOfAddress(bad); len(ids) != 0 || err != nil {
				t.Errorf("TicketsOfAddress(%q): %v %v", bad, ids, err)
			}
			if _, err := tx.Blob(bad); !isNotFound(err) {
				t.Errorf("Blob(%q): %v, want ErrNotFound", bad, err)
			}
			for _, f := range []store.Filter{{Requester: bad}, {Assignee: bad}, {Queue: bad}, {Status: rules.Status(bad)},
				{View: store.ViewMine, Operator: bad}} {
				if list, next, err := tx.Tickets(f); len(list) != 0 || next != "" || err != nil {
					t.Errorf("Tickets(%+v): %d tickets, next %q, %v", f, len(list), next, err)
				}
			}
		}
		if tk, err := tx.Ticket("HS-000001"); err != nil || tk.Requester != "ann@customer.example" {
			t.Errorf("Ticket after the lookups: %v %v", tk, err)
		}
		return nil
	})
}
