package desk

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"ticketgate/mailout/relaytest"
)

// waitTickets waits (bounded, as a failure limit) until the gateway holds n
// tickets.
func (g *gateway) waitTickets(n int, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if len(g.tickets()) >= n {
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

// A real Postfix hands mail over by LMTP, as ops deploy the gateway.
func TestPostfixHandsOverByLMTP(t *testing.T) {
	requireBinary(t, "postfix", "/usr/sbin/postfix")
	requireRoot(t, "Postfix")
	g := startGateway(t)
	pf := startPostfix(t, g.lmtp.Addr())
	c, err := smtp.Dial(pf.SMTPAddr)
	if err != nil {
		t.Fatal(err)
	}
	raw := msg("Alice <alice@customer.example>", "support@example.com, tech@example.com", "via postfix", "hello from postfix",
		"Message-ID: <via-postfix@customer.example>")
	if err := c.SendMail("alice@customer.example", []string{"support@example.com", "tech@example.com"}, bytes.NewReader(raw)); err != nil {
		t.Fatalf("postfix refused: %v", err)
	}
	c.Quit()
	if !g.waitTickets(1, 30*time.Second) {
		t.Fatalf("no ticket after 30s; postfix queue:\n%s\nlog:\n%s", pf.Queue(t), pf.Log(t))
	}
	tk := g.onlyTicket()
	if tk.Requester != "alice@customer.example" || tk.Messages[0].Text != "hello from postfix\n" {
		t.Errorf("ticket requester %q text %q", tk.Requester, tk.Messages[0].Text)
	}
	g.relay.WaitFor(1, 10*time.Second)
	g.settle()
	if n := len(g.relay.Mails()); n != 1 {
		t.Errorf("%d auto-replies for one message to two routing addresses", n)
	}
}

// A real Postfix pipes mail into "ticketgate inject".
func TestPostfixPipesIntoInject(t *testing.T) {
	requireBinary(t, "postfix", "/usr/sbin/postfix")
	requireRoot(t, "Postfix")
	dir := pipeDir(t)
	bin := filepath.Join(dir, "ticketgate")
	build := exec.Command("go", "build", "-o", bin, "ticketgate/cmd/ticketgate")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	relay := relaytest.Start(t)
	cfg := filepath.Join(dir, "ticketgate.toml")
	conf := fmt.Sprintf("[store]\npath = %q\n[inbound]\nsmtp_listen = \"\"\n[admin]\nlisten = \"\"\n[outbound]\nrelay = %q\ntls = \"none\"\n",
		filepath.Join(dir, "data", "tickets.db"), relay.Addr)
	if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	pf := startPostfixPipe(t, bin+" inject -config "+cfg+" -to")
	c, err := smtp.Dial(pf.SMTPAddr)
	if err != nil {
		t.Fatal(err)
	}
	raw := msg("bob@customer.example", "support@example.com", "via pipe", "hello from the pipe", "Message-ID: <via-pipe@customer.example>")
	if err := c.SendMail("bob@customer.example", []string{"support@example.com"}, bytes.NewReader(raw)); err != nil {
		t.Fatalf("postfix refused: %v", err)
	}
	c.Quit()
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, err := exec.Command(bin, "tickets", "-config", cfg, "-json").Output()
		var list []struct {
			ID        string `json:"id"`
			Subject   string `json:"subject"`
			Requester string `json:"requester"`
		}
		if err == nil && json.Unmarshal(out, &list) == nil && len(list) == 1 {
			if list[0].Subject != "via pipe" || list[0].Requester != "bob@customer.example" {
				t.Errorf("ticket %+v", list[0])
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no ticket after 30s (%v); postfix queue:\n%s\nlog:\n%s", err, pf.Queue(t), pf.Log(t))
		}
		time.Sleep(200 * time.Millisecond)
	}
}
