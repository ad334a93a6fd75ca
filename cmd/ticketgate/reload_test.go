package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt" // only to hold the database's lock as another command would

	"ticketgate/mailout/relaytest"
)

// TestSIGHUPReloadsOverAnOpenConnection opens an SMTP connection, reloads
// the configuration with SIGHUP (a changed auto-reply template, a new
// route), and sends on the same connection: the mail is taken, goes by the
// new route and is answered with the new template. A config that does not
// load is refused with a log line and the last good one stays.
func TestSIGHUPReloadsOverAnOpenConnection(t *testing.T) {
	e := newEnv(t, true)
	tpl := t.TempDir()
	writeTemplate := func(text string) {
		if err := os.WriteFile(filepath.Join(tpl, "auto_reply.txt"), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writeTemplate("Version one for {{.TicketID}}.\n")
	e.opsConfig("templates = "+quote(tpl)+"\n", "")
	s := e.serve()
	c, err := dialSender(e.smtp)
	if err != nil {
		t.Fatal(err)
	}
	defer c.c.Close()
	if err := c.send("ann@customer.example", "support@example.com", message("ann@customer.example", "support@example.com", "One", "reload-1@customer.example", "Hi.")); err != nil {
		t.Fatalf("before the reload: %v", err)
	}
	replyWith(t, e.relay, 1, "Version one for")
	if err := c.send("ann@customer.example", "sales@example.com", message("ann@customer.example", "sales@example.com", "Sales", "reload-0@customer.example", "Hi.")); err == nil {
		t.Fatal("sales@example.com taken before it is configured")
	}
	c.c.Reset()

	writeTemplate("Version two for {{.TicketID}}.\n")
	e.opsConfig("templates = "+quote(tpl)+"\n", "[[route]]\naddress = \"sales@example.com\"\nqueue = \"sales\"\n")
	s.cmd.Process.Signal(syscall.SIGHUP)
	s.waitLog(t, "configuration reloaded")
	if err := c.send("ann@customer.example", "sales@example.com", message("ann@customer.example", "sales@example.com", "Two", "reload-2@customer.example", "Hi.")); err != nil {
		t.Fatalf("on the connection opened before the reload, to the new route: %v", err)
	}
	replyWith(t, e.relay, 2, "Version two for")

	bad := "[[route]]\naddress = \"sales@example.com\"\nqueue = \"sales\"\n\n[limits]\nauto_replies_per_hr = 5\n" // a typo
	e.opsConfig("templates = "+quote(tpl)+"\n", bad)
	s.cmd.Process.Signal(syscall.SIGHUP)
	s.waitLog(t, "configuration reload refused")
	if !strings.Contains(s.stderr.String(), "limits.auto_replies_per_hr") {
		t.Errorf("the refusal does not name the bad key:\n%s", s.stderr.String())
	}
	if err := c.send("ann@customer.example", "sales@example.com", message("ann@customer.example", "sales@example.com", "Three", "reload-3@customer.example", "Hi.")); err != nil {
		t.Fatalf("after a refused reload: %v", err)
	}
	replyWith(t, e.relay, 3, "Version two for")
	m := e.scrape()
	if m[`ticketgate_config_reloads_total{result="ok"}`] != 1 || m[`ticketgate_config_reloads_total{result="error"}`] != 1 {
		t.Errorf("reload counters: ok %v, error %v; want 1 and 1", m[`ticketgate_config_reloads_total{result="ok"}`], m[`ticketgate_config_reloads_total{result="error"}`])
	}
	c.c.Quit()
	if code := s.stop(t); code != 0 {
		t.Fatalf("serve exit %d after two reloads, want 0", code)
	}
	for _, id := range []string{"reload-1@customer.example", "reload-2@customer.example", "reload-3@customer.example"} {
		if missing := e.missingMessages([]string{id}); len(missing) > 0 {
			t.Errorf("%s is not on a ticket", id)
		}
	}
}

// replyWith waits for the relay's n-th mail and checks its body.
func replyWith(t *testing.T, r *relaytest.Relay, n int, text string) {
	t.Helper()
	mails := r.WaitFor(n, 10*time.Second)
	if len(mails) < n {
		t.Fatalf("relay got %d mails, want %d", len(mails), n)
	}
	if body := string(mails[n-1].Data); !strings.Contains(body, text) {
		t.Errorf("mail %d does not say %q:\n%s", n, text, body)
	}
}

// TestSIGHUPWhileServeStartsIsNotItsEnd: "systemctl reload" sent while
// serve is still starting (here it waits for the database, which another
// command holds) must not end it: systemd does not restart a service a
// SIGHUP ended, and the gateway would stay down. The reload is applied
// once serve runs: the file changed since it was read is in force.
func TestSIGHUPWhileServeStartsIsNotItsEnd(t *testing.T) {
	e := newEnv(t, true)
	e.opsConfig("", "")
	e.injectOK(message("ann@customer.example", "support@example.com", "First", "hup-0@customer.example", "Hi."))
	held, err := bolt.Open(e.dbPath(), 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary, "serve", "-config", e.cfg)
	cmd.Dir = e.dir
	stderr := &lockedBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		held.Close()
		t.Fatal(err)
	}
	var waitErr error
	done := make(chan struct{})
	go func() { waitErr = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
		if t.Failed() {
			t.Logf("serve log:\n%s", stderr.String())
		}
	})
	time.Sleep(500 * time.Millisecond) // serve is waiting for the database
	e.opsConfig("", "[[route]]\naddress = \"sales@example.com\"\nqueue = \"sales\"\n")
	cmd.Process.Signal(syscall.SIGHUP)
	time.Sleep(100 * time.Millisecond)
	held.Close()

	select {
	case <-done:
		t.Fatalf("serve ended by the SIGHUP sent while it started: %v", waitErr)
	case <-time.After(500 * time.Millisecond):
	}
	e.waitHealthy()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(stderr.String(), "configuration reloaded") {
		if time.Now().After(deadline) {
			t.Fatal("the SIGHUP sent while serve started was not applied once it ran")
		}
		time.Sleep(20 * time.Millisecond)
	}
	c, err := dialSender(e.smtp)
	if err != nil {
		t.Fatal(err)
	}
	defer c.c.Close()
	if err := c.send("ann@customer.example", "sales@example.com", message("ann@customer.example", "sales@example.com", "Sales", "hup-1@customer.example", "Hi.")); err != nil {
		t.Errorf("mail to the route the reload added: %v", err)
	}
}

// TestSIGHUPDoesNotMakeANewAgentKey: a reload whose [agents] secret_file
// names a file that is not there (a typo) is refused. Making a new key
// there, as a first start does, would turn away every agent's answer to
// the signed addresses already mailed out.
func TestSIGHUPDoesNotMakeANewAgentKey(t *testing.T) {
	e := newEnv(t, true)
	dir := t.TempDir()
	keyAt := func(name string) string { return "[agents]\nsecret_file = " + quote(filepath.Join(dir, name)) + "\n" }
	e.opsConfig("", keyAt("agent.key"))
	s := e.serve()
	if _, err := os.Stat(filepath.Join(dir, "agent.key")); err != nil {
		t.Fatalf("serve made no agent key: %v", err)
	}
	e.opsConfig("", keyAt("agent.kye"))
	s.cmd.Process.Signal(syscall.SIGHUP)
	s.waitLog(t, "configuration reload")
	if _, err := os.Stat(filepath.Join(dir, "agent.kye")); err == nil {
		t.Errorf("the reload made a new agent key, and the addresses signed with the old one stop working")
	}
	if !strings.Contains(s.stderr.String(), "configuration reload refused") || !strings.Contains(s.stderr.String(), "agent.kye") {
		t.Errorf("the reload was not refused naming the missing key file:\n%s", s.stderr.String())
	}
	if code := s.stop(t); code != 0 {
		t.Fatalf("serve exit %d, want 0", code)
	}
}

// TestSIGHUPDuringAMessageKeepsItsRoute: a reload that takes a route out
// while a message to it is being received (its recipient taken, half its
// text sent) lets that message finish with the configuration it started
// with, as docs/operations.md says: it is answered 250 and on a ticket.
// The sender was told 550 at the end of the data, after its RCPT was
// taken, and the mail bounced. The next transaction has the new routes.
func TestSIGHUPDuringAMessageKeepsItsRoute(t *testing.T) {
	e := newEnv(t, true)
	sales := "[[route]]\naddress = \"sales@example.com\"\nqueue = \"sales\"\n"
	e.opsConfig("", sales)
	s := e.serve()
	c, err := dialSender(e.smtp)
	if err != nil {
		t.Fatal(err)
	}
	defer c.c.Close()
	if err := c.c.Mail("ann@customer.example", nil); err != nil {
		t.Fatal(err)
	}
	if err := c.c.Rcpt("sales@example.com", nil); err != nil {
		t.Fatalf("RCPT to a configured route: %v", err)
	}
	w, err := c.c.Data()
	if err != nil {
		t.Fatal(err)
	}
	raw := message("ann@customer.example", "sales@example.com", "An order", "midway-1@customer.example", strings.Repeat("A line of the order.\n", 400))
	half := len(raw) / 2
	if _, err := w.Write(raw[:half]); err != nil { // past bufio's 4 KB: on the wire
		t.Fatal(err)
	}

	e.opsConfig("", "") // sales@ taken out
	s.cmd.Process.Signal(syscall.SIGHUP)
	s.waitLog(t, "configuration reloaded")
	if _, err := w.Write(raw[half:]); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Errorf("the message being received when the reload took its route out: %v, want 250", err)
	}
	if err := c.c.Reset(); err != nil {
		t.Fatal(err)
	}
	if err := c.send("ann@customer.example", "sales@example.com", message("ann@customer.example", "sales@example.com", "Again", "midway-2@customer.example", "Hi.")); err == nil {
		t.Errorf("a transaction begun after the reload was taken by the route it took out")
	}
	c.c.Quit()
	if code := s.stop(t); code != 0 {
		t.Fatalf("serve exit %d, want 0", code)
	}
	if missing := e.missingMessages([]string{"midway-1@customer.example"}); len(missing) > 0 {
		t.Errorf("the message being received when its route was taken out is on no ticket")
	}
}
