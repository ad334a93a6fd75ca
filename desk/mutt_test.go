package desk

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"ticketgate/rules"
)

// TestRealMailClientAnswersANotification has s-nail, a real mail client
// (Debian package s-nail), answer a notification the way an agent does:
// "Reply" to the saved mail, which honours Reply-To and quotes the
// original, sent over SMTP to the gateway. The reply must reach the
// customer as the agent's answer, with the quote cut and no trace of the
// agent's address.
func TestRealMailClientAnswersANotification(t *testing.T) {
	snail := requireBinary(t, "s-nail", "/usr/bin/s-nail")
	g := startDesk(t)
	tk := agOpen(t, g, "Printer on fire", "It is really on fire.")
	notif := agOne(t, g, 0, "ana@example.com")

	before := len(g.relay.Mails())
	dir := t.TempDir()
	box := filepath.Join(dir, "inbox")
	data := strings.ReplaceAll(string(notif.Data), "\r\n", "\n")
	if err := os.WriteFile(box, []byte("From support@example.com Sat Nov 21 10:00:00 2026\n"+data+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, snail, "-n", "-#", "-~", "-N",
		"-S", "mta=smtp://"+g.smtp.Addr(), "-S", "smtp-auth=none", "-S", "sendwait",
		"-S", "from=Ana Lima <ana@example.com>", "-S", "hostname=ana-laptop.example.com",
		"-S", "reply-to-honour=yes", "-S", "quote", "-S", "ttycharset=utf-8", "-S", "sendcharsets=utf-8",
		"-f", box)
	cmd.Env = []string{"HOME=" + dir, "MAILRC=/dev/null", "LC_ALL=C.UTF-8", "TMPDIR=" + dir}
	cmd.Stdin = strings.NewReader("Reply 1\nI have ordered a new printer for you.\n~.\nquit\n")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("s-nail: %v\n%s", err, out.String())
	}
	g.settle()

	now := g.ticket(tk.ID)
	var reply *string
	for _, m := range now.Messages {
		if m.Kind == "agent" && m.From == "ana@example.com" {
			reply = &m.Text
			if m.VisibleText != "I have ordered a new printer for you." {
				t.Errorf("stored visible text %q; full text:\n%s", m.VisibleText, m.Text)
			}
		}
	}
	if reply == nil {
		t.Fatalf("s-nail's reply was not taken as agent mail; messages %+v\nevents %+v\ns-nail said:\n%s", now.Messages, now.Events, out.String())
	}
	if !strings.Contains(*reply, replyMarker) || !strings.Contains(*reply, "It is really on fire.") {
		t.Errorf("s-nail did not quote the notification, the test proves less than it says:\n%s", *reply)
	}
	if now.Status != rules.StatusOpen || now.Assignee != "ana@example.com" {
		t.Errorf("status %s assignee %q", now.Status, now.Assignee)
	}
	m := agOne(t, g, before, "alice@customer.example")
	head, _, _ := bytes.Cut(m.Data, []byte("\r\n\r\n"))
	if bytes.Contains(bytes.ToLower(head), []byte("ana@")) || bytes.Contains(head, []byte("ana-laptop")) {
		t.Errorf("agent address in the customer's mail:\n%s", head)
	}
	if body := agBody(t, m.Data); strings.TrimSpace(body) != "I have ordered a new printer for you." {
		t.Errorf("customer got:\n%s", body)
	}
}
