package main

import (
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestSIGTERMLetsDataInProgressFinish sends SIGTERM while a message's data
// is half written: the listener stops taking connections, an idle session
// gets 421 for a new transaction, the message in progress is still
// answered 250 and stored, and serve exits 0.
func TestSIGTERMLetsDataInProgressFinish(t *testing.T) {
	e := newEnv(t, true)
	e.opsConfig("", "[shutdown]\ngrace = \"20s\"\n")
	s := e.serve()
	busy := startData(t, e.smtp, "term-data@customer.example")
	idle, err := dialSender(e.smtp)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.c.Close()
	// The greeting says serve took the connection: one still in the
	// kernel's queue when the listener closes is reset, not a session.
	if err := idle.c.Hello("client.example"); err != nil {
		t.Fatal(err)
	}

	s.cmd.Process.Signal(syscall.SIGTERM)
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", e.smtp, time.Second)
		if err != nil {
			break // no longer accepting
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("serve still accepts connections 10s after SIGTERM")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := idle.c.Mail("sam@customer.example", nil); err == nil || !strings.Contains(err.Error(), "421") {
		t.Errorf("new transaction on an open session during shutdown: %v, want 421", err)
	}
	idle.c.Close()
	if !s.running() {
		t.Fatal("serve exited with a message's data in progress")
	}
	if err := busy.finish(); err != nil {
		t.Fatalf("the message in progress at SIGTERM was not taken: %v", err)
	}
	s.waitExit0(t)
	if missing := e.missingMessages([]string{"term-data@customer.example"}); len(missing) > 0 {
		t.Error("the message answered 250 during shutdown is not stored")
	}
}

// TestSIGTERMGraceAndSecondSignal: a session that stays open holds serve
// no longer than shutdown.grace, and a second SIGTERM ends it at once.
func TestSIGTERMGraceAndSecondSignal(t *testing.T) {
	t.Run("grace", func(t *testing.T) {
		e := newEnv(t, true)
		e.opsConfig("", "[shutdown]\ngrace = \"300ms\"\n")
		s := e.serve()
		idle, err := net.Dial("tcp", e.smtp)
		if err != nil {
			t.Fatal(err)
		}
		defer idle.Close()
		io.ReadFull(idle, make([]byte, 4)) // the greeting: the session is open
		start := time.Now()
		if code := s.stop(t); code != 0 {
			t.Fatalf("exit %d, want 0", code)
		}
		if took := time.Since(start); took > 5*time.Second {
			t.Errorf("an idle session held serve %v past SIGTERM; grace is 300ms", took)
		}
		if !strings.Contains(s.stderr.String(), "grace period over") {
			t.Errorf("the log does not say connections were dropped:\n%s", s.stderr.String())
		}
	})
	t.Run("second signal", func(t *testing.T) {
		e := newEnv(t, true)
		e.opsConfig("", "[shutdown]\ngrace = \"60s\"\n")
		s := e.serve()
		idle, err := net.Dial("tcp", e.smtp)
		if err != nil {
			t.Fatal(err)
		}
		defer idle.Close()
		io.ReadFull(idle, make([]byte, 4))
		s.cmd.Process.Signal(syscall.SIGTERM)
		s.waitLog(t, "shutting down")
		time.Sleep(300 * time.Millisecond)
		if !s.running() {
			t.Fatal("serve did not wait for the open session")
		}
		start := time.Now()
		s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.done:
		case <-time.After(3 * time.Second):
			t.Fatal("serve still runs 3s after a second SIGTERM")
		}
		t.Logf("exited %v after the second SIGTERM, code %d", time.Since(start), s.cmd.ProcessState.ExitCode())
		if !strings.Contains(s.stderr.String(), "second signal") {
			t.Errorf("the log does not say why serve exited:\n%s", s.stderr.String())
		}
	})
}

// A reload asked for while serve shuts down (logrotate's "systemctl
// reload" during a stop) does not end it: the message whose data is in
// progress is still answered 250 and stored, and serve exits 0. The
// SIGHUP used to kill it once shutdown had begun.
func TestSIGHUPDuringShutdownDoesNotKill(t *testing.T) {
	e := newEnv(t, true)
	e.opsConfig("", "[shutdown]\ngrace = \"20s\"\n")
	s := e.serve()
	busy := startData(t, e.smtp, "hup-data@customer.example")
	s.cmd.Process.Signal(syscall.SIGTERM)
	s.waitLog(t, "shutting down")
	s.cmd.Process.Signal(syscall.SIGHUP)
	if err := busy.finish(); err != nil {
		t.Fatalf("the message in progress was not taken after SIGHUP during shutdown: %v", err)
	}
	s.waitExit0(t)
	if missing := e.missingMessages([]string{"hup-data@customer.example"}); len(missing) > 0 {
		t.Errorf("the message taken during shutdown is not on a ticket")
	}
}

// dataInProgress is a message whose data is half sent, on a session of
// its own.
type dataInProgress struct {
	s    *sender
	w    io.WriteCloser
	rest []byte
}

// startData opens an SMTP session at addr and sends the first half of a
// message with Message-ID id to support@.
func startData(t *testing.T, addr, id string) *dataInProgress {
	t.Helper()
	s, err := dialSender(addr)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.c.Mail("rita@customer.example", nil); err != nil {
		t.Fatal(err)
	}
	if err := s.c.Rcpt("support@example.com", nil); err != nil {
		t.Fatal(err)
	}
	w, err := s.c.Data()
	if err != nil {
		t.Fatal(err)
	}
	raw := message("rita@customer.example", "support@example.com", "Half way", id, "First half.\nSecond half.")
	half := len(raw) / 2
	if _, err := w.Write(raw[:half]); err != nil {
		t.Fatal(err)
	}
	return &dataInProgress{s: s, w: w, rest: raw[half:]}
}

// finish sends the rest of the message and ends the session: nil when the
// server answered 250 to the message.
func (d *dataInProgress) finish() error {
	defer d.s.c.Quit()
	if _, err := d.w.Write(d.rest); err != nil {
		return err
	}
	return d.w.Close()
}

// waitExit0 waits for serve, its last session ended, to exit 0.
func (s *server) waitExit0(t *testing.T) {
	t.Helper()
	select {
	case <-s.done:
	case <-time.After(15 * time.Second):
		t.Fatalf("serve did not exit after its last session ended:\n%s", s.stderr.String())
	}
	if code := s.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("exit %d (%v), want 0:\n%s", code, s.cmd.ProcessState, s.stderr.String())
	}
}

// A relay that does not answer the end of a mail (a content filter that
// hangs) holds serve's stop no longer than shutdown.grace: the delivery
// is cut, its mail stays queued, and the restarted gateway sends it. The
// stop waited the ten minutes that answer may take, and systemd killed
// the gateway at TimeoutStopSec (60s), after which the mail was taken as
// handed over and never sent.
func TestSIGTERMCutsADeliveryTheRelayDoesNotAnswer(t *testing.T) {
	e := newEnv(t, true)
	e.opsConfig("", "[shutdown]\ngrace = \"1s\"\n")
	e.relay.SlowEndOfData(time.Hour)
	s := e.serve()
	e.injectOK(message("hana@customer.example", "support@example.com", "Scanner hangs", "hang-1@customer.example", "Hello."))
	// The hand-off log has the note of the mail written right after its
	// final dot: the relay is now scanning it.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if fi, err := os.Stat(e.dbPath() + ".handoff"); err == nil && fi.Size() > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the auto-reply never reached the end of its data at the relay:\n%s", s.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	start := time.Now()
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(20 * time.Second):
		t.Fatalf("serve still runs 20s after SIGTERM (grace 1s), waiting for the relay's answer:\n%s", s.stderr.String())
	}
	if code := s.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("exit %d, want 0:\n%s", code, s.stderr.String())
	}
	t.Logf("stopped %v after SIGTERM", time.Since(start).Round(time.Millisecond))
	if n := e.outboxLen(); n != 1 {
		t.Fatalf("%d mails queued after the stop, want the auto-reply whose delivery was cut", n)
	}

	e.relay.SlowEndOfData(0)
	s = e.serve()
	mails := e.relay.WaitFor(1, 15*time.Second)
	if len(mails) != 1 || mails[0].To[0] != "hana@customer.example" {
		t.Fatalf("after the restart the relay got %d mails, want the auto-reply to hana@customer.example:\n%s", len(mails), s.stderr.String())
	}
	if code := s.stop(t); code != 0 {
		t.Fatalf("exit %d", code)
	}
	if n := e.outboxLen(); n != 0 {
		t.Errorf("%d mails still queued after the restart sent the auto-reply", n)
	}
}
