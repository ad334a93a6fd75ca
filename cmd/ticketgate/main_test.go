package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"ticketgate/desk/view"
	"ticketgate/mailout/relaytest"
	"ticketgate/store"
	"ticketgate/store/boltdb"
	"ticketgate/store/postgres"
)

// binary is the ticketgate program built once for all tests in this file.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "ticketgate-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "temp dir:", err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "ticketgate")
	build := exec.Command("go", "build", "-o", binary, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "go build:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// env is one installation: a working directory holding the config file and
// the database (by a relative path), free ports and a recording relay.
type env struct {
	t     *testing.T
	dir   string
	cfg   string
	smtp  string // SMTP listener address
	admin string // admin API address; "" when off
	relay *relaytest.Relay
	dsn   string // the PostgreSQL database (usePostgres); "": bbolt under dir
}

// usePostgres points the installation's config at the PostgreSQL
// database dsn (through a DSN file), with extra "key = value" lines in
// [store].
func (e *env) usePostgres(dsn, extra string) {
	e.t.Helper()
	if err := os.WriteFile(filepath.Join(e.dir, "dsn"), []byte(dsn+"\n"), 0o600); err != nil {
		e.t.Fatal(err)
	}
	text, err := os.ReadFile(e.cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	cfg := strings.Replace(string(text), "[store]\n", "[store]\ndriver = \"postgres\"\ndsn_file = \"dsn\"\n"+extra, 1)
	if err := os.WriteFile(e.cfg, []byte(cfg), 0o600); err != nil {
		e.t.Fatal(err)
	}
	e.dsn = dsn
}

// openStore opens the installation's database (read-only with bbolt)
// while no serve runs; the caller closes it.
func (e *env) openStore() store.Store {
	e.t.Helper()
	var st store.Store
	var err error
	if e.dsn != "" {
		st, err = postgres.Open(context.Background(), e.dsn, postgres.Options{}, slog.New(slog.DiscardHandler))
	} else {
		st, err = boltdb.Open(filepath.Join(e.dir, "data", "tickets.db"), boltdb.Options{ReadOnly: true}, nil)
	}
	if err != nil {
		e.t.Fatal(err)
	}
	return st
}

// newEnv writes a config with the admin API on (admin true) or off.
func newEnv(t *testing.T, admin bool) *env {
	t.Helper()
	e := &env{t: t, dir: t.TempDir(), smtp: freePort(t), relay: relaytest.Start(t)}
	if admin {
		e.admin = freePort(t)
	}
	e.cfg = e.writeConfig("ticketgate.toml", e.admin)
	return e
}

// writeConfig writes a config file for this installation with the given
// admin.listen and returns its path.
func (e *env) writeConfig(name, adminListen string) string {
	e.t.Helper()
	text := fmt.Sprintf(`[store]
path = "data/tickets.db"

[inbound]
smtp_listen = %q
hostname = "tickets.example.com"

[outbound]
relay = %q
tls = "none"
retry_base = "50ms"

[admin]
listen = %q
`, e.smtp, e.relay.Addr, adminListen)
	path := filepath.Join(e.dir, name)
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		e.t.Fatal(err)
	}
	return path
}

// freePort returns a 127.0.0.1 address nobody listens on right now, for
// a ticketgate process to listen on later. It is drawn below the kernel's
// ephemeral range (32768 and up on Linux): a port from there, as
// "127.0.0.1:0" gives, may be taken meanwhile as the local end of any
// outgoing connection or by a listener of a test running alongside.
func freePort(t *testing.T) string {
	t.Helper()
	for range 100 {
		addr := fmt.Sprintf("127.0.0.1:%d", 20000+rand.N(12000))
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			continue
		}
		ln.Close()
		return addr
	}
	t.Fatal("no free port found between 20000 and 32000")
	return ""
}

// result is what a finished ticketgate process left behind.
type result struct {
	code           int
	stdout, stderr string
}

// run runs "ticketgate <cmd> -config <cfg> args..." in the installation's
// directory with stdin and waits for it.
func (e *env) run(stdin []byte, cmd string, args ...string) result {
	e.t.Helper()
	return e.runConfig(e.cfg, stdin, cmd, args...)
}

func (e *env) runConfig(cfg string, stdin []byte, cmd string, args ...string) result {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := exec.CommandContext(ctx, binary, append([]string{cmd, "-config", cfg}, args...)...)
	c.Dir = e.dir
	c.Stdin = bytes.NewReader(stdin)
	var out, errb bytes.Buffer
	c.Stdout, c.Stderr = &out, &errb
	err := c.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		e.t.Fatalf("run %s: %v", cmd, err)
	}
	return result{code: c.ProcessState.ExitCode(), stdout: out.String(), stderr: errb.String()}
}

// server is a "ticketgate serve" child process.
type server struct {
	cmd    *exec.Cmd
	stderr *lockedBuffer
	done   chan struct{}
	err    error // the Wait result, valid after done
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// serve starts "ticketgate serve" and returns once it says it is serving
// (and, with the admin API on, once /healthz answers). The process is
// killed when the test ends if it still runs.
func (e *env) serve() *server {
	e.t.Helper()
	s := &server{cmd: exec.Command(binary, "serve", "-config", e.cfg), stderr: &lockedBuffer{}, done: make(chan struct{})}
	s.cmd.Dir = e.dir
	s.cmd.Stderr = s.stderr
	stdout, err := s.cmd.StdoutPipe()
	if err != nil {
		e.t.Fatal(err)
	}
	if err := s.cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	started := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		started <- line
		io.Copy(io.Discard, stdout)
	}()
	go func() { s.err = s.cmd.Wait(); close(s.done) }()
	e.t.Cleanup(func() {
		s.cmd.Process.Kill()
		<-s.done
		if e.t.Failed() {
			e.t.Logf("serve log:\n%s", s.stderr.String())
		}
	})
	select {
	case line := <-started:
		if !strings.HasPrefix(line, "ticketgate ") {
			<-s.done
			e.t.Fatalf("serve did not start (%v): %q\n%s", s.err, line, s.stderr.String())
		}
	case <-time.After(15 * time.Second):
		e.t.Fatalf("serve did not start within 15s:\n%s", s.stderr.String())
	}
	if e.admin != "" {
		e.waitHealthy()
	}
	return s
}

// waitHealthy waits (bounded) until the admin API's /healthz answers ok.
func (e *env) waitHealthy() {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get("http://" + e.admin + "/healthz")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && strings.TrimSpace(string(body)) == "ok" {
				return
			}
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("admin /healthz did not answer ok within 10s (last error %v)", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// token reads the admin token serve created in the installation's data
// directory.
func (e *env) token() string {
	e.t.Helper()
	b, err := os.ReadFile(filepath.Join(e.dir, "data", "admin.token"))
	if err != nil {
		e.t.Fatalf("admin token: %v", err)
	}
	return strings.TrimSpace(string(b))
}

// apiGet is GET path on the running serve's admin API with the token.
func (e *env) apiGet(path string) (*http.Response, error) {
	e.t.Helper()
	return e.apiDo("GET", path, "", "")
}

// apiDo sends a request with the token to the running serve's admin API;
// contentType and body may be "".
func (e *env) apiDo(method, path, contentType, body string) (*http.Response, error) {
	e.t.Helper()
	req, err := http.NewRequest(method, "http://"+e.admin+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+e.token())
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	return http.DefaultClient.Do(req)
}

// stop sends SIGTERM and returns the exit code (bounded wait).
func (s *server) stop(t *testing.T) int {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.done:
	case <-time.After(40 * time.Second):
		t.Fatalf("serve did not exit within 40s of SIGTERM:\n%s", s.stderr.String())
	}
	return s.cmd.ProcessState.ExitCode()
}

// message builds a plain-text customer message.
func message(from, to, subject, msgid, body string) []byte {
	return []byte(fmt.Sprintf("From: %s\r\nTo: %s\r\nSubject: %s\r\nDate: Sat, 21 Nov 2026 10:00:00 +0000\r\n"+
		"Message-ID: <%s>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n%s\r\n",
		from, to, subject, msgid, strings.ReplaceAll(body, "\n", "\r\n")))
}

var ticketLine = regexp.MustCompile(`^(HS-\d{6}) (\S+)\n$`)

// injectOK injects raw and returns the new ticket id; anything but exit 0
// fails the test.
func (e *env) injectOK(raw []byte, args ...string) string {
	e.t.Helper()
	r := e.run(raw, "inject", args...)
	m := ticketLine.FindStringSubmatch(r.stdout)
	if r.code != 0 || m == nil {
		e.t.Fatalf("inject: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	return m[1]
}

// show runs "show -json id" and decodes the ticket.
func (e *env) show(id string) *view.Ticket {
	e.t.Helper()
	r := e.run(nil, "show", "-json", id)
	if r.code != 0 {
		e.t.Fatalf("show %s: exit %d: %s", id, r.code, r.stderr)
	}
	var tk view.Ticket
	if err := json.Unmarshal([]byte(r.stdout), &tk); err != nil {
		e.t.Fatalf("show -json output is not a ticket: %v\n%s", err, r.stdout)
	}
	return &tk
}

// tickets runs "tickets -json" and decodes the list.
// ticketsAfterRefusal lists the tickets after input that was refused:
// none, and refused input may not even have created the database.
func (e *env) ticketsAfterRefusal() []*view.Ticket {
	e.t.Helper()
	if _, err := os.Stat(filepath.Join(e.dir, "data", "tickets.db")); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return e.tickets()
}

func (e *env) tickets() []*view.Ticket {
	e.t.Helper()
	r := e.run(nil, "tickets", "-json")
	if r.code != 0 {
		e.t.Fatalf("tickets: exit %d: %s", r.code, r.stderr)
	}
	var list []*view.Ticket
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil {
		e.t.Fatalf("tickets -json output is not a list: %v\n%s", err, r.stdout)
	}
	return list
}

func eventTypes(tk *view.Ticket) []string {
	var types []string
	for _, ev := range tk.Events {
		types = append(types, string(ev.Type))
	}
	return types
}

func TestInjectCommitsAndShowPrintsTheTicket(t *testing.T) {
	e := newEnv(t, false)
	raw := message(`"Alice Doe" <alice@customer.example>`, "support@example.com", "Printer on fire",
		"inject-1@customer.example", "It is really on fire.")
	id := e.injectOK(raw, "-to", "support@example.com", "-from", "alice@customer.example")

	tk := e.show(id)
	if tk.ID != id || tk.Subject != "Printer on fire" || tk.Status != "new" || tk.Requester != "alice@customer.example" {
		t.Errorf("show: id %q subject %q status %q requester %q", tk.ID, tk.Subject, tk.Status, tk.Requester)
	}
	if len(tk.Messages) == 0 || tk.Messages[0].Text != "It is really on fire.\n" || tk.Messages[0].MessageID != "inject-1@customer.example" {
		t.Fatalf("messages: %+v", tk.Messages)
	}
	if types := eventTypes(tk); len(types) == 0 || types[0] != "created" ||
		!strings.Contains(tk.Events[0].Detail, "via inject") {
		t.Errorf("events %v (%+v), want a first \"created ... via inject\"", types, tk.Events)
	}

	// Without -to, the routing address is taken from the headers.
	raw2 := message("bob@customer.example", "Tech <tech@example.com>", "Cannot log in", "inject-2@customer.example", "Locked out.")
	id2 := e.injectOK(raw2)
	if tk2 := e.show(id2); tk2.Queue != "tech" || tk2.Requester != "bob@customer.example" {
		t.Errorf("header-routed ticket: queue %q requester %q", tk2.Queue, tk2.Requester)
	}
	if n := len(e.tickets()); n != 2 {
		t.Errorf("tickets lists %d, want 2", n)
	}
}

func TestInjectRefusesEmptyInput(t *testing.T) {
	e := newEnv(t, false)
	for _, stdin := range [][]byte{nil, []byte(" \r\n\t\r\n")} {
		r := e.run(stdin, "inject", "-to", "support@example.com")
		if r.code != exDataErr || !strings.Contains(r.stderr, "not an e-mail message") {
			t.Errorf("stdin %q: exit %d, stderr %q; want %d and \"not an e-mail message\"", stdin, r.code, r.stderr, exDataErr)
		}
	}
	if n := len(e.ticketsAfterRefusal()); n != 0 {
		t.Errorf("refused input left %d tickets", n)
	}
}

// Binary junk with no header field is not mail: Postfix must bounce it
// (65) instead of the desk getting a ticket full of garbage.
func TestInjectRefusesBinaryJunk(t *testing.T) {
	e := newEnv(t, false)
	junk := []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x01\x00\xff\xfe binary junk without a header\n\x00\x01\x02")
	r := e.run(junk, "inject", "-to", "support@example.com")
	if r.code != exDataErr || !strings.Contains(r.stderr, "not an e-mail message") {
		t.Errorf("binary junk: exit %d, stderr %q; want %d and \"not an e-mail message\"", r.code, r.stderr, exDataErr)
	}
	if n := len(e.ticketsAfterRefusal()); n != 0 {
		t.Errorf("refused input left %d tickets", n)
	}
}

func TestInjectRefusesUnknownRecipients(t *testing.T) {
	e := newEnv(t, false)
	raw := message("carol@customer.example", "nobody@example.com", "Hello", "unknown-1@customer.example", "Anyone?")
	r := e.run(raw, "inject", "-to", "nobody@example.com")
	if r.code != exNoUser || !strings.Contains(r.stderr, "nobody@example.com") {
		t.Errorf("-to nobody: exit %d, stderr %q; want %d naming the address", r.code, r.stderr, exNoUser)
	}
	r = e.run(raw, "inject")
	if r.code != exNoUser || !strings.Contains(r.stderr, "no routing address") {
		t.Errorf("no -to, no routing address in headers: exit %d, stderr %q; want %d", r.code, r.stderr, exNoUser)
	}
	if n := len(e.tickets()); n != 0 {
		t.Errorf("refused mail left %d tickets", n)
	}
}

// While serve holds the database and its admin API cannot be reached,
// inject must ask Postfix to retry (75), never drop or half-store mail.
func TestInjectTempFailsWhileServeHoldsTheDatabase(t *testing.T) {
	e := newEnv(t, false)
	s := e.serve()
	raw := message("dan@customer.example", "support@example.com", "Retry me", "tempfail-1@customer.example", "Later please.")

	r := e.run(raw, "inject", "-to", "support@example.com")
	if r.code != exTempFail || !strings.Contains(r.stderr, "admin.listen is off") {
		t.Errorf("admin off: exit %d, stderr %q; want %d", r.code, r.stderr, exTempFail)
	}
	dead := e.writeConfig("dead-admin.toml", freePort(t))
	r = e.runConfig(dead, raw, "inject", "-to", "support@example.com")
	if r.code != exTempFail || !strings.Contains(r.stderr, "does not answer") {
		t.Errorf("admin API not answering: exit %d, stderr %q; want %d", r.code, r.stderr, exTempFail)
	}

	if code := s.stop(t); code != 0 {
		t.Fatalf("serve exit %d", code)
	}
	if n := len(e.tickets()); n != 0 {
		t.Errorf("tempfailed injects left %d tickets", n)
	}
	// Postfix retries once serve is gone: the same message now goes in.
	e.injectOK(raw, "-to", "support@example.com")
}

func TestCommandsHandOverToRunningServe(t *testing.T) {
	e := newEnv(t, true)
	s := e.serve()
	raw := message(`"Erin" <erin@customer.example>`, "support@example.com", "Handover works?", "handover-1@customer.example", "Via the admin API.")
	id := e.injectOK(raw, "-to", "support@example.com", "-from", "erin@customer.example")

	list := e.tickets()
	if len(list) != 1 || list[0].ID != id || list[0].Status != "new" {
		t.Fatalf("tickets via handover: %+v", list)
	}
	tk := e.show(id)
	if tk.Subject != "Handover works?" || len(tk.Messages) != 2 || tk.Messages[0].Text != "Via the admin API.\n" || tk.Messages[1].Kind != "auto" {
		t.Fatalf("show via handover: subject %q messages %+v", tk.Subject, tk.Messages)
	}
	if r := e.run(raw, "inject", "-to", "nobody@example.com"); r.code != exNoUser {
		t.Errorf("unknown recipient via handover: exit %d, stderr %q; want %d", r.code, r.stderr, exNoUser)
	}
	if r := e.run(nil, "inject", "-to", "support@example.com"); r.code != exDataErr {
		t.Errorf("empty input via handover: exit %d, stderr %q; want %d", r.code, r.stderr, exDataErr)
	}
	if r := e.run(nil, "show", "HS-000000"); r.code != 1 || !strings.Contains(r.stderr, "no ticket HS-000000") {
		t.Errorf("show unknown via handover: exit %d, stderr %q", r.code, r.stderr)
	}

	e.relay.WaitFor(1, 10*time.Second)
	if code := s.stop(t); code != 0 {
		t.Fatalf("serve exit %d after SIGTERM", code)
	}
	// serve has exited with an empty outbox: nothing more can be sent, so
	// the count is final.
	mails := e.relay.Mails()
	if len(mails) != 1 {
		t.Fatalf("relay got %d mails, want exactly 1 auto-reply", len(mails))
	}
	if len(mails[0].To) != 1 || mails[0].To[0] != "erin@customer.example" ||
		!bytes.Contains(mails[0].Data, []byte("Subject: ["+id+"] Handover works?")) {
		t.Errorf("auto-reply to %v:\n%s", mails[0].To, mails[0].Data)
	}
	if n := e.outboxLen(); n != 0 {
		t.Errorf("outbox holds %d mails after a clean shutdown; a restart would send them again", n)
	}
}

// outboxLen opens the database directly (no process may hold it) and
// counts the mails still waiting in the outbox.
func (e *env) outboxLen() int {
	e.t.Helper()
	st := e.openStore()
	defer st.Close()
	var n int
	if err := st.View(context.Background(), func(tx store.Tx) error {
		all, err := tx.Outbox(time.Now().Add(1000*time.Hour), 0)
		n = len(all)
		return err
	}); err != nil {
		e.t.Fatal(err)
	}
	return n
}

// sender keeps one SMTP connection and sends messages on it.
type sender struct {
	c *smtp.Client
}

func dialSender(addr string) (*sender, error) {
	c, err := smtp.Dial(addr)
	if err != nil {
		return nil, err
	}
	return &sender{c: c}, nil
}

// send returns nil only when the server answered 250 to the message.
func (s *sender) send(from, to string, raw []byte) error {
	if err := s.c.SendMail(from, []string{to}, bytes.NewReader(raw)); err != nil {
		return err
	}
	return s.c.Reset()
}

// sendUntilKilled runs clients that send messages over SMTP until the
// server goes away and returns the Message-IDs the server acknowledged.
// kill is called once at least killAfter messages were acknowledged,
// while the clients are still sending.
func sendUntilKilled(t *testing.T, addr string, clients, killAfter int, kill func()) []string {
	t.Helper()
	senders := make([]*sender, clients)
	for c := range senders {
		s, err := dialSender(addr)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		defer s.c.Close()
		senders[c] = s
	}
	var mu sync.Mutex
	var acked []string
	var once sync.Once
	var wg sync.WaitGroup
	for c, s := range senders {
		wg.Go(func() {
			for i := 0; ; i++ {
				id := fmt.Sprintf("crash-%d-%d@customer.example", c, i)
				from := fmt.Sprintf("user%d.%d@customer.example", c, i)
				if s.send(from, "support@example.com", message(from, "support@example.com", "Crash test "+id, id, "Keep me.")) != nil {
					return // the server is gone
				}
				mu.Lock()
				acked = append(acked, id)
				n := len(acked)
				mu.Unlock()
				if n >= killAfter {
					once.Do(kill)
				}
			}
		})
	}
	wg.Wait()
	return acked
}

func TestKill9KeepsEveryAcknowledgedMessage(t *testing.T) {
	e := newEnv(t, false)
	s := e.serve()
	acked := sendUntilKilled(t, e.smtp, 4, 60, func() { s.cmd.Process.Kill() })
	<-s.done
	if len(acked) < 60 {
		t.Fatalf("only %d messages acknowledged before the kill", len(acked))
	}
	t.Logf("%d messages acknowledged before kill -9", len(acked))
	if s.cmd.ProcessState.Success() {
		t.Fatal("serve exited normally; the kill did not happen while it ran")
	}

	// A new process opens the database the killed one held.
	list := e.tickets()
	if len(list) < len(acked) {
		t.Errorf("after kill -9: %d tickets, but %d messages were acknowledged", len(list), len(acked))
	}
	st, err := boltdb.Open(filepath.Join(e.dir, "data", "tickets.db"), boltdb.Options{ReadOnly: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var missing []string
	st.View(context.Background(), func(tx store.Tx) error {
		for _, id := range acked {
			tid, err := tx.TicketByMessageID(id)
			if err != nil {
				return err
			}
			if ok, err := tx.HasMessage(tid, id); tid == "" || err != nil || !ok {
				missing = append(missing, id)
			}
		}
		return nil
	})
	if len(missing) > 0 {
		t.Errorf("%d of %d acknowledged messages are lost after kill -9: %v", len(missing), len(acked), missing)
	}
}

func TestSIGTERMShutsDownCleanlyAndKeepsData(t *testing.T) {
	e := newEnv(t, false)
	s := e.serve()
	c, err := dialSender(e.smtp)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		from := fmt.Sprintf("frank%d@customer.example", i)
		if err := c.send(from, "support@example.com", message(from, "support@example.com", fmt.Sprintf("Term %d", i), fmt.Sprintf("term-%d@customer.example", i), "Hi.")); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
	}
	c.c.Quit()
	e.relay.WaitFor(5, 10*time.Second)
	if code := s.stop(t); code != 0 {
		t.Fatalf("serve exit %d after SIGTERM, want 0:\n%s", code, s.stderr.String())
	}
	if !strings.Contains(s.stderr.String(), "shutting down") {
		t.Errorf("serve log does not show an ordered shutdown:\n%s", s.stderr.String())
	}
	list := e.tickets()
	if len(list) != 5 {
		t.Fatalf("after SIGTERM: %d tickets, want 5", len(list))
	}
	for _, tk := range list {
		if !strings.HasPrefix(tk.Subject, "Term ") || tk.Status != "new" {
			t.Errorf("ticket %s: subject %q status %q", tk.ID, tk.Subject, tk.Status)
		}
	}
	if n := len(e.relay.Mails()); n != 5 {
		t.Errorf("relay got %d auto-replies, want 5", n)
	}
}

func TestUsageErrors(t *testing.T) {
	e := newEnv(t, false)
	if r := e.run(nil, "tickets", "-status", "bogus"); r.code != 64 || !strings.Contains(r.stderr, `unknown status "bogus"`) {
		t.Errorf("tickets -status bogus: exit %d, stderr %q; want 64", r.code, r.stderr)
	}
	e.injectOK(message("gina@customer.example", "support@example.com", "Exists", "usage-1@customer.example", "x"))
	if r := e.run(nil, "show", "HS-000000"); r.code != 1 || !strings.Contains(r.stderr, "no ticket HS-000000") {
		t.Errorf("show unknown id: exit %d, stderr %q; want 1 and \"no ticket HS-000000\"", r.code, r.stderr)
	}
	if r := e.run(nil, "show"); r.code != 64 || !strings.Contains(r.stderr, "usage") {
		t.Errorf("show without id: exit %d, stderr %q; want 64", r.code, r.stderr)
	}

	out, err := exec.Command(binary, "version").Output()
	if err != nil || !regexp.MustCompile(`^ticketgate \S+ .*\n$`).Match(out) {
		t.Errorf("version: %q, %v", out, err)
	}
	var ee *exec.ExitError
	if err := exec.Command(binary, "frobnicate").Run(); !errors.As(err, &ee) || ee.ExitCode() != 64 {
		t.Errorf("unknown command: %v, want exit 64", err)
	}
	bad := filepath.Join(e.dir, "bad.toml")
	os.WriteFile(bad, []byte("[inbound]\nsmtp_lisen = \"x\"\n"), 0o600)
	if r := e.runConfig(bad, nil, "tickets"); r.code != exConfig || !strings.Contains(r.stderr, "inbound.smtp_lisen") {
		t.Errorf("bad config: exit %d, stderr %q; want %d naming the key", r.code, r.stderr, exConfig)
	}
}

// [tickets] numbers = "sequential" numbers the tickets of each inject
// (a process of its own) one after another.
func TestInjectNumbersTicketsSequentially(t *testing.T) {
	e := newEnv(t, false)
	appendConfig(t, e.cfg, "\n[tickets]\nnumbers = \"sequential\"\n")
	var ids []string
	for i, from := range []string{"alice@customer.example", "bob@customer.example", "cy@customer.example"} {
		raw := message(from, "support@example.com", "Printer on fire", fmt.Sprintf("seq-%d@customer.example", i), "It is on fire.")
		ids = append(ids, e.injectOK(raw))
	}
	if want := []string{"HS-000001", "HS-000002", "HS-000003"}; !slices.Equal(ids, want) {
		t.Errorf("injected tickets %v, want %v", ids, want)
	}
}
