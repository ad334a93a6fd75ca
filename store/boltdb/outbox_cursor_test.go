package boltdb

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"ticketgate/store"
)

// One transaction that dequeues every outbox entry (a batch of delivery
// outcomes) and then queues a new mail (an ingest grouped into the same
// commit) leaves the queue index with only emptied pages: bbolt's Last
// and Prev loop or stop early over those, so finding the new mail's place
// in its queue must not depend on them. The new mail is queued, and a
// later one of its queue is held behind it.
func TestEnqueueAfterEveryEntryDequeuedInOneTransaction(t *testing.T) {
	st, err := Open(filepath.Join(t.TempDir(), "t.db"), Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	mail := func(i int, next time.Time) *store.OutMail {
		return &store.OutMail{TicketID: fmt.Sprintf("HS-%06d", i), Kind: "auto", From: "b@example.com",
			To: []string{fmt.Sprintf("c%d@x.example", i)}, NextAt: next, Created: time.Now(), Raw: []byte("Subject: x\r\n\r\nx\r\n")}
	}
	var ids []uint64
	err = st.UpdateNow(ctx, func(tx store.Tx) error {
		for i := range 3000 { // several leaf pages of idx.outbox.queue
			m := mail(i, time.Time{})
			if err := tx.Enqueue(m); err != nil {
				return err
			}
			ids = append(ids, m.ID)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(time.Hour)
	done := make(chan error, 1)
	go func() {
		done <- st.UpdateNow(ctx, func(tx store.Tx) error {
			for _, id := range ids {
				if err := tx.Dequeue(id); err != nil {
					return err
				}
			}
			if err := tx.Enqueue(mail(9999, later)); err != nil {
				return err
			}
			return tx.Enqueue(mail(9999, time.Time{}))
		})
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second): // a failure bound: it loops forever when broken
		t.Fatal("Enqueue after dequeuing every entry in the same transaction never returned")
	}
	var all []*store.OutMail
	if err := st.View(ctx, func(tx store.Tx) error {
		var err error
		all, err = tx.OutboxList(0, 0)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 {
		t.Fatalf("%d entries queued, want the 2 new ones", len(all))
	}
	if !all[1].NextAt.Equal(all[0].NextAt) || !all[0].NextAt.Equal(later) {
		t.Errorf("second mail of the queue due %v, first %v; want it held behind the first (%v)", all[1].NextAt, all[0].NextAt, later)
	}
}
