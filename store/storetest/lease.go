package storetest

import (
	"fmt"
	"maps"
	"sync"
	"testing"
	"time"

	"ticketgate/store"
)

func takeLease(t *testing.T, s store.Store, name, owner string, now time.Time) bool {
	t.Helper()
	var got bool
	update(t, s, func(tx store.Tx) error {
		var err error
		got, err = tx.TakeLease(name, owner, now, 30*time.Second)
		return err
	})
	return got
}

// A lease is one owner's until it expires or is dropped: another owner
// is refused meanwhile, the holder renews it, and after expiry another
// takes it over. Leases of different names are independent.
func testLeases(t *testing.T, b Backend) {
	h := b.openT(t)
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	if !takeLease(t, h.s, "sweep", "a", now) {
		t.Fatal("a could not take a free lease")
	}
	if takeLease(t, h.s, "sweep", "b", now.Add(10*time.Second)) {
		t.Fatal("b took the lease a holds")
	}
	if !takeLease(t, h.s, "imap:support", "b", now.Add(10*time.Second)) {
		t.Fatal("b could not take another lease")
	}
	if !takeLease(t, h.s, "sweep", "a", now.Add(20*time.Second)) {
		t.Fatal("a could not renew its lease")
	}
	// The renewal counts from 20 s: still a's at 45 s.
	if takeLease(t, h.s, "sweep", "b", now.Add(45*time.Second)) {
		t.Fatal("b took the lease a renewed")
	}
	view(t, h.s, func(tx store.Tx) error {
		owner, until, err := tx.Lease("sweep")
		if owner != "a" || !until.Equal(now.Add(50*time.Second)) {
			t.Errorf("Lease(sweep) = %q until %v, want a until %v", owner, until, now.Add(50*time.Second))
		}
		return err
	})
	if !takeLease(t, h.s, "sweep", "b", now.Add(50*time.Second)) {
		t.Fatal("b could not take over the expired lease")
	}
	update(t, h.s, func(tx store.Tx) error { return tx.DropLease("sweep", "a") })
	if takeLease(t, h.s, "sweep", "a", now.Add(51*time.Second)) {
		t.Fatal("a's drop ended b's lease")
	}
	update(t, h.s, func(tx store.Tx) error { return tx.DropLease("sweep", "b") })
	if !takeLease(t, h.s, "sweep", "a", now.Add(52*time.Second)) {
		t.Fatal("a could not take the lease b dropped")
	}
}

// Many owners racing for one lease: exactly one gets it.
func testLeasesConcurrent(t *testing.T, b Backend) {
	h := b.openT(t)
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	const n = 8
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		won  []string
		errs []error
	)
	for i := range n {
		wg.Go(func() {
			owner := fmt.Sprintf("owner-%d", i)
			var got bool
			err := h.s.UpdateNow(bg, func(tx store.Tx) error {
				var err error
				got, err = tx.TakeLease("sweep", owner, now, 30*time.Second)
				return err
			})
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
			}
			if got {
				won = append(won, owner)
			}
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if len(won) != 1 {
		t.Errorf("%d owners hold the lease at once: %v", len(won), won)
	}
}

// The failed tries of a mailbox's messages are kept across a reopen, per
// mailbox, and an empty set deletes them.
func testPollTriesSurviveReopen(t *testing.T, b Backend) {
	h := b.openT(t)
	want := map[uint32]int{7: 2, 9: 1}
	update(t, h.s, func(tx store.Tx) error {
		if err := tx.PutPollTries("support", 42, want); err != nil {
			return err
		}
		return tx.PutPollTries("billing", 5, map[uint32]int{1: 1})
	})
	b.reopen(t, h)
	view(t, h.s, func(tx store.Tx) error {
		v, got, err := tx.PollTries("support")
		if v != 42 || !maps.Equal(got, want) {
			t.Errorf("PollTries(support) = %d %v, want 42 %v", v, got, want)
		}
		return err
	})
	update(t, h.s, func(tx store.Tx) error { return tx.PutPollTries("billing", 5, nil) })
	view(t, h.s, func(tx store.Tx) error {
		v, got, err := tx.PollTries("billing")
		if v != 0 || len(got) != 0 {
			t.Errorf("PollTries(billing) after deleting = %d %v", v, got)
		}
		_, still, _ := tx.PollTries("support")
		if !maps.Equal(still, want) {
			t.Errorf("deleting billing's tries changed support's: %v", still)
		}
		return err
	})
}

// Instances are kept by ID, a later report replacing the earlier one.
func testInstances(t *testing.T, b Backend) {
	h := b.openT(t)
	at := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	update(t, h.s, func(tx store.Tx) error {
		for _, in := range []store.Instance{{ID: "mx1:/etc/tg.toml", Fingerprint: "aa", Seen: at}, {ID: "mx2:/etc/tg.toml", Fingerprint: "bb", Seen: at}, {ID: "mx1:/etc/tg.toml", Fingerprint: "cc", Seen: at.Add(time.Hour)}} {
			if err := tx.PutInstance(in); err != nil {
				return err
			}
		}
		return nil
	})
	b.reopen(t, h)
	view(t, h.s, func(tx store.Tx) error {
		list, err := tx.Instances()
		got := map[string]string{}
		for _, in := range list {
			got[in.ID] = in.Fingerprint + " " + in.Seen.UTC().Format(time.RFC3339)
		}
		want := map[string]string{"mx1:/etc/tg.toml": "cc 2026-06-01T13:00:00Z", "mx2:/etc/tg.toml": "bb 2026-06-01T12:00:00Z"}
		if !maps.Equal(got, want) {
			t.Errorf("instances %v, want %v", got, want)
		}
		return err
	})
}
