package mailin

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"net/textproto"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"ticketgate/mailin/mailintest"
)

// recorder is a Handler that keeps what it is given: these tests are of
// the protocol, the desk package tests what becomes of the mail.
type recorder struct {
	mu  sync.Mutex
	got []*Delivery
}

func (r *recorder) Deliver(_ context.Context, d *Delivery) (Result, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, d)
	return Result{TicketID: "HS-1", NewTicket: true}, nil
}

func (r *recorder) Accepts(addr string) bool {
	return strings.EqualFold(addr, "support@example.com") || strings.EqualFold(addr, "süpport@example.com")
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.got)
}

// listen starts an SMTP listener on 127.0.0.1:0 with cfg over the basics.
func listen(t *testing.T, cfg Config) (*Server, *recorder) {
	t.Helper()
	cfg.Hostname = "tickets.example.com"
	if cfg.MaxMessageBytes == 0 {
		cfg.MaxMessageBytes = 16 << 20
	}
	rec := &recorder{}
	srv, err := Listen("127.0.0.1:0", false, cfg, rec, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv, rec
}

// client speaks SMTP line by line, as odd clients do.
type client struct {
	t    *testing.T
	conn net.Conn
	text *textproto.Conn
}

// dial connects from the loopback address from ("" for any).
func dial(t *testing.T, addr, from string) *client {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second}
	if from != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(from)}
	}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	// Only a guard against a hung test, not a performance assertion.
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	return &client{t: t, conn: conn, text: textproto.NewConn(conn)}
}

// line reads one raw answer line.
func (c *client) line() string {
	c.t.Helper()
	l, err := c.text.ReadLine()
	if err != nil {
		c.t.Fatalf("reading an answer: %v", err)
	}
	return l
}

// reply reads a whole (multi-line) answer.
func (c *client) reply() (int, string) {
	c.t.Helper()
	code, msg, err := c.text.ReadResponse(0)
	if err != nil && code == 0 {
		c.t.Fatalf("reading an answer: %v", err)
	}
	return code, msg
}

func (c *client) cmd(format string, args ...any) (int, string) {
	c.t.Helper()
	if err := c.text.PrintfLine(format, args...); err != nil {
		c.t.Fatalf("sending %q: %v", format, err)
	}
	return c.reply()
}

func (c *client) must(want int, format string, args ...any) {
	c.t.Helper()
	if code, msg := c.cmd(format, args...); code != want {
		c.t.Fatalf("%s: got %d %s, want %d", format, code, msg, want)
	}
}

// greet reads the banner and says EHLO.
// hello serves h on an SMTP (or LMTP) listener with cfg and returns a
// client from 127.0.0.2 that was greeted and said EHLO (or LHLO).
func hello(t *testing.T, lmtp bool, cfg Config, h Handler) *client {
	t.Helper()
	srv, err := Listen("127.0.0.1:0", lmtp, cfg, h, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	c := dial(t, srv.Addr(), "127.0.0.2")
	c.reply()
	c.must(250, "%s client.example", map[bool]string{false: "EHLO", true: "LHLO"}[lmtp])
	return c
}

func (c *client) greet() {
	c.t.Helper()
	if code, msg := c.reply(); code != 220 {
		c.t.Fatalf("banner: %d %s", code, msg)
	}
	c.must(250, "EHLO client.example")
}

// closed reports whether the server closed the connection (after any
// answers still on their way).
func (c *client) closed() bool {
	c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := io.ReadAll(c.text.R)
	return err == nil
}

func TestStrangerCannotLockOutOthers(t *testing.T) {
	srv, _ := listen(t, Config{MaxConnections: 200})
	for i := 0; i < 20; i++ {
		c := dial(t, srv.Addr(), "127.0.0.2")
		if l := c.line(); !strings.HasPrefix(l, "220 ") {
			t.Fatalf("connection %d from 127.0.0.2: %q, want the 220 banner", i+1, l)
		}
	}
	c := dial(t, srv.Addr(), "127.0.0.2")
	if l := c.line(); !strings.HasPrefix(l, "421 4.7.0 ") {
		t.Fatalf("21st connection from 127.0.0.2: %q, want 421 4.7.0", l)
	}
	if !c.closed() {
		t.Errorf("21st connection left open after its 421")
	}
	// 300 in all, none of them reading.
	for i := 21; i < 300; i++ {
		dial(t, srv.Addr(), "127.0.0.2")
	}
	other := dial(t, srv.Addr(), "127.0.0.3")
	if l := other.line(); !strings.HasPrefix(l, "220 ") {
		t.Fatalf("client from 127.0.0.3 behind 300 idle connections: %q, want the 220 banner", l)
	}
	other.must(250, "EHLO other.example")
}

func TestTrustedRelayIsExemptFromPerAddressCap(t *testing.T) {
	srv, _ := listen(t, Config{MaxConnectionsPerIP: 3})
	for i := 0; i < 6; i++ {
		c := dial(t, srv.Addr(), "127.0.0.1")
		if l := c.line(); !strings.HasPrefix(l, "220 ") {
			t.Fatalf("connection %d from the trusted 127.0.0.1: %q, want 220", i+1, l)
		}
	}
	srv2, _ := listen(t, Config{MaxConnectionsPerIP: 3, TrustedRelays: []string{"127.0.0.0/29"}})
	for i := 0; i < 6; i++ {
		c := dial(t, srv2.Addr(), "127.0.0.2")
		if l := c.line(); !strings.HasPrefix(l, "220 ") {
			t.Fatalf("connection %d from 127.0.0.2 in trusted 127.0.0.0/29: %q, want 220", i+1, l)
		}
	}
}

func TestOverallCapAnswers421AtOnce(t *testing.T) {
	srv, _ := listen(t, Config{MaxConnections: 3})
	var open []*client
	for i := 0; i < 3; i++ {
		c := dial(t, srv.Addr(), "127.0.0.1")
		c.greet()
		open = append(open, c)
	}
	c := dial(t, srv.Addr(), "127.0.0.1")
	if l := c.line(); !strings.HasPrefix(l, "421 4.7.0 ") {
		t.Fatalf("4th connection with max_connections 3: %q, want 421 4.7.0", l)
	}
	// A place given back is a place for the next client.
	open[0].must(221, "QUIT")
	open[0].closed()
	var l string
	for try := 0; try < 50; try++ {
		if l = dial(t, srv.Addr(), "127.0.0.1").line(); strings.HasPrefix(l, "220 ") {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("after one client left: %q, want 220", l)
}

func TestNoMessageStartedInTimeIsDisconnected(t *testing.T) {
	srv, _ := listen(t, Config{MailFromTimeout: "300ms"})
	c := dial(t, srv.Addr(), "127.0.0.2")
	c.greet()
	// NOOPs keep an idle limit per command at bay, not this one.
	start := time.Now()
	for time.Since(start) < 3*time.Second {
		time.Sleep(100 * time.Millisecond)
		code, msg := c.cmd("NOOP")
		if code == 250 {
			continue
		}
		if code != 421 || !strings.HasPrefix(msg, "4.4.2 ") || !strings.Contains(msg, "no message started within 300ms") {
			t.Fatalf("NOOP past mail_from_timeout: %d %s, want 421 4.4.2", code, msg)
		}
		if !c.closed() {
			t.Errorf("connection left open after 421")
		}
		return
	}
	t.Fatalf("still connected %v after the greeting with mail_from_timeout 300ms", time.Since(start))
}

func TestNoopBudget(t *testing.T) {
	srv, rec := listen(t, Config{MaxNoops: 5})
	c := dial(t, srv.Addr(), "127.0.0.2")
	c.greet()
	for i := 0; i < 3; i++ {
		c.must(250, "NOOP")
	}
	c.must(250, "RSET")
	c.must(250, "NOOP")
	// A message in between starts the budget again: an MTA that sends
	// RSET before each message on a cached connection is never cut off.
	sendMessage(t, c, "x@customer.example", "hello")
	for i := 0; i < 5; i++ {
		c.must(250, "NOOP")
	}
	code, msg := c.cmd("NOOP")
	if code != 421 || !strings.HasPrefix(msg, "4.7.0 ") {
		t.Fatalf("6th NOOP with max_noops 5: %d %s, want 421 4.7.0", code, msg)
	}
	if !c.closed() {
		t.Errorf("connection left open after 421")
	}
	if n := rec.count(); n != 1 {
		t.Errorf("%d messages delivered, want 1", n)
	}
}

func TestRepeatedMailFromCountsAgainstBudget(t *testing.T) {
	srv, _ := listen(t, Config{MaxNoops: 2})
	c := dial(t, srv.Addr(), "127.0.0.2")
	c.greet()
	c.must(250, "MAIL FROM:<a@customer.example>")
	c.must(503, "MAIL FROM:<a@customer.example>") // nested: refused, and counted
	c.must(503, "MAIL FROM:<a@customer.example>")
	if code, msg := c.cmd("MAIL FROM:<a@customer.example>"); code != 421 {
		t.Fatalf("4th MAIL FROM without a message, max_noops 2: %d %s, want 421", code, msg)
	}
}

// sendMessage runs one transaction to support@ and expects 250.
func sendMessage(t *testing.T, c *client, from, body string) {
	t.Helper()
	c.must(250, "MAIL FROM:<%s>", from)
	c.must(250, "RCPT TO:<support@example.com>")
	c.must(354, "DATA")
	c.must(250, "From: %s\r\nSubject: test\r\n\r\n%s\r\n.", from, body)
}

// startData opens a transaction and sends DATA.
func startData(t *testing.T, c *client) {
	t.Helper()
	c.greet()
	c.must(250, "MAIL FROM:<slow@customer.example>")
	c.must(250, "RCPT TO:<support@example.com>")
	c.must(354, "DATA")
}

func TestSlowSenderThatKeepsSendingIsNotCutOff(t *testing.T) {
	srv, rec := listen(t, Config{ReadTimeout: "300ms"})
	c := dial(t, srv.Addr(), "127.0.0.2")
	startData(t, c)
	c.text.PrintfLine("From: slow@customer.example\r\nSubject: slow")
	c.text.PrintfLine("")
	// 1.2 s in all, four times read_timeout, never silent for long.
	for i := 0; i < 12; i++ {
		time.Sleep(100 * time.Millisecond)
		if err := c.text.PrintfLine("line %d", i); err != nil {
			t.Fatal(err)
		}
	}
	if code, msg := c.cmd("."); code != 250 {
		t.Fatalf("slow but steady message: %d %s, want 250", code, msg)
	}
	if rec.count() != 1 {
		t.Errorf("message not delivered")
	}
}

func TestSilentSenderGetsTryAgain(t *testing.T) {
	srv, rec := listen(t, Config{ReadTimeout: "300ms"})
	c := dial(t, srv.Addr(), "127.0.0.2")
	startData(t, c)
	c.text.PrintfLine("From: slow@customer.example\r\nSubject: stalled\r\n\r\nhalf a message")
	code, msg := c.reply() // then nothing more from us
	if code/100 != 4 {
		t.Fatalf("sender silent past read_timeout in DATA: %d %s, want 4xx (try again)", code, msg)
	}
	if rec.count() != 0 {
		t.Errorf("half a message was delivered")
	}
	if !c.closed() {
		t.Errorf("connection left open")
	}
}

// TestStalledBDATChunkGetsTryAgain: a BDAT chunk the sender stops
// sending, or sends past max_data_duration, is answered 4xx as DATA is,
// not a permanent failure that bounces the mail.
func TestStalledBDATChunkGetsTryAgain(t *testing.T) {
	for _, cfg := range []Config{{ReadTimeout: "300ms"}, {ReadTimeout: "1s", MaxDataDuration: "500ms"}} {
		srv, rec := listen(t, cfg)
		c := dial(t, srv.Addr(), "127.0.0.2")
		c.greet()
		c.must(250, "MAIL FROM:<slow@customer.example>")
		c.must(250, "RCPT TO:<support@example.com>")
		// Announce 100000 bytes, send a few, then trickle or fall silent.
		io.WriteString(c.conn, "BDAT 100000 LAST\r\nFrom: slow@customer.example\r\nSubject: x\r\n")
		stop := make(chan struct{})
		if cfg.MaxDataDuration != "" {
			go func() {
				for {
					select {
					case <-stop:
						return
					case <-time.After(100 * time.Millisecond):
					}
					if _, err := io.WriteString(c.conn, "X-Trickle: more\r\n"); err != nil {
						return
					}
				}
			}()
		}
		code, msg := c.reply()
		close(stop)
		if code/100 != 4 {
			t.Errorf("BDAT chunk with read_timeout %s, max_data_duration %q: %d %s, want 4xx (try again)",
				cfg.ReadTimeout, cfg.MaxDataDuration, code, msg)
		}
		if rec.count() != 0 {
			t.Errorf("half a message was delivered")
		}
	}
}

func TestMessageTakingTooLongGets451(t *testing.T) {
	srv, rec := listen(t, Config{ReadTimeout: "1s", MaxDataDuration: "500ms"})
	c := dial(t, srv.Addr(), "127.0.0.2")
	startData(t, c)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		w := bufio.NewWriter(c.conn)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			if _, err := w.WriteString("X-Trickle: more\r\n"); err != nil || w.Flush() != nil {
				return
			}
		}
	}()
	start := time.Now()
	code, msg := c.reply()
	if code != 451 {
		t.Fatalf("transfer longer than max_data_duration: %d %s, want 451", code, msg)
	}
	if time.Since(start) > 5*time.Second {
		t.Errorf("answered after %v", time.Since(start))
	}
	if rec.count() != 0 {
		t.Errorf("message was delivered")
	}
}

func TestOverlongLineRefusalReachesSender(t *testing.T) {
	srv, rec := listen(t, Config{MaxLineLength: 1000})
	c := dial(t, srv.Addr(), "127.0.0.2")
	startData(t, c)
	// Like an MTA: send the whole message, then read the answer.
	sent := make(chan error, 1)
	go func() {
		w := bufio.NewWriter(c.conn)
		w.WriteString("From: long@customer.example\r\nSubject: long\r\n\r\n")
		w.WriteString(strings.Repeat("x", 4<<20))
		w.WriteString("\r\nmore text\r\n.\r\n")
		sent <- w.Flush()
	}()
	if err := <-sent; err != nil {
		t.Fatalf("sending the message: %v (the server hung up before answering)", err)
	}
	code, msg := c.reply()
	if code != 554 || !strings.Contains(msg, "longer than 1000") {
		t.Fatalf("message with a 4 MB line: %d %s, want 554 naming the limit", code, msg)
	}
	if rec.count() != 0 {
		t.Errorf("message was delivered")
	}
}

// TestNextMessageAfterOverlongLineIsNotRefused: after a message refused
// for an over-long line, the next command on the connection is answered
// 421 (send it again on a new connection), over SMTP and LMTP, never a
// permanent refusal of a message that was never sent.
func TestNextMessageAfterOverlongLineIsNotRefused(t *testing.T) {
	for _, lmtp := range []bool{false, true} {
		c := hello(t, lmtp, Config{Hostname: "tickets.example.com", MaxLineLength: 1000}, &recorder{})
		c.must(250, "MAIL FROM:<long@customer.example>")
		c.must(250, "RCPT TO:<support@example.com>")
		c.must(354, "DATA")
		io.WriteString(c.conn, "From: long@customer.example\r\nSubject: long\r\n\r\n"+
			strings.Repeat("x", 5000)+"\r\nmore text\r\n.\r\n")
		if code, msg := c.reply(); code != 554 {
			t.Fatalf("LMTP %v: message with a long line: %d %s, want 554", lmtp, code, msg)
		}
		if code, msg := c.cmd("MAIL FROM:<next@customer.example>"); code != 421 {
			t.Errorf("LMTP %v: MAIL FROM of the next message on the connection: %d %s, want 421", lmtp, code, msg)
		}
		if !c.closed() {
			t.Errorf("LMTP %v: connection left open after 421", lmtp)
		}
	}
}

func TestEnvelopeAddressChecks(t *testing.T) {
	srv, rec := listen(t, Config{})
	for _, tc := range []struct {
		name     string
		mail     string
		rcpt     string // "" when MAIL already fails
		wantCode int
	}{
		{"NUL in sender", "MAIL FROM:<a\x00b@customer.example>", "", 501},
		{"invalid UTF-8 in sender", "MAIL FROM:<\xff\xfe@customer.example>", "", 501},
		{"control character in sender", "MAIL FROM:<a\x01b@customer.example>", "", 501},
		{"NUL in recipient", "MAIL FROM:<a@customer.example>", "RCPT TO:<support@example.com\x00>", 501},
		{"invalid UTF-8 in recipient", "MAIL FROM:<a@customer.example> SMTPUTF8", "RCPT TO:<support\xc3A@example.com>", 501},
		{"non-ASCII sender without SMTPUTF8", "MAIL FROM:<jörg@customer.example>", "", 553},
		{"non-ASCII recipient without SMTPUTF8", "MAIL FROM:<a@customer.example>", "RCPT TO:<süpport@example.com>", 553},
		{"non-ASCII with SMTPUTF8", "MAIL FROM:<jörg@customer.example> SMTPUTF8", "RCPT TO:<süpport@example.com>", 250},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, srv.Addr(), "127.0.0.2")
			c.greet()
			cmd, want := tc.mail, tc.wantCode
			if tc.rcpt != "" {
				c.must(250, "%s", tc.mail)
				cmd = tc.rcpt
			}
			code, msg := c.cmd("%s", cmd)
			if code != want {
				t.Fatalf("%q: %d %s, want %d", cmd, code, msg, want)
			}
			if code == 553 && !strings.HasPrefix(msg, "5.6.7 ") {
				t.Errorf("non-ASCII refusal %q lacks 5.6.7", msg)
			}
			if code == 250 {
				c.must(354, "DATA")
				c.must(250, "From: jörg@customer.example\r\nSubject: utf8\r\n\r\nhi\r\n.")
			}
		})
	}
	if n := rec.count(); n != 1 {
		t.Errorf("%d messages delivered, want only the SMTPUTF8 one", n)
	}
}

func TestBDATChunkIsNotReadAsCommands(t *testing.T) {
	srv, rec := listen(t, Config{MaxNoops: 5})
	raw := "From: b@customer.example\r\nSubject: chunk\r\n\r\n" + strings.Repeat("NOOP\r\nRSET\r\n", 30)
	if code := mailintest.SendBDAT(t, srv.Addr(), "b@customer.example", "support@example.com", []byte(raw)); code != 250 {
		t.Fatalf("BDAT chunk holding 60 NOOP/RSET lines, max_noops 5: %d, want 250", code)
	}
	if rec.count() != 1 {
		t.Errorf("message not delivered")
	}
}

// observing is a recorder that also counts the answers it is told of
// (Observer), per stage.
type observing struct {
	recorder
	omu     sync.Mutex
	replies map[string][]int
}

func (o *observing) Session(string)               {}
func (o *observing) Ingest(string, time.Duration) {}
func (o *observing) Poll(string, error)           {}
func (o *observing) Reply(_, stage string, code int) {
	o.omu.Lock()
	defer o.omu.Unlock()
	o.replies[stage] = append(o.replies[stage], code)
}

// TestMailAnswersAreObserved: the Observer (the refusal metrics) hears
// each answer to MAIL, the refusals included, as it hears RCPT's and
// DATA's.
func TestMailAnswersAreObserved(t *testing.T) {
	obs := &observing{replies: map[string][]int{}}
	srv, err := Listen("127.0.0.1:0", false, Config{Hostname: "tickets.example.com", MaxMessageBytes: 1 << 20}, obs,
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	c := dial(t, srv.Addr(), "")
	c.greet()
	sendMessage(t, c, "a@customer.example", "hello")
	c.must(553, "MAIL FROM:<jörg@customer.example>")
	c.must(221, "QUIT")
	obs.omu.Lock()
	defer obs.omu.Unlock()
	if !slices.Equal(obs.replies["mail"], []int{250, 553}) || len(obs.replies["rcpt"]) != 1 || len(obs.replies["data"]) != 1 {
		t.Errorf("MAIL answered 250 then 553, one RCPT and one DATA answered; Observer told of %v", obs.replies)
	}
}

// TestRefusedBDATLeavesNoopBudget: a BDAT go-smtp refuses is followed by
// no chunk, so the commands after it still count against max_noops.
func TestRefusedBDATLeavesNoopBudget(t *testing.T) {
	srv, _ := listen(t, Config{MaxNoops: 2})
	for _, bdat := range []string{"BDAT 99999999999", "BDAT 100 X", "BDAT 100" + strings.Repeat(" ", 30) + "X", " BDAT 100"} {
		c := dial(t, srv.Addr(), "127.0.0.2")
		c.greet()
		c.must(250, "MAIL FROM:<a@customer.example>")
		if code, msg := c.cmd("%s", bdat); code/100 != 5 {
			t.Fatalf("%q: %d %s, want a refusal", bdat, code, msg)
		}
		noops := 0
		for code, _ := c.cmd("NOOP"); code == 250 && noops < 50; code, _ = c.cmd("NOOP") {
			noops++
		}
		if noops != 2 {
			t.Errorf("%q, max_noops 2: %d NOOPs answered 250 before the 421", bdat, noops)
		}
	}
}

// The size MAIL FROM declares only sizes the read buffer: a message
// shorter or longer than declared, or declared without SIZE, arrives
// byte for byte.
func TestDeclaredSizeDoesNotChangeTheMessage(t *testing.T) {
	srv, rec := listen(t, Config{})
	body := strings.Repeat("a line of the customer's text\r\n", 300) // 9 KB
	want := "From: a@customer.example\r\nSubject: size\r\n\r\n" + body
	for i, size := range []string{"", " SIZE=100", " SIZE=9330", " SIZE=5000000"} {
		c := dial(t, srv.Addr(), "")
		c.greet()
		c.must(250, "MAIL FROM:<a@customer.example>%s", size)
		c.must(250, "RCPT TO:<support@example.com>")
		c.must(354, "DATA")
		c.must(250, "%s.", want)
		if got := rec.count(); got != i+1 {
			t.Fatalf("MAIL FROM%s: %d messages delivered, want %d", size, got, i+1)
		}
		rec.mu.Lock()
		raw := string(rec.got[i].Raw)
		rec.mu.Unlock()
		if raw != want {
			t.Errorf("MAIL FROM%s: delivered %d bytes, want the %d sent", size, len(raw), len(want))
		}
	}
}

// A client that closes its side of the connection in the middle of a
// BDAT chunk has nothing of the message taken: the chunk is answered
// 451 (try again), not 250 for the part that came.
func TestBDATChunkCutShortIsNotTaken(t *testing.T) {
	srv, rec := listen(t, Config{})
	c := dial(t, srv.Addr(), "127.0.0.2")
	c.greet()
	c.must(250, "MAIL FROM:<gone@customer.example>")
	c.must(250, "RCPT TO:<support@example.com>")
	io.WriteString(c.conn, "BDAT 1000 LAST\r\nFrom: gone@customer.example\r\nSubject: cut\r\n\r\nthe first line of many\r\n")
	if err := c.conn.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	code, msg := c.reply()
	if code == 250 || rec.count() != 0 {
		t.Fatalf("BDAT chunk cut short by the client: %d %s, %d messages delivered; want nothing taken", code, msg, rec.count())
	}
}

// routing is a recorder that refuses, as the desk does, a message none
// of whose recipients is a routing address.
type routing struct{ recorder }

func (r *routing) Deliver(ctx context.Context, d *Delivery) (Result, error) {
	if !slices.ContainsFunc(d.Rcpts, r.Accepts) {
		return Result{}, ErrUnknownRecipient
	}
	return r.recorder.Deliver(ctx, d)
}

// TestMailFromAgainKeepsTheTransaction: a second MAIL FROM in an open
// transaction is refused 503 (RFC 5321 4.1.1.2), whether its address is
// good or not, and leaves the transaction as it was: the message is
// handed over with its recipients and its first sender, over SMTP and
// LMTP.
func TestMailFromAgainKeepsTheTransaction(t *testing.T) {
	for _, lmtp := range []bool{false, true} {
		for _, again := range []string{"MAIL FROM:<b@customer.example>", "MAIL FROM:<jörg@customer.example>"} {
			h := &routing{}
			c := hello(t, lmtp, Config{Hostname: "tickets.example.com"}, h)
			c.must(250, "MAIL FROM:<a@customer.example>")
			c.must(250, "RCPT TO:<support@example.com>")
			if code, msg := c.cmd("%s", again); code != 503 {
				t.Errorf("LMTP %v: %q within a transaction answered %d %s, want 503", lmtp, again, code, msg)
			}
			c.must(354, "DATA")
			code, msg := c.cmd("From: a@customer.example\r\nSubject: again\r\n\r\nhello\r\n.")
			if code != 250 || h.count() != 1 {
				t.Errorf("LMTP %v, %q: message answered %d %s, %d stored; want 250 and stored",
					lmtp, again, code, msg, h.count())
				continue
			}
			if d := h.got[0]; d.MailFrom != "a@customer.example" || !slices.Equal(d.Rcpts, []string{"support@example.com"}) {
				t.Errorf("LMTP %v, %q: delivered from %q to %q, want a@customer.example to support@", lmtp, again, d.MailFrom, d.Rcpts)
			}
			// After the message, a new transaction is open to MAIL FROM.
			c.must(250, "MAIL FROM:<b@customer.example>")
		}
	}
}

// TestLMTPRefusalWhileReadingIsObserved: a message refused while it is
// read (here: larger than max_message_bytes) is counted as refused under
// LMTP too, once per recipient, as the refusal metrics promise.
func TestLMTPRefusalWhileReadingIsObserved(t *testing.T) {
	obs := &observing{replies: map[string][]int{}}
	srv, err := Listen("127.0.0.1:0", true, Config{Hostname: "tickets.example.com", MaxMessageBytes: 1000}, obs,
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	c := dial(t, srv.Addr(), "")
	c.reply()
	c.must(250, "LHLO client.example")
	c.must(250, "MAIL FROM:<a@customer.example>")
	c.must(250, "RCPT TO:<support@example.com>")
	c.must(250, "RCPT TO:<Support@example.com>")
	c.must(354, "DATA")
	c.text.PrintfLine("From: a@customer.example\r\nSubject: big\r\n\r\n%s\r\n.", strings.Repeat("x", 2000))
	for range 2 {
		if code, msg := c.reply(); code != 552 {
			t.Fatalf("message over max_message_bytes: %d %s, want 552 for each recipient", code, msg)
		}
	}
	c.must(221, "QUIT")
	obs.omu.Lock()
	defer obs.omu.Unlock()
	if !slices.Equal(obs.replies["data"], []int{552, 552}) {
		t.Errorf("two recipients answered 552; Observer told of DATA answers %v", obs.replies["data"])
	}
}

// TestLaterBDATChunkStalledOrCutIsNotTakenNorRefusedForGood: a message
// sent in several BDAT chunks (as Exchange sends it) whose second chunk
// stalls is answered 4xx, as one whose first chunk stalls is, not 554;
// and one whose client goes away in the middle of its last chunk is not
// taken cut short.
func TestLaterBDATChunkStalledOrCutIsNotTakenNorRefusedForGood(t *testing.T) {
	for _, cut := range []bool{false, true} {
		srv, rec := listen(t, Config{ReadTimeout: "300ms"})
		c := dial(t, srv.Addr(), "127.0.0.2")
		c.greet()
		c.must(250, "MAIL FROM:<slow@customer.example>")
		c.must(250, "RCPT TO:<support@example.com>")
		first := "From: slow@customer.example\r\nSubject: chunks\r\n\r\n"
		io.WriteString(c.conn, "BDAT "+strconv.Itoa(len(first))+"\r\n"+first)
		if code, msg := c.reply(); code != 250 {
			t.Fatalf("first BDAT chunk: %d %s", code, msg)
		}
		io.WriteString(c.conn, "BDAT 100000 LAST\r\n\r\nthe first line of many\r\n")
		if cut {
			if err := c.conn.(*net.TCPConn).CloseWrite(); err != nil {
				t.Fatal(err)
			}
		}
		code, msg := c.reply()
		if code/100 != 4 || rec.count() != 0 {
			t.Errorf("second BDAT chunk (client gone: %v): %d %s, %d messages taken; want 4xx (try again) and nothing taken",
				cut, code, msg, rec.count())
		}
	}
}

// TestLMTPStalledBDATChunkIsObserved: an LMTP message sent with BDAT
// whose chunk stalls is answered 4xx, and the refusal metrics count it
// once per recipient, as they count a refused DATA. go-smtp resets the
// session (its recipients) as it answers the chunk, while the message's
// own reading is still ending: the count used to read the recipients
// the reset was clearing.
func TestLMTPStalledBDATChunkIsObserved(t *testing.T) {
	obs := &observing{replies: map[string][]int{}}
	c := hello(t, true, Config{Hostname: "tickets.example.com", ReadTimeout: "300ms"}, obs)
	c.must(250, "MAIL FROM:<slow@customer.example>")
	c.must(250, "RCPT TO:<support@example.com>")
	c.must(250, "RCPT TO:<Support@example.com>")
	io.WriteString(c.conn, "BDAT 100000 LAST\r\nFrom: slow@customer.example\r\nSubject: x\r\n")
	if code, msg := c.reply(); code/100 != 4 {
		t.Fatalf("stalled BDAT chunk: %d %s, want 4xx (try again)", code, msg)
	}
	var got []int
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		obs.omu.Lock()
		got = slices.Clone(obs.replies["data"])
		obs.omu.Unlock()
		if len(got) >= 2 {
			break
		}
	}
	if len(got) != 2 || got[0]/100 != 4 || got[1]/100 != 4 {
		t.Errorf("a stalled BDAT chunk to two recipients; Observer told of DATA answers %v, want a 4xx for each", got)
	}
	if obs.count() != 0 {
		t.Errorf("half a message was delivered")
	}
}

// TestRecipientLimitIsObserved: a RCPT past max_recipients is answered
// 452 4.5.3 and the refusal metrics count it, over SMTP and LMTP; the
// listener took it for no answer at all.
func TestRecipientLimitIsObserved(t *testing.T) {
	for _, lmtp := range []bool{false, true} {
		obs := &observing{replies: map[string][]int{}}
		c := hello(t, lmtp, Config{Hostname: "tickets.example.com", MaxRecipients: 2}, obs)
		c.must(250, "MAIL FROM:<a@customer.example>")
		c.must(250, "RCPT TO:<support@example.com>")
		c.must(250, "RCPT TO:<Support@example.com>")
		if code, msg := c.cmd("RCPT TO:<SUPPORT@example.com>"); code != 452 || !strings.HasPrefix(msg, "4.5.3 ") {
			t.Errorf("LMTP %v: third RCPT, max_recipients 2: %d %s, want 452 4.5.3", lmtp, code, msg)
		}
		c.must(221, "QUIT")
		obs.omu.Lock()
		if got := obs.replies["rcpt"]; !slices.Equal(got, []int{250, 250, 452}) {
			t.Errorf("LMTP %v: RCPT answered 250, 250, 452; Observer told of %v", lmtp, got)
		}
		obs.omu.Unlock()
	}
}

// TestListenerOwnRefusalsAreObserved: what go-smtp refuses itself, before
// any session hears of it (a MAIL FROM whose SIZE is past
// max_message_bytes, a command out of order or not well formed, a BDAT
// without recipients), is counted by the refusal metrics with the
// session's refusals, once each, pipelined commands included; it was
// never counted.
func TestListenerOwnRefusalsAreObserved(t *testing.T) {
	for _, lmtp := range []bool{false, true} {
		obs := &observing{replies: map[string][]int{}}
		c := hello(t, lmtp, Config{Hostname: "tickets.example.com", MaxMessageBytes: 1 << 20}, obs)
		c.must(552, "MAIL FROM:<a@customer.example> SIZE=99999999")
		c.must(501, "MAIL FROM")
		c.must(502, "RCPT TO:<support@example.com>")
		c.must(502, "DATA")
		c.must(250, "MAIL FROM:<a@customer.example>")
		c.must(501, "RCPT TO")
		c.must(502, "BDAT 10 LAST")
		c.text.W.WriteString("0123456789")
		c.must(250, "RCPT TO:<support@example.com>")
		c.must(250, "RSET")
		// Pipelined: both answers come after both commands were read.
		c.text.W.WriteString("MAIL FROM:<b@customer.example> SIZE=99999999\r\n")
		if code, _ := c.cmd("RCPT TO:<support@example.com>"); code != 552 {
			t.Fatalf("LMTP %v: pipelined MAIL FROM with SIZE past the limit: %d, want 552", lmtp, code)
		}
		if code, _ := c.reply(); code != 502 {
			t.Fatalf("LMTP %v: pipelined RCPT after a refused MAIL FROM: %d, want 502", lmtp, code)
		}
		c.must(221, "QUIT")
		obs.omu.Lock()
		want := map[string][]int{"mail": {552, 501, 250, 552}, "rcpt": {502, 501, 250, 502}, "data": {502, 502}}
		for stage, codes := range want {
			if !slices.Equal(obs.replies[stage], codes) {
				t.Errorf("LMTP %v: %s answered %v; Observer told of %v", lmtp, stage, codes, obs.replies[stage])
			}
		}
		obs.omu.Unlock()
	}
}
