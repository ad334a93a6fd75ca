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

// TestTicketPartsFiledInTheOrderTicketsWereOpened: the messages and
// events of a ticket opened in the transaction that writes them go under
// its posting; a ticket whose first messages an earlier release filed
// under its id reads all of them in the order they came, erasure
// rewrites them in that order, a changed creation time moves them (and
// a ticket record of this release, also under its posting), and check
// reports an entry filed under a posting that is not its ticket's.
func TestTicketPartsFiledInTheOrderTicketsWereOpened(t *testing.T) {
	d := openTest(t, filepath.Join(t.TempDir(), "t.db"))
	defer d.Close()
	opened := time.Date(2026, 4, 1, 8, 0, 0, 0, time.UTC)
	open := func(id, text string) {
		t.Helper()
		tk := &store.Ticket{ID: id, Status: rules.StatusNew, CreatedAt: opened}
		if err := d.Update(bg, func(st store.Tx) error {
			if err := st.AddMessage(id, &store.Message{MessageID: id + ".1@x", Kind: "customer", Text: text, TicketCreated: opened}); err != nil {
				return err
			}
			if err := st.AddEvent(id, store.Event{At: opened, Type: "note", Detail: "opened", TicketCreated: opened}); err != nil {
				return err
			}
			return st.PutTicket(tk)
		}); err != nil {
			t.Fatal(err)
		}
	}
	add := func(id, text string) {
		t.Helper()
		if err := d.Update(bg, func(st store.Tx) error {
			if err := st.AddMessage(id, &store.Message{MessageID: fmt.Sprintf("%s.%d@x", id, time.Now().UnixNano()), Kind: "customer", Text: text}); err != nil {
				return err
			}
			return st.AddEvent(id, store.Event{At: opened, Type: "note", Detail: text})
		}); err != nil {
			t.Fatal(err)
		}
	}
	read := func(id string) (texts, details string) {
		t.Helper()
		d.View(bg, func(st store.Tx) error {
			tk, err := st.TicketFull(id)
			if err != nil {
				t.Fatal(err)
			}
			var ms, es []string
			for _, m := range tk.Messages {
				ms = append(ms, m.Text)
			}
			for _, e := range tk.Events {
				es = append(es, e.Detail)
			}
			texts, details = fmt.Sprint(ms), fmt.Sprint(es)
			return nil
		})
		return texts, details
	}
	posted := func(bucket []byte) (n int) {
		d.db.View(func(btx *bolt.Tx) error {
			return btx.Bucket(bucket).ForEach(func(k, _ []byte) error {
				if k[0] == byPosting {
					n++
				}
				return nil
			})
		})
		return n
	}

	open("HS-000005", "first")
	if m, e := posted(bucketMessages), posted(bucketEvents); m != 1 || e != 1 {
		t.Errorf("a ticket opened with its message and event: %d messages and %d events under its posting, want 1 and 1", m, e)
	}

	asBefore12(t, d) // HS-000005's first message and event as an earlier release filed them
	add("HS-000005", "second")
	add("HS-000005", "third")
	if m, e := posted(bucketMessages), posted(bucketEvents); m != 2 || e != 2 {
		t.Errorf("after an upgrade: %d messages and %d events under the posting, want 2 and 2", m, e)
	}
	want := func(when, texts, details string) {
		t.Helper()
		if gt, gd := read("HS-000005"); gt != texts || gd != details {
			t.Errorf("%s: messages %s, events %s; want %s and %s", when, gt, gd, texts, details)
		}
	}
	want("filed both ways", "[first second third]", "[opened second third]")

	if err := d.Update(bg, func(st store.Tx) error {
		return st.ReplaceMessages("HS-000005", []store.Message{{MessageID: "HS-000005.1@x", Text: "[erased]"},
			{MessageID: "2@x", Text: "second"}, {MessageID: "3@x", Text: "[erased]"}})
	}); err != nil {
		t.Fatal(err)
	}
	want("erased", "[[erased] second [erased]]", "[opened second third]")

	if err := d.Update(bg, func(st store.Tx) error {
		tk, err := st.Ticket("HS-000005")
		if err != nil {
			return err
		}
		tk.CreatedAt = opened.Add(-24 * time.Hour)
		return st.PutTicket(tk)
	}); err != nil {
		t.Fatal(err)
	}
	want("after the creation time changed", "[[erased] second [erased]]", "[opened second third]")
	expectClean(t, d, "with messages filed both ways")

	// A ticket record of this release, under its posting, moves with it.
	open("HS-000006", "sixth")
	if n := posted(bucketTickets); n != 1 {
		t.Errorf("%d ticket records under a posting, want 1 (HS-000006's)", n)
	}
	if err := d.Update(bg, func(st store.Tx) error {
		tk, err := st.Ticket("HS-000006")
		if err != nil {
			return err
		}
		tk.CreatedAt, tk.Subject = opened.Add(time.Hour), "moved"
		return st.PutTicket(tk)
	}); err != nil {
		t.Fatal(err)
	}
	d.View(bg, func(st store.Tx) error {
		if tk, err := st.TicketFull("HS-000006"); err != nil || tk.Subject != "moved" || len(tk.Messages) != 1 {
			t.Errorf("HS-000006 after its creation time changed: %+v %v", tk, err)
		}
		return nil
	})
	if n := posted(bucketTickets); n != 1 {
		t.Errorf("%d ticket records under a posting after one moved, want 1", n)
	}
	expectClean(t, d, "with a ticket record moved")

	// An entry under a posting that is not its ticket's cannot be read:
	// check says so.
	d.db.Update(func(btx *bolt.Tx) error {
		return btx.Bucket(bucketMessages).Put(append(postedPrefix(posting(opened, "HS-000005")), u64(99)...), []byte("lost"))
	})
	problems, err := d.Check(bg)
	if err != nil || !bytes.Contains([]byte(fmt.Sprint(problems)), []byte("another creation time")) {
		t.Errorf("check with a misfiled message: %q %v", problems, err)
	}
}

// TestCreationTimeGivenWrongIsSettled: when what a transaction writes
// for a ticket it opens names another creation time than the ticket is
// then written with, nothing is misfiled: the ticket's message, event
// and queued mail are read, and check finds nothing wrong.
func TestCreationTimeGivenWrongIsSettled(t *testing.T) {
	d := openTest(t, filepath.Join(t.TempDir(), "t.db"))
	defer d.Close()
	said := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
	tk := &store.Ticket{ID: "HS-000007", Status: rules.StatusNew, CreatedAt: said.Add(time.Minute)}
	if err := d.Update(bg, func(st store.Tx) error {
		if err := st.AddMessage(tk.ID, &store.Message{MessageID: "m7@x", Kind: "customer", Text: "hello", TicketCreated: said}); err != nil {
			return err
		}
		if err := st.AddEvent(tk.ID, store.Event{At: said, Type: "note", Detail: "opened", TicketCreated: said}); err != nil {
			return err
		}
		if err := st.Enqueue(&store.OutMail{TicketID: tk.ID, To: []string{"ann@customer.example"}, Raw: []byte("hi"), TicketCreated: said}); err != nil {
			return err
		}
		return st.PutTicket(tk)
	}); err != nil {
		t.Fatal(err)
	}
	d.View(bg, func(st store.Tx) error {
		full, err := st.TicketFull(tk.ID)
		if err != nil || len(full.Messages) != 1 || len(full.Events) != 1 {
			t.Errorf("HS-000007: %+v %v, want its message and event", full, err)
		}
		if queued, _, err := st.TicketMail(tk.ID); err != nil || len(queued) != 1 {
			t.Errorf("HS-000007's queued mail: %d %v, want 1", len(queued), err)
		}
		return nil
	})
	expectClean(t, d, "after a creation time given wrong")
}
