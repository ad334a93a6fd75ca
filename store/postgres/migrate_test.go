package postgres

import (
	"fmt"
	"testing"
	"time"

	"ticketgate/rules"
	"ticketgate/store"
	"ticketgate/store/postgres/pgtest"
)

// A schema-2 database has no ticket_addrs. Migrating builds it from the
// tickets' requesters and participants, and PutTicket keeps it after.
func TestMigrateFromV2BuildsAddressIndex(t *testing.T) {
	dsn := pgtest.Start(t).NewDatabase(t)
	d := openTest(t, dsn)
	t0 := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	err := d.UpdateNow(bg, func(tx store.Tx) error {
		for _, tk := range []*store.Ticket{
			{ID: "HS-000001", Status: rules.StatusOpen, Requester: "Ann@customer.example", CC: []string{"cy@customer.example"}, CreatedAt: t0},
			{ID: "HS-000002", Status: rules.StatusClosed, Requester: "bob@customer.example", CC: []string{"ann@customer.example"}, CreatedAt: t0},
			{ID: "HS-000003", Status: rules.StatusNew, Requester: "", CreatedAt: t0},
		} {
			if err := tx.PutTicket(tk); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.pool.Exec(bg, `DROP TABLE ticket_addrs; UPDATE ticketgate_schema SET version = 2`); err != nil {
		t.Fatal(err)
	}
	d.Close()

	d = openTest(t, dsn)
	defer d.Close()
	check := func(what string, want map[string]string) {
		t.Helper()
		d.View(bg, func(tx store.Tx) error {
			for a, w := range want {
				if ids, err := tx.TicketsOfAddress(a); err != nil || fmt.Sprint(ids) != w {
					t.Errorf("%s: tickets of %s: %v %v, want %s", what, a, ids, err, w)
				}
			}
			return nil
		})
	}
	check("migrated", map[string]string{"ann@customer.example": "[HS-000001 HS-000002]", "cy@customer.example": "[HS-000001]",
		"bob@customer.example": "[HS-000002]", "": "[]"})
	err = d.UpdateNow(bg, func(tx store.Tx) error {
		tk, err := tx.Ticket("HS-000001")
		if err != nil {
			return err
		}
		tk.CC = nil
		return tx.PutTicket(tk)
	})
	if err != nil {
		t.Fatal(err)
	}
	check("changed", map[string]string{"ann@customer.example": "[HS-000001 HS-000002]", "cy@customer.example": "[]"})
}
