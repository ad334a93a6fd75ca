package desk

// Real Dovecot and Postfix for integration tests. The tests start their own
// instances from the templates in ../testdata/dovecot and ../testdata/postfix,
// on 127.0.0.1 and a free port, with every file in a directory of their own,
// and stop them at cleanup. Set TICKETGATE_INTEGRATION=1 to make a missing
// server a failure instead of a skip (CI does).

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"text/template"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-smtp"
)

// integrationRequired reports whether the real servers must be there.
func integrationRequired() bool {
	v := os.Getenv("TICKETGATE_INTEGRATION")
	return v != "" && v != "0"
}

// requireBinary returns the path of a binary: the first of paths that is an
// executable file, else name looked up in $PATH. It skips the test when the
// binary is missing, unless TICKETGATE_INTEGRATION=1, where it fails it, so
// that CI never passes by skipping.
func requireBinary(t testing.TB, name string, paths ...string) string {
	t.Helper()
	for _, p := range paths {
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	if integrationRequired() {
		t.Fatalf("%s not found (tried %v and $PATH) and TICKETGATE_INTEGRATION is set", name, paths)
	}
	t.Skipf("%s not installed; set TICKETGATE_INTEGRATION=1 to require it", name)
	return ""
}

// requireRoot skips (or, under TICKETGATE_INTEGRATION, fails) a test whose
// server only runs as root.
func requireRoot(t testing.TB, what string) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if integrationRequired() {
		t.Fatalf("%s needs root and TICKETGATE_INTEGRATION is set", what)
	}
	t.Skipf("%s needs root", what)
}

// serverDir makes a world-traversable directory for a server's files.
// t.TempDir() is not used: its parents are mode 0700, which the servers'
// unprivileged processes (dovenull, postfix, nobody) cannot enter, and its
// long names overflow the 108-byte limit on unix socket paths.
func serverDir(t testing.TB, prefix string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "tg-"+prefix+"-")
	if err != nil {
		t.Fatalf("server dir: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatalf("server dir: %v", err)
	}
	return dir
}

// freeLoopbackPort returns a TCP port on 127.0.0.1 that was free a moment
// ago, for a server that binds it itself: seconds later (Postfix's start
// takes over 10 s on a busy machine), and again when a test restarts it.
// The port is not one the kernel hands out: a port from a listen on port 0
// is free again once closed, and the kernel gives it to the next process
// on the machine that listens on port 0, as test processes do all the
// time; a port below ip_local_port_range it never gives to anyone. A test
// process picking the same port at the same moment is still possible:
// the servers' readiness checks tell their own server from another.
func freeLoopbackPort(t testing.TB) int {
	t.Helper()
	lo, hi := 10000, ephemeralPortsFrom()-1
	for range 100 {
		if hi <= lo {
			break
		}
		port := lo + rand.IntN(hi-lo+1)
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			continue // in use
		}
		l.Close()
		return port
	}
	// No room below the kernel's range: a port it hands out, then.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// ephemeralPortsFrom returns the first port of the range the kernel picks
// from for a listen on port 0 and for outgoing connections.
func ephemeralPortsFrom() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768 // Linux's default
	}
	var first int
	if _, err := fmt.Sscan(string(b), &first); err != nil {
		return 32768
	}
	return first
}

// renderTemplate fills the template src (relative to the package dir) with
// data and writes it to dst.
func renderTemplate(t testing.TB, src, dst string, data any) {
	t.Helper()
	tmpl, err := template.ParseFiles(src)
	if err != nil {
		t.Fatalf("template: %v", err)
	}
	var buf bytes.Buffer
	if err := tmpl.Execute(&buf, data); err != nil {
		t.Fatalf("template %s: %v", src, err)
	}
	if err := os.WriteFile(dst, buf.Bytes(), 0o644); err != nil {
		t.Fatalf("write %s: %v", dst, err)
	}
}

// logOnFailure prints the file at path when the test has failed.
func logOnFailure(t testing.TB, what, path string) {
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Logf("%s log %s: %v", what, path, err)
			return
		}
		t.Logf("%s log %s:\n%s", what, path, lastBytes(b, 16<<10))
	})
}

// lastBytes returns at most the last n bytes of b.
func lastBytes(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// lookupIDs returns the uid and gid of the named user.
func lookupIDs(t testing.TB, name string) (uid, gid int) {
	t.Helper()
	u, err := user.Lookup(name)
	if err != nil {
		t.Fatalf("user %s: %v", name, err)
	}
	uid, _ = strconv.Atoi(u.Uid)
	gid, _ = strconv.Atoi(u.Gid)
	return uid, gid
}

// groupName returns the name of the group gid, or gid as a number.
func groupName(gid int) string {
	if g, err := user.LookupGroupId(strconv.Itoa(gid)); err == nil {
		return g.Name
	}
	return strconv.Itoa(gid)
}

func harnessMessage(msgID string, size int) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: Alice <alice@customer.test>\r\n"+
		"To: support@example.com\r\n"+
		"Subject: Printer on fire\r\n"+
		"Date: Mon, 02 Jan 2006 15:04:05 +0000\r\n"+
		"Message-ID: <%s>\r\n"+
		"Content-Type: text/plain; charset=utf-8\r\n\r\n", msgID)
	line := "The printer on the third floor is on fire again.\r\n"
	for b.Len()+len(line) <= size {
		b.WriteString(line)
	}
	return b.Bytes()
}

// selectCount returns the number of messages in mailbox, as SELECT reports.
func selectCount(t testing.TB, c *imapclient.Client, mailbox string) uint32 {
	t.Helper()
	data, err := c.Select(mailbox, nil).Wait()
	if err != nil {
		t.Fatalf("select %s: %v", mailbox, err)
	}
	return data.NumMessages
}

func TestDovecotHarness(t *testing.T) {
	t0 := time.Now()
	d := startDovecot(t)
	t.Logf("dovecot start: %v", time.Since(t0))

	d.Append(t, "INBOX", harnessMessage("first@customer.test", 512))

	checkFirst := func() {
		c := d.Client(t, nil)
		if n := selectCount(t, c, "INBOX"); n != 1 {
			t.Fatalf("INBOX has %d messages, want 1", n)
		}
		msgs, err := c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{Envelope: true}).Collect()
		if err != nil {
			t.Fatalf("fetch: %v", err)
		}
		if len(msgs) != 1 || msgs[0].Envelope == nil || msgs[0].Envelope.MessageID != "first@customer.test" {
			t.Fatalf("fetched %+v, want Message-ID first@customer.test", msgs)
		}
		c.Logout().Wait()
	}
	checkFirst()

	t0 = time.Now()
	d.Stop(t)
	t.Logf("dovecot stop: %v", time.Since(t0))
	t0 = time.Now()
	d.Start(t)
	t.Logf("dovecot start again: %v", time.Since(t0))
	checkFirst()

	// IDLE: a client idling on INBOX hears of a message another appends.
	exists := make(chan uint32, 16)
	c := d.Client(t, &imapclient.Options{
		UnilateralDataHandler: &imapclient.UnilateralDataHandler{
			Mailbox: func(m *imapclient.UnilateralDataMailbox) {
				if m.NumMessages != nil {
					select {
					case exists <- *m.NumMessages:
					default:
					}
				}
			},
		},
	})
	if n := selectCount(t, c, "INBOX"); n != 1 {
		t.Fatalf("INBOX has %d messages before IDLE, want 1", n)
	}
	idle, err := c.Idle()
	if err != nil {
		t.Fatalf("idle: %v", err)
	}
	d.Append(t, "INBOX", harnessMessage("second@customer.test", 512))
	timeout := time.After(10 * time.Second)
	for n := uint32(1); n < 2; {
		select {
		case n = <-exists:
		case <-timeout:
			t.Fatalf("no EXISTS 2 within 10s of an APPEND while idling")
		}
	}
	if err := idle.Close(); err != nil {
		t.Fatalf("idle done: %v", err)
	}
	if err := idle.Wait(); err != nil {
		t.Fatalf("idle: %v", err)
	}

	// Many messages, quickly, into another mailbox.
	const many = 10000
	msgs := make([][]byte, many)
	for i := range msgs {
		msgs[i] = harnessMessage(fmt.Sprintf("bulk-%d@customer.test", i), 4096)
	}
	t0 = time.Now()
	d.AppendMany(t, "Bulk", msgs)
	t.Logf("dovecot AppendMany of %d 4 KB messages: %v", many, time.Since(t0))
	if n := selectCount(t, c, "Bulk"); n != many {
		t.Fatalf("Bulk has %d messages, want %d", n, many)
	}
	last, err := c.Fetch(imap.SeqSetNum(many), &imap.FetchOptions{Envelope: true}).Collect()
	if err != nil || len(last) != 1 || last[0].Envelope.MessageID != fmt.Sprintf("bulk-%d@customer.test", many-1) {
		t.Fatalf("last bulk message: %v %+v, want bulk-%d", err, last, many-1)
	}
}

// lmtpRecorder is an LMTP backend that keeps what it is given.
type lmtpRecorder struct {
	mu   sync.Mutex
	got  []lmtpDelivery
	recv chan struct{} // gets a value per delivery
}

type lmtpDelivery struct {
	From string
	To   []string
	Data []byte
}

func (r *lmtpRecorder) NewSession(*smtp.Conn) (smtp.Session, error) {
	return &lmtpRecorderSession{r: r}, nil
}

type lmtpRecorderSession struct {
	r *lmtpRecorder
	d lmtpDelivery
}

func (s *lmtpRecorderSession) Reset()        { s.d = lmtpDelivery{} }
func (s *lmtpRecorderSession) Logout() error { return nil }
func (s *lmtpRecorderSession) Mail(from string, _ *smtp.MailOptions) error {
	s.d.From = from
	return nil
}
func (s *lmtpRecorderSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.d.To = append(s.d.To, to)
	return nil
}
func (s *lmtpRecorderSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.d.Data = b
	s.r.mu.Lock()
	s.r.got = append(s.r.got, s.d)
	s.r.mu.Unlock()
	s.r.recv <- struct{}{}
	return nil
}

func TestPostfixHarness(t *testing.T) {
	rec := &lmtpRecorder{recv: make(chan struct{}, 16)}
	srv := smtp.NewServer(rec)
	srv.LMTP = true
	srv.Domain = "gateway.test"
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })

	t0 := time.Now()
	p := startPostfix(t, l.Addr().String())
	t.Logf("postfix start: %v", time.Since(t0))

	raw := harnessMessage("via-postfix@customer.test", 1024)
	sc, err := smtp.Dial(p.SMTPAddr)
	if err != nil {
		t.Fatalf("dial postfix: %v", err)
	}
	if err := sc.SendMail("alice@customer.test", []string{"support@example.com"}, bytes.NewReader(raw)); err != nil {
		t.Fatalf("send to postfix: %v", err)
	}
	sc.Quit()
	select {
	case <-rec.recv:
	case <-time.After(30 * time.Second):
		t.Fatalf("LMTP got nothing within 30s; queue:\n%s", p.Queue(t))
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	got := rec.got[0]
	if len(got.To) != 1 || got.To[0] != "support@example.com" || got.From != "alice@customer.test" {
		t.Errorf("LMTP envelope from %q to %q, want alice@customer.test to [support@example.com]", got.From, got.To)
	}
	if !bytes.Contains(got.Data, []byte("Message-ID: <via-postfix@customer.test>")) {
		t.Errorf("LMTP data lacks the Message-ID:\n%s", got.Data)
	}
}

func TestPostfixPipeHarness(t *testing.T) {
	dir := pipeDir(t)
	// The command stands in for "ticketgate inject": it keeps the message
	// it reads, named after the recipient it is given.
	script := filepath.Join(dir, "record.sh")
	body := "#!/bin/sh\nset -e\ncat > \"$1/got.tmp\"\nmv \"$1/got.tmp\" \"$1/got-$2\"\n"
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	p := startPostfixPipe(t, script+" "+dir)

	sc, err := smtp.Dial(p.SMTPAddr)
	if err != nil {
		t.Fatalf("dial postfix: %v", err)
	}
	raw := harnessMessage("via-pipe@customer.test", 1024)
	if err := sc.SendMail("alice@customer.test", []string{"support@example.com"}, bytes.NewReader(raw)); err != nil {
		t.Fatalf("send to postfix: %v", err)
	}
	sc.Quit()

	got := filepath.Join(dir, "got-support@example.com")
	deadline := time.Now().Add(30 * time.Second)
	for {
		b, err := os.ReadFile(got)
		if err == nil {
			if !bytes.Contains(b, []byte("Message-ID: <via-pipe@customer.test>")) {
				t.Errorf("piped message lacks the Message-ID:\n%s", b)
			}
			if !bytes.HasPrefix(b, []byte("Return-Path: <alice@customer.test>")) {
				t.Errorf("piped message does not start with the Return-Path:\n%s", b)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("pipe command got nothing within 30s; queue:\n%s", p.Queue(t))
		}
		time.Sleep(50 * time.Millisecond)
	}
}
