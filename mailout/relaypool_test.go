package mailout

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"ticketgate/mailout/relaytest"
	"ticketgate/rules"
	"ticketgate/store"
)

var subjectRe = regexp.MustCompile(`(?m)^Subject: ([^\r\n]*)`)

// timesSent counts the mails the relay took by Subject.
func timesSent(mails []relaytest.Mail) map[string]int {
	n := map[string]int{}
	for _, m := range mails {
		if s := subjectRe.FindSubmatch(m.Data); s != nil {
			n[string(s[1])]++
		}
	}
	return n
}

// waitEmpty waits until the outbox is empty, each outcome committed.
func (e *outboxEnv) waitEmpty(timeout time.Duration) {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for n := len(e.outbox()); n != 0; n = len(e.outbox()) {
		if time.Now().After(deadline) {
			e.t.Fatalf("%d mails still queued", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Mail after mail goes over the few sessions the relay client keeps open:
// 60 mails to 60 recipients reach the relay once each over at most as
// many connections as deliveries run at once, and the outbox empties.
func TestRelaySessionsCarryManyMails(t *testing.T) {
	e := newOutboxEnv(t)
	const n = 60
	for i := range n {
		e.queue(fmt.Sprintf("HS-%06d", i+1), []string{fmt.Sprintf("c%d@x.example", i)}, fmt.Sprintf("mail %d", i))
	}
	e.run()
	got := e.relay.WaitFor(n, 20*time.Second)
	e.waitEmpty(10 * time.Second)
	sent := timesSent(e.relay.Mails())
	for i := range n {
		if c := sent[fmt.Sprintf("mail %d", i)]; c != 1 {
			t.Errorf("mail %d reached the relay %d times, want once", i, c)
		}
	}
	if len(got) != n {
		t.Fatalf("relay got %d mails, want %d", len(got), n)
	}
	t.Logf("%d mails over %d SMTP sessions", n, e.relay.Sessions())
	if s := e.relay.Sessions(); s > e.w.concurrency() {
		t.Errorf("%d mails took %d SMTP sessions; want at most %d (one per delivery running at once)", n, s, e.w.concurrency())
	}
}

// A relay that drops sessions (after every 4th mail, at the next MAIL
// FROM) and twice drops a connection after reading a whole mail without
// answering still gets every mail exactly once: the client opens a new
// session for the mail it was about to send, and the two unanswered mails
// are retried (they were not kept).
func TestRelayDroppingConnectionsGetsEveryMailOnce(t *testing.T) {
	e := newOutboxEnv(t)
	e.w.RetryBase = 20 * time.Millisecond
	e.relay.DropSessionsAfter(4)
	e.relay.DropData(7, 23)
	const n = 50
	for i := range n {
		e.queue(fmt.Sprintf("HS-%06d", i+1), []string{fmt.Sprintf("c%d@x.example", i)}, fmt.Sprintf("mail %d", i))
	}
	e.run()
	e.relay.WaitFor(n, 30*time.Second)
	e.waitEmpty(10 * time.Second)
	time.Sleep(100 * time.Millisecond) // a repeat would come now
	sent := timesSent(e.relay.Mails())
	for i := range n {
		if c := sent[fmt.Sprintf("mail %d", i)]; c != 1 {
			t.Errorf("mail %d reached the relay %d times, want once", i, c)
		}
	}
	t.Logf("%d mails over %d SMTP sessions", n, e.relay.Sessions())
	if s := e.relay.Sessions(); s < n/4 || s >= n+2 {
		t.Errorf("%d SMTP sessions for %d mails with a relay closing each after 4; want from %d to %d", s, n, n/4, n+1)
	}
}

// A recipient the relay refuses (for good) is that mail's: the next mail
// goes over the same session, also after a mail whose only recipient was
// refused (the session is reset, not dropped).
func TestRelayRefusedRecipientDoesNotAffectTheNextMail(t *testing.T) {
	e := newOutboxEnv(t)
	e.w.Concurrency = 1
	e.relay.FailRcpt("gone@x.example", &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"})
	err := e.st.UpdateNow(context.Background(), func(tx store.Tx) error {
		for i := 1; i <= 4; i++ {
			if err := tx.PutTicket(&store.Ticket{ID: fmt.Sprintf("HS-%06d", i), Status: rules.StatusOpen, CreatedAt: time.Now()}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	e.queue("HS-000001", []string{"gone@x.example"}, "only to the refused")
	e.queue("HS-000002", []string{"b@x.example"}, "after a mail refused whole")
	e.queue("HS-000003", []string{"gone@x.example", "c@x.example"}, "to one refused and one taken")
	e.queue("HS-000004", []string{"d@x.example"}, "after a partial refusal")
	e.w.RunOnce(context.Background())
	got := e.relay.Mails()
	var to []string
	for _, m := range got {
		to = append(to, strings.Join(m.To, "+"))
	}
	if strings.Join(to, ",") != "b@x.example,c@x.example,d@x.example" {
		t.Fatalf("relay got mails to %v; want b, c, d in order", to)
	}
	if s := e.relay.Sessions(); s != 1 {
		t.Errorf("%d SMTP sessions; want the 4 mails over one", s)
	}
	if n := len(e.outbox()); n != 0 {
		t.Errorf("%d mails still queued", n)
	}
	for _, id := range []string{"HS-000001", "HS-000003"} {
		var failed []string
		err := e.st.View(context.Background(), func(tx store.Tx) error {
			tk, err := tx.TicketFull(id)
			if err != nil {
				return err
			}
			for _, ev := range tk.Events {
				if ev.Type == rules.EventDeliveryFailed {
					failed = append(failed, ev.Detail)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(failed) != 1 || !strings.Contains(failed[0], "gone@x.example") {
			t.Errorf("%s: delivery_failed events %q, want one naming gone@x.example", id, failed)
		}
	}
}

// A pooled session the relay closed while it sat idle costs the next mail
// nothing: it goes over a new session, once.
func TestRelayClosedIdleSessionIsReplaced(t *testing.T) {
	relay := relaytest.Start(t)
	r := &Relay{Addr: relay.Addr, TLS: "none", Hostname: "t.example", Timeout: 5 * time.Second}
	defer r.Close()
	send := func(subject string) {
		t.Helper()
		if _, err := r.Send("a@t.example", []string{"b@x.example"}, []byte("Subject: "+subject+"\r\n\r\nx\r\n"), nil); err != nil {
			t.Fatalf("send %q: %v", subject, err)
		}
	}
	send("first")
	relay.Down() // closes the pooled session's connection
	relay.Up(t)
	send("second")
	send("third")
	sent := timesSent(relay.Mails())
	if sent["first"] != 1 || sent["second"] != 1 || sent["third"] != 1 || len(sent) != 3 {
		t.Fatalf("relay got %v; want first, second and third once each", sent)
	}
	if s := relay.Sessions(); s != 2 {
		t.Errorf("%d SMTP sessions; want 2 (the first, then one for second and third)", s)
	}
}

// A session left idle is ended (QUIT) after IdleTimeout, and Close ends
// the idle ones at once: no connection to the relay stays open for
// nothing.
func TestRelayIdleSessionsAreClosed(t *testing.T) {
	relay := relaytest.Start(t)
	r := &Relay{Addr: relay.Addr, TLS: "none", Hostname: "t.example", Timeout: 5 * time.Second, IdleTimeout: 50 * time.Millisecond}
	if _, err := r.Send("a@t.example", []string{"b@x.example"}, []byte("Subject: one\r\n\r\nx\r\n"), nil); err != nil {
		t.Fatal(err)
	}
	if n := relay.Open(); n != 1 {
		t.Fatalf("%d sessions open after a mail; want the one kept for the next", n)
	}
	waitOpen := func(want int) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); relay.Open() != want; time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%d sessions open; want %d", relay.Open(), want)
			}
		}
	}
	waitOpen(0)

	r.IdleTimeout = time.Hour
	if _, err := r.Send("a@t.example", []string{"b@x.example"}, []byte("Subject: two\r\n\r\nx\r\n"), nil); err != nil {
		t.Fatal(err)
	}
	r.Close()
	waitOpen(0)
	if got := relay.Sessions(); got != 2 {
		t.Errorf("%d sessions in all; want 2", got)
	}
}

// A relay without PIPELINING that answers DATA with 354 and then stops
// reading: the mail's write gives up after the submission timeout (the
// mail is retried later) instead of holding a delivery for good.
func TestRelayThatStopsReadingDuringDataTimesOut(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	stalled := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		stalled <- c
		r := bufio.NewReader(c)
		fmt.Fprintf(c, "220 relay.test ESMTP\r\n")
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			switch cmd := strings.ToUpper(strings.TrimSpace(line)); {
			case strings.HasPrefix(cmd, "EHLO"):
				fmt.Fprintf(c, "250-relay.test\r\n250 8BITMIME\r\n") // no PIPELINING
			case cmd == "DATA":
				fmt.Fprintf(c, "354 go ahead\r\n")
				return // and never reads again
			default:
				fmt.Fprintf(c, "250 ok\r\n")
			}
		}
	}()
	defer func() {
		select {
		case c := <-stalled:
			c.Close()
		default:
		}
	}()
	r := &Relay{Addr: ln.Addr().String(), TLS: "none", Hostname: "t.example", Timeout: time.Second}
	// Far more than the socket buffers hold.
	raw := append([]byte("Subject: big\r\n\r\n"), bytes.Repeat([]byte(strings.Repeat("x", 76)+"\r\n"), 1<<19)...)
	done := make(chan error, 1)
	go func() {
		_, err := r.Send("desk@t.example", []string{"a@x.example"}, raw, nil)
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("Send reported the mail taken by a relay that never read it")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Send still blocked 10s after the relay stopped reading (Timeout 1s)")
	}
}
