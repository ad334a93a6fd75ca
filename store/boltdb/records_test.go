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
		r, err := st.enqueueRec(&store.OutMail{TicketID: "HS-000001", To: []string{"a@x"}, Raw: mail})
		if err != nil {
			return err
		}
		id = r.ID
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

// enqueueRec queues m and returns its record as stored.
func (t *tx) enqueueRec(m *store.OutMail) (*outboxRec, error) {
	if err := t.Enqueue(m); err != nil {
		return nil, err
	}
	return t.outboxRec(m.ID)
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

func sampleMessageRec() messageRec {
	return messageRec{MessageID: "m1@customer.example", Direction: "in", Kind: "customer", From: "ann@customer.example",
		To: []string{"support@example.com"}, Cc: []string{"bob@customer.example"}, Subject: "Printer on fire",
		Text: "Hello,\n\"it\" <b>burns</b> & ünïcode.\n", VisibleSpan: &[2]int{0, 7}, TextInRaw: &[2]int{120, 40},
		CreatedAt:   time.Date(2026, 12, 6, 10, 0, 0, 5, time.FixedZone("", -5*3600)),
		Attachments: []store.Attachment{{Filename: "scan.pdf", ContentType: "application/pdf", Size: 1234, SHA256: "ab12", ContentID: "c1", Inline: true}, {Filename: "b.txt", Size: -1}},
		Raw:         "ffee", Notes: []string{"redacted: card number"}}
}

// sameMessageRec compares two message records, the time by instant and
// zone offset, an empty cc or notes list as nil (JSON omits both).
func sameMessageRec(t *testing.T, got, want messageRec) {
	t.Helper()
	for _, l := range []*[]string{&got.Cc, &want.Cc, &got.Notes, &want.Notes} {
		if len(*l) == 0 {
			*l = nil
		}
	}
	_, go1 := got.CreatedAt.Zone()
	_, wo := want.CreatedAt.Zone()
	if !got.CreatedAt.Equal(want.CreatedAt) || go1 != wo {
		t.Errorf("time %v read back as %v", want.CreatedAt, got.CreatedAt)
	}
	got.CreatedAt, want.CreatedAt = time.Time{}, time.Time{}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("record read back as\n%+v\nwant\n%+v", got, want)
	}
}

// TestMessageRecordReadsBack: every field, and a nil list apart from an
// empty one where the public JSON shows the difference (to, attachments).
func TestMessageRecordReadsBack(t *testing.T) {
	for _, want := range []messageRec{sampleMessageRec(), {MessageID: "x@y"}, {MessageID: "x@y", To: []string{}, Attachments: []store.Attachment{}}} {
		v := encodeMessageRec(&want)
		var got messageRec
		if err := decodeMessageRec(v, &got); err != nil {
			t.Fatalf("decode %q: %v", v, err)
		}
		sameMessageRec(t, got, want)
		if (got.To == nil) != (want.To == nil) || (got.Attachments == nil) != (want.Attachments == nil) {
			t.Errorf("lists %#v %#v read back as %#v %#v", want.To, want.Attachments, got.To, got.Attachments)
		}
		if id, err := recordMessageID(v); err != nil || id != want.MessageID {
			t.Errorf("recordMessageID = %q, %v", id, err)
		}
		if j, _ := json.Marshal(want); len(v) >= len(j) {
			t.Errorf("binary record of %d bytes, its JSON %d", len(v), len(j))
		}
	}
}

// TestMessageRecordInJSONStillReads: a message stored before the binary
// form reads as before: found by its Message-ID, its text, attachments
// and raw copy, and the database checks clean.
func TestMessageRecordInJSONStillReads(t *testing.T) {
	d := openTest(t, filepath.Join(t.TempDir(), "t.db"))
	defer d.Close()
	raw := []byte("From: ann@customer.example\r\nSubject: jam\r\n\r\nThe printer jammed.\r\n")
	file := []byte("a scan")
	want := &store.Message{MessageID: "old@customer.example", Direction: "in", Kind: "customer", From: "ann@customer.example",
		To: []string{"support@example.com"}, Subject: "jam", Text: "The printer jammed.\n", VisibleText: "The printer jammed.\n",
		CreatedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	if err := d.db.Update(func(btx *bolt.Tx) error {
		st := &tx{ctx: bg, tx: btx}
		if err := st.PutTicket(&store.Ticket{ID: "HS-000001", Status: rules.StatusOpen}); err != nil {
			return err
		}
		var err error
		if want.Raw, err = st.PutBlob(raw); err != nil {
			return err
		}
		h, err := st.PutBlob(file)
		if err != nil {
			return err
		}
		want.Attachments = []store.Attachment{{Filename: "scan.pdf", ContentType: "application/pdf", Size: int64(len(file)), SHA256: h}}
		if err := st.AddMessage("HS-000001", want); err != nil {
			return err
		}
		keys, vals, err := st.keysOf(bucketMessages, "HS-000001")
		if err != nil || len(keys) != 1 {
			t.Fatalf("messages of HS-000001: %q %v", keys, err)
		}
		var r messageRec
		if err := decodeMessageRec(vals[0], &r); err != nil {
			return err
		}
		if r.TextInRaw == nil {
			t.Errorf("the text is not kept in the raw copy: %+v", r)
		}
		old, err := json.Marshal(&r)
		if err != nil {
			return err
		}
		// As the older version wrote it: JSON, under the ticket's id.
		if err := btx.Bucket(bucketMessages).Delete(keys[0]); err != nil {
			return err
		}
		return btx.Bucket(bucketMessages).Put(key([]byte("HS-000001"), u64(1)), old)
	}); err != nil {
		t.Fatal(err)
	}
	expectClean(t, d, "with a JSON message record")
	d.View(bg, func(st store.Tx) error {
		m, found, err := st.MessageByID("HS-000001", "<old@customer.example>")
		if err != nil || !found {
			t.Fatalf("message by id: %v, %v", found, err)
		}
		if m.Text != want.Text || m.VisibleText != want.VisibleText || m.Raw != want.Raw || !reflect.DeepEqual(m.Attachments, want.Attachments) || !m.CreatedAt.Equal(want.CreatedAt) {
			t.Errorf("read back %+v\nwant %+v", m, want)
		}
		return nil
	})
}

func FuzzMessageRecord(f *testing.F) {
	r := sampleMessageRec()
	f.Add(encodeMessageRec(&r))
	f.Add(encodeMessageRec(&messageRec{}))
	j, _ := json.Marshal(&r)
	f.Add(j)
	f.Add([]byte{messageRecV1, 1, 'x', 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, v []byte) {
		var r messageRec
		if decodeMessageRec(v, &r) != nil {
			return
		}
		var again messageRec
		if err := decodeMessageRec(encodeMessageRec(&r), &again); err != nil {
			t.Fatalf("record %+v does not read back: %v", r, err)
		}
		sameMessageRec(t, again, r)
		if id, err := recordMessageID(v); err != nil || id != r.MessageID {
			t.Errorf("recordMessageID = %q, %v; the record says %q", id, err, r.MessageID)
		}
	})
}
