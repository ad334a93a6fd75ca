package storetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"ticketgate/store"
)

func isNotFound(err error) bool { return errors.Is(err, store.ErrNotFound) }

func jsonOf(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// messages covers how visible text relates to the text: the whole of it,
// a part, something else, nothing.
func messages(at time.Time) []store.Message {
	return []store.Message{
		{MessageID: "<same@x>", Direction: "in", Kind: "customer", From: "ann@x", To: []string{"support@y"}, Cc: []string{"bob@x"},
			Subject: "same", Text: "Hello <there>\n> quoted & more", VisibleText: "Hello <there>\n> quoted & more", CreatedAt: at,
			Attachments: []store.Attachment{{Filename: "a.pdf", ContentType: "application/pdf", Size: 3, SHA256: "abc", ContentID: "c1", Inline: true}},
			Raw:         "0123", Notes: []string{"charset guessed"}},
		{MessageID: "part@x", Direction: "in", Kind: "customer", From: "ann@x", To: []string{"support@y"},
			Subject: "part", Text: "Thanks, it works.\n\nOn Monday Bob wrote:\n> did it?", VisibleText: "Thanks, it works.", CreatedAt: at,
			Attachments: []store.Attachment{}},
		{MessageID: "middle@x", Direction: "out", Kind: "agent", From: "support@y", To: []string{"ann@x"},
			Subject: "middle", Text: "héllo wörld ünïcode", VisibleText: "wörld", CreatedAt: at, Attachments: []store.Attachment{}},
		{MessageID: "other@x", Direction: "in", Kind: "customer", Subject: "other", Text: "stored text",
			VisibleText: "rebuilt from HTML", CreatedAt: at, Attachments: []store.Attachment{}},
		{MessageID: "empty@x", Direction: "in", Kind: "note", Subject: "empty", Text: "only text", CreatedAt: at},
		{Direction: "in", Kind: "system", Subject: "no id, nothing at all"},
	}
}

func testMessagesKeepEveryField(t *testing.T, b Backend) {
	h := b.openT(t)
	at := time.Date(2026, 4, 1, 12, 0, 0, 0, time.UTC)
	want := messages(at)
	update(t, h.s, func(tx store.Tx) error {
		if err := tx.PutTicket(&store.Ticket{ID: "HS-000001", Status: "open"}); err != nil {
			return err
		}
		for i := range want {
			m := want[i]
			if err := tx.AddMessage("HS-000001", &m); err != nil {
				return err
			}
		}
		return nil
	})
	check := func() {
		view(t, h.s, func(tx store.Tx) error {
			tk, err := tx.TicketFull("HS-000001")
			if err != nil {
				return err
			}
			if g, w := jsonOf(tk.Messages), jsonOf(want); g != w {
				t.Errorf("messages\n got %s\nwant %s", g, w)
			}
			for _, m := range want[:5] {
				got, ok, err := tx.MessageByID("HS-000001", m.MessageID)
				if err != nil || !ok || jsonOf(got) != jsonOf(m) {
					t.Errorf("MessageByID(%s) = %+v %v %v", m.MessageID, got, ok, err)
				}
			}
			return nil
		})
	}
	check()
	b.reopen(t, h)
	check()
}

func testMessageByIDReturnsTheStoredMessage(t *testing.T, b Backend) {
	h := b.openT(t)
	err := h.s.Update(bg, func(tx store.Tx) error {
		for _, m := range []*store.Message{
			{MessageID: "a@x", Direction: "in", Kind: "customer", From: "one@x", Subject: "first", Text: "1"},
			{MessageID: "<b@x>", Direction: "in", Kind: "customer", From: "two@x", Subject: "second", Text: "2"},
		} {
			if err := tx.AddMessage("HS-000001", m); err != nil {
				return err
			}
		}
		return tx.AddMessage("HS-000002", &store.Message{MessageID: "c@x", Direction: "in", Kind: "customer"})
	})
	if err != nil {
		t.Fatal(err)
	}
	view(t, h.s, func(tx store.Tx) error {
		m, ok, err := tx.MessageByID("HS-000001", "<b@x>")
		if err != nil || !ok || m.From != "two@x" || m.Subject != "second" || m.Text != "2" {
			return fmt.Errorf("b@x on HS-000001: %+v %v %v", m, ok, err)
		}
		if m, ok, err := tx.MessageByID("HS-000001", "c@x"); err != nil || ok || m != nil {
			return fmt.Errorf("c@x is on another ticket but found on HS-000001: %+v %v %v", m, ok, err)
		}
		if ok, err := tx.HasMessage("HS-000001", " <a@x> "); err != nil || !ok {
			return fmt.Errorf("HasMessage a@x: %v %v", ok, err)
		}
		if ok, err := tx.HasMessage("HS-000002", "a@x"); err != nil || ok {
			return fmt.Errorf("HasMessage a@x on HS-000002: %v %v", ok, err)
		}
		return nil
	})
}

func testMessageIDIndex(t *testing.T, b Backend) {
	h := b.openT(t)
	update(t, h.s, func(tx store.Tx) error {
		if err := tx.AddMessage("HS-000001", &store.Message{MessageID: " <m1@x> "}); err != nil {
			return err
		}
		if err := tx.AddMessage("HS-000001", &store.Message{}); err != nil { // no id: not indexed
			return err
		}
		return tx.IndexMessageID("<out1@y>", "HS-000002")
	})
	view(t, h.s, func(tx store.Tx) error {
		for msgid, want := range map[string]string{"m1@x": "HS-000001", "<m1@x>": "HS-000001", "out1@y": "HS-000002", "nope@x": "", "": ""} {
			if got, err := tx.TicketByMessageID(msgid); err != nil || got != want {
				t.Errorf("TicketByMessageID(%q) = %q %v, want %q", msgid, got, err, want)
			}
		}
		return nil
	})
}

// testMessageIDOfNothing: a Message-ID that is only angle brackets
// (a mail sent with "Message-ID: <<>") names no message: the message is
// stored like one without an id, and no lookup of an empty id finds it.
func testMessageIDOfNothing(t *testing.T, b Backend) {
	h := b.openT(t)
	update(t, h.s, func(tx store.Tx) error {
		if err := tx.PutTicket(&store.Ticket{ID: "HS-000001", Status: "open"}); err != nil {
			return err
		}
		return tx.AddMessage("HS-000001", &store.Message{MessageID: "<", Direction: "in", Kind: "customer", Subject: "hi", Text: "kept"})
	})
	view(t, h.s, func(tx store.Tx) error {
		tk, err := tx.TicketFull("HS-000001")
		if err != nil {
			return err
		}
		if len(tk.Messages) != 1 || tk.Messages[0].Text != "kept" {
			t.Errorf("messages %s, want the one stored", jsonOf(tk.Messages))
		}
		for _, msgid := range []string{"<", "<>", ""} {
			if got, err := tx.TicketByMessageID(msgid); err != nil || got != "" {
				t.Errorf("TicketByMessageID(%q) = %q %v, want none", msgid, got, err)
			}
		}
		return nil
	})
	if in, ok := h.s.(store.Inspector); ok {
		if problems, err := in.Check(context.Background()); err != nil || len(problems) != 0 {
			t.Errorf("check: %v %v", err, problems)
		}
	}
}

func testEventsInOrder(t *testing.T, b Backend) {
	h := b.openT(t)
	at := time.Date(2026, 4, 1, 12, 0, 0, 0, time.UTC)
	var want []store.Event
	update(t, h.s, func(tx store.Tx) error {
		if err := tx.PutTicket(&store.Ticket{ID: "HS-000001", Status: "open"}); err != nil {
			return err
		}
		if err := tx.PutTicket(&store.Ticket{ID: "HS-0000010", Status: "open"}); err != nil {
			return err
		}
		for i := range 12 {
			e := store.Event{At: at.Add(-time.Duration(i) * time.Minute), Type: "note", Detail: fmt.Sprintf("%d → <%d>", i, i), Actor: "a@x"}
			want = append(want, e)
			if err := tx.AddEvent("HS-000001", e); err != nil {
				return err
			}
			// A ticket whose id extends the other's must not mix in.
			if err := tx.AddEvent("HS-0000010", store.Event{Type: "other"}); err != nil {
				return err
			}
		}
		return nil
	})
	view(t, h.s, func(tx store.Tx) error {
		tk, err := tx.TicketFull("HS-000001")
		if err != nil {
			return err
		}
		if jsonOf(tk.Events) != jsonOf(want) {
			t.Errorf("events (in the order added, not by time)\n got %s\nwant %s", jsonOf(tk.Events), jsonOf(want))
		}
		return nil
	})
}

func testBlobs(t *testing.T, b Backend) {
	h := b.openT(t)
	content := []byte("%PDF <b> \x00\xff binary")
	var h1, h2 string
	update(t, h.s, func(tx store.Tx) error {
		var err error
		if h1, err = tx.PutBlob(content); err != nil {
			return err
		}
		h2, err = tx.PutBlob(append([]byte(nil), content...))
		return err
	})
	sum := sha256.Sum256(content)
	if h1 != h2 || h1 != hex.EncodeToString(sum[:]) {
		t.Fatalf("hashes %q %q", h1, h2)
	}
	b.reopen(t, h)
	view(t, h.s, func(tx store.Tx) error {
		got, err := tx.Blob(h1)
		if err != nil || !bytes.Equal(got, content) {
			t.Errorf("blob: %q %v", got, err)
		}
		if _, err := tx.Blob("0000"); !isNotFound(err) {
			t.Errorf("missing blob: %v", err)
		}
		return nil
	})
}

// testRawBlobs: the same raw mail stored for two messages (one mail to
// two addresses) is read back for each, and deleting one message's raw
// copy leaves the other's whole, with its text; the store checks whole
// throughout.
func testRawBlobs(t *testing.T, b Backend) {
	h := b.openT(t)
	raw := []byte("From: ann@x\r\nSubject: fire\r\n\r\nmy printer is on fire\r\n")
	ids := []string{"HS-000001", "HS-000002"}
	update(t, h.s, func(tx store.Tx) error {
		for _, id := range ids {
			blob, err := tx.PutRawBlob(append([]byte(nil), raw...))
			if err != nil {
				return err
			}
			if err := tx.PutTicket(&store.Ticket{ID: id, Status: "open"}); err != nil {
				return err
			}
			m := &store.Message{MessageID: "fire@x", From: "ann@x", Text: "my printer is on fire", VisibleText: "my printer is on fire", Raw: blob}
			if err := tx.AddMessage(id, m); err != nil {
				return err
			}
		}
		return nil
	})
	// stored reports, for each ticket, its message's text and raw mail
	// ("" when gone).
	stored := func() (texts, raws []string) {
		t.Helper()
		view(t, h.s, func(tx store.Tx) error {
			for _, id := range ids {
				tk, err := tx.TicketFull(id)
				if err != nil {
					return err
				}
				m := tk.Messages[0]
				texts = append(texts, m.Text)
				got, err := tx.Blob(m.Raw)
				if m.Raw != "" && err != nil {
					return err
				}
				raws = append(raws, string(got))
			}
			return nil
		})
		return texts, raws
	}
	checked := func(when string) {
		t.Helper()
		if in, ok := h.s.(store.Inspector); ok {
			if problems, err := in.Check(context.Background()); err != nil || len(problems) != 0 {
				t.Errorf("check %s: %v %v", when, err, problems)
			}
		}
	}
	b.reopen(t, h)
	texts, raws := stored()
	if texts[0] != "my printer is on fire" || texts[1] != texts[0] || raws[0] != string(raw) || raws[1] != string(raw) {
		t.Fatalf("stored: texts %q raws %q", texts, raws)
	}
	checked("after storing")

	drop := func(id string) {
		t.Helper()
		update(t, h.s, func(tx store.Tx) error {
			tk, err := tx.TicketFull(id)
			if err != nil {
				return err
			}
			blob := tk.Messages[0].Raw
			tk.Messages[0].Raw = ""
			if err := tx.ReplaceMessages(id, tk.Messages); err != nil {
				return err
			}
			if id == ids[1] {
				if _, err := tx.Blob(blob); !isNotFound(err) {
					t.Errorf("the raw mail after its last use was deleted: %v", err)
				}
			}
			return nil
		})
	}
	drop(ids[0])
	texts, raws = stored()
	if texts[1] != "my printer is on fire" || raws[1] != string(raw) || raws[0] != "" {
		t.Errorf("after deleting the first raw copy: texts %q raws %q", texts, raws)
	}
	checked("after deleting the first raw copy")
	drop(ids[1])
	checked("after deleting both")
}

// testMergeRedirect: a merged ticket keeps where it went and its links, and
// its Message-IDs, once the target holds them, thread to the target, also
// after a reopen.
func testMergeRedirect(t *testing.T, b Backend) {
	h := b.openT(t)
	update(t, h.s, func(tx store.Tx) error {
		for _, id := range []string{"HS-000001", "HS-000002"} {
			if err := tx.PutTicket(&store.Ticket{ID: id, Status: "open"}); err != nil {
				return err
			}
		}
		if err := tx.AddMessage("HS-000001", &store.Message{MessageID: "<m1@x>", Text: "first"}); err != nil {
			return err
		}
		return tx.IndexMessageID("<out1@y>", "HS-000001")
	})
	update(t, h.s, func(tx store.Tx) error {
		if err := tx.PutTicket(&store.Ticket{ID: "HS-000001", Status: "closed", MergedInto: "HS-000002", Linked: []string{"HS-000002"}}); err != nil {
			return err
		}
		if err := tx.AddMessage("HS-000002", &store.Message{MessageID: "<m1@x>", Text: "first"}); err != nil {
			return err
		}
		return tx.IndexMessageID("<out1@y>", "HS-000002")
	})
	check := func() {
		view(t, h.s, func(tx store.Tx) error {
			src, err := tx.TicketFull("HS-000001")
			if err != nil {
				return err
			}
			if src.MergedInto != "HS-000002" || len(src.Linked) != 1 || len(src.Messages) != 1 {
				t.Errorf("merged ticket: merged_into %q links %v, %d messages", src.MergedInto, src.Linked, len(src.Messages))
			}
			for _, msgid := range []string{"m1@x", "out1@y"} {
				if got, err := tx.TicketByMessageID(msgid); err != nil || got != "HS-000002" {
					t.Errorf("TicketByMessageID(%q) = %q %v, want the target", msgid, got, err)
				}
			}
			if ok, err := tx.HasMessage("HS-000002", "m1@x"); err != nil || !ok {
				t.Errorf("target lacks the moved message: %v %v", ok, err)
			}
			return nil
		})
	}
	check()
	b.reopen(t, h)
	check()
}
