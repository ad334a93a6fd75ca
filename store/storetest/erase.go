package storetest

import (
	"strings"
	"testing"
	"time"

	"ticketgate/store"
)

// testReplaceMessagesErases: replacing a message's text and files takes
// its words out of search, deletes the blobs nothing uses any more and
// keeps those another message still names, across a reopen.
func testReplaceMessagesErases(t *testing.T, b Backend) {
	h := b.openT(t)
	at := time.Date(2026, 4, 1, 12, 0, 0, 0, time.UTC)
	var raw, shared string
	update(t, h.s, func(tx store.Tx) error {
		if err := tx.PutTicket(&store.Ticket{ID: "HS-000001", Status: "closed", Subject: "Printer", CreatedAt: at}); err != nil {
			return err
		}
		var err error
		if raw, err = tx.PutBlob([]byte("From: ann@x\r\n\r\nmy secret zebra")); err != nil {
			return err
		}
		if shared, err = tx.PutBlob([]byte("logo")); err != nil {
			return err
		}
		if _, err := tx.PutBlob([]byte("logo")); err != nil { // the second message's use
			return err
		}
		files := []store.Attachment{{Filename: "logo.png", Size: 4, SHA256: shared}}
		if err := tx.AddMessage("HS-000001", &store.Message{MessageID: "<a@x>", Kind: "customer", From: "ann@x", Text: "my secret zebra", Raw: raw, Attachments: files, CreatedAt: at}); err != nil {
			return err
		}
		return tx.AddMessage("HS-000001", &store.Message{MessageID: "<b@x>", Kind: "agent", Text: "zebra noted", Attachments: files, CreatedAt: at})
	})
	find := func(tx store.Tx, text string) int {
		l, _, err := tx.Tickets(store.Filter{Text: text})
		if err != nil {
			t.Fatal(err)
		}
		return len(l)
	}
	update(t, h.s, func(tx store.Tx) error {
		tk, err := tx.TicketFull("HS-000001")
		if err != nil {
			return err
		}
		msgs := tk.Messages
		msgs[0].Text, msgs[0].VisibleText, msgs[0].Raw, msgs[0].Attachments = "", "", "", nil
		if err := tx.ReplaceMessages("HS-000001", msgs[:1]); err == nil {
			t.Error("ReplaceMessages with fewer messages than stored did not fail")
		}
		return tx.ReplaceMessages("HS-000001", msgs)
	})
	check := func() {
		view(t, h.s, func(tx store.Tx) error {
			tk, err := tx.TicketFull("HS-000001")
			if err != nil {
				return err
			}
			if len(tk.Messages) != 2 || tk.Messages[0].Text != "" || tk.Messages[0].Raw != "" || tk.Messages[1].Text != "zebra noted" {
				t.Errorf("messages after replace: %s", jsonOf(tk.Messages))
			}
			if _, err := tx.Blob(raw); !isNotFound(err) {
				t.Errorf("the erased raw copy is still stored: %v", err)
			}
			if _, err := tx.Blob(shared); err != nil {
				t.Errorf("the attachment the other message names is gone: %v", err)
			}
			if n := find(tx, "secret"); n != 0 {
				t.Errorf("search for an erased word finds %d tickets", n)
			}
			if n := find(tx, "zebra"); n != 1 {
				t.Errorf("search for a word another message keeps finds %d tickets, want 1", n)
			}
			if id, _ := tx.TicketByMessageID("a@x"); id != "HS-000001" {
				t.Errorf("Message-ID index after replace: %q", id)
			}
			return nil
		})
	}
	check()
	if in, ok := h.s.(store.Inspector); ok {
		if problems, err := in.Check(bg); err != nil || len(problems) > 0 {
			t.Errorf("check after replace: %v %q", err, problems)
		}
	}
	b.reopen(t, h)
	check()
}

// testReplaceMessagesSharingWords: messages replaced together may hold
// the same new word (a forgotten customer's name, replaced by the same
// pseudonym in every message), and search finds it and no longer the
// name.
func testReplaceMessagesSharingWords(t *testing.T, b Backend) {
	h := b.openT(t)
	at := time.Date(2026, 4, 1, 12, 0, 0, 0, time.UTC)
	update(t, h.s, func(tx store.Tx) error {
		if err := tx.PutTicket(&store.Ticket{ID: "HS-000001", Status: "closed", Subject: "Printer on fire", CreatedAt: at}); err != nil {
			return err
		}
		if err := tx.AddMessage("HS-000001", &store.Message{MessageID: "<a@x>", Kind: "customer", Subject: "Printer on fire", Text: "Zoe here: smoke", CreatedAt: at}); err != nil {
			return err
		}
		return tx.AddMessage("HS-000001", &store.Message{MessageID: "<b@x>", Kind: "agent", Subject: "Re: Printer on fire", Text: "Dear Zoe, unplug it", CreatedAt: at})
	})
	err := h.s.UpdateNow(bg, func(tx store.Tx) error {
		tk, err := tx.TicketFull("HS-000001")
		if err != nil {
			return err
		}
		for i := range tk.Messages {
			tk.Messages[i].Text = strings.ReplaceAll(tk.Messages[i].Text, "Zoe", "forgotten-7f3a")
		}
		return tx.ReplaceMessages("HS-000001", tk.Messages)
	})
	if err != nil {
		t.Fatalf("replace messages sharing a new word: %v", err)
	}
	view(t, h.s, func(tx store.Tx) error {
		for text, want := range map[string]int{"forgotten 7f3a": 1, "zoe": 0, "smoke": 1, "fire": 1} {
			if l, _, err := tx.Tickets(store.Filter{Text: text}); err != nil || len(l) != want {
				t.Errorf("search %q: %d tickets %v, want %d", text, len(l), err, want)
			}
		}
		return nil
	})
}

// testReplaceEventsAndEraseAddress: events are rewritten in place, and an
// address leaves the sent-mail records, rate counters and bounce marks.
func testReplaceEventsAndEraseAddress(t *testing.T, b Backend) {
	h := b.openT(t)
	t0 := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	update(t, h.s, func(tx store.Tx) error {
		if err := tx.PutTicket(&store.Ticket{ID: "HS-000002", Status: "open", CreatedAt: t0}); err != nil {
			return err
		}
		for _, d := range []string{"from Ann@X", "assigned"} {
			if err := tx.AddEvent("HS-000002", store.Event{At: t0, Type: "created", Detail: d}); err != nil {
				return err
			}
		}
		if err := tx.Sent(&store.OutMail{ID: 7, TicketID: "HS-000002", To: []string{"Ann@X", "bob@x"}}); err != nil {
			return err
		}
		if err := tx.PutRateTimes("auto:ann@x", []time.Time{t0}); err != nil {
			return err
		}
		if err := tx.PutRateTimes("auto:bob@x", []time.Time{t0}); err != nil {
			return err
		}
		if err := tx.PutRateTimes("in:sender:joann@x", []time.Time{t0}); err != nil {
			return err
		}
		if err := tx.PutRateTimes("auto:ann@x.example", []time.Time{t0}); err != nil {
			return err
		}
		return tx.MarkBouncing("ann@x", t0.Add(time.Hour))
	})
	update(t, h.s, func(tx store.Tx) error {
		if err := tx.ReplaceEvents("HS-000002", []store.Event{{At: t0, Type: "created", Detail: "from p@invalid"}, {At: t0, Type: "created", Detail: "assigned"}}); err != nil {
			return err
		}
		return tx.EraseAddress("ANN@x", "p@invalid")
	})
	b.reopen(t, h)
	view(t, h.s, func(tx store.Tx) error {
		tk, err := tx.TicketFull("HS-000002")
		if err != nil {
			return err
		}
		if len(tk.Events) != 2 || tk.Events[0].Detail != "from p@invalid" || tk.Events[1].Detail != "assigned" {
			t.Errorf("events after replace: %s", jsonOf(tk.Events))
		}
		if id, to, err := tx.SentTo(7); err != nil || id != "HS-000002" || jsonOf(to) != `["p@invalid","bob@x"]` {
			t.Errorf("sent record after erase: %s %v %v", id, to, err)
		}
		if ts, _ := tx.RateTimes("auto:ann@x"); len(ts) != 0 {
			t.Errorf("rate counter of the erased address kept: %v", ts)
		}
		if ts, _ := tx.RateTimes("auto:bob@x"); len(ts) != 1 {
			t.Errorf("another address's rate counter lost: %v", ts)
		}
		if ts, _ := tx.RateTimes("in:sender:joann@x"); len(ts) != 1 {
			t.Errorf("the rate counter of an address ending the same was lost: %v", ts)
		}
		if ts, _ := tx.RateTimes("auto:ann@x.example"); len(ts) != 1 {
			t.Error("erasing ann@x took the counter of ann@x.example")
		}
		if bouncing, _ := tx.Bouncing("ann@x", t0); bouncing {
			t.Error("bounce mark of the erased address kept")
		}
		return nil
	})
}
