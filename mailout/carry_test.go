package mailout

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/mail"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-message"
	"github.com/klauspost/compress/flate"

	"ticketgate/rules"
	"ticketgate/store"
)

// textPart is the decoded text of a composed mail.
func textPart(t *testing.T, raw []byte) string {
	t.Helper()
	e, err := message.Read(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	e.Walk(func(_ []int, p *message.Entity, _ error) error {
		if ct, _, _ := p.Header.ContentType(); ct == "text/plain" {
			body, _ := io.ReadAll(p.Body)
			b.Write(body)
		}
		return nil
	})
	return b.String()
}

// A notification whose template prints the customer's text as it is
// refers to the stored message; one whose template does anything else
// with it is queued whole. Either way the relay gets the same text and
// file as a mail composed whole in the transaction.
func TestCarriedMessageSentAsComposedWhole(t *testing.T) {
	const text = "The scanner eats every second page."
	for _, c := range []struct {
		name, template string
		refers         bool
	}{
		{"plain", "{{.TicketID}} from {{.Writer}}:\n\n{{.Text}}\n\n-- \nReply above.\n", true},
		{"in a condition", "{{if .Writer}}{{.Text}}{{end}}\n", true},
		{"tested", "{{if .Text}}{{.Text}}{{else}}(no text){{end}}\n", false},
		{"transformed", "{{printf \"%q\" .Text}}\n", false},
		{"twice", "{{.Text}}\n{{.Text}}\n", false},
		{"whole data", "{{template \"x\" .}}{{define \"x\"}}{{.Text}}{{end}}\n", false},
		{"not printed", "{{.TicketID}}: see the ticket\n", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := newPrepareRig(t)
			d := overrideMailer(t, "notify", c.template)
			file := []byte("a scan, page 1")
			msg := &store.Message{MessageID: "in-1@customer.example", Direction: "in", Kind: "customer", From: "ann@customer.example",
				Text: "> quoted\n" + text + "\n", VisibleText: text + "\n", CreatedAt: r.at,
				Attachments: []store.Attachment{{Filename: "scan.pdf", ContentType: "application/pdf", Size: int64(len(file))}}}
			out := func() Out {
				return Out{Kind: "notify", To: []mail.Address{{Address: "ana@example.com"}}, Template: "notify", Internal: true,
					Data: map[string]any{"Writer": "Ann Lee"}, Attachments: []Attachment{{Filename: "scan.pdf", ContentType: "application/pdf", Content: file}}}
			}
			tk := r.ticket()
			err := r.st.UpdateNow(context.Background(), func(tx store.Tx) error {
				if err := tx.PutTicket(tk); err != nil {
					return err
				}
				var err error
				if msg.Attachments[0].SHA256, err = tx.PutBlob(file); err != nil {
					return err
				}
				return tx.AddMessage(tk.ID, msg)
			})
			if err != nil {
				t.Fatal(err)
			}
			whole := out()
			whole.Data["Text"] = text
			_, wholeRaw := r.queue(d, tk, whole)

			o := out()
			o.Carries = msg
			var queued *store.OutMail
			var draft []byte
			err = r.st.UpdateNow(context.Background(), func(tx store.Tx) error {
				if _, err := d.Queue(tx, tk, o, r.at); err != nil {
					return err
				}
				list, err := tx.Outbox(store.Forever, 0)
				if err != nil || len(list) != 1 {
					t.Fatalf("outbox: %d entries, %v", len(list), err)
				}
				queued = list[0]
				draft, err = tx.OutboxRaw(queued.ID)
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			if refers := queued.Carries == msg.MessageID; refers != c.refers {
				t.Errorf("entry carries %q, want a reference: %v", queued.Carries, c.refers)
			}
			if c.refers && (bytes.Contains(draft, []byte(text)) || bytes.Contains(draft, file)) {
				t.Errorf("the draft holds the customer's text or file:\n%s", draft)
			}
			n := len(r.relay.Mails())
			r.w.RunOnce(context.Background())
			sent := r.relay.Mails()
			if len(sent) != n+1 {
				t.Fatalf("relay got %d mails, want %d", len(sent), n+1)
			}
			raw := sent[n].Data
			if got, want := textPart(t, raw), textPart(t, wholeRaw); got != want {
				t.Errorf("text sent %q, composed whole %q", got, want)
			}
			if !bytes.Contains(raw, []byte("filename=scan.pdf")) || !bytes.Contains(raw, []byte("YSBzY2FuLCBwYWdlIDE=")) {
				t.Errorf("the file is not attached:\n%s", raw)
			}
		})
	}
}

// A notification queued whole, as releases before Carries queued them,
// goes out as stored.
func TestWholeNotificationSentAsStored(t *testing.T) {
	r := newPrepareRig(t)
	raw := []byte("From: support@example.com\r\nTo: ana@example.com\r\nSubject: [HS-000001] Printer on fire\r\n\r\nThe scanner eats every second page.\r\n")
	err := r.st.UpdateNow(context.Background(), func(tx store.Tx) error {
		return tx.Enqueue(&store.OutMail{TicketID: "HS-000001", Kind: "notify", From: "support@example.com", To: []string{"ana@example.com"}, Raw: raw, Created: r.at})
	})
	if err != nil {
		t.Fatal(err)
	}
	r.w.RunOnce(context.Background())
	if sent := r.relay.Mails(); len(sent) != 1 || !bytes.Equal(sent[0].Data, raw) {
		t.Errorf("relay got %d mails; want the stored bytes", len(sent))
	}
}

// A notification whose message lost its text after it was queued (an
// erasure racing the worker, retention) is not sent: it leaves the outbox
// with an event saying why.
func TestCarriedMessageEmptiedIsNotSent(t *testing.T) {
	r := newPrepareRig(t)
	d := overrideMailer(t, "notify", "{{.TicketID}} from {{.Writer}}:\n\n{{.Text}}\n")
	tk := r.ticket()
	msg := &store.Message{MessageID: "in-1@customer.example", Direction: "in", Kind: "customer", From: "ann@customer.example",
		Text: "The scanner eats every second page.", VisibleText: "The scanner eats every second page.", CreatedAt: r.at, Attachments: []store.Attachment{}}
	o := Out{Kind: "notify", To: []mail.Address{{Address: "ana@example.com"}}, Template: "notify", Internal: true, Carries: msg,
		Data: map[string]any{"Writer": "Ann Lee"}}
	err := r.st.UpdateNow(context.Background(), func(tx store.Tx) error {
		if err := queueCarried(tx, d, tk, o, r.at); err != nil {
			return err
		}
		emptied := *msg
		emptied.Text, emptied.VisibleText = "", ""
		return tx.ReplaceMessages(tk.ID, []store.Message{emptied})
	})
	if err != nil {
		t.Fatal(err)
	}
	r.w.RunOnce(context.Background())
	if n := len(r.relay.Mails()); n != 0 {
		t.Errorf("relay got %d mails", n)
	}
	err = r.st.View(context.Background(), func(tx store.Tx) error {
		if left, err := tx.OutboxList(0, 0); err != nil || len(left) != 0 {
			t.Errorf("outbox after the attempt: %d entries, %v", len(left), err)
		}
		full, err := tx.TicketFull(tk.ID)
		if err != nil {
			return err
		}
		if len(full.Events) != 1 || full.Events[0].Type != rules.EventMailSuppressed ||
			full.Events[0].Detail != "notify mail to ana@example.com not sent: the message it carries is gone or was erased" {
			t.Errorf("events: %+v", full.Events)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// queueCarried stores ticket tk with the message o carries and queues o
// for it within tx.
func queueCarried(tx store.Tx, d *Mailer, tk *store.Ticket, o Out, at time.Time) error {
	if err := tx.PutTicket(tk); err != nil {
		return err
	}
	if err := tx.AddMessage(tk.ID, o.Carries); err != nil {
		return err
	}
	_, err := d.Queue(tx, tk, o, at)
	return err
}

// TestDraftQueuedAsJSONStillSends: a notification queued before drafts
// kept their text apart has its draft as JSON whole; it goes out as the
// same mail queued now does.
func TestDraftQueuedAsJSONStillSends(t *testing.T) {
	r := newPrepareRig(t)
	d := overrideMailer(t, "notify", "{{.TicketID}} from {{.Writer}}:\n\n{{.Text}}\n\n-- \nReply \"above\" to answer, ünï.\n")
	text := "The scanner eats every second page.\n\"Quoted\" <b>and</b> ünïcode."
	msg := &store.Message{MessageID: "in-1@customer.example", Direction: "in", Kind: "customer", From: "ann@customer.example",
		Text: text, VisibleText: text, CreatedAt: r.at, Attachments: []store.Attachment{}}
	tk := r.ticket()
	o := Out{Kind: "notify", To: []mail.Address{{Address: "ana@example.com"}}, Template: "notify", Internal: true,
		Data: map[string]any{"Writer": "Ann Lee"}, Carries: msg}
	err := r.st.UpdateNow(context.Background(), func(tx store.Tx) error {
		if err := queueCarried(tx, d, tk, o, r.at); err != nil {
			return err
		}
		list, err := tx.Outbox(store.Forever, 0)
		if err != nil || len(list) != 1 || list[0].Carries == "" {
			t.Fatalf("outbox: %+v, %v", list, err)
		}
		split, err := tx.OutboxRaw(list[0].ID)
		if err != nil {
			return err
		}
		if split[0] != draftPacked {
			t.Errorf("draft queued as %q...", split[:min(len(split), 20)])
		}
		dr, err := decodeDraft(split)
		if err != nil {
			return err
		}
		whole, err := json.Marshal(dr) // as releases before binary drafts queued it
		if err != nil {
			return err
		}
		old := *list[0]
		old.ID, old.Raw = 0, whole
		if err := tx.Enqueue(&old); err != nil {
			return err
		}
		deflated := *list[0] // as releases before packed drafts queued it
		deflated.ID, deflated.Raw = 0, deflate(draftDeflated, appendDraft(nil, dr))
		return tx.Enqueue(&deflated)
	})
	if err != nil {
		t.Fatal(err)
	}
	r.w.RunOnce(context.Background())
	sent := r.relay.Mails()
	if len(sent) != 3 {
		t.Fatalf("relay got %d mails, want 3", len(sent))
	}
	lf := strings.NewReplacer("\r\n", "\n")
	now := lf.Replace(textPart(t, sent[0].Data))
	if !strings.Contains(now, text) || !strings.Contains(now, "Reply \"above\" to answer, ünï.") {
		t.Errorf("mail from today's draft:\n%q", now)
	}
	for i, form := range []string{"JSON", "deflated"} {
		if before := lf.Replace(textPart(t, sent[i+1].Data)); before != now {
			t.Errorf("mail from today's draft:\n%q\nfrom a %s draft:\n%q", now, form, before)
		}
	}
}

// FuzzDraft reads any bytes as a stored draft, and as the fields inside
// one (the deflated form seldom survives a mutation whole): whatever
// reads must read back the same after encodeDraft.
func FuzzDraft(f *testing.F) {
	good := draft{Mail: Mail{Subject: "[HS-1] x", To: []mail.Address{{Address: "a@x"}}}, Before: "top\n", After: "\n-- \nfoot", From: "c@x", TextSHA256: "ab"}
	full := draft{Mail: Mail{From: mail.Address{Name: "Ann via Support", Address: "support@example.com"}, ReplyTo: &mail.Address{Address: "support+r@example.com"},
		To: []mail.Address{{Name: "Ana", Address: "ana@example.com"}}, Cc: []mail.Address{}, Subject: "[HS-1] x", MessageID: "tg.1@t", InReplyTo: "in@c",
		References: []string{"in@c"}, Auto: "auto-generated", LoopTag: "ticketgate t", ThreadTopic: "x", ThreadKey: "HS-1", Date: time.Date(2026, 12, 6, 5, 0, 0, 1, time.FixedZone("", 3600))},
		Before: "top\n", After: "foot", From: "c@x", TextSHA256: "ab"}
	for _, d := range []draft{good, full} {
		raw, _ := encodeDraft(d)
		f.Add(raw)
		f.Add(appendDraft(nil, d))
	}
	f.Add([]byte(`{"mail":{"Subject":"s"},"before":"b","after":"a"}`))
	f.Add([]byte{0xff, 0xff})
	f.Add([]byte{2, 0, 0, 0, 1, 0})
	f.Add([]byte{draftDeflated, 0xff})
	f.Add([]byte{draftPacked, 0xff})
	f.Add(deflate(draftDeflated, appendDraft(nil, full)))
	readsBack := func(t *testing.T, d draft) {
		again, err := encodeDraft(d)
		if err != nil {
			return // a value JSON cannot hold (a broken time) is refused, not cut
		}
		d2, err := decodeDraft(again)
		if err != nil {
			t.Fatalf("draft %+v does not read back: %v", d, err)
		}
		_, o1 := d.Mail.Date.Zone()
		_, o2 := d2.Mail.Date.Zone()
		if !d2.Mail.Date.Equal(d.Mail.Date) || o1 != o2 {
			t.Errorf("date %v read back as %v", d.Mail.Date, d2.Mail.Date)
		}
		d.Mail.Date, d2.Mail.Date = time.Time{}, time.Time{}
		if !reflect.DeepEqual(d2, d) {
			t.Errorf("draft %#v read back as %#v", d, d2)
		}
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		if d, err := decodeDraft(raw); err == nil {
			readsBack(t, d)
		}
		if d, err := readDraft(raw); err == nil {
			readsBack(t, d)
		}
	})
}

// BenchmarkDraft encodes and decodes a notification's draft as the built-in
// template renders it.
func BenchmarkDraft(b *testing.B) {
	tpl, err := LoadTemplates("")
	if err != nil {
		b.Fatal(err)
	}
	after, err := tpl.Render("notify", map[string]any{"TicketID": "HS-000001", "Writer": "Ann", "WriterAddress": "ann@customer.example",
		"Ticket":      &store.Ticket{ID: "HS-000001", Queue: "support", Status: "new", Priority: "medium", Requester: "ann@customer.example"},
		"ReplyMarker": "##- Please type your reply above this line -##", "EndMarker": "##- End of ticket mail -##",
		"NoteAddress": "support+hs-000001-n-2ub5iurzkffiqmsg@example.com", "Text": "", "SavedReplies": []string{}, "Files": []string{},
		"Escalated": false, "Urgent": false, "IsNew": true, "SLADue": "first response by 2026-12-07 05:47 UTC"})
	if err != nil {
		b.Fatal(err)
	}
	d := draft{Mail: Mail{From: mail.Address{Name: "ann@customer.example via Example Support", Address: "support@example.com"},
		ReplyTo: &mail.Address{Address: "support+hs-000001-r-icuddi3rix5njy62@example.com"}, To: []mail.Address{{Name: "Ana Lima", Address: "ana@example.com"}},
		Subject: "[HS-000001] Refund request", MessageID: "tg.0dndevrhb2ywe.dict2eie0skd@tickets.example.com", InReplyTo: "in.1@customer.example",
		References: []string{"in.1@customer.example"}, Auto: "auto-generated", LoopTag: "ticketgate tickets.example.com", ThreadTopic: "Refund request",
		ThreadKey: "HS-000001", Date: time.Now()}, After: after, From: "ann@customer.example", TextSHA256: strings.Repeat("e5", 32)}
	raw, _ := encodeDraft(d)
	b.Logf("draft of %d bytes text: %d bytes", len(after), len(raw))
	b.Run("encode", func(b *testing.B) {
		for b.Loop() {
			encodeDraft(d)
		}
	})
	b.Run("decode", func(b *testing.B) {
		for b.Loop() {
			decodeDraft(raw)
		}
	})
}

// deflaters and deflate write drafts and mails deflated (draftDeflated,
// mailDeflated), as the releases before packed ones did, for the tests
// that read them.
var deflaters = sync.Pool{New: func() any {
	w, _ := flate.NewWriter(nil, flate.BestSpeed)
	return w
}}

// deflate is b deflated after the byte first.
func deflate(first byte, b []byte) []byte {
	out := bytes.NewBuffer(make([]byte, 0, len(b)/2+64))
	out.WriteByte(first)
	w := deflaters.Get().(*flate.Writer)
	w.Reset(out)
	w.Write(b) // a bytes.Buffer takes every write
	w.Close()
	deflaters.Put(w)
	return out.Bytes()
}

// The outbox's dictionary is the one mail was packed with by every
// release since packing: changed, or read another way by a newer s2,
// queued mail would no longer unpack. Bytes packed on 2026-12-06 must
// unpack to what they were.
func TestOutboxDictionaryIsFrozen(t *testing.T) {
	if sum := sha256.Sum256(outboxDictBytes); hex.EncodeToString(sum[:]) != "9042d6cd691ae74c217345a872857d5b4f90f942c511c515e0e6a4d52adee88c" {
		t.Fatalf("mailout/outbox.dict changed (sha256 %x): mail queued by earlier releases would not unpack", sum)
	}
	packed, _ := hex.DecodeString("07708add07c19a150040000a")
	want := "Subject: [HS-000000] Your request\r\n\r\nSomeone from our team will answer you soon. To add anything, simply reply\r\n"
	if got, err := unpacked(packed); err != nil || string(got) != want {
		t.Errorf("bytes packed on 2026-12-06 unpack to %q, %v; want %q", got, err, want)
	}
}

// TestTextSumIsSHA256: drafts queued by earlier releases hold the SHA-256
// of the carried text; the sum hashed a piece at a time is that hash, for
// texts shorter than a piece, as long, and many pieces long.
func TestTextSumIsSHA256(t *testing.T) {
	for _, n := range []int{0, 1, 511, 512, 513, 4000, 100000} {
		s := strings.Repeat("Caf\u00e9 line\r\n", n/12+1)[:n]
		sum := sha256.Sum256([]byte(s))
		if got, want := textSum(s), hex.EncodeToString(sum[:]); got != want {
			t.Errorf("%d bytes: sum %s, want %s", n, got, want)
		}
	}
}

// TestUnreadableOutboxMailIsRetriedThenGivenUp: a queued mail whose draft
// no longer reads back is not sent; it waits and counts its attempts like
// a deferred mail, and past give_up_after it leaves the outbox with a
// delivery_failed event on its ticket instead of holding its queue for
// good.
func TestUnreadableOutboxMailIsRetriedThenGivenUp(t *testing.T) {
	r := newPrepareRig(t)
	tk := r.ticket()
	msg := &store.Message{MessageID: "in-1@customer.example", Direction: "in", Kind: "customer", From: "ann@customer.example",
		Text: "hello\n", VisibleText: "hello\n", CreatedAt: r.at}
	err := r.st.UpdateNow(context.Background(), func(tx store.Tx) error {
		if err := tx.PutTicket(tk); err != nil {
			return err
		}
		if err := tx.AddMessage(tk.ID, msg); err != nil {
			return err
		}
		id, err := tx.NextOutboxID()
		if err != nil {
			return err
		}
		damaged := []byte{draftPacked, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f, 1, 2, 3}
		return tx.Enqueue(&store.OutMail{ID: id, TicketID: tk.ID, Kind: "notify", From: "support@example.com", To: []string{"ana@example.com"},
			Raw: damaged, Carries: msg.MessageID, Created: r.at, TicketCreated: tk.CreatedAt})
	})
	if err != nil {
		t.Fatal(err)
	}
	outbox := func() (left []*store.OutMail, failed []string) {
		t.Helper()
		err := r.st.View(context.Background(), func(tx store.Tx) error {
			var err error
			if left, err = tx.OutboxList(0, 0); err != nil {
				return err
			}
			full, err := tx.TicketFull(tk.ID)
			for _, e := range full.Events {
				if e.Type == rules.EventDeliveryFailed {
					failed = append(failed, e.Detail)
				}
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return left, failed
	}

	r.w.Now = func() time.Time { return r.at.Add(time.Minute) }
	r.w.RunOnce(context.Background())
	left, failed := outbox()
	if len(left) != 1 || left[0].Attempts != 1 || !strings.Contains(left[0].LastErr, "read outbox mail") || len(failed) != 0 {
		t.Fatalf("after one try: outbox %+v, delivery_failed %q; want the mail waiting, one attempt counted", left, failed)
	}

	r.w.Now = func() time.Time { return r.at.Add(6 * 24 * time.Hour) } // past give_up_after (5 days)
	r.w.RunOnce(context.Background())
	left, failed = outbox()
	if len(left) != 0 || len(failed) != 1 || !strings.Contains(failed[0], "read outbox mail") {
		t.Fatalf("past give_up_after: outbox %+v, delivery_failed %q; want it given up with one event", left, failed)
	}
	if n := len(r.relay.Mails()); n != 0 {
		t.Errorf("the relay got %d mails", n)
	}
}

// TestDraftTooLargeToReadBackIsKeptWhole: a notification whose text
// around the carried message is larger than a draft may be read back
// (maxDraft) is kept as a whole mail, and goes out with the message's
// text.
func TestDraftTooLargeToReadBackIsKeptWhole(t *testing.T) {
	r := newPrepareRig(t)
	d := overrideMailer(t, "notify", "{{.Writer}} wrote:\n\n{{.Text}}\n")
	tk := r.ticket()
	msg := &store.Message{MessageID: "in-1@customer.example", Direction: "in", Kind: "customer", From: "ann@customer.example",
		Text: "the printer is on fire\n", VisibleText: "the printer is on fire\n", CreatedAt: r.at}
	o := Out{Kind: "notify", To: []mail.Address{{Address: "ana@example.com"}}, Template: "notify", Internal: true,
		Data: map[string]any{"Writer": strings.Repeat("Ann Lee ", maxDraft/8+1)}, Carries: msg}
	if err := r.st.UpdateNow(context.Background(), func(tx store.Tx) error { return queueCarried(tx, d, tk, o, r.at) }); err != nil {
		t.Fatal(err)
	}
	r.w.Now = func() time.Time { return r.at.Add(time.Minute) }
	r.w.RunOnce(context.Background())
	got := r.relay.Mails()
	if len(got) != 1 || !strings.Contains(string(got[0].Data), "the printer is on fire") {
		t.Fatalf("relay got %d mails; want the notification with the customer's text", len(got))
	}
}
