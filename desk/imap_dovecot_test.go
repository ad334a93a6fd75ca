package desk

import (
	"context"
	"fmt"
	"sync"
	"syscall"
	"testing"
	"ticketgate/mailin"
	"time"
)

// Integration tests of the IMAP poller against a real Dovecot (see
// realserver_test.go); they skip when Dovecot is not installed.

func dovecotConfig(t testing.TB, d *dovecotServer) mailin.IMAPConfig {
	return mailin.IMAPConfig{Name: "dovecot-inbox", Addr: d.Addr, TLS: "none", Username: d.User,
		PasswordFile: passwordFile(t, d.Password), Route: "support@example.com",
		After: "move", MoveTo: "Processed", FailedFolder: "Failed"}
}

// runPoller runs p until the test ends.
func runPoller(t testing.TB, p *mailin.Poller) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); p.Run(ctx) }()
	t.Cleanup(func() { cancel(); wg.Wait() })
}

// mailboxCount is the number of messages in mailbox, from a fresh login.
func mailboxCount(t testing.TB, d *dovecotServer, mailbox string) uint32 {
	t.Helper()
	c, err := d.login()
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	defer c.Close()
	n := selectCount(t, c, mailbox)
	c.Logout().Wait()
	return n
}

func TestDovecotIdleTakesMailAppendedByAnotherClient(t *testing.T) {
	d := startDovecot(t)
	g := startGateway(t)
	p := newTestPoller(t, g, dovecotConfig(t, d))
	runPoller(t, p)
	waitFor(t, 10*time.Second, "poller connected and idling", func() bool {
		st := p.Status()
		return st.Connected && st.Idle && !st.LastSuccess.IsZero()
	})

	t0 := time.Now()
	d.Append(t, "INBOX", msg(`"Alice" <alice@customer.example>`, "support@example.com", "Printer on fire", "It burns.",
		"Message-ID: <idle-1@customer.example>"))
	waitFor(t, 10*time.Second, "ticket from mail appended while idling", func() bool { return len(g.tickets()) == 1 })
	t.Logf("IDLE: ticket %v after APPEND", time.Since(t0))
	tk := g.onlyTicket()
	if tk.Requester != "alice@customer.example" || tk.Subject != "Printer on fire" {
		t.Errorf("ticket %s: requester %q subject %q", tk.ID, tk.Requester, tk.Subject)
	}
	waitFor(t, 10*time.Second, "message moved to Processed", func() bool {
		return mailboxCount(t, d, "Processed") == 1 && mailboxCount(t, d, "INBOX") == 0
	})
	if cp := g.checkpoint("dovecot-inbox"); cp.UID != 1 || cp.UIDValidity == 0 {
		t.Errorf("checkpoint %+v", cp)
	}
}

func bulkMessages(n int, prefix string) [][]byte {
	msgs := make([][]byte, n)
	for i := range msgs {
		msgs[i] = harnessMessage(fmt.Sprintf("%s-%d@customer.test", prefix, i), 4096)
	}
	return msgs
}

func TestDovecotDrainsBacklogOf10000(t *testing.T) {
	if testing.Short() {
		t.Skip("drains 10,000 messages: over a minute on a small machine")
	}
	d := startDovecot(t)
	g := startGateway(t)
	const many = 10000
	d.AppendMany(t, "INBOX", bulkMessages(many, "backlog"))

	p := newTestPoller(t, g, dovecotConfig(t, d))
	t0 := time.Now()
	n, err := p.RunOnce(context.Background())
	elapsed := time.Since(t0)
	if err != nil {
		t.Fatalf("drain: %v", err)
	}
	t.Logf("drained %d messages of 4 KB in %v: %.0f msgs/s", n, elapsed.Round(time.Millisecond), float64(n)/elapsed.Seconds())
	if n != many {
		t.Errorf("took %d messages, want %d", n, many)
	}
	if got := len(g.tickets()); got != many {
		t.Errorf("%d tickets, want %d", got, many)
	}
	if in, done := mailboxCount(t, d, "INBOX"), mailboxCount(t, d, "Processed"); in != 0 || done != many {
		t.Errorf("INBOX %d Processed %d, want 0 and %d", in, done, many)
	}
	if cp := g.checkpoint("dovecot-inbox"); cp.UID != many {
		t.Errorf("checkpoint UID %d, want %d", cp.UID, many)
	}
}

func TestDovecotCrashDuringDrainLosesNothingAndDuplicatesNothing(t *testing.T) {
	d := startDovecot(t)
	g := startGateway(t)
	const many = 3000
	d.AppendMany(t, "INBOX", bulkMessages(many, "restart"))

	p := newTestPoller(t, g, dovecotConfig(t, d))
	p.Batch = 100
	runPoller(t, p)
	waitFor(t, 60*time.Second, "drain under way", func() bool { return len(g.tickets()) >= 300 })
	// A crash, not a polite stop: Dovecot's imap processes would otherwise
	// finish serving the open connection after the master exits.
	syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
	d.Stop(t)
	stoppedAt := len(g.tickets())
	if stoppedAt >= many {
		t.Fatalf("drain finished (%d tickets) before the server was stopped; nothing was interrupted", stoppedAt)
	}
	t.Logf("dovecot killed with %d of %d messages taken", stoppedAt, many)
	waitFor(t, 10*time.Second, "poller noticing the server is gone", func() bool { return !p.Status().Connected })
	d.Start(t)

	waitFor(t, 120*time.Second, "every message taken after the restart", func() bool {
		return len(g.tickets()) >= many && mailboxCount(t, d, "INBOX") == 0
	})
	list := g.tickets()
	if len(list) != many {
		t.Errorf("%d tickets, want exactly %d", len(list), many)
	}
	seen := map[string]bool{}
	for _, tk := range list {
		full := g.ticket(tk.ID)
		if len(full.Messages) == 0 {
			t.Fatalf("ticket %s has no messages", tk.ID)
		}
		id := full.Messages[0].MessageID
		if seen[id] {
			t.Errorf("message %s made two tickets", id)
		}
		seen[id] = true
	}
	// A server killed mid-MOVE (copy, then expunge) or before its index
	// recorded the expunges of MOVEs it had answered shows those messages
	// in INBOX again after the restart; the poller moves them again, so
	// Processed may hold a few batches twice. Never fewer: nothing is lost,
	// and no message made a second ticket (above).
	if done := mailboxCount(t, d, "Processed"); done < many || int(done) > many+3*p.Batch {
		t.Errorf("Processed holds %d, want %d (up to %d after the server's crash)", done, many, many+3*p.Batch)
	}
	if st := p.Status(); st.LastError == "" {
		t.Errorf("status %+v does not show the connection error", st)
	}
}
