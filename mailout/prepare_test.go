package mailout

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/mail"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"ticketgate/mailout/relaytest"
	"ticketgate/rules"
	"ticketgate/store"
	"ticketgate/store/boltdb"
)

// prepareRig queues mail for one ticket into a real store and delivers it
// to a recording relay.
type prepareRig struct {
	t     *testing.T
	st    store.Store
	relay *relaytest.Relay
	w     *Worker
	at    time.Time
}

func newPrepareRig(t *testing.T) *prepareRig {
	st, err := boltdb.Open(filepath.Join(t.TempDir(), "t.db"), boltdb.Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	r := &prepareRig{t: t, st: st, relay: relaytest.Start(t), at: time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)}
	r.w = NewWorker(st, &Relay{Addr: r.relay.Addr, TLS: "none", Hostname: "t.example", Timeout: 5 * time.Second},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	return r
}

func (r *prepareRig) ticket() *store.Ticket {
	return &store.Ticket{ID: "HS-000001", Subject: "Printer on fire", Status: rules.StatusNew, Priority: rules.PriorityMedium,
		Route: "support@example.com", Requester: "ann@customer.example", RequesterName: "Ann Lee",
		LastInID: "in-1@customer.example", Thread: []string{"in-1@customer.example"}, CreatedAt: r.at}
}

// queue queues o for t at r.at and returns what Queue said and the mail
// the relay got for it.
func (r *prepareRig) queue(d *Mailer, t *store.Ticket, o Out) (Queued, []byte) {
	r.t.Helper()
	q := r.enqueue(d, t, o)
	n := len(r.relay.Mails())
	r.w.RunOnce(context.Background())
	got := r.relay.Mails()
	if len(got) != n+1 {
		r.t.Fatalf("relay got %d mails, want %d", len(got), n+1)
	}
	return q, got[n].Data
}

// enqueue stores t and queues o for it at r.at, and returns what Queue
// said; nothing is sent.
func (r *prepareRig) enqueue(d *Mailer, t *store.Ticket, o Out) Queued {
	r.t.Helper()
	var q Queued
	err := r.st.UpdateNow(context.Background(), func(tx store.Tx) error {
		if err := tx.PutTicket(t); err != nil {
			return err
		}
		var err error
		q, err = d.Queue(tx, t, o, r.at)
		return err
	})
	if err != nil {
		r.t.Fatal(err)
	}
	return q
}

// sameBut reports whether two mails are the same bytes once each one's
// Message-ID is blanked.
func sameBut(a []byte, aID string, b []byte, bID string) bool {
	return bytes.Equal(bytes.ReplaceAll(a, []byte(aID), nil), bytes.ReplaceAll(b, []byte(bID), nil))
}

func autoOut() Out {
	return Out{Kind: "auto", To: []mail.Address{{Name: "Ann Lee", Address: "ann@customer.example"}}, Template: "auto_reply",
		Data: map[string]any{"Name": "Ann Lee", "RequestType": ""}, Auto: "auto-replied", Record: true}
}

// A mail prepared before the transaction goes out byte for byte as Queue
// would have composed it there, Message-ID aside; when anything it was
// built from changed by the time it is queued, Queue composes it again
// and sends exactly what it sends without a prepared copy.
func TestPreparedMailIsTheMailQueueComposes(t *testing.T) {
	r := newPrepareRig(t)
	d := testMailer(t, "")

	fresh, freshRaw := r.queue(d, r.ticket(), autoOut())
	o := autoOut()
	o.Prepared = d.Prepare(r.ticket(), o, r.at)
	if o.Prepared == nil {
		t.Fatal("the built-in auto-reply cannot be prepared")
	}
	q, raw := r.queue(d, r.ticket(), o)
	if !q.Precomposed || q.MessageID != o.Prepared.MessageID {
		t.Fatalf("a prepared mail whose inputs still hold was not used: %+v", q)
	}
	if !sameBut(raw, q.MessageID, freshRaw, fresh.MessageID) {
		t.Errorf("prepared mail differs from the one composed in the transaction:\n%s\n---\n%s", raw, freshRaw)
	}
	if !bytes.Contains(raw, []byte("Message-Id: <"+q.MessageID+">")) {
		t.Errorf("the prepared mail does not carry its Message-ID <%s>:\n%s", q.MessageID, raw)
	}

	other, err := LoadTemplates(writeOverride(t, "auto_reply", "Another text for {{.TicketID}}.\n"))
	if err != nil {
		t.Fatal(err)
	}
	changes := []struct {
		name   string
		change func(*Mailer, *store.Ticket, *Out)
		stale  string
	}{
		{"ticket id", func(_ *Mailer, tk *store.Ticket, _ *Out) { tk.ID = "HS-000002" }, "the ticket id changed"},
		{"ticket subject", func(_ *Mailer, tk *store.Ticket, _ *Out) { tk.Subject = "Scanner jammed" }, "the template's inputs changed"},
		{"message answered", func(_ *Mailer, tk *store.Ticket, _ *Out) {
			tk.LastInID, tk.Thread = "in-1+ab12@customer.example", []string{"in-1+ab12@customer.example"}
		}, "the threading changed"},
		{"conversation", func(_ *Mailer, tk *store.Ticket, _ *Out) { tk.Thread = append(tk.Thread, "in-0@customer.example") }, "the threading changed"},
		{"template data", func(_ *Mailer, _ *store.Ticket, o *Out) {
			o.Data = map[string]any{"Name": "Ann", "RequestType": "bug report"}
		}, "the template's inputs changed"},
		{"recipient", func(_ *Mailer, _ *store.Ticket, o *Out) { o.To = []mail.Address{{Address: "bob@customer.example"}} }, "the recipients changed"},
		{"route", func(_ *Mailer, tk *store.Ticket, _ *Out) { tk.Route = "tech@example.com" }, "the mail's headers changed"},
		{"from name", func(d *Mailer, _ *store.Ticket, _ *Out) { d.FromName = "Other Support" }, "the template's inputs changed"},
		{"templates", func(d *Mailer, _ *store.Ticket, _ *Out) { d.Templates = other }, "the templates changed"},
	}
	for _, c := range changes {
		d := testMailer(t, "")
		o := autoOut()
		o.Prepared = d.Prepare(r.ticket(), o, r.at)
		tk := r.ticket()
		c.change(d, tk, &o)
		again := *tk // Queue adds what it sends to tk's conversation
		again.Thread = slices.Clone(tk.Thread)
		q, raw := r.queue(d, tk, o)
		if q.Precomposed || q.Stale != c.stale {
			t.Errorf("%s changed: precomposed %v, stale %q; want composed again because %q", c.name, q.Precomposed, q.Stale, c.stale)
		}
		o.Prepared = nil
		want, wantRaw := r.queue(d, &again, o)
		if !sameBut(raw, q.MessageID, wantRaw, want.MessageID) {
			t.Errorf("%s changed: the mail sent is not the one composed in the transaction:\n%s\n---\n%s", c.name, raw, wantRaw)
		}
	}
}

// writeOverride writes an override directory with template name.
func writeOverride(t *testing.T, name, text string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, name+".txt"), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// overrideMailer is a Mailer whose template name is text, an override.
func overrideMailer(t *testing.T, name, text string) *Mailer {
	t.Helper()
	return testMailer(t, writeOverride(t, name, text))
}

// testMailer is a Mailer with the templates of override directory dir
// ("": the built-in ones alone).
func testMailer(t *testing.T, dir string) *Mailer {
	t.Helper()
	tpl, err := LoadTemplates(dir)
	if err != nil {
		t.Fatal(err)
	}
	return &Mailer{Hostname: "tickets.example.com", FromName: "Example Support", Templates: tpl}
}

// An override that reads the ticket, however it reaches it, is rendered
// with the ticket as it stands when the mail is queued: a priority raised
// after the mail was prepared is the one the customer reads.
func TestPreparedMailNeverShowsAStaleTicket(t *testing.T) {
	r := newPrepareRig(t)
	texts := []string{
		"Priority {{.Ticket.Priority}}.\n",
		"{{with .Ticket}}Priority {{.Priority}}.{{end}}\n",
		"{{if .Ticket}}Priority {{$.Ticket.Priority}}.{{end}}\n",
		"{{$t := .}}Priority {{$t.Ticket.Priority}}.\n",
		"{{define \"p\"}}Priority {{.Ticket.Priority}}.{{end}}{{template \"p\" .}}\n",
		"{{with .Name}}{{$.Ticket.Priority | printf \"Priority %s.\"}}{{end}}\n",
		"{{range $k, $v := .}}{{if eq $k \"Ticket\"}}Priority {{$v.Priority}}.{{end}}{{end}}\n",
		"Priority {{(index . \"Ticket\").Priority}}.\n",
	}
	for _, text := range texts {
		d := overrideMailer(t, "auto_reply", text)
		o := autoOut()
		o.Prepared = d.Prepare(r.ticket(), o, r.at)
		tk := r.ticket()
		tk.Priority = rules.PriorityCritical
		_, raw := r.queue(d, tk, o)
		if !strings.Contains(string(raw), "Priority critical.") {
			t.Errorf("override %q sent:\n%s", text, raw)
		}
	}
	// A template that reads only plain values is prepared, and used.
	d := overrideMailer(t, "auto_reply", "{{range .SavedReplies}}{{.}} {{end}}{{with .Name}}Dear {{.}}{{end}}, see {{.TicketID}}.\n")
	o := autoOut()
	o.Prepared = d.Prepare(r.ticket(), o, r.at)
	tk := r.ticket()
	tk.Priority = rules.PriorityCritical
	if q, raw := r.queue(d, tk, o); !q.Precomposed || !strings.Contains(string(raw), "Dear Ann Lee, see HS-000001.") {
		t.Errorf("a template of plain values: precomposed %v (stale %q), sent:\n%s", q.Precomposed, q.Stale, raw)
	}
}

// A prepared mail is kept packed in the outbox, in at most a third of the
// mail's bytes, and goes out whole, as does one kept deflated by the
// release before; one whose packed bytes are damaged is not sent
// (OutboxMail fails) and stays queued for a retry.
func TestPreparedMailIsKeptPacked(t *testing.T) {
	r := newPrepareRig(t)
	d := testMailer(t, "")
	kept := func() (*store.OutMail, []byte) {
		var m *store.OutMail
		var raw []byte
		err := r.st.View(context.Background(), func(tx store.Tx) error {
			due, err := tx.Outbox(time.Now().Add(time.Hour), 10)
			if err != nil || len(due) != 1 {
				t.Fatalf("outbox %v, %v; want one entry", due, err)
			}
			m = due[0]
			raw, err = tx.OutboxRaw(m.ID)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return m, raw
	}
	queueOnly := func() {
		o := autoOut()
		o.Prepared = d.Prepare(r.ticket(), o, r.at)
		r.enqueue(d, r.ticket(), o)
	}

	queueOnly()
	m, raw := kept()
	var sent []byte
	if err := r.st.View(context.Background(), func(tx store.Tx) error {
		var err error
		sent, err = OutboxMail(tx, m)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := mail.ReadMessage(bytes.NewReader(sent)); err != nil || raw[0] != mailPacked || len(raw) > len(sent)/3 {
		t.Errorf("kept %d bytes beginning %#x for a mail of %d (%v):\n%s", len(raw), raw[0], len(sent), err, sent)
	}
	r.w.RunOnce(context.Background())
	if got := r.relay.Mails(); len(got) != 1 || !bytes.Equal(got[0].Data, sent) {
		t.Fatalf("relay got %d mails; want the mail OutboxMail gives", len(got))
	}

	// The same mail as the release before kept it, deflated.
	m.ID, m.Raw = 0, deflate(mailDeflated, sent)
	if err := r.st.UpdateNow(context.Background(), func(tx store.Tx) error { return tx.Enqueue(m) }); err != nil {
		t.Fatal(err)
	}
	r.w.RunOnce(context.Background())
	if got := r.relay.Mails(); len(got) != 2 || !bytes.Equal(got[1].Data, sent) {
		t.Fatalf("relay got %d mails; want the deflated one sent whole too", len(got))
	}

	queueOnly()
	m, raw = kept()
	raw = append(raw[:len(raw)/2:len(raw)/2], 0xff, 0xff, 0xff)
	if err := r.st.UpdateNow(context.Background(), func(tx store.Tx) error {
		if err := tx.Dequeue(m.ID); err != nil {
			return err
		}
		m.Raw = raw
		return tx.Enqueue(m)
	}); err != nil {
		t.Fatal(err)
	}
	if err := r.st.View(context.Background(), func(tx store.Tx) error {
		_, err := OutboxMail(tx, m)
		return err
	}); err == nil {
		t.Error("OutboxMail read damaged packed bytes without an error")
	}
	// Tried a minute after it was queued, long before give_up_after.
	r.w.Now = func() time.Time { return r.at.Add(time.Minute) }
	r.w.RunOnce(context.Background())
	if got := r.relay.Mails(); len(got) != 2 {
		t.Errorf("the damaged mail was sent: relay got %d mails", len(got))
	}
	if m2, _ := kept(); m2.ID != m.ID || m2.Attempts != 1 {
		t.Errorf("the damaged mail is no longer queued, or its attempt not counted: %+v", m2)
	}
}
