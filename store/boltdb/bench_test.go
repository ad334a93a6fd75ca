package boltdb

import (
	"encoding/hex"
	"fmt"
	"path/filepath"
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
