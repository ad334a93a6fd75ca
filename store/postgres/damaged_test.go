package postgres

import (
	"errors"
	"slices"
	"testing"
	"time"

	"ticketgate/rules"
	"ticketgate/store"
	"ticketgate/store/postgres/pgtest"
)

// TestDamagedTicketLeavesListingsWorking: a ticket whose record does not
// decode is left out of the page of a listing it is on, which says so
// (ErrBadRecord) and still holds every other ticket and the next page's
// cursor: the sweep, which lists tickets by status, goes on without it.
func TestDamagedTicketLeavesListingsWorking(t *testing.T) {
	d := openTest(t, pgtest.Start(t).NewDatabase(t))
	defer d.Close()
	at := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	if err := d.UpdateNow(bg, func(tx store.Tx) error {
		for i, id := range []string{"HS-000001", "HS-000002", "HS-000003"} {
			c := at.Add(time.Duration(i) * time.Minute)
			if err := tx.PutTicket(&store.Ticket{ID: id, Subject: "invoice", Status: rules.StatusOpen, CreatedAt: c, UpdatedAt: c}); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.pool.Exec(bg, `UPDATE tickets SET rec = '{"created_at": "not a time"}' WHERE id = 'HS-000002'`); err != nil {
		t.Fatal(err)
	}
	for _, f := range []store.Filter{{}, {Status: rules.StatusOpen, Limit: 1}, {Sort: store.SortUpdated, Limit: 2}, {Sort: store.SortNewest, Limit: 1}} {
		var ids []string
		bad := 0
		err := d.View(bg, func(tx store.Tx) error {
			for {
				l, next, err := tx.Tickets(f)
				if errors.Is(err, store.ErrBadRecord) {
					bad++
				} else if err != nil {
					return err
				}
				for _, tk := range l {
					ids = append(ids, tk.ID)
				}
				if f.After = next; next == "" {
					return nil
				}
			}
		})
		slices.Sort(ids)
		if want := []string{"HS-000001", "HS-000003"}; err != nil || !slices.Equal(ids, want) || bad != 1 {
			t.Errorf("%+v beside a damaged ticket: %v %v (told of it %d times), want %v, told once", f, ids, err, bad, want)
		}
	}
	err := d.View(bg, func(tx store.Tx) error {
		_, err := tx.Ticket("HS-000002")
		return err
	})
	if !errors.Is(err, store.ErrBadRecord) {
		t.Errorf("reading the damaged ticket: %v, want ErrBadRecord", err)
	}
}
