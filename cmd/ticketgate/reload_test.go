package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

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
