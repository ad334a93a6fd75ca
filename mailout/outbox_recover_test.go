package mailout

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"ticketgate/mailout/relaytest"
	"ticketgate/store"
	"ticketgate/store/boltdb"
)

type outboxEnv struct {
	t     *testing.T
	st    *boltdb.DB
	relay *relaytest.Relay
	w     *Worker
}

func newOutboxEnv(t *testing.T) *outboxEnv {
	t.Helper()
	st, err := boltdb.Open(filepath.Join(t.TempDir(), "t.db"), boltdb.Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	relay := relaytest.Start(t)
	w := NewWorker(st, &Relay{Addr: relay.Addr, TLS: "none", Hostname: "t.example", Timeout: 5 * time.Second},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	return &outboxEnv{t: t, st: st, relay: relay, w: w}
}

func (e *outboxEnv) queue(ticket string, to []string, body string) uint64 {
	e.t.Helper()
	m := &store.OutMail{TicketID: ticket, Kind: "x", From: "support@example.com", To: to,
		Raw: []byte("Subject: " + body + "\r\n\r\n" + body + "\r\n"), Created: time.Now()}
	if err := e.st.UpdateNow(context.Background(), func(tx store.Tx) error { return tx.Enqueue(m) }); err != nil {
		e.t.Fatal(err)
	}
	return m.ID
}

func (e *outboxEnv) outbox() []*store.OutMail {
	e.t.Helper()
	var all []*store.OutMail
	if err := e.st.View(context.Background(), func(tx store.Tx) error {
		var err error
		all, err = tx.OutboxList(0, 0)
		return err
	}); err != nil {
		e.t.Fatal(err)
	}
	return all
}

func (e *outboxEnv) run() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e.w.Run(ctx); close(done) }()
	e.t.Cleanup(func() { cancel(); <-done })
}

// After an outage, the first mail the relay takes again wakes the mail
// deferred meanwhile: it goes out at once, not after its backoff (an
// hour here, far beyond the test's wait).
func TestOutboxRelayBackWakesDeferredMail(t *testing.T) {
	e := newOutboxEnv(t)
	e.w.RetryBase = time.Hour
	e.relay.Down()
	for _, to := range []string{"a@x.example", "b@x.example", "c@x.example"} {
		e.queue("HS-000001", []string{to}, "during the outage to "+to)
	}
	e.run()
	deadline := time.Now().Add(10 * time.Second)
	for {
		deferred := 0
		for _, m := range e.outbox() {
			if m.Attempts > 0 && m.NextAt.After(time.Now().Add(30*time.Minute)) {
				deferred++
			}
		}
		if deferred == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of 3 mails deferred while the relay is down", deferred)
		}
		time.Sleep(20 * time.Millisecond)
	}

	e.relay.Up(t)
	e.queue("HS-000002", []string{"d@x.example"}, "after the outage")
	e.w.Wake()
	got := e.relay.WaitFor(4, 10*time.Second)
	if len(got) != 4 {
		t.Fatalf("relay got %d mails after it came back, want the new one and the 3 deferred", len(got))
	}
	// The relay has them; their outcomes are committed just after.
	for n := len(e.outbox()); n != 0; n = len(e.outbox()) {
		if time.Now().After(deadline.Add(10 * time.Second)) {
			t.Fatalf("%d mails still queued", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
	if got := e.relay.Mails(); len(got) != 4 {
		t.Errorf("relay got %d mails, want 4", len(got))
	}
}

// A relay that takes some recipients and answers 452 for the others gets
// the mail once for those it took; the others stay queued and get it in
// a new transaction, without the first ones getting it again.
func TestOutbox452DeliversToTheAcceptedAndRetriesTheRest(t *testing.T) {
	e := newOutboxEnv(t)
	e.w.RetryBase = time.Hour
	e.relay.FailRcpt("c@x.example", &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 5, 3}, Message: "Too many recipients"})
	id := e.queue("HS-000001", []string{"a@x.example", "b@x.example", "c@x.example"}, "to three")
	e.w.RunOnce(context.Background())
	got := e.relay.Mails()
	if len(got) != 1 || strings.Join(got[0].To, ",") != "a@x.example,b@x.example" {
		t.Fatalf("relay got %d mails (%v); want one to a and b", len(got), got)
	}
	left := e.outbox()
	if len(left) != 1 || left[0].ID != id || strings.Join(left[0].Pending(), ",") != "c@x.example" {
		t.Fatalf("outbox after the 452: %+v; want the mail pending for c only", left)
	}
	if !left[0].NextAt.Before(time.Now().Add(time.Minute)) {
		t.Errorf("the rest waits until %v; a partial success retries at once", left[0].NextAt)
	}

	e.relay.FailRcpt("c@x.example", nil)
	e.w.RunOnce(context.Background())
	got = e.relay.Mails()
	if len(got) != 2 || strings.Join(got[1].To, ",") != "c@x.example" {
		t.Fatalf("relay got %d mails (%v); want a second one to c only", len(got), got)
	}
	if n := len(e.outbox()); n != 0 {
		t.Errorf("%d mails still queued", n)
	}
}

// A mail whose hand-off a killed run noted is taken as delivered by the
// next Run and not sent again; a stale note (the entry counted another
// attempt since) changes nothing.
func TestOutboxHandoffNoteOfAKilledRunIsNotSentAgain(t *testing.T) {
	e := newOutboxEnv(t)
	handed := e.queue("HS-000001", []string{"a@x.example"}, "handed over")
	stale := e.queue("HS-000002", []string{"b@x.example"}, "deferred since")
	err := e.st.UpdateNow(context.Background(), func(tx store.Tx) error {
		m, err := tx.OutboxEntry(stale)
		if err != nil {
			return err
		}
		m.Attempts = 1
		return tx.Enqueue(m)
	})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "t.db.handoff")
	notes := `{"id":1,"attempts":0,"to":["a@x.example"]}` + "\n" + `{"id":2,"attempts":0,"to":["b@x.example"]}` + "\n" + `{"id":3,"att`
	if handed != 1 || stale != 2 {
		t.Fatalf("ids %d %d", handed, stale)
	}
	if err := os.WriteFile(path, []byte(notes), 0o600); err != nil {
		t.Fatal(err)
	}
	e.w.HandoffLog = path
	e.run()
	got := e.relay.WaitFor(1, 10*time.Second)
	time.Sleep(200 * time.Millisecond) // a repeat would come now
	got = e.relay.Mails()
	if len(got) != 1 || got[0].To[0] != "b@x.example" {
		t.Fatalf("relay got %v; want only the mail whose note is stale", got)
	}
	if n := len(e.outbox()); n != 0 {
		t.Errorf("%d mails still queued", n)
	}
	if b, _ := os.ReadFile(path); len(b) != 0 {
		t.Errorf("hand-off log not emptied: %q", b)
	}
}

// A mail whose only recipient the relay refuses for good (550) reached no
// one: it leaves the outbox, and the ticket does not list it as sent.
func TestOutboxMailRefusedForEveryoneIsNotListedSent(t *testing.T) {
	e := newOutboxEnv(t)
	e.relay.FailRcpt("gone@x.example", &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"})
	id := e.queue("HS-000001", []string{"gone@x.example"}, "only to the refused")
	e.w.RunOnce(context.Background())
	if n := len(e.relay.Mails()); n != 0 {
		t.Fatalf("relay took %d mails", n)
	}
	if n := len(e.outbox()); n != 0 {
		t.Fatalf("%d mails still queued", n)
	}
	err := e.st.View(context.Background(), func(tx store.Tx) error {
		if _, to, err := tx.SentTo(id); err == nil {
			t.Errorf("outbox entry %d recorded as sent to %v; the relay took it for no one", id, to)
		}
		_, sent, err := tx.TicketMail("HS-000001")
		for _, m := range sent {
			t.Errorf("ticket lists mail %d to %v as sent", m.ID, m.To)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A worker stopped while it claims mail logs no error: an error line
// sets off an operator's alerts, and a stop is none.
func TestOutboxStoppedWhileClaimingLogsNoError(t *testing.T) {
	e := newOutboxEnv(t)
	var log bytes.Buffer
	e.w.Log = slog.New(slog.NewTextHandler(&log, nil))
	e.queue("HS-000001", []string{"a@x.example"}, "waiting")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	e.w.RunOnce(ctx)
	if strings.Contains(log.String(), "level=ERROR") {
		t.Errorf("a stopped worker logged an error:\n%s", log.String())
	}
	if n := len(e.outbox()); n != 1 {
		t.Errorf("%d mails queued after the stop, want the one still waiting", n)
	}
}

// A relay that answers RCPT TO with 552, as RFC 821 had relays say "too
// many recipients" (and some still say a mailbox is full), refuses that
// recipient for now (RFC 5321, 4.5.3.1.10): the others get the mail, and
// the refused one gets it in a later transaction instead of being failed
// for good.
func TestOutbox552ForARecipientIsRetried(t *testing.T) {
	e := newOutboxEnv(t)
	e.relay.FailRcpt("c@x.example", &smtp.SMTPError{Code: 552, EnhancedCode: smtp.EnhancedCode{5, 5, 3}, Message: "Too many recipients"})
	id := e.queue("HS-000001", []string{"a@x.example", "b@x.example", "c@x.example"}, "to three")
	e.w.RunOnce(context.Background())
	left := e.outbox()
	if len(left) != 1 || left[0].ID != id || strings.Join(left[0].Pending(), ",") != "c@x.example" {
		t.Fatalf("outbox after the 552: %+v; want the mail pending for c", left)
	}
	e.relay.FailRcpt("c@x.example", nil)
	e.w.RunOnce(context.Background())
	got := e.relay.Mails()
	if len(got) != 2 || strings.Join(got[0].To, ",") != "a@x.example,b@x.example" || strings.Join(got[1].To, ",") != "c@x.example" {
		t.Fatalf("relay got %v; want the mail to a and b, then to c", got)
	}
}
