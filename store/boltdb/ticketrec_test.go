package boltdb

import (
	"encoding/json"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"ticketgate/rules"
	"ticketgate/store"
)

// fillAll sets every field of the value v points to, and of the structs it
// holds, to a value other than its zero one, each different: a field the
// ticket codec forgets then reads back as its zero value.
func fillAll(v reflect.Value, n *int) {
	*n++
	switch v.Kind() {
	case reflect.String:
		v.SetString("s" + string(rune('a'+*n%26)) + "<&>")
	case reflect.Int, reflect.Int64:
		v.SetInt(int64(*n) * 1001)
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Slice:
		if v.Type().Elem().Kind() != reflect.String {
			return // messages and events: not in the record
		}
		v.Set(reflect.ValueOf([]string{"x" + string(rune('a'+*n%26)), ""}))
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fillAll(v.Elem(), n)
	case reflect.Struct:
		if v.Type() == reflect.TypeOf(time.Time{}) {
			v.Set(reflect.ValueOf(time.Date(2026, 12, 7, 4, 0, *n, *n, time.UTC)))
			return
		}
		for i := range v.NumField() {
			fillAll(v.Field(i), n)
		}
	default:
		panic("fillAll: no value for a field of kind " + v.Kind().String())
	}
}

func fullTicket() *store.Ticket {
	var tk store.Ticket
	n := 0
	fillAll(reflect.ValueOf(&tk).Elem(), &n)
	tk.Messages, tk.Events = nil, nil
	return &tk
}

// TestTicketRecordReadsBack: every field of a ticket, of its SLA (level
// 2's clock included), lifecycle clock and satisfaction reads back from
// the binary record, a nil list apart from an empty one, in fewer bytes
// than its JSON; the JSON of an older version reads the same.
func TestTicketRecordReadsBack(t *testing.T) {
	empty := &store.Ticket{ID: "HS-000001", CC: []string{}, SLA: &rules.SLA{Breached: []string{}}}
	for _, want := range []*store.Ticket{fullTicket(), empty, {ID: "HS-000002"}} {
		v := encodeTicket(want)
		var got store.Ticket
		if err := decodeTicket(v, &got); err != nil {
			t.Fatalf("decode %q: %v", v, err)
		}
		if !reflect.DeepEqual(&got, want) {
			t.Errorf("ticket read back as\n%+v\nwant\n%+v", got, *want)
		}
		j, err := json.Marshal(want)
		if err != nil {
			t.Fatal(err)
		}
		if len(v) >= len(j) {
			t.Errorf("binary record of %d bytes, its JSON %d", len(v), len(j))
		}
		var old store.Ticket
		if err := decodeTicket(j, &old); err != nil || old.ID != want.ID || old.Subject != want.Subject || !old.CreatedAt.Equal(want.CreatedAt) {
			t.Errorf("ticket in JSON read back as %+v, %v", old, err)
		}
	}
	berlin := &store.Ticket{ID: "HS-000003", CreatedAt: time.Date(2026, 12, 7, 5, 0, 0, 0, time.FixedZone("CET", 3600))}
	var got store.Ticket
	if err := decodeTicket(encodeTicket(berlin), &got); err != nil || !sameTime(got.CreatedAt, berlin.CreatedAt) {
		t.Errorf("creation time %v read back as %v, %v", berlin.CreatedAt, got.CreatedAt, err)
	}
}

// TestTicketRecordInJSONStillReads: a ticket stored before the binary
// form reads as before, the database checks clean, and its next change
// is written in binary, found by its status and address as before.
func TestTicketRecordInJSONStillReads(t *testing.T) {
	d := openTest(t, filepath.Join(t.TempDir(), "t.db"))
	defer d.Close()
	created := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	want := &store.Ticket{ID: "HS-000001", Subject: "Printer on fire", Status: rules.StatusOpen, Priority: rules.PriorityHigh,
		Queue: "support", Requester: "ann@customer.example", CC: []string{"bob@customer.example"}, CreatedAt: created, UpdatedAt: created,
		SLA: &rules.SLA{FirstResponseDue: created.Add(4 * time.Hour), Breached: []string{}}}
	if err := d.db.Update(func(btx *bolt.Tx) error {
		st := &tx{ctx: bg, tx: btx}
		if err := st.PutTicket(want); err != nil {
			return err
		}
		k, _ := st.ticketRecord(want.ID)
		old, err := json.Marshal(want) // as the older version wrote it
		if err != nil {
			return err
		}
		return btx.Bucket(bucketTickets).Put(k, old)
	}); err != nil {
		t.Fatal(err)
	}
	expectClean(t, d, "with a JSON ticket record")
	d.View(bg, func(st store.Tx) error {
		got, err := st.Ticket(want.ID)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("ticket reads\n%+v, %v\nwant\n%+v", got, err, want)
		}
		return nil
	})
	want.Status, want.Assignee = rules.StatusOnHold, "max@example.com"
	if err := d.UpdateNow(bg, func(tx store.Tx) error { return tx.PutTicket(want) }); err != nil {
		t.Fatal(err)
	}
	expectClean(t, d, "after the change")
	d.db.View(func(btx *bolt.Tx) error {
		if _, v := (&tx{ctx: bg, tx: btx}).ticketRecord(want.ID); len(v) == 0 || v[0] != ticketRecV1 {
			t.Errorf("ticket rewritten as %q, want the binary form", v)
		}
		return nil
	})
	d.View(bg, func(st store.Tx) error {
		got, err := st.Ticket(want.ID)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("changed ticket reads\n%+v, %v\nwant\n%+v", got, err, want)
		}
		ids, err := st.TicketsOfAddress("bob@customer.example")
		if err != nil || len(ids) != 1 || ids[0] != want.ID {
			t.Errorf("tickets of the participant: %v, %v", ids, err)
		}
		return nil
	})
}

func FuzzTicketRecord(f *testing.F) {
	f.Add(encodeTicket(fullTicket()))
	f.Add(encodeTicket(&store.Ticket{}))
	j, _ := json.Marshal(fullTicket())
	f.Add(j)
	f.Add([]byte{ticketRecV1, 1, 'H'})
	f.Fuzz(func(t *testing.T, v []byte) {
		var tk store.Ticket
		if decodeTicket(v, &tk) != nil || v[0] == '{' {
			return
		}
		var again store.Ticket
		if err := decodeTicket(encodeTicket(&tk), &again); err != nil {
			t.Fatalf("ticket %+v does not read back: %v", tk, err)
		}
		if !reflect.DeepEqual(encodeTicket(&again), encodeTicket(&tk)) {
			t.Fatalf("ticket %+v reads back as %+v", tk, again)
		}
	})
}
