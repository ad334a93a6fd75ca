package boltdb

import (
	"bytes"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"ticketgate/rules"
	"ticketgate/store"
)

// TestSentMailIndexedUnderTheTicketsPosting: a ticket's sent mail is
// indexed under its posting (the order tickets were opened), listed
// with what an earlier release indexed under its id, in order, and still
// listed after the ticket's creation time changed; a ticket without a
// record keeps the index by id.
func TestSentMailIndexedUnderTheTicketsPosting(t *testing.T) {
	d := openTest(t, filepath.Join(t.TempDir(), "t.db"))
	defer d.Close()
	d0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tk := &store.Ticket{ID: "HS-000002", Status: rules.StatusOpen, CreatedAt: d0}
	sent := func(ticketID string, id uint64) {
		t.Helper()
		if err := d.Update(bg, func(st store.Tx) error {
			return st.Sent(&store.OutMail{ID: id, TicketID: ticketID, To: []string{"ann@customer.example"}, Kind: "reply"})
		}); err != nil {
			t.Fatal(err)
		}
	}
	listed := func(ticketID string) string {
		t.Helper()
		var ids []uint64
		d.View(bg, func(st store.Tx) error {
			_, s, err := st.TicketMail(ticketID)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range s {
				ids = append(ids, m.ID)
			}
			return nil
		})
		return fmt.Sprint(ids)
	}
	has := func(k []byte) (ok bool) {
		d.db.View(func(btx *bolt.Tx) error {
			ok = hasKey(btx.Bucket(bucketMeta), k) // the value is empty: Get cannot tell
			return nil
		})
		return ok
	}

	if err := d.Update(bg, func(st store.Tx) error { return st.PutTicket(tk) }); err != nil {
		t.Fatal(err)
	}
	sent("HS-000002", 3)
	// As a release before schema 12 indexed it: under the ticket's id.
	d.db.Update(func(btx *bolt.Tx) error {
		meta := btx.Bucket(bucketMeta)
		if err := meta.Put(key([]byte("sent"), u64(1)), []byte(`{"ticket_id":"HS-000002","to":["ann@customer.example"]}`)); err != nil {
			return err
		}
		return meta.Put(key([]byte("sentt"), []byte("HS-000002"), u64(1)), nil)
	})
	sent("HS-000009", 4) // no such ticket
	sent("HS-0000022", 5)

	if got := listed("HS-000002"); got != "[1 3]" {
		t.Errorf("sent mail of HS-000002: %s, want [1 3]", got)
	}
	if !has(key([]byte("sentp"), posting(d0, "HS-000002"), u64(3))) || has(key([]byte("sentt"), []byte("HS-000002"), u64(3))) {
		t.Error("mail 3 is not indexed under its ticket's posting alone")
	}
	if got := listed("HS-000009"); got != "[4]" {
		t.Errorf("sent mail of a ticket without a record: %s, want [4]", got)
	}

	tk.CreatedAt = d0.Add(time.Hour)
	if err := d.Update(bg, func(st store.Tx) error { return st.PutTicket(tk) }); err != nil {
		t.Fatal(err)
	}
	sent("HS-000002", 6)
	if got := listed("HS-000002"); got != "[1 3 6]" {
		t.Errorf("sent mail of HS-000002 after its creation time changed: %s, want [1 3 6]", got)
	}
	if has(key([]byte("sentp"), posting(d0, "HS-000002"), u64(3))) {
		t.Error("mail 3 is still indexed under the ticket's old posting")
	}
	expectClean(t, d, "with sent mail indexed both ways")
}

func hasKey(b *bolt.Bucket, k []byte) bool {
	got, _ := b.Cursor().Seek(k)
	return bytes.Equal(got, k)
}
