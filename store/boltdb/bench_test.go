package boltdb

import (
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"ticketgate/rules"
	"ticketgate/store"
)

// BenchmarkOutboxWake is one wake of the outbox worker, Outbox(now, 100)
// in a View, with 10 entries due and `deferred` more waiting for later:
// its cost must not grow with the deferred ones.
func BenchmarkOutboxWake(b *testing.B) {
	for _, deferred := range []int{0, 100000} {
		b.Run(fmt.Sprintf("due=10/deferred=%d", deferred), func(b *testing.B) {
			d := openTest(b, filepath.Join(b.TempDir(), "t.db"))
			defer d.Close()
			now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
			total := deferred + 10
			step := total / 10 // due entries spread over the ids
			err := d.UpdateNow(bg, func(tx store.Tx) error {
				for i := range total {
					m := &store.OutMail{TicketID: fmt.Sprintf("HS-%06d", i), Kind: "auto", From: "bounces@example.com",
						To: []string{"someone@customer.example"}, Raw: fmt.Appendf(nil, "Subject: mail %d\r\n\r\nbody\r\n", i), Created: now}
					if i%step != 0 {
						m.NextAt = now.Add(time.Hour + time.Duration(i)*time.Second)
					} else {
						m.NextAt = now.Add(-time.Duration(i) * time.Second)
					}
					if err := tx.Enqueue(m); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
			var n int
			for b.Loop() {
				err := d.View(bg, func(tx store.Tx) error {
					due, err := tx.Outbox(now, 100)
					n = len(due)
					return err
				})
				if err != nil {
					b.Fatal(err)
				}
			}
			if n != 10 {
				b.Fatalf("%d due, want 10", n)
			}
		})
	}
}

// BenchmarkTicketsPage lists one page of 50 tickets out of 100,000, the
// first (newest) and one in the middle.
func BenchmarkTicketsPage(b *testing.B) {
	const total = 100000
	d := openTest(b, filepath.Join(b.TempDir(), "t.db"))
	defer d.Close()
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	created := func(i int) time.Time { return base.Add(time.Duration(i) * time.Minute) }
	id := func(i int) string { return fmt.Sprintf("HS-%06d", i) }
	err := d.UpdateNow(bg, func(tx store.Tx) error {
		for i := range total {
			t := &store.Ticket{ID: id(i), Subject: "a ticket of ordinary length", Status: rules.StatusOpen, Priority: rules.PriorityMedium,
				Queue: "support", Route: "support@example.com", Requester: "someone@customer.example", CC: []string{},
				CreatedAt: created(i), UpdatedAt: created(i)}
			if err := tx.PutTicket(t); err != nil {
				return err
			}
			if err := tx.AddMessage(t.ID, &store.Message{MessageID: t.ID + "@x", Text: "a message body"}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	middle := hex.EncodeToString(createdKey(created(total/2), id(total/2)))
	for _, c := range []struct {
		name  string
		after string
		first string
	}{{"first", "", id(total - 1)}, {"middle", middle, id(total/2 - 1)}} {
		b.Run(c.name, func(b *testing.B) {
			var list []*store.Ticket
			for b.Loop() {
				err := d.View(bg, func(tx store.Tx) error {
					var err error
					list, _, err = tx.Tickets(store.Filter{Limit: 50, After: c.after})
					return err
				})
				if err != nil {
					b.Fatal(err)
				}
			}
			if len(list) != 50 || list[0].ID != c.first {
				b.Fatalf("page of %d starting %s, want 50 from %s", len(list), list[0].ID, c.first)
			}
			if per := b.Elapsed() / time.Duration(b.N); per > 50*time.Millisecond {
				b.Errorf("%v per page, want < 50ms", per)
			}
		})
	}
}

// queryTickets is the number of tickets BenchmarkTicketsQuery lists.
const queryTickets = 100000

// fillDesk writes n tickets as a busy desk holds them: a sixth in each
// status, half assigned among 20 agents, requesters among 20,000
// addresses, four queues, SLA due times on the open ones, and on each a
// customer's message of 60 words drawn (Zipf) from 5,000, an automatic
// reply and, on every tenth, an agent's reply. Ticket i carries the word
// "kaboom" when i is a multiple of 10,000.
func fillDesk(b *testing.B, d *DB, n int) {
	b.Helper()
	// Building the fixture is not what is measured: no fsync.
	d.db.NoSync = true
	defer func() { d.db.NoSync = false }()
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	rng := rand.New(rand.NewPCG(7, 7))
	zipf := rand.NewZipf(rng, 1.1, 1, 4999)
	statuses := []rules.Status{rules.StatusNew, rules.StatusOpen, rules.StatusWaiting, rules.StatusOnHold, rules.StatusResolved, rules.StatusClosed}
	prios := []rules.Priority{rules.PriorityLow, rules.PriorityMedium, rules.PriorityHigh, rules.PriorityCritical}
	// Transactions of a few hundred tickets, as bbolt splits nodes only on
	// commit: the word index grows fastest that way.
	for start := 0; start < n; start += 500 {
		err := d.UpdateNow(bg, func(tx store.Tx) error {
			for i := start; i < min(start+500, n); i++ {
				at := base.Add(time.Duration(i) * time.Minute)
				tk := &store.Ticket{ID: fmt.Sprintf("HS-%06d", i), Subject: fmt.Sprintf("w%d w%d problem", zipf.Uint64(), zipf.Uint64()),
					Status: statuses[rng.IntN(len(statuses))], Priority: prios[rng.IntN(len(prios))],
					Queue: []string{"support", "billing", "sales", "it"}[rng.IntN(4)], Route: "support@example.com",
					Requester: fmt.Sprintf("c%d@customer.example", rng.IntN(20000)), CC: []string{},
					CreatedAt: at, UpdatedAt: at.Add(time.Duration(rng.IntN(1000)) * time.Hour)}
				if rng.IntN(2) == 0 {
					tk.Assignee = fmt.Sprintf("agent%d@example.com", rng.IntN(20))
				}
				if !store.Completed(tk.Status) {
					tk.SLA = &rules.SLA{FirstResponseDue: at.Add(time.Duration(rng.IntN(100)) * time.Hour), ResolutionDue: at.Add(200 * time.Hour)}
				}
				if err := tx.PutTicket(tk); err != nil {
					return err
				}
				var text strings.Builder
				for range 60 {
					fmt.Fprintf(&text, "w%d ", zipf.Uint64())
				}
				if i%10000 == 0 {
					text.WriteString("kaboom")
				}
				msgs := []*store.Message{
					{MessageID: tk.ID + "@c", Direction: "in", Kind: "customer", Subject: tk.Subject, Text: text.String()},
					{MessageID: tk.ID + "@a", Direction: "out", Kind: "auto", Subject: "[" + tk.ID + "] " + tk.Subject,
						Text: "Hello, thank you for contacting us. We will answer soon."},
				}
				if i%10 == 0 {
					msgs = append(msgs, &store.Message{MessageID: tk.ID + "@r", Direction: "out", Kind: "agent",
						Subject: "Re: " + tk.Subject, Text: "Please restart it and tell us whether w17 helps.\n> " + text.String()})
				}
				for _, m := range msgs {
					if err := tx.AddMessage(tk.ID, m); err != nil {
						return err
					}
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTicketsQuery is one page (50) of a view or a search among
// 100,000 tickets (fillDesk), in a View: what "tickets -view", "-q" and
// GET /api/tickets ask of the store; the target is under 200 ms a page,
// read from the ns/op this prints.
func BenchmarkTicketsQuery(b *testing.B) {
	d := openTest(b, filepath.Join(b.TempDir(), "t.db"))
	defer d.Close()
	start := time.Now()
	fillDesk(b, d, queryTickets)
	waitIndexed(b, d)
	b.Logf("%d tickets written and indexed in %v", queryTickets, time.Since(start).Round(time.Millisecond))
	for _, c := range []struct {
		name string
		f    store.Filter
		min  int // tickets at least on the page
	}{
		{"view=all", store.Filter{Sort: store.SortCreated}, 50},
		{"view=new", store.Filter{View: store.ViewNew, Sort: store.SortCreated}, 50},
		{"view=active/sort=priority", store.Filter{View: store.ViewActive, Sort: store.SortPriority}, 50},
		{"view=mine/sort=due", store.Filter{View: store.ViewMine, Operator: "agent3@example.com", Sort: store.SortDue}, 50},
		{"view=completed/sort=updated", store.Filter{View: store.ViewCompleted, Sort: store.SortUpdated}, 50},
		{"requester", store.Filter{Requester: "c42@customer.example", Sort: store.SortCreated}, 1},
		{"q=rare", store.Filter{Text: "kaboom", Sort: store.SortCreated}, 10},
		{"q=common", store.Filter{Text: "w1", Sort: store.SortCreated}, 50},
		{"q=two-words", store.Filter{Text: "w2 w3", Sort: store.SortCreated}, 50},
		{"q=mid/view=new", store.Filter{Text: "w100", View: store.ViewNew, Sort: store.SortCreated}, 50},
		{"q=none", store.Filter{Text: "nothing", Sort: store.SortCreated}, 0},
	} {
		b.Run(c.name, func(b *testing.B) {
			c.f.Limit = 50
			var list []*store.Ticket
			for b.Loop() {
				err := d.View(bg, func(tx store.Tx) error {
					var err error
					list, _, err = tx.Tickets(c.f)
					return err
				})
				if err != nil {
					b.Fatal(err)
				}
			}
			if len(list) < c.min {
				b.Fatalf("%d tickets, want at least %d", len(list), c.min)
			}
		})
	}
}

// BenchmarkTicketsOfAddress is the look-up behind a customer's list of
// tickets: the 3 tickets of one address among `tickets` others. Its cost
// must not grow with the others.
func BenchmarkTicketsOfAddress(b *testing.B) {
	for _, others := range []int{1000, 20000} {
		b.Run(fmt.Sprintf("tickets=%d", others), func(b *testing.B) {
			d := openTest(b, filepath.Join(b.TempDir(), "t.db"))
			defer d.Close()
			now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
			err := d.UpdateNow(bg, func(tx store.Tx) error {
				for i := range others + 3 {
					tk := &store.Ticket{ID: fmt.Sprintf("HS-%06d", i), Status: rules.StatusOpen, CreatedAt: now,
						Requester: fmt.Sprintf("c%d@customer.example", i), CC: []string{fmt.Sprintf("p%d@customer.example", i)}}
					if i%(others/2+1) == 0 {
						tk.CC = append(tk.CC, "alice@customer.example")
					}
					if err := tx.PutTicket(tk); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
			var n int
			for b.Loop() {
				err := d.View(bg, func(tx store.Tx) error {
					ids, err := tx.TicketsOfAddress("alice@customer.example")
					n = len(ids)
					return err
				})
				if err != nil {
					b.Fatal(err)
				}
			}
			if n != 3 {
				b.Fatalf("%d tickets, want 3", n)
			}
		})
	}
}

// BenchmarkMessageByID finds the last of a ticket's messages (4 KB of
// text each) by its Message-ID, as the outbox does for each notification
// it sends.
func BenchmarkMessageByID(b *testing.B) {
	for _, n := range []int{2, 20} {
		b.Run(fmt.Sprintf("messages=%d", n), func(b *testing.B) {
			d := openTest(b, filepath.Join(b.TempDir(), "t.db"))
			defer d.Close()
			text := strings.Repeat("The printer on the third floor is on fire again. ", 80)
			err := d.UpdateNow(bg, func(tx store.Tx) error {
				for i := range n {
					m := &store.Message{MessageID: fmt.Sprintf("m%d@customer.example", i), Direction: "in", Kind: "customer",
						From: "ann@customer.example", Subject: "Printer", Text: text, VisibleText: text}
					if err := tx.AddMessage("HS-000001", m); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
			want := fmt.Sprintf("<m%d@customer.example>", n-1)
			b.ResetTimer()
			for b.Loop() {
				err := d.View(bg, func(tx store.Tx) error {
					m, found, err := tx.MessageByID("HS-000001", want)
					if err == nil && (!found || m.Text != text) {
						err = fmt.Errorf("message %s not found whole", want)
					}
					return err
				})
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkIndexQueued times one indexing commit of 512 queued new
// tickets (the indexer's batch) over an index of 5,000 indexed tickets,
// in tgload's words: 4 KB of text from a few dozen common words, and a
// sender and domain of each ticket's own. Only the commit is timed: the
// time the single writer is held, and ingest commits wait behind it.
func BenchmarkIndexQueued(b *testing.B) {
	d := openUnindexed(b, filepath.Join(b.TempDir(), "t.db"))
	defer d.Close()
	common := strings.Fields("the a printer invoice order account login page error again please help " +
		"thanks since yesterday when I try to open it shows nothing and my colleague has the same problem")
	r := rand.New(rand.NewPCG(1, 2))
	n := 0
	queue := func(tickets int) {
		for range tickets / 64 {
			err := d.Update(bg, func(st store.Tx) error {
				for range 64 {
					n++
					id := fmt.Sprintf("HS-%06d", n)
					var text strings.Builder
					for text.Len() < 4000 {
						text.WriteString(common[r.IntN(len(common))])
						text.WriteByte(' ')
					}
					from := fmt.Sprintf("cust%d@dom%d.example", n, r.IntN(2000))
					t := &store.Ticket{ID: id, Subject: "Printer on fire", Requester: from, Status: rules.StatusNew, CreatedAt: time.Now()}
					if err := st.PutTicket(t); err != nil {
						return err
					}
					if err := st.AddMessage(id, &store.Message{MessageID: id + "@x", Kind: "customer", From: from, Text: text.String()}); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
		}
	}
	queue(5120)
	indexAll(b, d)
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		queue(maxIndexBatch)
		qs := indexerRead(b, d)
		b.StartTimer()
		if err := d.Update(bg, indexEntries(qs)); err != nil {
			b.Fatal(err)
		}
	}
}
