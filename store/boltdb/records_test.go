package boltdb

import (
	"encoding/json"
	"path/filepath"
	"reflect"
	"slices"
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

// sameTime reports whether a and b are the same instant in the same zone
// offset (a decoded time's location is a fresh one).
func sameTime(a, b time.Time) bool {
	_, ao := a.Zone()
	_, bo := b.Zone()
	return a.Equal(b) && ao == bo
}

func sameTimes(a, b []time.Time) bool {
	return slices.EqualFunc(a, b, sameTime)
}

// sameEvent compares two events, the time as sameTime does.
func sameEvent(a, b store.Event) bool {
	return sameTime(a.At, b.At) && a.Type == b.Type && a.Detail == b.Detail && a.Actor == b.Actor
}

// sameSent compares two sent records, the time as sameTime does, an
// empty list apart from nil (the JSON shows [] or null).
func sameSent(a, b sentRec) bool {
	return a.TicketID == b.TicketID && a.Kind == b.Kind && sameTime(a.At, b.At) &&
		slices.Equal(a.To, b.To) && (a.To == nil) == (b.To == nil)
}

var (
	berlinWinter = time.Date(2026, 12, 6, 10, 0, 0, 123456789, time.FixedZone("CET", 3600))
	sampleTimes  = []time.Time{time.Date(2026, 12, 6, 9, 0, 0, 1, time.UTC), berlinWinter}
	sampleEvent  = store.Event{At: berlinWinter, Type: rules.EventNotified, Detail: "agents notified: ana@example.com, <max> & co", Actor: "max@example.com"}
	sampleSent   = sentRec{TicketID: "HS-004711", To: []string{"ann@customer.example", "Bob <bob@x>"}, Kind: "auto", At: berlinWinter}
)

// TestCountersEventsAndSentReadBack: rate counters, events and sent
// records read back from their binary form as they were written, every
// field and zone offset kept, in fewer bytes than their JSON; and the
// JSON an older version wrote reads the same.
func TestCountersEventsAndSentReadBack(t *testing.T) {
	for _, want := range [][]time.Time{sampleTimes, {berlinWinter}, {{}}} {
		v := encodeRate(want)
		got, err := decodeRate("k", v)
		if err != nil || !sameTimes(got, want) {
			t.Errorf("rate %v read back as %v, %v", want, got, err)
		}
		j, _ := json.Marshal(want)
		if len(v) >= len(j) {
			t.Errorf("binary counter of %d bytes, its JSON %d", len(v), len(j))
		}
		if got, err := decodeRate("k", j); err != nil || !sameTimes(got, want) {
			t.Errorf("rate in JSON %s read back as %v, %v", j, got, err)
		}
	}
	for _, want := range []store.Event{sampleEvent, {}} {
		v := encodeEvent(want)
		var got store.Event
		if err := decodeEvent(v, &got); err != nil || !sameEvent(got, want) {
			t.Errorf("event %+v read back as %+v, %v", want, got, err)
		}
		j, _ := json.Marshal(want)
		if len(v) >= len(j) {
			t.Errorf("binary event of %d bytes, its JSON %d", len(v), len(j))
		}
		var old store.Event
		if err := decodeEvent(j, &old); err != nil || !sameEvent(old, want) {
			t.Errorf("event in JSON %s read back as %+v, %v", j, old, err)
		}
	}
	for _, want := range []sentRec{sampleSent, {TicketID: "HS-1", To: []string{}}, {}} {
		v := encodeSent(want)
		var got sentRec
		if err := decodeSent(v, &got); err != nil || !sameSent(got, want) {
			t.Errorf("sent %#v read back as %#v, %v", want, got, err)
		}
		j, _ := json.Marshal(want)
		if len(v) >= len(j) {
			t.Errorf("binary sent record of %d bytes, its JSON %d", len(v), len(j))
		}
		var old sentRec
		if err := decodeSent(j, &old); err != nil || !sameSent(old, want) {
			t.Errorf("sent in JSON %s read back as %#v, %v", j, old, err)
		}
	}
}

// TestCountersEventsAndSentInJSONStillRead: a database written before the
// binary forms holds a JSON counter, event and sent record; the store
// reads them as before, the database checks clean, and the counter's
// next count is written in binary.
func TestCountersEventsAndSentInJSONStillRead(t *testing.T) {
	d := openTest(t, filepath.Join(t.TempDir(), "t.db"))
	defer d.Close()
	const id, counter = "HS-000001", "in:sender:ann@customer.example"
	if err := d.db.Update(func(btx *bolt.Tx) error {
		st := &tx{ctx: bg, tx: btx}
		if err := st.PutTicket(&store.Ticket{ID: id, Status: rules.StatusOpen, CreatedAt: berlinWinter}); err != nil {
			return err
		}
		if err := st.AddEvent(id, store.Event{Type: "placeholder", TicketCreated: berlinWinter}); err != nil {
			return err
		}
		if err := st.Sent(&store.OutMail{ID: 7, TicketID: id, Kind: "auto", To: []string{"placeholder@x"}}); err != nil {
			return err
		}
		// As the older version wrote them: JSON, under the same keys.
		keys, _, err := st.keysOf(bucketEvents, id)
		if err != nil || len(keys) != 1 {
			t.Fatalf("events of %s: %q %v", id, keys, err)
		}
		for _, p := range []struct {
			bucket, k []byte
			v         any
		}{
			{bucketRate, rateKey(counter), sampleTimes},
			{bucketEvents, keys[0], sampleEvent},
			{bucketMeta, key([]byte("sent"), u64(7)), sentRec{TicketID: id, To: sampleSent.To, Kind: "auto", At: berlinWinter}},
		} {
			old, err := json.Marshal(p.v)
			if err != nil {
				return err
			}
			if err := btx.Bucket(p.bucket).Put(p.k, old); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	expectClean(t, d, "with JSON counters, events and sent records")
	d.View(bg, func(st store.Tx) error {
		if ts, err := st.RateTimes(counter); err != nil || !sameTimes(ts, sampleTimes) {
			t.Errorf("counter reads %v, %v; want %v", ts, err, sampleTimes)
		}
		tk, err := st.TicketFull(id)
		if err != nil || len(tk.Events) != 1 || !sameEvent(tk.Events[0], sampleEvent) {
			t.Errorf("events read %+v, %v; want %+v", tk, err, sampleEvent)
		}
		_, sent, err := st.TicketMail(id)
		if err != nil || len(sent) != 1 || sent[0].Kind != "auto" || !slices.Equal(sent[0].To, sampleSent.To) || !sameTime(sent[0].At, berlinWinter) {
			t.Errorf("sent mail reads %+v, %v", sent, err)
		}
		if tid, to, err := st.SentTo(7); err != nil || tid != id || !slices.Equal(to, sampleSent.To) {
			t.Errorf("SentTo(7) = %q %v, %v", tid, to, err)
		}
		return nil
	})
	next := append(slices.Clone(sampleTimes), berlinWinter.Add(time.Minute))
	if err := d.UpdateNow(bg, func(tx store.Tx) error { return tx.PutRateTimes(counter, next) }); err != nil {
		t.Fatal(err)
	}
	d.db.View(func(btx *bolt.Tx) error {
		if v := btx.Bucket(bucketRate).Get(rateKey(counter)); len(v) == 0 || v[0] != rateV1 {
			t.Errorf("counter rewritten as %q, want the binary form", v)
		}
		return nil
	})
	d.View(bg, func(st store.Tx) error {
		if ts, err := st.RateTimes(counter); err != nil || !sameTimes(ts, next) {
			t.Errorf("counter reads %v, %v after the next count; want %v", ts, err, next)
		}
		return nil
	})
}

func FuzzRateRecord(f *testing.F) {
	f.Add(encodeRate(sampleTimes))
	f.Add(encodeRate(nil))
	j, _ := json.Marshal(sampleTimes)
	f.Add(j)
	f.Add([]byte{rateV1, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, v []byte) {
		ts, err := decodeRate("k", v)
		if err != nil {
			return
		}
		again, err := decodeRate("k", encodeRate(ts))
		if err != nil || !sameTimes(again, ts) {
			t.Fatalf("counter %v reads back as %v, %v", ts, again, err)
		}
	})
}

func FuzzEventRecord(f *testing.F) {
	f.Add(encodeEvent(sampleEvent))
	f.Add(encodeEvent(store.Event{}))
	j, _ := json.Marshal(sampleEvent)
	f.Add(j)
	f.Add([]byte{eventV1, 15})
	f.Fuzz(func(t *testing.T, v []byte) {
		var e store.Event
		if decodeEvent(v, &e) != nil {
			return
		}
		var again store.Event
		if err := decodeEvent(encodeEvent(e), &again); err != nil || !sameEvent(again, e) {
			t.Fatalf("event %+v reads back as %+v, %v", e, again, err)
		}
	})
}

func FuzzSentRecord(f *testing.F) {
	f.Add(encodeSent(sampleSent))
	f.Add(encodeSent(sentRec{}))
	j, _ := json.Marshal(sampleSent)
	f.Add(j)
	f.Add([]byte{sentV1, 3, 'H', 'S'})
	f.Fuzz(func(t *testing.T, v []byte) {
		var r sentRec
		if decodeSent(v, &r) != nil {
			return
		}
		var again sentRec
		if err := decodeSent(encodeSent(r), &again); err != nil || !sameSent(again, r) {
			t.Fatalf("sent record %#v reads back as %#v, %v", r, again, err)
		}
	})
}
