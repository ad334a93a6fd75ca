package store

import (
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"ticketgate/rules"
)

func openTest(t *testing.T, path string) *Store {
	t.Helper()
	s, err := Open(path, Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestCommittedTicketSurvivesReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "dir", "t.db")
	s := openTest(t, path)
	var id string
	err := s.Update(func(tx *Tx) error {
		var err error
		if id, err = tx.NewTicketID("HS"); err != nil {
			return err
		}
		tk := &Ticket{ID: id, Subject: "hello", Status: rules.StatusNew, Priority: rules.PriorityMedium, CreatedAt: time.Now()}
		if err := tx.AddMessage(id, &Message{MessageID: "<m1@x>", Direction: "in", Kind: "customer", Text: "hi"}); err != nil {
			return err
		}
		if err := tx.AddEvent(id, Event{At: time.Now(), Type: "created"}); err != nil {
			return err
		}
		return tx.PutTicket(tk)
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = openTest(t, path)
	defer s.Close()
	err = s.View(func(tx *Tx) error {
		tk, err := tx.TicketFull(id)
		if err != nil {
			return err
		}
		if tk.Subject != "hello" || len(tk.Messages) != 1 || tk.Messages[0].Text != "hi" || len(tk.Events) != 1 {
			return fmt.Errorf("after reopen: %+v", tk)
		}
		if got := tx.TicketByMessageID("m1@x"); got != id {
			return fmt.Errorf("message id index: %q", got)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestSecondWriterIsToldTheDatabaseIsLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "t.db")
	s := openTest(t, path)
	defer s.Close()
	_, err := Open(path, Options{LockTimeout: 100 * time.Millisecond}, nil)
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second open: %v, want ErrLocked", err)
	}
}

func TestDueIndexFollowsEveryTicketChange(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "t.db"))
	defer s.Close()
	base := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	due := map[string]time.Time{"HS-000001": base.Add(3 * time.Hour), "HS-000002": base.Add(time.Hour), "HS-000003": {}}
	s.SetDueFunc(func(t *Ticket) time.Time { return due[t.ID] })
	put := func() {
		err := s.UpdateNow(func(tx *Tx) error {
			for id := range due {
				if err := tx.PutTicket(&Ticket{ID: id, Status: rules.StatusOpen}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	dueAt := func(now time.Time) (ids []string) {
		s.View(func(tx *Tx) error { ids = tx.DueTickets(now, 0); return nil })
		return ids
	}
	put()
	if got := dueAt(base.Add(2 * time.Hour)); fmt.Sprint(got) != "[HS-000002]" {
		t.Errorf("due at +2h: %v", got)
	}
	if got := dueAt(base.Add(5 * time.Hour)); fmt.Sprint(got) != "[HS-000002 HS-000001]" {
		t.Errorf("due at +5h, earliest first: %v", got)
	}
	// A change moves the entry; the old one is gone.
	due["HS-000002"] = base.Add(10 * time.Hour)
	put()
	if got := dueAt(base.Add(5 * time.Hour)); fmt.Sprint(got) != "[HS-000001]" {
		t.Errorf("after moving HS-000002: %v", got)
	}
	due["HS-000001"] = time.Time{}
	put()
	if got := dueAt(base.Add(24 * time.Hour)); fmt.Sprint(got) != "[HS-000002]" {
		t.Errorf("after clearing HS-000001: %v", got)
	}
}

func TestTicketIDsNeverCollide(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "t.db"))
	defer s.Close()
	seen := map[string]bool{}
	err := s.UpdateNow(func(tx *Tx) error {
		for range 3000 {
			id, err := tx.NewTicketID("HS")
			if err != nil {
				return err
			}
			if seen[id] {
				return fmt.Errorf("%s allocated twice", id)
			}
			seen[id] = true
			if err := tx.PutTicket(&Ticket{ID: id, Status: rules.StatusNew}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestCheckpointNeverMovesBack(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "t.db"))
	defer s.Close()
	for _, c := range []Checkpoint{{"box", 7, 10}, {"box", 7, 4}} {
		if err := s.UpdateNow(func(tx *Tx) error { return tx.PutCheckpoint(c) }); err != nil {
			t.Fatal(err)
		}
	}
	var got Checkpoint
	s.View(func(tx *Tx) error { got, _ = tx.Checkpoint("box"); return nil })
	if got.UID != 10 {
		t.Errorf("checkpoint went back to %d", got.UID)
	}
	// A new UIDVALIDITY starts over.
	s.UpdateNow(func(tx *Tx) error { return tx.PutCheckpoint(Checkpoint{"box", 8, 2}) })
	s.View(func(tx *Tx) error { got, _ = tx.Checkpoint("box"); return nil })
	if got.UIDValidity != 8 || got.UID != 2 {
		t.Errorf("after UIDVALIDITY change: %+v", got)
	}
}

func TestDryRunLeavesNothing(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "t.db"))
	defer s.Close()
	err := s.DryRun(func(tx *Tx) error {
		return tx.Enqueue(&OutMail{TicketID: "HS-000001", To: []string{"a@x"}, Raw: []byte("x")})
	})
	if err != nil {
		t.Fatal(err)
	}
	var n int
	s.View(func(tx *Tx) error { all, _ := tx.Outbox(Forever, 0); n = len(all); return nil })
	if n != 0 {
		t.Errorf("dry run left %d outbox entries", n)
	}
}

func TestOutboxKeepsMailUntilDequeued(t *testing.T) {
	path := filepath.Join(t.TempDir(), "t.db")
	s := openTest(t, path)
	now := time.Now()
	s.UpdateNow(func(tx *Tx) error {
		if err := tx.Enqueue(&OutMail{TicketID: "HS-1", To: []string{"a@x"}, Raw: []byte("one")}); err != nil {
			return err
		}
		return tx.Enqueue(&OutMail{TicketID: "HS-2", To: []string{"b@x"}, Raw: []byte("two"), NextAt: now.Add(time.Hour)})
	})
	s.Close()
	s = openTest(t, path)
	defer s.Close()
	var due, all []*OutMail
	s.View(func(tx *Tx) error {
		due, _ = tx.Outbox(now, 0)
		all, _ = tx.Outbox(Forever, 0)
		return nil
	})
	if len(due) != 1 || string(due[0].Raw) != "one" || len(all) != 2 {
		t.Fatalf("due %d all %d", len(due), len(all))
	}
	s.UpdateNow(func(tx *Tx) error { return tx.Dequeue(due[0].ID) })
	s.View(func(tx *Tx) error { all, _ = tx.Outbox(Forever, 0); return nil })
	if len(all) != 1 || string(all[0].Raw) != "two" {
		t.Errorf("after dequeue: %d left", len(all))
	}
}

func TestPutTicketKeepsIndexesAndSkipsNoops(t *testing.T) {
	path := filepath.Join(t.TempDir(), "t.db")
	s, err := Open(path, Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	d0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	due := d0
	s.SetDueFunc(func(*Ticket) time.Time { return due })
	tk := &Ticket{ID: "HS-000001", Status: rules.StatusOpen, CreatedAt: d0}
	if err := s.UpdateNow(func(tx *Tx) error { return tx.PutTicket(tk) }); err != nil {
		t.Fatal(err)
	}
	// Unchanged: nothing is touched.
	if err := s.UpdateNow(func(tx *Tx) error {
		if err := tx.PutTicket(tk); err != nil {
			return err
		}
		st := tx.tx.Stats()
		if n := st.GetNodeCount(); n != 0 {
			t.Errorf("unchanged PutTicket materialised %d nodes", n)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// Status and due change: old entries go, new ones come.
	due = d0.Add(48 * time.Hour)
	tk.Status = rules.StatusWaiting
	if err := s.UpdateNow(func(tx *Tx) error { return tx.PutTicket(tk) }); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = Open(path, Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.View(func(tx *Tx) error {
		if ids := tx.DueTickets(d0.Add(24*time.Hour), 0); len(ids) != 0 {
			t.Errorf("due at day 1: %v", ids)
		}
		if ids := tx.DueTickets(due, 0); len(ids) != 1 || ids[0] != "HS-000001" {
			t.Errorf("due at day 2: %v", ids)
		}
		open, _ := tx.Tickets(Filter{Status: rules.StatusOpen})
		waiting, _ := tx.Tickets(Filter{Status: rules.StatusWaiting})
		if len(open) != 0 || len(waiting) != 1 {
			t.Errorf("open %d waiting %d", len(open), len(waiting))
		}
		return nil
	})
}

func TestMessageByIDReturnsTheStoredMessage(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "t.db"))
	defer s.Close()
	err := s.Update(func(tx *Tx) error {
		for _, m := range []*Message{
			{MessageID: "a@x", Direction: "in", Kind: "customer", From: "one@x", Subject: "first", Text: "1"},
			{MessageID: "<b@x>", Direction: "in", Kind: "customer", From: "two@x", Subject: "second", Text: "2"},
		} {
			if err := tx.AddMessage("HS-000001", m); err != nil {
				return err
			}
		}
		return tx.AddMessage("HS-000002", &Message{MessageID: "c@x", Direction: "in", Kind: "customer"})
	})
	if err != nil {
		t.Fatal(err)
	}
	err = s.View(func(tx *Tx) error {
		m, ok, err := tx.MessageByID("HS-000001", "<b@x>")
		if err != nil || !ok || m.From != "two@x" || m.Subject != "second" || m.Text != "2" {
			return fmt.Errorf("b@x on HS-000001: %+v %v %v", m, ok, err)
		}
		if m, ok, err := tx.MessageByID("HS-000001", "c@x"); err != nil || ok || m != nil {
			return fmt.Errorf("c@x is on another ticket but found on HS-000001: %+v %v %v", m, ok, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
