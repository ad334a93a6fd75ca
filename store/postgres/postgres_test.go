package postgres

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"ticketgate/store"
	"ticketgate/store/postgres/pgtest"
	"ticketgate/store/storetest"
)

var bg = context.Background()

func openTest(t testing.TB, dsn string) *DB {
	t.Helper()
	d, err := Open(bg, dsn, Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestSuite(t *testing.T) {
	c := pgtest.Start(t)
	dsns := map[store.Store]string{}
	storetest.Run(t,
		func(t *testing.T) store.Store {
			dsn := c.NewDatabase(t)
			d := openTest(t, dsn)
			dsns[d] = dsn
			return d
		},
		func(t *testing.T, s store.Store) store.Store {
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			d := openTest(t, dsns[s])
			dsns[d] = dsns[s]
			return d
		})
}

// listening runs d's listener until the test's end (stopped before the
// stores opened earlier close) and returns once it has connected; the
// channel then gets a value for each wake.
func listening(t *testing.T, d *DB) <-chan struct{} {
	t.Helper()
	woken := make(chan struct{}, 16)
	ctx, cancel := context.WithCancel(bg)
	done := make(chan struct{})
	go func() { defer close(done); d.Listen(ctx, func() { woken <- struct{}{} }) }()
	t.Cleanup(func() { cancel(); <-done })
	select { // the wake after connecting
	case <-woken:
	case <-time.After(10 * time.Second):
		t.Fatal("listener did not connect")
	}
	return woken
}

// Mail one process queues wakes a listener in another: the listener is
// called when the enqueuing transaction commits, not before.
func TestListenWakesOnQueuedMail(t *testing.T) {
	dsn := pgtest.Start(t).NewDatabase(t)
	d1, d2 := openTest(t, dsn), openTest(t, dsn)
	t.Cleanup(func() { d1.Close(); d2.Close() })
	woken := listening(t, d1)
	release := make(chan struct{})
	errc := make(chan error, 1)
	go func() {
		errc <- d2.Update(bg, func(tx store.Tx) error {
			if err := tx.Enqueue(&store.OutMail{TicketID: "HS-1", To: []string{"a@x"}, Raw: []byte("1")}); err != nil {
				return err
			}
			<-release
			return nil
		})
	}()
	select {
	case <-woken:
		t.Fatal("woken before the enqueuing transaction committed")
	case <-time.After(300 * time.Millisecond):
	}
	close(release)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	select {
	case <-woken:
	case <-time.After(10 * time.Second):
		t.Fatal("listener not woken by mail another process queued")
	}
}

// Mail made due sooner by another process ("outbox retry" run beside the
// gateways) wakes them: an idle gateway would otherwise wait for the time
// the mail was due before.
func TestRetriedMailWakesTheOtherGateways(t *testing.T) {
	dsn := pgtest.Start(t).NewDatabase(t)
	d1, d2 := openTest(t, dsn), openTest(t, dsn)
	t.Cleanup(func() { d1.Close(); d2.Close() })
	later := time.Now().Add(time.Hour)
	m := &store.OutMail{TicketID: "HS-1", To: []string{"a@x"}, Raw: []byte("1"), Attempts: 3, NextAt: later}
	if err := d2.Update(bg, func(tx store.Tx) error { return tx.Enqueue(m) }); err != nil {
		t.Fatal(err)
	}
	woken := listening(t, d1)
	m.NextAt, m.Raw = time.Now(), nil
	if err := d2.Update(bg, func(tx store.Tx) error { return tx.Enqueue(m) }); err != nil {
		t.Fatal(err)
	}
	select {
	case <-woken:
	case <-time.After(5 * time.Second):
		t.Fatal("a gateway is not woken by mail another process made due now")
	}
}

// PostgreSQL restarted (a minor upgrade, a changed setting) ends every
// connection a gateway keeps in its pool. A write once it is back
// commits: a connection the restart ended is replaced, not the cause of
// a refused message (451) or a failed command.
func TestWritesCommitAfterServerRestart(t *testing.T) {
	c := pgtest.Start(t)
	d := openTest(t, c.NewDatabase(t))
	t.Cleanup(func() { d.Close() })
	put := func(i int) error {
		return d.Update(bg, func(tx store.Tx) error {
			id, err := tx.NewTicketID("HS")
			if err != nil {
				return err
			}
			return tx.PutTicket(&store.Ticket{ID: id, Subject: fmt.Sprint("restart ", i), Status: "new", CreatedAt: time.Now()})
		})
	}
	// Writes arriving together keep several connections open.
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			if err := put(i); err != nil {
				t.Errorf("before the restart: %v", err)
			}
		})
	}
	wg.Wait()
	c.Restart(t)
	for i := 8; i < 16; i++ {
		if err := put(i); err != nil {
			t.Errorf("write %d after the restart: %v", i, err)
		}
	}
	err := d.View(bg, func(tx store.Tx) error {
		list, _, err := tx.Tickets(store.Filter{})
		if err == nil && len(list) != 16 {
			t.Errorf("%d tickets stored, want 16", len(list))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}
