package storetest

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"ticketgate/store"
)

func claim(t *testing.T, s store.Store, owner string, now time.Time, limit int) string {
	t.Helper()
	var got []*store.OutMail
	err := s.Update(bg, func(tx store.Tx) error {
		var err error
		got, err = tx.ClaimOutbox(owner, now, 30*time.Second, limit)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range got {
		if m.ClaimedBy != owner || !m.ClaimedUntil.Equal(now.Add(30*time.Second)) {
			t.Errorf("%s claimed %d but it says %q until %v", owner, m.ID, m.ClaimedBy, m.ClaimedUntil)
		}
	}
	return ids(got)
}

// Two senders claim the outbox: neither gets what the other holds, nor
// mail queued behind it; an expired claim is taken over; enqueuing again
// (a deferral) releases a claim.
func testOutboxClaims(t *testing.T, b Backend) {
	h := b.openT(t)
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	update(t, h.s, func(tx store.Tx) error {
		for _, m := range []*store.OutMail{
			{TicketID: "HS-1", To: []string{"a@x"}, Raw: []byte("1")},
			{TicketID: "HS-1", To: []string{"a@x"}, Raw: []byte("2")},
			{TicketID: "HS-2", To: []string{"b@x"}, Raw: []byte("3")},
			{TicketID: "HS-3", To: []string{"c@x"}, Raw: []byte("4"), NextAt: now.Add(time.Hour)},
		} {
			if err := tx.Enqueue(m); err != nil {
				return err
			}
		}
		return nil
	})
	if got := claim(t, h.s, "A", now, 1); got != "[1]" {
		t.Fatalf("A claims one: %s", got)
	}
	if got := claim(t, h.s, "B", now, 0); got != "[3]" {
		t.Errorf("B claims past A's entry and its queue: %s, want [3]", got)
	}
	if got := claim(t, h.s, "A", now.Add(time.Second), 0); got != "[1 2]" {
		t.Errorf("A renews and takes its queue: %s, want [1 2]", got)
	}
	view(t, h.s, func(tx store.Tx) error {
		m, err := tx.OutboxEntry(1)
		if err != nil || m.ClaimedBy != "A" || !m.ClaimedUntil.Equal(now.Add(31*time.Second)) {
			t.Errorf("entry 1: %+v %v", m, err)
		}
		if due, err := tx.Outbox(now, 0); err != nil || ids(due) != "[1 2 3]" {
			t.Errorf("Outbox lists claimed entries too: %s %v", ids(due), err)
		}
		return nil
	})
	if got := claim(t, h.s, "C", now.Add(20*time.Second), 0); got != "[]" {
		t.Errorf("C while A and B hold everything due: %s", got)
	}
	// A stops (crashed): its claims expire and B takes them over.
	if got := claim(t, h.s, "B", now.Add(100*time.Second), 0); got != "[1 2 3]" {
		t.Errorf("B after A's claims expired: %s, want [1 2 3]", got)
	}
	// B defers 1: the claim is released, the queue waits.
	update(t, h.s, func(tx store.Tx) error {
		return tx.Enqueue(&store.OutMail{ID: 1, TicketID: "HS-1", To: []string{"a@x"}, Attempts: 1, NextAt: now.Add(2 * time.Minute)})
	})
	view(t, h.s, func(tx store.Tx) error {
		m, err := tx.OutboxEntry(1)
		if err != nil || m.ClaimedBy != "" || !m.ClaimedUntil.IsZero() {
			t.Errorf("entry 1 after a deferral: %+v %v", m, err)
		}
		return nil
	})
	if got := claim(t, h.s, "A", now.Add(2*time.Minute), 0); got != "[1]" {
		t.Errorf("A after B's deferral while B holds 2 and 3: %s, want [1]", got)
	}
	update(t, h.s, func(tx store.Tx) error { return tx.Dequeue(1) })
	if raw(t, h.s, 2) != "2" {
		t.Error("claimed entry lost its mail")
	}
}

// Many senders claiming at once, each sending (dequeuing) what it claimed,
// never get the same entry.
func testOutboxClaimsConcurrent(t *testing.T, b Backend) {
	h := b.openT(t)
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	const n = 60
	update(t, h.s, func(tx store.Tx) error {
		for i := range n {
			if err := tx.Enqueue(&store.OutMail{TicketID: fmt.Sprintf("HS-%d", i), To: []string{"a@x"}, Raw: []byte("x")}); err != nil {
				return err
			}
		}
		return nil
	})
	var mu sync.Mutex
	var got []uint64
	var wg sync.WaitGroup
	for w := range 6 {
		wg.Go(func() {
			for {
				var ms []*store.OutMail
				err := h.s.Update(bg, func(tx store.Tx) error {
					var err error
					ms, err = tx.ClaimOutbox(fmt.Sprintf("w%d", w), now, time.Minute, 4)
					return err
				})
				if err != nil {
					t.Error(err)
					return
				}
				if len(ms) == 0 {
					return
				}
				err = h.s.Update(bg, func(tx store.Tx) error {
					for _, m := range ms {
						if err := tx.Dequeue(m.ID); err != nil {
							return err
						}
					}
					return nil
				})
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				for _, m := range ms {
					got = append(got, m.ID)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	slices.Sort(got)
	if len(got) != len(slices.Compact(slices.Clone(got))) {
		t.Errorf("an entry was claimed twice: %v", got)
	}
	if len(got) != n {
		t.Errorf("%d entries claimed, want all %d", len(got), n)
	}
}
