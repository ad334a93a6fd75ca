package postgres

import (
	"sync"
	"testing"

	"ticketgate/store"
	"ticketgate/store/postgres/pgtest"
)

// TestReserveOutboxIDsWhileGatewaysDrawThem: a migrate reserving outbox
// ids while gateways on the same database queue mail never makes the
// sequence hand an id out twice. A second mail with the id of one the
// gateway queued replaces it in the outbox, and one with the id of a
// mail already sent gets the bounces of that mail.
func TestReserveOutboxIDsWhileGatewaysDrawThem(t *testing.T) {
	d := openTest(t, pgtest.Start(t).NewDatabase(t))
	defer d.Close()
	stop := make(chan struct{})
	reserved := make(chan error, 1)
	go func() {
		for n := uint64(1); ; n++ {
			select {
			case <-stop:
				reserved <- nil
				return
			default:
			}
			// Below what the gateways have drawn already: there is
			// nothing to move.
			if err := d.ReserveOutboxIDs(bg, n%3+1); err != nil {
				reserved <- err
				return
			}
		}
	}()
	const gateways, each = 4, 1000
	var mu sync.Mutex
	drawn := map[uint64]int{}
	var wg sync.WaitGroup
	for range gateways {
		wg.Go(func() {
			for range each {
				var id uint64
				err := d.UpdateNow(bg, func(tx store.Tx) error {
					var err error
					id, err = tx.NextOutboxID()
					return err
				})
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				drawn[id]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(stop)
	if err := <-reserved; err != nil {
		t.Fatal(err)
	}
	twice := 0
	for _, n := range drawn {
		if n > 1 {
			twice++
		}
	}
	if twice > 0 {
		t.Errorf("%d of %d outbox ids were handed out more than once", twice, len(drawn))
	}
}
