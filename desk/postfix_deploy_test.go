package desk

// The deployment guide (docs/deploy.md) tried word for word: a real Postfix
// is set up with the very files the guide quotes, read from contrib/postfix
// (there is no second copy), and mail goes through it to tickets.

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"ticketgate/mailout/relaytest"
	"ticketgate/rules"
)

const contribPostfix = "../contrib/postfix"

// deployment is how the guide's Postfix files are installed in a test
// instance. The files are installed as they are, except for what cannot be
// the same on a test machine: the gateway's LMTP port (a free one), and the
// pipe's user, program and config (nobody, and files in a temporary
// directory, as no ticketgate user or /usr/local/bin is made by tests).
type deployment struct {
	transport string            // contrib/postfix file installed as ticketgate_transport
	transSubs map[string]string // replacements in it
	pipeSubs  map[string]string // replacements in master.cf; nil: the LMTP setup, without it
}

// startPostfixDeployed starts a Postfix configured as docs/deploy.md says.
func startPostfixDeployed(t testing.TB, d deployment) *postfixServer {
	t.Helper()
	postmap := requireBinary(t, "postmap", "/usr/sbin/postmap")
	conf := postfixConf{Deploy: true}
	if d.pipeSubs != nil {
		conf.PipeUser = pipeUser
	}
	conf.install = func(t testing.TB, dir string) {
		appendFile(t, filepath.Join(dir, "main.cf"), contribFile(t, "main.cf", nil))
		if d.pipeSubs != nil {
			appendFile(t, filepath.Join(dir, "master.cf"), contribFile(t, "master.cf", d.pipeSubs))
		}
		for name, text := range map[string]string{
			"ticketgate_recipients": contribFile(t, "recipients", nil),
			"ticketgate_transport":  contribFile(t, d.transport, d.transSubs),
		} {
			path := filepath.Join(dir, name)
			if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
			if out, err := exec.Command(postmap, "-c", dir, "hash:"+path).CombinedOutput(); err != nil {
				t.Fatalf("postmap %s: %v\n%s", name, err, out)
			}
		}
	}
	return startPostfixConf(t, conf)
}

// contribFile returns contrib/postfix/name with each key of subs replaced
// by its value; a key the file does not hold fails the test, so that the
// file cannot drift away from what the test changes.
func contribFile(t testing.TB, name string, subs map[string]string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(contribPostfix, name))
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	for old, repl := range subs {
		if !strings.Contains(text, old) {
			t.Fatalf("contrib/postfix/%s no longer holds %q", name, old)
		}
		text = strings.ReplaceAll(text, old, repl)
	}
	return text
}

func appendFile(t testing.TB, path, text string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString("\n" + text); err != nil {
		t.Fatal(err)
	}
}

// rcptReply opens an SMTP transaction at addr and returns the reply to
// RCPT TO:<rcpt> (nil for 250). The transaction is abandoned: nothing is
// sent.
func rcptReply(t testing.TB, addr, rcpt string) *smtp.SMTPError {
	t.Helper()
	c, err := smtp.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Mail("mallory@spammer.example", nil); err != nil {
		t.Fatalf("MAIL FROM: %v", err)
	}
	err = c.Rcpt(rcpt, nil)
	var se *smtp.SMTPError
	if err != nil && !errors.As(err, &se) {
		t.Fatalf("RCPT TO:<%s>: %v", rcpt, err)
	}
	c.Quit()
	return se
}

// wantRefusedAtRcpt checks that Postfix refuses rcpt with a 5xx at RCPT, so
// that it never takes mail it would bounce later.
func wantRefusedAtRcpt(t testing.TB, pf *postfixServer, rcpt string) {
	t.Helper()
	se := rcptReply(t, pf.SMTPAddr, rcpt)
	if se == nil || se.Code/100 != 5 {
		t.Errorf("RCPT TO:<%s> answered %v; want 5xx (refused now, not accepted and bounced later)", rcpt, se)
	}
}

// The guide's LMTP setup: mail to the routing addresses reaches the
// gateway; unknown addresses and forged bounce addresses are refused at
// RCPT.
func TestPostfixDeployedByTheGuideWithLMTP(t *testing.T) {
	requireBinary(t, "postfix", "/usr/sbin/postfix")
	requireRoot(t, "Postfix")
	g := startGateway(t)
	pf := startPostfixDeployed(t, deployment{transport: "transport",
		transSubs: map[string]string{"lmtp:inet:127.0.0.1:2424": "lmtp:inet:" + g.lmtp.Addr()}})

	// Checked first, while no ticket exists: a refusal cannot be mistaken
	// for a delivery.
	wantRefusedAtRcpt(t, pf, "nobody@example.com")
	wantRefusedAtRcpt(t, pf, "bounces+forged@tickets.example.com")

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
	if q := pf.Queue(t); !strings.Contains(q, "Mail queue is empty") {
		t.Errorf("mail left in Postfix's queue (deferred or bouncing):\n%s", q)
	}
}

// The guide's pipe setup: Postfix runs "ticketgate inject" and the message
// becomes a ticket; unknown addresses are refused at RCPT.
func TestPostfixDeployedByTheGuideWithPipe(t *testing.T) {
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
	// A relative store path, as a newcomer writes it: the pipe runs in
	// Postfix's queue directory, and the path is the config's directory's.
	conf := fmt.Sprintf("[store]\npath = \"data/tickets.db\"\n[inbound]\nsmtp_listen = \"\"\nhostname = \"tickets.example.com\"\n"+
		"[admin]\nlisten = \"\"\n[outbound]\nrelay = %q\ntls = \"none\"\n", relay.Addr)
	if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	pf := startPostfixDeployed(t, deployment{transport: "transport-pipe", pipeSubs: map[string]string{
		"user=ticketgate":                 "user=" + pipeUser,
		"/usr/local/bin/ticketgate":       bin,
		"/etc/ticketgate/ticketgate.toml": cfg,
	}})

	wantRefusedAtRcpt(t, pf, "nobody@example.com")

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
			Subject   string `json:"subject"`
			Requester string `json:"requester"`
		}
		if err == nil && json.Unmarshal(out, &list) == nil && len(list) == 1 {
			if list[0].Subject != "via pipe" || list[0].Requester != "bob@customer.example" {
				t.Errorf("ticket %+v", list[0])
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no ticket after 30s (%v); postfix queue:\n%s\nlog:\n%s", err, pf.Queue(t), pf.Log(t))
		}
		time.Sleep(200 * time.Millisecond)
	}
	if _, err := os.Stat(filepath.Join(dir, "data", "tickets.db")); err != nil {
		t.Errorf("the database is not next to the config: %v", err)
	}
}

// The map files hold no trailing comments: Postfix would take "# ..." as
// part of the value.
func TestContribPostfixMapsHaveNoTrailingComments(t *testing.T) {
	for _, name := range []string{"transport", "transport-pipe", "recipients"} {
		f, err := os.Open(filepath.Join(contribPostfix, name))
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		for n := 1; sc.Scan(); n++ {
			line := sc.Text()
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			if fields := strings.Fields(line); len(fields) != 2 || strings.Contains(line, "#") || line[0] == ' ' || line[0] == '\t' {
				t.Errorf("contrib/postfix/%s:%d: %q is not one key and one value", name, n, line)
			}
		}
		f.Close()
	}
}

// The guide shows each file of contrib/ as it is, whole: what an operator
// copies from it is what the tests above install.
func TestDeployGuideQuotesTheContribFiles(t *testing.T) {
	guide, err := os.ReadFile("../docs/deploy.md")
	if err != nil {
		t.Fatal(err)
	}
	names, err := filepath.Glob(filepath.Join(contribPostfix, "*"))
	if err != nil {
		t.Fatal(err)
	}
	names = append(names, "../contrib/systemd/ticketgate.service", "../contrib/ticketgate.toml")
	if len(names) < 7 {
		t.Fatalf("contrib files: %v", names)
	}
	for _, name := range names {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		block := "```\n" + strings.TrimRight(string(b), "\n") + "\n```\n"
		if !bytes.Contains(guide, []byte(block)) {
			t.Errorf("docs/deploy.md does not show %s as it is, in a block of its own", strings.TrimPrefix(name, "../"))
		}
	}
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(readme, []byte("(docs/deploy.md)")) {
		t.Errorf("README.md does not link docs/deploy.md")
	}
}

// The systemd unit runs the gateway hardened, as the guide promises.
func TestSystemdUnitIsHardened(t *testing.T) {
	b, err := os.ReadFile("../contrib/systemd/ticketgate.service")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	for _, want := range []string{
		"User=ticketgate", "ExecStart=/usr/local/bin/ticketgate serve -config /etc/ticketgate/ticketgate.toml",
		"ExecReload=/bin/kill -HUP $MAINPID", "Restart=on-failure", "StateDirectory=ticketgate", "StateDirectoryMode=0750",
		"NoNewPrivileges=yes", "ProtectSystem=strict", "PrivateTmp=yes", "CapabilityBoundingSet=",
	} {
		if !slices.Contains(lines, want) {
			t.Errorf("contrib/systemd/ticketgate.service has no line %q", want)
		}
	}
}

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

// The guide's pipe setup while the configuration inject reads is broken
// (an operator's typo, a file the ticketgate user cannot read): inject
// cannot commit now, so it asks Postfix to retry (75) as the guide
// promises, and the mail is taken once the file is fixed. It exited 78
// (EX_CONFIG), which Postfix bounces: the mail was lost to the gateway
// and its sender got a bounce.
func TestPostfixPipeKeepsMailWhileTheConfigIsBroken(t *testing.T) {
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
	conf := fmt.Sprintf("[store]\npath = \"data/tickets.db\"\n[inbound]\nsmtp_listen = \"\"\nhostname = \"tickets.example.com\"\n"+
		"[admin]\nlisten = \"\"\n[outbound]\nrelay = %q\ntls = \"none\"\n", relay.Addr)
	// A typo: a key no section has.
	if err := os.WriteFile(cfg, []byte(conf+"relay_sesions = 2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	pf := startPostfixDeployed(t, deployment{transport: "transport-pipe", pipeSubs: map[string]string{
		"user=ticketgate":                 "user=" + pipeUser,
		"/usr/local/bin/ticketgate":       bin,
		"/etc/ticketgate/ticketgate.toml": cfg,
	}})
	c, err := smtp.Dial(pf.SMTPAddr)
	if err != nil {
		t.Fatal(err)
	}
	raw := msg("bob@customer.example", "support@example.com", "while broken", "hello", "Message-ID: <while-broken@customer.example>")
	if err := c.SendMail("bob@customer.example", []string{"support@example.com"}, bytes.NewReader(raw)); err != nil {
		t.Fatalf("postfix refused: %v", err)
	}
	c.Quit()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(pf.Log(t), "relay=ticketgate") {
		if time.Now().After(deadline) {
			t.Fatalf("no delivery attempt after 30s; log:\n%s", pf.Log(t))
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // the rest of the log line
	var attempt string
	for _, line := range strings.Split(pf.Log(t), "\n") {
		if strings.Contains(line, "relay=ticketgate") {
			attempt = line
		}
	}
	if !strings.Contains(attempt, "status=deferred") {
		t.Fatalf("with the config broken Postfix did not keep the mail for later:\n%s", attempt)
	}

	// Fixed: the mail Postfix kept is taken.
	if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	pf.Flush(t)
	deadline = time.Now().Add(30 * time.Second)
	for {
		out, err := exec.Command(bin, "tickets", "-config", cfg, "-json").Output()
		var list []struct {
			Subject string `json:"subject"`
		}
		if err == nil && json.Unmarshal(out, &list) == nil && len(list) == 1 && list[0].Subject == "while broken" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no ticket 30s after the config was fixed (%v); postfix queue:\n%s\nlog:\n%s", err, pf.Queue(t), pf.Log(t))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// The guide's pipe setup with an agent's answer that copies another
// routing address (the agent hands the ticket to billing@ as well): inject
// gets every recipient of the mail in one run, as the LMTP setup gets
// them in one transaction, and the answer lands on its ticket, once. With
// one recipient a run, the copy to billing@ was stored first (Postfix
// delivers in the order of the addresses): a new ticket opened by the
// agent, the signed copy then a duplicate of it, and the customer never
// got the answer.
func TestPostfixPipeTakesAnAgentsAnswerCopiedToAnotherQueue(t *testing.T) {
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
	conf := fmt.Sprintf("[store]\npath = \"data/tickets.db\"\n[inbound]\nsmtp_listen = \"\"\nhostname = \"tickets.example.com\"\n"+
		"[admin]\nlisten = \"\"\n[outbound]\nrelay = %q\ntls = \"none\"\n"+
		"[[agent]]\nemail = \"ana@example.com\"\nname = \"Ana Lima\"\nqueues = [\"support\", \"billing\"]\n", relay.Addr)
	if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	// The agents' signing key, made here so that the test can sign as
	// the gateway does; the pipe's user must own it.
	key := []byte("0123456789abcdef0123456789abcdef")
	data := filepath.Join(dir, "data")
	if err := os.Mkdir(data, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(data, "agent.key"), []byte(hex.EncodeToString(key)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	uid, gid := lookupIDs(t, pipeUser)
	for _, p := range []string{data, filepath.Join(data, "agent.key")} {
		if err := os.Chown(p, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	pf := startPostfixDeployed(t, deployment{transport: "transport-pipe", pipeSubs: map[string]string{
		"user=ticketgate":                 "user=" + pipeUser,
		"/usr/local/bin/ticketgate":       bin,
		"/etc/ticketgate/ticketgate.toml": cfg,
	}})
	send := func(from string, to []string, raw []byte) {
		t.Helper()
		c, err := smtp.Dial(pf.SMTPAddr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.SendMail(from, to, bytes.NewReader(raw)); err != nil {
			t.Fatalf("postfix refused: %v", err)
		}
		c.Quit()
	}
	type shown struct {
		ID       string `json:"id"`
		Messages []struct {
			Kind string `json:"kind"`
		} `json:"messages"`
	}
	tickets := func() []shown {
		out, err := exec.Command(bin, "tickets", "-config", cfg, "-json").Output()
		var list []shown
		if err != nil || json.Unmarshal(out, &list) != nil {
			return nil
		}
		for i := range list {
			if out, err := exec.Command(bin, "show", "-config", cfg, "-json", list[i].ID).Output(); err == nil {
				json.Unmarshal(out, &list[i])
			}
		}
		return list
	}
	wait := func(what string, ok func([]shown) bool) []shown {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			list := tickets()
			if ok(list) && strings.Contains(pf.Queue(t), "Mail queue is empty") {
				return list
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: tickets %+v after 30s; postfix queue:\n%s\nlog:\n%s", what, list, pf.Queue(t), pf.Log(t))
			}
			time.Sleep(200 * time.Millisecond)
		}
	}

	send("alice@customer.example", []string{"support@example.com"},
		msg("Alice <alice@customer.example>", "support@example.com", "Printer on fire", "It burns.", "Message-ID: <fire@customer.example>"))
	id := wait("the customer's mail", func(l []shown) bool { return len(l) == 1 })[0].ID
	signed := "support+" + rules.Signer{Keys: [][]byte{key}}.Token(rules.TokenReply, id, "ana@example.com") + "@example.com"
	const answers = 3
	for i := range answers {
		send("ana@example.com", []string{"billing@example.com", signed},
			msg("Ana Lima <ana@example.com>", signed, "Re: ["+id+"] Printer on fire", fmt.Sprintf("Answer %d: a technician is on the way.", i),
				"Cc: billing@example.com", fmt.Sprintf("Message-ID: <answer-%d@example.com>", i)))
	}
	list := wait("the agent's answers", func(l []shown) bool {
		// Counted by kind: the customer's mail and its auto-reply are
		// messages too, and a count of all of them was reached with an
		// answer still on its way.
		n := 0
		for _, tk := range l {
			for _, m := range tk.Messages {
				if m.Kind == "agent" {
					n++
				}
			}
		}
		return n >= answers
	})
	if len(list) != 1 {
		t.Fatalf("%d tickets, want the customer's one: the agent's answers copied to billing@ opened tickets of their own: %+v", len(list), list)
	}
	agent := 0
	for _, m := range list[0].Messages {
		if m.Kind == "agent" {
			agent++
		}
	}
	if agent != answers {
		t.Errorf("%s holds %d answers of the agent, want %d: %+v", id, agent, answers, list[0])
	}
}
