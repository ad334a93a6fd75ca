package mailout

import (
	"context"
	"encoding/binary"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt" // only to plant damage the store's API cannot make

	"ticketgate/mailout/relaytest"
	"ticketgate/store"
	"ticketgate/store/boltdb"
)

// TestDamagedOutboxEntryStopsNoOtherMail: one queued mail whose record
// no longer decodes (a damaged disk, a restore with -force) is passed
// over; the other customers' mail is still sent, rather than none at all.
func TestDamagedOutboxEntryStopsNoOtherMail(t *testing.T) {
	path := filepath.Join(t.TempDir(), "t.db")
	st, err := boltdb.Open(path, boltdb.Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var ids []uint64
	for _, to := range []string{"a@x.example", "b@x.example"} {
		m := &store.OutMail{TicketID: "HS-00000" + to[:1], Kind: "x", From: "support@example.com", To: []string{to},
			Raw: []byte("Subject: to " + to + "\r\n\r\nhello\r\n"), Created: time.Now()}
		if err := st.UpdateNow(context.Background(), func(tx store.Tx) error { return tx.Enqueue(m) }); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, m.ID)
	}
	st.Close()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte("outbox")).Put(binary.BigEndian.AppendUint64(nil, ids[0]), []byte{1, 0xff, 0xff})
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	st, err = boltdb.Open(path, boltdb.Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	relay := relaytest.Start(t)
	w := NewWorker(st, &Relay{Addr: relay.Addr, TLS: "none", Hostname: "t.example", Timeout: 5 * time.Second},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	w.RunOnce(context.Background())
	got := relay.Mails()
	if len(got) != 1 || got[0].To[0] != "b@x.example" {
		t.Errorf("relay got %+v, want the mail to b@x.example beside the damaged one", got)
	}
}
