package storetest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"ticketgate/rules"
	"ticketgate/store"
)

func testCheckpointNeverMovesBack(t *testing.T, b Backend) {
	h := b.openT(t)
	var got store.Checkpoint
	read := func() {
		view(t, h.s, func(tx store.Tx) error {
			var err error
			got, err = tx.Checkpoint("box")
			return err
		})
	}
	read()
	if got != (store.Checkpoint{Mailbox: "box"}) {
		t.Errorf("no checkpoint yet: %+v", got)
	}
	for _, c := range []store.Checkpoint{{Mailbox: "box", UIDValidity: 7, UID: 10}, {Mailbox: "box", UIDValidity: 7, UID: 4}} {
		update(t, h.s, func(tx store.Tx) error { return tx.PutCheckpoint(c) })
	}
	read()
	if got.UID != 10 {
		t.Errorf("checkpoint went back to %d", got.UID)
	}
	// A new UIDVALIDITY starts over.
	update(t, h.s, func(tx store.Tx) error {
		return tx.PutCheckpoint(store.Checkpoint{Mailbox: "box", UIDValidity: 8, UID: 2})
	})
	read()
	if got.UIDValidity != 8 || got.UID != 2 {
		t.Errorf("after UIDVALIDITY change: %+v", got)
	}
}

func testRateCounters(t *testing.T, b Backend) {
	h := b.openT(t)
	t0 := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	update(t, h.s, func(tx store.Tx) error {
		return tx.PutRateTimes("auto:Ann@X", []time.Time{t0, t0.Add(time.Minute)})
	})
	view(t, h.s, func(tx store.Tx) error {
		ts, err := tx.RateTimes("AUTO:ann@x")
		if err != nil || len(ts) != 2 || !ts[0].Equal(t0) || !ts[1].Equal(t0.Add(time.Minute)) {
			t.Errorf("rate times (key case-insensitive): %v %v", ts, err)
		}
		if ts, err := tx.RateTimes("auto:bob@x"); err != nil || ts != nil {
			t.Errorf("no times: %v %v", ts, err)
		}
		return nil
	})
	update(t, h.s, func(tx store.Tx) error { return tx.PutRateTimes("auto:ann@x", nil) })
	view(t, h.s, func(tx store.Tx) error {
		if ts, err := tx.RateTimes("auto:ann@x"); err != nil || len(ts) != 0 {
			t.Errorf("after delete: %v %v", ts, err)
		}
		return nil
	})
}

// testRatesListedInPages: every counter comes back once, under the key
// RateTimes takes (in lower case), with its times, across pages of any
// size, and deleting the ones listed does not lose the place.
func testRatesListedInPages(t *testing.T, b Backend) {
	h := b.openT(t)
	t0 := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	want := map[string][]time.Time{
		"auto:ann@x.example":           {t0, t0.Add(time.Minute)},
		"in:sender:ann@x.example":      {t0},
		"in:domain:x.example":          {t0, t0.Add(2 * time.Minute)},
		"in:ticket:hs-000001":          {t0},
		"bounce:bob@y.example":         {t0.Add(time.Hour)},
		"list:answered:<m1@x.example>": {t0},
	}
	update(t, h.s, func(tx store.Tx) error {
		for k, ts := range want {
			if err := tx.PutRateTimes(strings.ToUpper(k[:1])+k[1:], ts); err != nil {
				return err
			}
		}
		return tx.MarkBouncing("Cy@Z.example", t0)
	})
	want["bounce:cy@z.example"] = []time.Time{t0}
	for _, limit := range []int{1, 2, 4, 100} {
		got := map[string][]time.Time{}
		after, pages := "", 0
		for {
			var list []store.Rate
			view(t, h.s, func(tx store.Tx) error {
				var err error
				list, after, err = tx.Rates(after, limit)
				return err
			})
			if pages++; len(list) > limit || pages > len(want)+1 {
				t.Fatalf("limit %d: page %d has %d counters", limit, pages, len(list))
			}
			for _, r := range list {
				if _, dup := got[r.Key]; dup {
					t.Errorf("limit %d: %s listed twice", limit, r.Key)
				}
				got[r.Key] = r.Times
			}
			if after == "" {
				break
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("limit %d: listed\n%v\nwant\n%v", limit, got, want)
		}
	}
	// Deleting what a page listed, then asking for the next page.
	var first []store.Rate
	var next string
	view(t, h.s, func(tx store.Tx) error {
		var err error
		first, next, err = tx.Rates("", 3)
		return err
	})
	update(t, h.s, func(tx store.Tx) error {
		for _, r := range first {
			if err := tx.PutRateTimes(r.Key, nil); err != nil {
				return err
			}
		}
		return nil
	})
	view(t, h.s, func(tx store.Tx) error {
		rest, after, err := tx.Rates(next, 100)
		if err != nil || after != "" || len(rest) != len(want)-3 {
			t.Errorf("after deleting the first page: %d more (%v), cursor %q, want %d", len(rest), err, after, len(want)-3)
		}
		if ts, err := tx.RateTimes(first[0].Key); err != nil || ts != nil {
			t.Errorf("%s after delete: %v %v", first[0].Key, ts, err)
		}
		return nil
	})
}

func testBouncing(t *testing.T, b Backend) {
	h := b.openT(t)
	t0 := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	update(t, h.s, func(tx store.Tx) error { return tx.MarkBouncing("Gone@X", t0.Add(time.Hour)) })
	view(t, h.s, func(tx store.Tx) error {
		for _, c := range []struct {
			addr string
			at   time.Time
			want bool
		}{
			{"gone@x", t0, true}, {"GONE@x", t0.Add(59 * time.Minute), true},
			{"gone@x", t0.Add(time.Hour), false}, {"other@x", t0, false},
		} {
			if got, err := tx.Bouncing(c.addr, c.at); err != nil || got != c.want {
				t.Errorf("Bouncing(%s, %v) = %v %v, want %v", c.addr, c.at, got, err, c.want)
			}
		}
		return nil
	})
}

// contents is a summary of everything the suite writes in populate.
func contents(t *testing.T, s store.Store) string {
	var out string
	view(t, s, func(tx store.Tx) error {
		tk, err := tx.TicketFull("HS-000001")
		if err != nil {
			return err
		}
		list, _, err := tx.Tickets(store.Filter{})
		if err != nil {
			return err
		}
		due, err := tx.DueTickets(store.Forever, 0)
		if err != nil {
			return err
		}
		ob, err := tx.OutboxList(0, 0)
		if err != nil {
			return err
		}
		r, err := tx.OutboxRaw(ob[0].ID)
		if err != nil {
			return err
		}
		byID, err := tx.TicketByMessageID("m1@x")
		if err != nil {
			return err
		}
		cp, err := tx.Checkpoint("INBOX")
		if err != nil {
			return err
		}
		rt, err := tx.RateTimes("k")
		if err != nil {
			return err
		}
		sentID, sentTo, err := tx.SentTo(9)
		if err != nil {
			return err
		}
		blob, err := tx.Blob(tk.Messages[0].Raw)
		out = fmt.Sprint(jsonOf(tk), len(list), due, jsonOf(ob), string(r), byID, cp, rt, sentID, sentTo, string(blob))
		return err
	})
	return out
}

func populate(t *testing.T, s store.Store) {
	at := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	update(t, s, func(tx store.Tx) error {
		h, err := tx.PutBlob([]byte("raw mail"))
		if err != nil {
			return err
		}
		if err := tx.PutTicket(fullTicket("HS-000001", at)); err != nil {
			return err
		}
		if err := tx.AddMessage("HS-000001", &store.Message{MessageID: "m1@x", Text: "a > b", VisibleText: "a", Raw: h}); err != nil {
			return err
		}
		if err := tx.AddEvent("HS-000001", store.Event{At: at, Type: "created"}); err != nil {
			return err
		}
		if err := tx.Enqueue(&store.OutMail{TicketID: "HS-000001", To: []string{"a@x"}, Raw: []byte("out"), NextAt: at}); err != nil {
			return err
		}
		if err := tx.PutCheckpoint(store.Checkpoint{Mailbox: "INBOX", UIDValidity: 1, UID: 5}); err != nil {
			return err
		}
		if err := tx.PutRateTimes("k", []time.Time{at}); err != nil {
			return err
		}
		return tx.Sent(&store.OutMail{ID: 9, TicketID: "HS-000001", To: []string{"a@x"}})
	})
}

func testReopenKeepsEverything(t *testing.T, b Backend) {
	h := b.openT(t)
	populate(t, h.s)
	before := contents(t, h.s)
	b.reopen(t, h)
	if after := contents(t, h.s); after != before {
		t.Errorf("after reopen\n got %s\nwant %s", after, before)
	}
}

func empty(t *testing.T, s store.Store) {
	t.Helper()
	view(t, s, func(tx store.Tx) error {
		list, _, err := tx.Tickets(store.Filter{})
		if err != nil || len(list) != 0 {
			t.Errorf("tickets left: %d %v", len(list), err)
		}
		all, err := tx.OutboxList(0, 0)
		if err != nil || len(all) != 0 {
			t.Errorf("outbox entries left: %d %v", len(all), err)
		}
		if cp, err := tx.Checkpoint("INBOX"); err != nil || cp.UID != 0 {
			t.Errorf("checkpoint left: %+v %v", cp, err)
		}
		if id, err := tx.TicketByMessageID("m1@x"); err != nil || id != "" {
			t.Errorf("message id left: %q %v", id, err)
		}
		if _, _, err := tx.SentTo(9); !isNotFound(err) {
			t.Errorf("sent map left: %v", err)
		}
		return nil
	})
}

func testDryRunLeavesNothing(t *testing.T, b Backend) {
	h := b.openT(t)
	var seen int
	err := h.s.DryRun(bg, func(tx store.Tx) error {
		if err := tx.Enqueue(&store.OutMail{TicketID: "HS-000001", To: []string{"a@x"}, Raw: []byte("x")}); err != nil {
			return err
		}
		// Inside, the change is visible.
		all, err := tx.Outbox(store.Forever, 0)
		seen = len(all)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if seen != 1 {
		t.Errorf("dry run did not see its own entry: %d", seen)
	}
	var n int
	view(t, h.s, func(tx store.Tx) error {
		all, err := tx.Outbox(store.Forever, 0)
		n = len(all)
		return err
	})
	if n != 0 {
		t.Errorf("dry run left %d outbox entries", n)
	}
	// Everything else too, and a failing dry run reports its error.
	if err := h.s.DryRun(bg, func(tx store.Tx) error { populateTx(t, tx); return nil }); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	if err := h.s.DryRun(bg, func(tx store.Tx) error { populateTx(t, tx); return boom }); !errors.Is(err, boom) {
		t.Errorf("failing dry run: %v", err)
	}
	empty(t, h.s)
}

func populateTx(t *testing.T, tx store.Tx) {
	at := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	for _, err := range []error{
		tx.PutTicket(fullTicket("HS-000001", at)),
		tx.AddMessage("HS-000001", &store.Message{MessageID: "m1@x"}),
		tx.Enqueue(&store.OutMail{TicketID: "HS-000001", Raw: []byte("x")}),
		tx.PutCheckpoint(store.Checkpoint{Mailbox: "INBOX", UIDValidity: 1, UID: 5}),
		tx.Sent(&store.OutMail{ID: 9, TicketID: "HS-000001"}),
	} {
		if err != nil {
			t.Error(err)
		}
	}
}

func testFailedUpdateLeavesNothing(t *testing.T, b Backend) {
	h := b.openT(t)
	boom := errors.New("boom")
	for _, up := range []func(context.Context, func(store.Tx) error) error{h.s.Update, h.s.UpdateNow} {
		if err := up(bg, func(tx store.Tx) error { populateTx(t, tx); return boom }); !errors.Is(err, boom) {
			t.Errorf("failing update: %v", err)
		}
	}
	empty(t, h.s)
}

func testConcurrentUpdatesAllCommitted(t *testing.T, b Backend) {
	h := b.openT(t)
	const n = 32
	var wg sync.WaitGroup
	errs := make(chan error, n)
	created := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	for i := range n {
		wg.Go(func() {
			errs <- h.s.Update(bg, func(tx store.Tx) error {
				id, err := tx.NewTicketID("HS")
				if err != nil {
					return err
				}
				if err := tx.PutTicket(&store.Ticket{ID: id, Status: rules.StatusNew, CreatedAt: created.Add(time.Duration(i))}); err != nil {
					return err
				}
				if err := tx.AddMessage(id, &store.Message{MessageID: fmt.Sprintf("m%d@x", i)}); err != nil {
					return err
				}
				if err := tx.AddEvent(id, store.Event{Type: "created"}); err != nil {
					return err
				}
				return tx.Enqueue(&store.OutMail{TicketID: id, Raw: fmt.Appendf(nil, "mail %d", i)})
			})
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	b.reopen(t, h)
	view(t, h.s, func(tx store.Tx) error {
		list, _, err := tx.Tickets(store.Filter{})
		if err != nil || len(list) != n {
			t.Fatalf("%d tickets committed, want %d (%v)", len(list), n, err)
		}
		for i := range n {
			id, err := tx.TicketByMessageID(fmt.Sprintf("m%d@x", i))
			if err != nil || id == "" {
				t.Errorf("message %d: %q %v", i, id, err)
				continue
			}
			tk, err := tx.TicketFull(id)
			if err != nil || len(tk.Messages) != 1 || len(tk.Events) != 1 {
				t.Errorf("ticket %s: %+v %v", id, tk, err)
			}
		}
		ob, err := tx.Outbox(time.Time{}, 0)
		if err != nil || len(ob) != n {
			t.Errorf("outbox %d, want %d (%v)", len(ob), n, err)
		}
		return nil
	})
}

func testDoneContext(t *testing.T, b Backend) {
	h := b.openT(t)
	populate(t, h.s)
	ctx, cancel := context.WithCancel(bg)
	cancel()
	ran := false
	fn := func(tx store.Tx) error { ran = true; return tx.PutCheckpoint(store.Checkpoint{Mailbox: "X", UID: 1}) }
	for name, call := range map[string]func(context.Context, func(store.Tx) error) error{
		"Update": h.s.Update, "UpdateNow": h.s.UpdateNow, "View": h.s.View, "DryRun": h.s.DryRun,
	} {
		if err := call(ctx, fn); !errors.Is(err, context.Canceled) || ran {
			t.Errorf("%s with a done context: %v, ran %v", name, err, ran)
		}
	}
	// A transaction started with a context carries it, and its long reads
	// stop once it is done.
	ctx, cancel = context.WithCancel(bg)
	err := h.s.View(ctx, func(tx store.Tx) error {
		if tx.Context() != ctx {
			t.Error("Tx.Context is not the transaction's context")
		}
		cancel()
		_, _, err := tx.Tickets(store.Filter{})
		return err
	})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("listing after cancel: %v", err)
	}
}
