package storetest

import (
	"fmt"
	"testing"
	"time"

	"ticketgate/rules"
	"ticketgate/store"
)

// testTicketsOfAddress: the requester and every participant find a
// ticket by their address in any case, in every status; a changed
// requester or participant list moves the ticket, and the index is
// still right after a reopen.
func testTicketsOfAddress(t *testing.T, b Backend) {
	h := b.openT(t)
	d0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	t1 := &store.Ticket{ID: "HS-000001", Status: rules.StatusOpen, CreatedAt: d0, Requester: "Alice@Customer.example", CC: []string{"carol@customer.example"}}
	t2 := &store.Ticket{ID: "HS-000002", Status: rules.StatusClosed, CreatedAt: d0, Requester: "alice@customer.example", CC: []string{}}
	t3 := &store.Ticket{ID: "HS-000003", Status: rules.StatusNew, CreatedAt: d0, Requester: "bob@customer.example", CC: []string{"ALICE@customer.example", "dave@customer.example"}}
	update(t, h.s, func(tx store.Tx) error {
		for _, tk := range []*store.Ticket{t1, t2, t3} {
			if err := tx.PutTicket(tk); err != nil {
				return err
			}
		}
		return nil
	})
	of := func(addr string) string {
		var ids []string
		view(t, h.s, func(tx store.Tx) error {
			var err error
			ids, err = tx.TicketsOfAddress(addr)
			return err
		})
		return fmt.Sprint(ids)
	}
	want := map[string]string{
		"alice@customer.example": "[HS-000001 HS-000002 HS-000003]",
		"Alice@CUSTOMER.example": "[HS-000001 HS-000002 HS-000003]",
		"carol@customer.example": "[HS-000001]",
		"bob@customer.example":   "[HS-000003]",
		"dave@customer.example":  "[HS-000003]",
		"eve@customer.example":   "[]",
		"alice@customer":         "[]",
	}
	check := func(when string) {
		t.Helper()
		for addr, w := range want {
			if got := of(addr); got != w {
				t.Errorf("%s: tickets of %s: %s, want %s", when, addr, got, w)
			}
		}
	}
	check("after put")

	// Carol leaves HS-000001, erin joins; HS-000003 gets a new requester.
	t1.CC = []string{"erin@customer.example"}
	t3.Requester = "frank@customer.example"
	update(t, h.s, func(tx store.Tx) error {
		if err := tx.PutTicket(t1); err != nil {
			return err
		}
		return tx.PutTicket(t3)
	})
	want["carol@customer.example"] = "[]"
	want["erin@customer.example"] = "[HS-000001]"
	want["bob@customer.example"] = "[]"
	want["frank@customer.example"] = "[HS-000003]"
	check("after change")
	if b.Reopen != nil {
		b.reopen(t, h)
		check("after reopen")
	}
}
