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

func sampleOutboxRec() outboxRec {
	berlin := time.FixedZone("CET", 3600)
	return outboxRec{ID: 300, TicketID: "HS-004711", Kind: "notify", From: "bounce+x@tickets.example.com",
		To: []string{"ana@example.com", "Max <max@example.com>"}, Attempts: 3,
		NextAt: time.Date(2026, 12, 6, 9, 30, 0, 123456789, time.UTC), Created: time.Date(2026, 12, 6, 10, 0, 0, 0, berlin),
		LastErr: "451 4.3.0 try later", Done: []string{"ana@example.com"}, Carries: "<m1@example.com>",
		ClaimedBy: "gw1", ClaimedUntil: time.Date(2026, 12, 6, 9, 31, 0, 0, time.UTC), ClaimGen: "g7"}
}

// sameRec compares two records field by field, times by instant and zone
// offset (the location pointer of a decoded time is a fresh one), an
// empty list as nil (the binary form keeps no difference).
func sameRec(t *testing.T, got, want outboxRec) {
	t.Helper()
	for _, l := range []*[]string{&got.To, &want.To, &got.Done, &want.Done} {
		if len(*l) == 0 {
			*l = nil
		}
	}
	for _, p := range [][2]*time.Time{{&got.NextAt, &want.NextAt}, {&got.Created, &want.Created}, {&got.ClaimedUntil, &want.ClaimedUntil}} {
		_, go1 := p[0].Zone()
		_, wo := p[1].Zone()
		if !p[0].Equal(*p[1]) || go1 != wo {
			t.Errorf("time %v read back as %v", *p[1], *p[0])
		}
		*p[0], *p[1] = time.Time{}, time.Time{}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("record read back as\n%+v\nwant\n%+v", got, want)
	}
}

func TestOutboxRecordReadsBack(t *testing.T) {
	for _, want := range []outboxRec{sampleOutboxRec(), {ID: 1, TicketID: "HS-1", To: []string{"a@x"}}} {
		v := encodeOutboxRec(&want)
		var got outboxRec
		if err := decodeOutboxRec(v, &got); err != nil {
			t.Fatalf("decode %x: %v", v, err)
		}
		sameRec(t, got, want)
		if j, _ := json.Marshal(want); len(v) >= len(j) {
			t.Errorf("binary record of %d bytes, its JSON %d", len(v), len(j))
		}
	}
}

// TestOutboxRecordInJSONStillReads: a database written before the binary
// form holds JSON records; they read as before, and the outbox sends and
// dequeues such an entry.
func TestOutboxRecordInJSONStillReads(t *testing.T) {
	want := sampleOutboxRec()
	j, err := json.Marshal(&want)
	if err != nil {
		t.Fatal(err)
	}
	var got outboxRec
	if err := decodeOutboxRec(j, &got); err != nil {
		t.Fatal(err)
	}
	sameRec(t, got, want)

	d := openTest(t, filepath.Join(t.TempDir(), "t.db"))
	defer d.Close()
	mail := []byte("Subject: old\r\n\r\nqueued by an older version\r\n")
	var id uint64
	if err := d.db.Update(func(btx *bolt.Tx) error {
		st := &tx{ctx: bg, tx: btx}
		if err := st.PutTicket(&store.Ticket{ID: "HS-000001", Status: rules.StatusOpen}); err != nil {
			return err
		}
		m := store.OutMail{TicketID: "HS-000001", To: []string{"a@x"}, Raw: mail}
		if err := st.Enqueue(&m); err != nil {
			return err
		}
		id = m.ID
		r, err := st.outboxRec(id)
		if err != nil {
			return err
		}
		old, err := json.Marshal(r) // as the older version wrote it
		if err != nil {
			return err
		}
		return btx.Bucket(bucketOutbox).Put(u64(id), old)
	}); err != nil {
		t.Fatal(err)
	}
	expectClean(t, d, "with a JSON outbox record")
	var due []*store.OutMail
	d.View(bg, func(tx store.Tx) error {
		due, err = tx.Outbox(time.Now().Add(time.Minute), 0)
		if raw, err := tx.OutboxRaw(id); err != nil || string(raw) != string(mail) {
			t.Errorf("old entry's mail reads %q, %v", raw, err)
		}
		return nil
	})
	if err != nil || len(due) != 1 || due[0].ID != id || due[0].To[0] != "a@x" {
		t.Fatalf("due: %+v, %v", due, err)
	}
	if err := d.UpdateNow(bg, func(tx store.Tx) error { return tx.Dequeue(id) }); err != nil {
		t.Fatal(err)
	}
	if n := keysIn(d, bucketOutbox); n != 0 {
		t.Errorf("%d outbox records after the dequeue", n)
	}
	expectClean(t, d, "after the dequeue")
}

func FuzzOutboxRecord(f *testing.F) {
	r := sampleOutboxRec()
	f.Add(encodeOutboxRec(&r))
	f.Add(encodeOutboxRec(&outboxRec{}))
	j, _ := json.Marshal(&r)
	f.Add(j)
	f.Add([]byte{outboxRecV1, 0xff})
	f.Fuzz(func(t *testing.T, v []byte) {
		var r outboxRec
		if decodeOutboxRec(v, &r) != nil {
			return
		}
		var again outboxRec
		if err := decodeOutboxRec(encodeOutboxRec(&r), &again); err != nil {
			t.Fatalf("record %+v does not read back: %v", r, err)
		}
		sameRec(t, again, r)
	})
}
