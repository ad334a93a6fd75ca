package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"ticketgate/store"
)

// testUpdateSoon: a write made with UpdateSoon is there when the call
// returns, whether it was alone or among concurrent Updates, and still
// there after a reopen; a failing one leaves nothing and returns its own
// error, and one with a done context does not run.
func testUpdateSoon(t *testing.T, b Backend) {
	h := b.openT(t)
	put := func(box string, uid int) func(store.Tx) error {
		return func(tx store.Tx) error {
			return tx.PutCheckpoint(store.Checkpoint{Mailbox: box, UIDValidity: 1, UID: uint32(uid)})
		}
	}
	stored := func(box string) uint32 {
		var c store.Checkpoint
		if err := h.s.View(bg, func(tx store.Tx) error {
			var err error
			c, err = tx.Checkpoint(box)
			return err
		}); err != nil {
			t.Errorf("read %s: %v", box, err)
		}
		return c.UID
	}
	// Alone: nothing else is written, yet it commits.
	if err := h.s.UpdateSoon(bg, put("alone", 1)); err != nil {
		t.Fatal(err)
	}
	if got := stored("alone"); got != 1 {
		t.Errorf("a lone UpdateSoon returned, its write reads %d, want 1", got)
	}
	// Among Updates: each write is there when its own call returns.
	const n = 16
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			box := fmt.Sprint("box", i)
			up := h.s.Update
			if i%2 == 0 {
				up = h.s.UpdateSoon
			}
			if err := up(bg, put(box, i+1)); err != nil {
				t.Errorf("write %d: %v", i, err)
				return
			}
			if got := stored(box); got != uint32(i+1) {
				t.Errorf("write %d returned, reads %d", i, got)
			}
		})
	}
	wg.Wait()
	boom := errors.New("refused")
	err := h.s.UpdateSoon(bg, func(tx store.Tx) error {
		if err := put("failed", 1)(tx); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) || stored("failed") != 0 {
		t.Errorf("failing UpdateSoon: %v, stored %d", err, stored("failed"))
	}
	ctx, cancel := context.WithCancel(bg)
	cancel()
	ran := false
	if err := h.s.UpdateSoon(ctx, func(tx store.Tx) error { ran = true; return nil }); !errors.Is(err, context.Canceled) || ran {
		t.Errorf("UpdateSoon with a done context: %v, ran %v", err, ran)
	}
	b.reopen(t, h)
	if got := stored("alone"); got != 1 {
		t.Errorf("lone write after reopen: %d", got)
	}
	for i := range n {
		if got := stored(fmt.Sprint("box", i)); got != uint32(i+1) {
			t.Errorf("write %d after reopen: %d", i, got)
		}
	}
}
