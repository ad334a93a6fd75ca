package desk

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/mail"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"ticketgate/mailin"
	"ticketgate/mailout"
	"ticketgate/mailout/relaytest"
	"ticketgate/rules"
	"ticketgate/store"
	"ticketgate/store/boltdb"
)

// gateway is a running pipeline for tests: real SMTP and LMTP listeners on
// 127.0.0.1, a real store on disk, an outbox worker sending to a recording
// relay.
type gateway struct {
	t        testing.TB
	dbPath   string
	store    store.Store
	pipeline *Pipeline
	smtp     *mailin.Server
	lmtp     *mailin.Server
	relay    *relaytest.Relay
	worker   *mailout.Worker
	stop     context.CancelFunc
	done     chan struct{}
}

var testRoutes = rules.Routes{
	{Address: "support@example.com", Queue: "support"},
	{Address: "tech@example.com", Queue: "tech"},
	{Address: "billing@example.com", Queue: "billing", Category: "billing"},
	{Address: "escalation@example.com", Queue: "escalation", Kind: "escalation"},
}

func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(testWriter{t}, nil))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func startGateway(t testing.TB) *gateway {
	t.Helper()
	g := &gateway{t: t, dbPath: filepath.Join(t.TempDir(), "data", "tickets.db"), relay: relaytest.Start(t)}
	g.open()
	t.Cleanup(g.shutdown)
	return g
}

func (g *gateway) open() {
	t := g.t
	t.Helper()
	log := testLogger(t)
	st, err := boltdb.Open(g.dbPath, boltdb.Options{}, log)
	if err != nil {
		t.Fatal(err)
	}
	tpl, err := mailout.LoadTemplates("")
	if err != nil {
		t.Fatal(err)
	}
	rules.CompileToken("HS")
	g.store = st
	g.worker = mailout.NewWorker(st, &mailout.Relay{Addr: g.relay.Addr, TLS: "none", Hostname: "tickets.example.com", Timeout: 5 * time.Second}, log)
	g.worker.RetryBase = 20 * time.Millisecond
	g.pipeline = &Pipeline{Store: st, Routes: testRoutes, Prefix: "HS", Hostname: "tickets.example.com",
		Desk: &mailout.Mailer{Hostname: "tickets.example.com", FromName: "Example Support", Templates: tpl}, Log: log, OnCommit: g.worker.Wake,
		Thread: rules.ThreadPolicy{ReopenWindow: 7 * 24 * time.Hour}}
	cfg := mailin.Config{Hostname: "tickets.example.com", MaxMessageBytes: 1 << 20, MaxRecipients: 10}
	if g.smtp, err = mailin.Listen("127.0.0.1:0", false, cfg, g.pipeline, log); err != nil {
		t.Fatal(err)
	}
	if g.lmtp, err = mailin.Listen("127.0.0.1:0", true, cfg, g.pipeline, log); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	g.stop, g.done = cancel, make(chan struct{})
	go func() { defer close(g.done); g.worker.Run(ctx) }()
}

// shutdown stops listeners and worker and closes the database; it may be
// called more than once.
func (g *gateway) shutdown() {
	if g.store == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	g.smtp.Shutdown(ctx)
	g.lmtp.Shutdown(ctx)
	g.stop()
	<-g.done
	g.store.Close()
	g.store = nil
}

// send delivers raw over SMTP and returns the server's answer as an error.
func (g *gateway) send(from string, to []string, raw []byte) error {
	c, err := smtp.Dial(g.smtp.Addr())
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.SendMail(from, to, bytes.NewReader(raw)); err != nil {
		return err
	}
	return c.Quit()
}

func (g *gateway) mustSend(from string, to []string, raw []byte) {
	g.t.Helper()
	if err := g.send(from, to, raw); err != nil {
		g.t.Fatalf("send: %v", err)
	}
}

func (g *gateway) tickets() []*store.Ticket {
	g.t.Helper()
	var list []*store.Ticket
	if err := g.store.View(context.Background(), func(tx store.Tx) error {
		var err error
		list, _, err = tx.Tickets(store.Filter{})
		return err
	}); err != nil {
		g.t.Fatal(err)
	}
	return list
}

// change loads ticket id, lets fn change it and writes it back, as an
// earlier state the test needs (a ticket closed days ago) would have left it.
func (g *gateway) change(id string, fn func(*store.Ticket)) {
	g.t.Helper()
	if err := g.store.UpdateNow(context.Background(), func(tx store.Tx) error {
		t, err := tx.Ticket(id)
		if err != nil {
			return err
		}
		fn(t)
		return tx.PutTicket(t)
	}); err != nil {
		g.t.Fatal(err)
	}
}

func (g *gateway) ticket(id string) *store.Ticket {
	g.t.Helper()
	var tk *store.Ticket
	if err := g.store.View(context.Background(), func(tx store.Tx) error {
		var err error
		tk, err = tx.TicketFull(id)
		return err
	}); err != nil {
		g.t.Fatal(err)
	}
	return tk
}

func (g *gateway) onlyTicket() *store.Ticket {
	g.t.Helper()
	list := g.tickets()
	if len(list) != 1 {
		g.t.Fatalf("want 1 ticket, have %d", len(list))
	}
	return g.ticket(list[0].ID)
}

// settle delivers what is due in the outbox, so that "nothing more was
// sent" can be asserted without sleeping.
func (g *gateway) settle() {
	g.t.Helper()
	for range 100 {
		var n int
		g.store.View(context.Background(), func(tx store.Tx) error {
			due, err := tx.Outbox(time.Time{}, 0)
			n = len(due)
			return err
		})
		if n == 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	g.t.Fatal("outbox did not drain")
}

var msgSeq atomic.Int64

// msg builds a plain-text message; extra are "Key: value" header lines.
func msg(from, to, subject, body string, extra ...string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "From: %s\r\nTo: %s\r\nSubject: %s\r\nDate: Sat, 21 Nov 2026 10:00:00 +0000\r\n", from, to, subject)
	hasID := false
	for _, e := range extra {
		if strings.HasPrefix(strings.ToLower(e), "message-id:") {
			hasID = true
		}
		b.WriteString(e + "\r\n")
	}
	if !hasID {
		fmt.Fprintf(&b, "Message-ID: <m.%s.%s@customer.example>\r\n", digitFree(time.Now().UnixNano()), digitFree(msgSeq.Add(1)))
	}
	b.WriteString("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n")
	b.WriteString(strings.ReplaceAll(body, "\n", "\r\n"))
	b.WriteString("\r\n")
	return []byte(b.String())
}

func header(t testing.TB, raw []byte) mail.Header {
	t.Helper()
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("sent mail does not parse: %v", err)
	}
	return m.Header
}
