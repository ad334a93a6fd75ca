package storetest

import (
	"fmt"
	"testing"
	"time"

	"ticketgate/store"
)

func ids(ms []*store.OutMail) string {
	var s []uint64
	for _, m := range ms {
		s = append(s, m.ID)
	}
	return fmt.Sprint(s)
}

func raw(t *testing.T, s store.Store, id uint64) string {
	t.Helper()
	var r []byte
	view(t, s, func(tx store.Tx) error {
		var err error
		r, err = tx.OutboxRaw(id)
		return err
	})
	return string(r)
}

func testOutboxKeepsMailUntilDequeued(t *testing.T, b Backend) {
	h := b.openT(t)
	now := time.Now()
	update(t, h.s, func(tx store.Tx) error {
		if err := tx.Enqueue(&store.OutMail{TicketID: "HS-1", To: []string{"a@x"}, Raw: []byte("one")}); err != nil {
			return err
		}
		return tx.Enqueue(&store.OutMail{TicketID: "HS-2", To: []string{"b@x"}, Raw: []byte("two"), NextAt: now.Add(time.Hour)})
	})
	b.reopen(t, h)
	var due, all []*store.OutMail
	view(t, h.s, func(tx store.Tx) error {
		var err error
		if due, err = tx.Outbox(now, 0); err != nil {
			return err
		}
		all, err = tx.Outbox(store.Forever, 0)
		return err
	})
	if len(due) != 1 || raw(t, h.s, due[0].ID) != "one" || len(all) != 2 {
		t.Fatalf("due %d all %d", len(due), len(all))
	}
	update(t, h.s, func(tx store.Tx) error { return tx.Dequeue(due[0].ID) })
	view(t, h.s, func(tx store.Tx) error {
		var err error
		all, err = tx.Outbox(store.Forever, 0)
		return err
	})
	if len(all) != 1 || raw(t, h.s, all[0].ID) != "two" {
		t.Errorf("after dequeue: %d left", len(all))
	}
	view(t, h.s, func(tx store.Tx) error {
		if _, err := tx.OutboxRaw(due[0].ID); !isNotFound(err) {
			t.Errorf("raw of a dequeued entry: %v", err)
		}
		if _, err := tx.OutboxEntry(due[0].ID); !isNotFound(err) {
			t.Errorf("dequeued entry: %v", err)
		}
		return nil
	})
	// Dequeuing what is gone is no error.
	update(t, h.s, func(tx store.Tx) error { return tx.Dequeue(due[0].ID) })
}

func testOutboxDueOnly(t *testing.T, b Backend) {
	h := b.openT(t)
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	created := now.Add(-time.Hour)
	// ids 1..6; NextAt out of id order.
	next := []time.Time{{}, now.Add(time.Hour), now.Add(-time.Minute), now, now.Add(time.Second), {}}
	update(t, h.s, func(tx store.Tx) error {
		for i, at := range next {
			m := &store.OutMail{TicketID: fmt.Sprintf("HS-%d", i), Kind: "auto", From: "bounces@y", To: []string{"a@x", "b@x"},
				Raw: []byte(fmt.Sprintf("mail %d", i)), Attempts: i, NextAt: at, Created: created, LastErr: "451 <later>"}
			if err := tx.Enqueue(m); err != nil {
				return err
			}
			if m.ID != uint64(i+1) {
				return fmt.Errorf("entry %d got id %d", i, m.ID)
			}
		}
		return nil
	})
	view(t, h.s, func(tx store.Tx) error {
		for _, c := range []struct {
			now   time.Time
			limit int
			want  string
		}{
			{now, 0, "[1 3 4 6]"},
			{now.Add(-2 * time.Minute), 0, "[1 6]"},
			{now, 3, "[1 3 6]"}, // the three earliest due, in id order
			{store.Forever, 0, "[1 2 3 4 5 6]"},
			{time.Time{}, 0, "[1 2 3 4 5 6]"},
		} {
			got, err := tx.Outbox(c.now, c.limit)
			if err != nil || ids(got) != c.want {
				t.Errorf("Outbox(%v, %d) = %s %v, want %s", c.now, c.limit, ids(got), err, c.want)
			}
			for _, m := range got {
				if m.Raw != nil {
					t.Errorf("Outbox returned a body for %d", m.ID)
				}
			}
		}
		got, err := tx.OutboxEntry(2)
		if err != nil {
			return err
		}
		want := &store.OutMail{ID: 2, TicketID: "HS-1", Kind: "auto", From: "bounces@y", To: []string{"a@x", "b@x"},
			Attempts: 1, NextAt: now.Add(time.Hour), Created: created, LastErr: "451 <later>"}
		if jsonOf(got) != jsonOf(want) {
			t.Errorf("entry 2\n got %s\nwant %s", jsonOf(got), jsonOf(want))
		}
		if at, err := tx.NextOutboxAt(); err != nil || !at.IsZero() {
			t.Errorf("NextOutboxAt with a due-at-once entry: %v %v", at, err)
		}
		list, err := tx.OutboxList(0, 0)
		if err != nil || ids(list) != "[1 2 3 4 5 6]" {
			t.Errorf("OutboxList: %s %v", ids(list), err)
		}
		if list, err = tx.OutboxList(2, 3); err != nil || ids(list) != "[3 4 5]" {
			t.Errorf("OutboxList(2, 3): %s %v", ids(list), err)
		}
		return nil
	})
	if r := raw(t, h.s, 5); r != "mail 4" {
		t.Errorf("raw 5: %q", r)
	}
	update(t, h.s, func(tx store.Tx) error {
		for _, id := range []uint64{1, 3, 4, 6} {
			if err := tx.Dequeue(id); err != nil {
				return err
			}
		}
		return nil
	})
	view(t, h.s, func(tx store.Tx) error {
		if at, err := tx.NextOutboxAt(); err != nil || !at.Equal(now.Add(time.Second)) {
			t.Errorf("NextOutboxAt: %v %v", at, err)
		}
		if got, err := tx.Outbox(now, 0); err != nil || len(got) != 0 {
			t.Errorf("due after dequeue: %s %v", ids(got), err)
		}
		return nil
	})
	update(t, h.s, func(tx store.Tx) error {
		for _, id := range []uint64{2, 5} {
			if err := tx.Dequeue(id); err != nil {
				return err
			}
		}
		return nil
	})
	view(t, h.s, func(tx store.Tx) error {
		if at, err := tx.NextOutboxAt(); err != nil || !at.IsZero() {
			t.Errorf("NextOutboxAt of an empty outbox: %v %v", at, err)
		}
		return nil
	})
}

// A deferred entry is written again with new attempts and NextAt but no
// body: it keeps its mail and moves in the due order.
func testOutboxRequeueKeepsMail(t *testing.T, b Backend) {
	h := b.openT(t)
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	m := &store.OutMail{TicketID: "HS-1", To: []string{"a@x"}, Raw: []byte("the mail"), Created: now}
	update(t, h.s, func(tx store.Tx) error { return tx.Enqueue(m) })
	var got []*store.OutMail
	view(t, h.s, func(tx store.Tx) error {
		var err error
		got, err = tx.Outbox(now, 0)
		return err
	})
	d := got[0]
	d.Attempts++
	d.NextAt = now.Add(time.Minute)
	d.LastErr = "451"
	update(t, h.s, func(tx store.Tx) error { return tx.Enqueue(d) })
	view(t, h.s, func(tx store.Tx) error {
		if due, err := tx.Outbox(now, 0); err != nil || len(due) != 0 {
			t.Errorf("deferred entry still due: %s %v", ids(due), err)
		}
		if due, err := tx.Outbox(now.Add(time.Minute), 0); err != nil || ids(due) != fmt.Sprint([]uint64{m.ID}) || due[0].Attempts != 1 || due[0].LastErr != "451" {
			t.Errorf("deferred entry at its time: %+v %v", due, err)
		}
		if at, err := tx.NextOutboxAt(); err != nil || !at.Equal(now.Add(time.Minute)) {
			t.Errorf("NextOutboxAt: %v %v", at, err)
		}
		return nil
	})
	if r := raw(t, h.s, m.ID); r != "the mail" {
		t.Errorf("requeued entry lost its mail: %q", r)
	}
	// A new body replaces the old.
	update(t, h.s, func(tx store.Tx) error {
		return tx.Enqueue(&store.OutMail{ID: m.ID, TicketID: "HS-1", Raw: []byte("new")})
	})
	if r := raw(t, h.s, m.ID); r != "new" {
		t.Errorf("replaced mail: %q", r)
	}
}

// The recipients an entry is done with survive a replace without a body
// and a reopen, and every read returns them; the entry stays in its queue.
func testOutboxKeepsDoneRecipients(t *testing.T, b Backend) {
	h := b.openT(t)
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	m := &store.OutMail{TicketID: "HS-1", To: []string{"a@x", "b@x", "c@x"}, Raw: []byte("the mail"), Created: now}
	later := &store.OutMail{TicketID: "HS-1", To: []string{"a@x", "b@x", "c@x"}, Raw: []byte("later"), Created: now}
	update(t, h.s, func(tx store.Tx) error {
		if err := tx.Enqueue(m); err != nil {
			return err
		}
		return tx.Enqueue(later)
	})
	d := *m
	d.Raw = nil
	d.Done = []string{"b@x"}
	update(t, h.s, func(tx store.Tx) error { return tx.Enqueue(&d) })
	b.reopen(t, h)
	view(t, h.s, func(tx store.Tx) error {
		due, err := tx.Outbox(now, 0)
		if err != nil || ids(due) != fmt.Sprint([]uint64{m.ID, later.ID}) {
			t.Fatalf("due %s %v; want both, in queue order", ids(due), err)
		}
		list, err := tx.OutboxList(0, 0)
		if err != nil {
			return err
		}
		e, err := tx.OutboxEntry(m.ID)
		if err != nil {
			return err
		}
		for _, got := range []*store.OutMail{due[0], list[0], e} {
			if fmt.Sprint(got.Done) != "[b@x]" || fmt.Sprint(got.Pending()) != "[a@x c@x]" {
				t.Errorf("done %v pending %v; want [b@x] and [a@x c@x]", got.Done, got.Pending())
			}
		}
		if len(due[1].Done) != 0 || len(due[1].Pending()) != 3 {
			t.Errorf("the later entry: done %v pending %v", due[1].Done, due[1].Pending())
		}
		return nil
	})
	if r := raw(t, h.s, m.ID); r != "the mail" {
		t.Errorf("entry lost its mail: %q", r)
	}
}

// Mail about one ticket to one recipient list is one queue. Deferring an
// entry defers the later ones of its queue, in the same transaction; mail
// queued behind a deferred entry waits for it; other queues (the same
// ticket to other recipients, other tickets) are not held back.
func testOutboxQueueDueInOrder(t *testing.T, b Backend) {
	h := b.openT(t)
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	mail := func(ticket string, to ...string) *store.OutMail {
		return &store.OutMail{TicketID: ticket, Kind: "auto", From: "bounces@y", To: to, Raw: []byte(ticket), Created: now}
	}
	due := func(at time.Time, want string) {
		t.Helper()
		view(t, h.s, func(tx store.Tx) error {
			if got, err := tx.Outbox(at, 0); err != nil || ids(got) != want {
				t.Errorf("Outbox(%v) = %s %v, want %s", at.Sub(now), ids(got), err, want)
			}
			return nil
		})
	}
	nextAt := func(id uint64) time.Time {
		t.Helper()
		var m *store.OutMail
		view(t, h.s, func(tx store.Tx) error {
			var err error
			m, err = tx.OutboxEntry(id)
			return err
		})
		return m.NextAt
	}
	// 1: closing to a@x, 2: survey to a@x, 3: the same ticket to a@x and
	// b@x, 4: another ticket to a@x, 5: closing to a@x again.
	update(t, h.s, func(tx store.Tx) error {
		for _, m := range []*store.OutMail{mail("HS-1", "a@x"), mail("HS-1", "a@x"), mail("HS-1", "a@x", "b@x"),
			mail("HS-2", "a@x"), mail("HS-1", "a@x")} {
			if err := tx.Enqueue(m); err != nil {
				return err
			}
		}
		return nil
	})
	due(now, "[1 2 3 4 5]")

	// The relay defers 1 for an hour: 2 and 5 wait with it.
	later := now.Add(time.Hour)
	update(t, h.s, func(tx store.Tx) error {
		return tx.Enqueue(&store.OutMail{ID: 1, TicketID: "HS-1", Kind: "auto", From: "bounces@y", To: []string{"a@x"},
			Attempts: 1, NextAt: later, Created: now, LastErr: "451"})
	})
	due(now, "[3 4]")
	due(later, "[1 2 3 4 5]")
	if at := nextAt(2); !at.Equal(later) {
		t.Errorf("entry 2 behind a deferred entry: next at %v, want %v", at, later)
	}
	if at := nextAt(3); !at.IsZero() {
		t.Errorf("entry 3 (other recipients) moved to %v", at)
	}

	// New mail behind the deferred entry waits too, and is told so.
	m6 := mail("HS-1", "a@x")
	update(t, h.s, func(tx store.Tx) error { return tx.Enqueue(m6) })
	if !m6.NextAt.Equal(later) || !nextAt(m6.ID).Equal(later) {
		t.Errorf("mail queued behind a deferred entry: next at %v (stored %v), want %v", m6.NextAt, nextAt(m6.ID), later)
	}
	b.reopen(t, h)
	due(now, "[3 4]")

	// 1 is sent; 2 is deferred further: 5 and 6 follow it, 2's later
	// attempts do not pull anything earlier.
	evenLater := now.Add(3 * time.Hour)
	update(t, h.s, func(tx store.Tx) error {
		if err := tx.Dequeue(1); err != nil {
			return err
		}
		return tx.Enqueue(&store.OutMail{ID: 2, TicketID: "HS-1", Kind: "auto", From: "bounces@y", To: []string{"a@x"},
			Attempts: 1, NextAt: evenLater, Created: now, LastErr: "451"})
	})
	due(later, "[3 4]")
	due(evenLater, "[2 3 4 5 6]")
	update(t, h.s, func(tx store.Tx) error {
		return tx.Enqueue(&store.OutMail{ID: 2, TicketID: "HS-1", Kind: "auto", From: "bounces@y", To: []string{"a@x"},
			Attempts: 2, NextAt: later, Created: now})
	})
	if at := nextAt(5); !at.Equal(evenLater) {
		t.Errorf("entry 5 after its head was moved earlier: %v, want it left at %v", at, evenLater)
	}

	// A reserved id sorts by id: behind the queue's earlier entries.
	update(t, h.s, func(tx store.Tx) error {
		id, err := tx.NextOutboxID()
		if err != nil {
			return err
		}
		m := mail("HS-1", "a@x")
		m.ID = id
		if err := tx.Enqueue(m); err != nil {
			return err
		}
		if !m.NextAt.Equal(evenLater) {
			t.Errorf("reserved entry at the end of the queue: next at %v, want %v", m.NextAt, evenLater)
		}
		return nil
	})

	// Dequeuing the head leaves the rest where they are, in order.
	update(t, h.s, func(tx store.Tx) error { return tx.Dequeue(2) })
	due(evenLater, "[3 4 5 6 7]")
}

// With a limit, Outbox takes the earliest due; ties go to the earlier id,
// so what it returns of a queue is that queue's head.
func testOutboxQueueLimitTakesHeads(t *testing.T, b Backend) {
	h := b.openT(t)
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	at := now.Add(-time.Minute)
	update(t, h.s, func(tx store.Tx) error {
		for i := range 6 {
			// Three tickets, two mails each, all due at the same time.
			m := &store.OutMail{TicketID: fmt.Sprintf("HS-%d", i%3), To: []string{"a@x"}, Raw: []byte("x"), NextAt: at}
			if err := tx.Enqueue(m); err != nil {
				return err
			}
		}
		return nil
	})
	view(t, h.s, func(tx store.Tx) error {
		for limit, want := range map[int]string{1: "[1]", 3: "[1 2 3]", 4: "[1 2 3 4]"} {
			if got, err := tx.Outbox(now, limit); err != nil || ids(got) != want {
				t.Errorf("Outbox(now, %d) = %s %v, want %s", limit, ids(got), err, want)
			}
		}
		return nil
	})
}

func testOutboxReservedID(t *testing.T, b Backend) {
	h := b.openT(t)
	var reserved, other uint64
	update(t, h.s, func(tx store.Tx) error {
		var err error
		if reserved, err = tx.NextOutboxID(); err != nil {
			return err
		}
		if err := tx.Enqueue(&store.OutMail{ID: reserved, TicketID: "HS-1", Raw: []byte("x")}); err != nil {
			return err
		}
		m := &store.OutMail{TicketID: "HS-2", Raw: []byte("y")}
		err = tx.Enqueue(m)
		other = m.ID
		return err
	})
	if reserved == 0 || other == reserved {
		t.Fatalf("reserved %d, next %d", reserved, other)
	}
	if raw(t, h.s, reserved) != "x" || raw(t, h.s, other) != "y" {
		t.Error("entries mixed up")
	}
}

func testSentMap(t *testing.T, b Backend) {
	h := b.openT(t)
	update(t, h.s, func(tx store.Tx) error {
		return tx.Sent(&store.OutMail{ID: 42, TicketID: "HS-000001", To: []string{"a@x", "b@x"}})
	})
	b.reopen(t, h)
	view(t, h.s, func(tx store.Tx) error {
		id, to, err := tx.SentTo(42)
		if err != nil || id != "HS-000001" || fmt.Sprint(to) != "[a@x b@x]" {
			t.Errorf("SentTo(42) = %q %v %v", id, to, err)
		}
		if _, _, err := tx.SentTo(43); !isNotFound(err) {
			t.Errorf("SentTo(43): %v", err)
		}
		return nil
	})
}

// testTicketMail: a ticket's mail, queued and sent, and no other ticket's
// (HS-1's listing does not take HS-10's, whose id starts the same).
func testTicketMail(t *testing.T, b Backend) {
	h := b.openT(t)
	var q1, q10, q1b uint64
	update(t, h.s, func(tx store.Tx) error {
		for _, m := range []struct {
			id     *uint64
			ticket string
			to     string
		}{{&q1, "HS-1", "a@x"}, {&q10, "HS-10", "b@x"}, {&q1b, "HS-1", "c@x"}} {
			om := &store.OutMail{TicketID: m.ticket, Kind: "notify", To: []string{m.to}, Raw: []byte("mail")}
			if err := tx.Enqueue(om); err != nil {
				return err
			}
			*m.id = om.ID
		}
		return tx.Sent(&store.OutMail{ID: 900, TicketID: "HS-1", Kind: "auto", To: []string{"d@x"}})
	})
	update(t, h.s, func(tx store.Tx) error {
		if err := tx.Dequeue(q1b); err != nil {
			return err
		}
		return tx.Sent(&store.OutMail{ID: q1b, TicketID: "HS-1", Kind: "notify", To: []string{"c@x"}})
	})
	b.reopen(t, h)
	view(t, h.s, func(tx store.Tx) error {
		queued, sent, err := tx.TicketMail("HS-1")
		if err != nil {
			t.Fatal(err)
		}
		if len(queued) != 1 || queued[0].ID != q1 || fmt.Sprint(queued[0].To) != "[a@x]" || queued[0].Kind != "notify" {
			t.Errorf("HS-1 queued: %+v", queued)
		}
		if len(sent) != 2 || sent[0].ID != q1b || sent[1].ID != 900 || sent[1].Kind != "auto" ||
			fmt.Sprint(sent[1].To) != "[d@x]" || sent[1].At.IsZero() {
			t.Errorf("HS-1 sent: %+v", sent)
		}
		queued, sent, err = tx.TicketMail("HS-10")
		if err != nil || len(queued) != 1 || queued[0].ID != q10 || len(sent) != 0 {
			t.Errorf("HS-10: queued %+v sent %+v err %v", queued, sent, err)
		}
		queued, sent, err = tx.TicketMail("HS-2")
		if err != nil || len(queued) != 0 || len(sent) != 0 {
			t.Errorf("HS-2: queued %+v sent %+v err %v", queued, sent, err)
		}
		return nil
	})
}

// An entry that carries a stored message keeps naming it through every
// read, a requeue without a body and a reopen, and the name finds the
// message; an entry without one names none.
func testOutboxKeepsCarriedMessage(t *testing.T, b Backend) {
	h := b.openT(t)
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	msg := &store.Message{MessageID: "<ask.1@customer.example>", Direction: "in", Kind: "customer", From: "a@customer.example",
		Text: "the printer jams", VisibleText: "the printer jams", CreatedAt: now, Attachments: []store.Attachment{}}
	m := &store.OutMail{TicketID: "HS-1", Kind: "notify", To: []string{"ana@x"}, Raw: []byte("the draft"), Created: now,
		Carries: "ask.1@customer.example"}
	plain := &store.OutMail{TicketID: "HS-1", Kind: "auto", To: []string{"a@customer.example"}, Raw: []byte("whole"), Created: now}
	update(t, h.s, func(tx store.Tx) error {
		if err := tx.PutTicket(&store.Ticket{ID: "HS-1", Subject: "printer", CreatedAt: now, UpdatedAt: now}); err != nil {
			return err
		}
		if err := tx.AddMessage("HS-1", msg); err != nil {
			return err
		}
		if err := tx.Enqueue(m); err != nil {
			return err
		}
		return tx.Enqueue(plain)
	})
	check := func(when string) {
		t.Helper()
		view(t, h.s, func(tx store.Tx) error {
			reads := map[string][]*store.OutMail{}
			var err error
			if reads["Outbox"], err = tx.Outbox(store.Forever, 0); err != nil {
				return err
			}
			if reads["OutboxList"], err = tx.OutboxList(0, 0); err != nil {
				return err
			}
			if reads["TicketMail"], _, err = tx.TicketMail("HS-1"); err != nil {
				return err
			}
			e, err := tx.OutboxEntry(m.ID)
			if err != nil {
				return err
			}
			reads["OutboxEntry"] = []*store.OutMail{e}
			for name, list := range reads {
				for _, got := range list {
					if want := map[uint64]string{m.ID: m.Carries}[got.ID]; got.Carries != want {
						t.Errorf("%s: %s entry %d carries %q, want %q", when, name, got.ID, got.Carries, want)
					}
				}
			}
			found, ok, err := tx.MessageByID(e.TicketID, e.Carries)
			if err != nil || !ok || found.VisibleText != "the printer jams" {
				t.Errorf("%s: the carried message: %+v %v %v", when, found, ok, err)
			}
			return nil
		})
	}
	check("queued")
	var claimed []*store.OutMail
	update(t, h.s, func(tx store.Tx) error {
		var err error
		claimed, err = tx.ClaimOutbox("worker", now, time.Minute, 0)
		return err
	})
	for _, c := range claimed {
		if c.ID == m.ID && c.Carries != m.Carries {
			t.Errorf("claimed entry carries %q", c.Carries)
		}
	}
	// A deferral writes back what was read, without a body.
	update(t, h.s, func(tx store.Tx) error {
		e, err := tx.OutboxEntry(m.ID)
		if err != nil {
			return err
		}
		e.Attempts++
		e.NextAt = now.Add(time.Minute)
		return tx.Enqueue(e)
	})
	check("requeued")
	if r := raw(t, h.s, m.ID); r != "the draft" {
		t.Errorf("requeued entry's mail: %q", r)
	}
	b.reopen(t, h)
	check("reopened")
}
