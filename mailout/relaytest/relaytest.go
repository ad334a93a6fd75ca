// Package relaytest is a real SMTP server for tests: it records every
// message it accepts and can be told to refuse or to be down.
package relaytest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// Mail is one message the relay accepted.
type Mail struct {
	From string
	To   []string
	Data []byte
	TLS  bool // it came over TLS (STARTTLS)
}

// Relay is a recording SMTP server on 127.0.0.1.
type Relay struct {
	Addr string

	mu      sync.Mutex
	mails   []Mail
	fail    *smtp.SMTPError // answer to DATA when set
	rcptErr map[string]*smtp.SMTPError
	notify  chan struct{}
	srv     *smtp.Server
	ln      net.Listener
	utf8    bool        // offer SMTPUTF8
	tls     *tls.Config // STARTTLS offered when set
	// needTLS refuses MAIL FROM outside TLS (RequireTLS).
	needTLS bool
	// sessions counts the SMTP sessions (connections) opened so far,
	// open those not ended yet.
	sessions, open int
	// dropAfter > 0 closes a session at the MAIL FROM that follows its
	// dropAfter-th accepted mail.
	dropAfter int
	// dropData lists the DATA commands (counted over all sessions from
	// 1) whose mail is read and then dropped with the connection,
	// unanswered and not recorded; datas counts them.
	dropData map[int]bool
	datas    int
	// accepted counts the mails accepted; with countOnly they are not
	// kept.
	accepted  int
	countOnly bool
	// noPipelining leaves PIPELINING out of the EHLO answer; whole holds
	// MAIL FROM until DATA is in (AnswerWholeTransactions); pipelined
	// counts the reads that brought MAIL FROM and RCPT TO together.
	noPipelining, whole bool
	pipelined           int
	// latency delays every answer of the relay's on its way to the client.
	latency time.Duration
	// endOfData is how long the relay takes, once a mail is in, before
	// it answers its final dot (SlowEndOfData).
	endOfData time.Duration
	// readRate caps how many bytes a second the relay reads of each
	// session (ReadSlowly); 0: as fast as they come.
	readRate int
}

// Start starts a relay and stops it when the test ends.
func Start(t testing.TB) *Relay {
	t.Helper()
	r := &Relay{notify: make(chan struct{}, 1), rcptErr: map[string]*smtp.SMTPError{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.Addr = ln.Addr().String()
	r.serve(ln)
	t.Cleanup(func() { r.Down() })
	return r
}

// StartTLS starts a relay that offers STARTTLS with a self-signed
// certificate for relay.test and 127.0.0.1, which no client can verify
// (as Debian's Postfix with its snakeoil certificate).
func StartTLS(t testing.TB) *Relay {
	t.Helper()
	r := &Relay{notify: make(chan struct{}, 1), rcptErr: map[string]*smtp.SMTPError{}, tls: selfSigned(t)}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.Addr = ln.Addr().String()
	r.serve(ln)
	t.Cleanup(func() { r.Down() })
	return r
}

func selfSigned(t testing.TB) *tls.Config {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "relay.test"},
		DNSNames:     []string{"relay.test"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
}

func (r *Relay) serve(ln net.Listener) {
	ln = shapedListener{Listener: ln, r: r}
	srv := smtp.NewServer(backend{r})
	srv.Domain = "relay.test"
	srv.AllowInsecureAuth = true
	srv.TLSConfig = r.tls
	r.mu.Lock()
	srv.EnableSMTPUTF8 = r.utf8
	r.srv, r.ln = srv, ln
	r.mu.Unlock()
	go srv.Serve(ln)
}

// Down stops the relay: connections are refused until Up.
func (r *Relay) Down() {
	r.mu.Lock()
	srv, ln := r.srv, r.ln
	r.srv = nil
	r.mu.Unlock()
	if srv != nil {
		srv.Close()
		// Serve may not have registered the listener yet, and Close
		// then leaves it open.
		ln.Close()
	}
}

// Up restarts a relay stopped with Down, on the same address.
func (r *Relay) Up(t testing.TB) {
	t.Helper()
	var ln net.Listener
	var err error
	for range 50 {
		if ln, err = net.Listen("tcp", r.Addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	r.serve(ln)
}

// OfferSMTPUTF8 restarts the relay offering SMTPUTF8 (RFC 6531) or not;
// it does not until told.
func (r *Relay) OfferSMTPUTF8(t testing.TB, on bool) {
	t.Helper()
	r.Down()
	r.mu.Lock()
	r.utf8 = on
	r.mu.Unlock()
	r.Up(t)
}

// RequireTLS makes the relay refuse MAIL FROM on a session that did not
// start TLS, with Postfix's answer under smtpd_tls_security_level =
// encrypt: "530 5.7.0 Must issue a STARTTLS command first".
func (r *Relay) RequireTLS() {
	r.mu.Lock()
	r.needTLS = true
	r.mu.Unlock()
}

// WithoutPipelining makes the relay leave PIPELINING (RFC 2920) out of
// its EHLO answer, as a relay that does not pipeline would (go-smtp's
// server offers it, and takes pipelined commands).
func (r *Relay) WithoutPipelining() {
	r.mu.Lock()
	r.noPipelining = true
	r.mu.Unlock()
}

// AnswerWholeTransactions makes the relay answer a MAIL FROM only once
// the transaction's commands up to DATA are in: a client that waits for
// each answer before its next command waits in vain (until its
// timeout); one that pipelines gets its mail through. Not over TLS.
func (r *Relay) AnswerWholeTransactions() {
	r.mu.Lock()
	r.whole = true
	r.mu.Unlock()
}

// Latency makes every answer of the relay's reach the client d after it
// was written, as from a relay d away (a round trip of d, since what the
// client sends arrives at once); answers written together stay together
// and in order. For sessions opened after the call.
func (r *Relay) Latency(d time.Duration) {
	r.mu.Lock()
	r.latency = d
	r.mu.Unlock()
}

// Pipelined returns how many times one read of the relay's brought a
// MAIL FROM and a RCPT TO together: a client pipelining. Not over TLS.
func (r *Relay) Pipelined() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.pipelined
}

// SlowEndOfData makes the relay take d, once it has a mail whole, before
// it keeps it and answers the final dot, as a relay scanning the mail
// before it answers (a content filter, a milter) does.
func (r *Relay) SlowEndOfData(d time.Duration) {
	r.mu.Lock()
	r.endOfData = d
	r.mu.Unlock()
}

// ReadSlowly makes the relay read what each session sends at most
// bytesPerSecond, as a relay at the end of a slow link, or sharing it
// with other sessions, takes a large mail in: steadily, but slowly. For
// sessions opened after the call.
func (r *Relay) ReadSlowly(bytesPerSecond int) {
	r.mu.Lock()
	r.readRate = bytesPerSecond
	r.mu.Unlock()
}

// FailData makes every DATA answer err (nil to accept again).
func (r *Relay) FailData(err *smtp.SMTPError) {
	r.mu.Lock()
	r.fail = err
	r.mu.Unlock()
}

// FailRcpt makes RCPT TO addr answer err (nil to accept again).
func (r *Relay) FailRcpt(addr string, err *smtp.SMTPError) {
	r.mu.Lock()
	if err == nil {
		delete(r.rcptErr, addr)
	} else {
		r.rcptErr[addr] = err
	}
	r.mu.Unlock()
}

// Sessions returns how many SMTP sessions (TCP connections) the relay has
// been opened so far.
func (r *Relay) Sessions() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.sessions
}

// Open returns how many SMTP sessions are open now.
func (r *Relay) Open() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.open
}

// DropSessionsAfter makes the relay close every session, without an
// answer, at the MAIL FROM that follows its n-th accepted mail (0: never),
// as a relay capping mails per connection or restarting would.
func (r *Relay) DropSessionsAfter(n int) {
	r.mu.Lock()
	r.dropAfter = n
	r.mu.Unlock()
}

// DropData makes the relay read the mail of the n-th DATA command (counted
// over all sessions from the first, 1-based) and then close the
// connection without answering and without keeping the mail: the sender
// saw its end of the mail go out and never learns the outcome.
func (r *Relay) DropData(n ...int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.dropData == nil {
		r.dropData = map[int]bool{}
	}
	for _, i := range n {
		r.dropData[i] = true
	}
}

// CountOnly makes the relay count the mails it accepts without keeping
// them (Mails returns none of them), for measurements of the sender's
// memory with many mails.
func (r *Relay) CountOnly() {
	r.mu.Lock()
	r.countOnly = true
	r.mu.Unlock()
}

// Accepted returns how many mails the relay accepted so far.
func (r *Relay) Accepted() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.accepted
}

// Mails returns a copy of what was accepted so far.
func (r *Relay) Mails() []Mail {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Mail(nil), r.mails...)
}

// WaitFor waits until at least n mails were accepted or timeout passes, and
// returns what was accepted (and kept: see CountOnly). The timeout is a failure bound, not a speed
// claim.
func (r *Relay) WaitFor(n int, timeout time.Duration) []Mail {
	deadline := time.Now().Add(timeout)
	for {
		got := r.Accepted()
		if got >= n || time.Now().After(deadline) {
			return r.Mails()
		}
		select {
		case <-r.notify:
		case <-time.After(20 * time.Millisecond):
		}
	}
}

type backend struct{ r *Relay }

func (b backend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	b.r.mu.Lock()
	b.r.sessions++
	b.r.open++
	b.r.mu.Unlock()
	return &session{r: b.r, c: c}, nil
}

type session struct {
	r     *Relay
	c     *smtp.Conn
	from  string
	to    []string
	taken int // mails accepted on this session
}

// errDropped answers a command whose connection the relay has closed; the
// client never reads it.
var errDropped = &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 4, 2}, Message: "connection dropped"}

func (s *session) Reset() { s.from, s.to = "", nil }
func (s *session) Logout() error {
	s.r.mu.Lock()
	s.r.open--
	s.r.mu.Unlock()
	return nil
}
func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	s.r.mu.Lock()
	drop := s.r.dropAfter > 0 && s.taken >= s.r.dropAfter
	needTLS := s.r.needTLS
	s.r.mu.Unlock()
	if drop {
		s.c.Conn().Close()
		return errDropped
	}
	if _, overTLS := s.c.TLSConnectionState(); needTLS && !overTLS {
		return &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "Must issue a STARTTLS command first"}
	}
	if s.from != "" {
		// As Postfix: a transaction left open (its every recipient
		// refused) needs an RSET before the next.
		return &smtp.SMTPError{Code: 503, EnhancedCode: smtp.EnhancedCode{5, 5, 1}, Message: "nested MAIL command"}
	}
	s.from = from
	return nil
}

func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.r.mu.Lock()
	err, refused := s.r.rcptErr[to]
	s.r.mu.Unlock()
	if refused {
		return err
	}
	s.to = append(s.to, to)
	return nil
}

func (s *session) Data(rd io.Reader) error {
	b, err := io.ReadAll(rd)
	if err != nil {
		return err
	}
	s.r.mu.Lock()
	slow := s.r.endOfData
	s.r.mu.Unlock()
	time.Sleep(slow)
	s.r.mu.Lock()
	defer s.r.mu.Unlock()
	s.r.datas++
	if s.r.dropData[s.r.datas] {
		s.c.Conn().Close()
		return errDropped
	}
	if s.r.fail != nil {
		return s.r.fail
	}
	if len(s.to) == 0 {
		return errors.New("no recipients")
	}
	_, overTLS := s.c.TLSConnectionState()
	if !s.r.countOnly {
		s.r.mails = append(s.r.mails, Mail{From: s.from, To: append([]string(nil), s.to...), Data: b, TLS: overTLS})
	}
	s.r.accepted++
	s.taken++
	select {
	case s.r.notify <- struct{}{}:
	default:
	}
	return nil
}

// shapedListener gives the relay's server connections that do what the
// relay was told of pipelining (WithoutPipelining,
// AnswerWholeTransactions, Pipelined) and of its distance (Latency).
type shapedListener struct {
	net.Listener
	r *Relay
}

func (l shapedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.r.mu.Lock()
	latency, rate := l.r.latency, l.r.readRate
	l.r.mu.Unlock()
	if latency > 0 {
		c = newLaggedConn(c, latency)
	}
	return &shapedConn{Conn: c, r: l.r, rate: rate}, nil
}

type shapedConn struct {
	net.Conn
	r       *Relay
	pending []byte // read from the client, not yet given to the server
	buf     []byte // for the reads from the client
	rate    int    // bytes a second read at most (0: no cap)
}

func (c *shapedConn) Read(b []byte) (int, error) {
	for !c.ready() {
		if c.buf == nil {
			c.buf = make([]byte, 64<<10)
			if c.rate > 0 {
				c.buf = c.buf[:min(len(c.buf), max(c.rate/50, 1))]
			}
		}
		n, err := c.Conn.Read(c.buf)
		if c.rate > 0 {
			time.Sleep(time.Duration(n) * time.Second / time.Duration(c.rate))
		}
		c.pending = append(c.pending, c.buf[:n]...)
		if upper := bytes.ToUpper(c.buf[:n]); bytes.Contains(upper, []byte("MAIL FROM:")) && bytes.Contains(upper, []byte("RCPT TO:")) {
			c.r.mu.Lock()
			c.r.pipelined++
			c.r.mu.Unlock()
		}
		if err != nil {
			if len(c.pending) == 0 {
				return 0, err
			}
			break
		}
	}
	n := copy(b, c.pending)
	c.pending = c.pending[n:]
	return n, nil
}

// ready reports whether what was read so far may go to the server: a
// MAIL FROM waits for its DATA when the relay answers whole transactions.
func (c *shapedConn) ready() bool {
	if len(c.pending) == 0 {
		return false
	}
	c.r.mu.Lock()
	whole := c.r.whole
	c.r.mu.Unlock()
	i := bytes.Index(bytes.ToUpper(c.pending), []byte("MAIL FROM:"))
	return !whole || i < 0 || bytes.Contains(c.pending[i:], []byte("\r\nDATA\r\n"))
}

func (c *shapedConn) Write(b []byte) (int, error) {
	c.r.mu.Lock()
	strip := c.r.noPipelining
	c.r.mu.Unlock()
	if strip && bytes.Contains(b, []byte("250-PIPELINING\r\n")) {
		if _, err := c.Conn.Write(bytes.Replace(b, []byte("250-PIPELINING\r\n"), nil, 1)); err != nil {
			return 0, err
		}
		return len(b), nil
	}
	return c.Conn.Write(b)
}

// laggedConn hands what is written to it to its connection d later,
// without holding up the writer; Close waits until all of it is out.
type laggedConn struct {
	net.Conn
	d     time.Duration
	queue chan lagged
	done  chan struct{}
	mu    sync.Mutex
	shut  bool
}

type lagged struct {
	b   []byte
	due time.Time
}

func newLaggedConn(c net.Conn, d time.Duration) *laggedConn {
	l := &laggedConn{Conn: c, d: d, queue: make(chan lagged, 1024), done: make(chan struct{})}
	go func() {
		defer close(l.done)
		var err error
		for w := range l.queue {
			time.Sleep(time.Until(w.due))
			if err == nil {
				_, err = c.Write(w.b)
			}
		}
		c.Close()
	}()
	return l
}

func (l *laggedConn) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.shut {
		return 0, net.ErrClosed
	}
	l.queue <- lagged{bytes.Clone(b), time.Now().Add(l.d)}
	return len(b), nil
}

func (l *laggedConn) Close() error {
	l.mu.Lock()
	if !l.shut {
		l.shut = true
		close(l.queue)
	}
	l.mu.Unlock()
	<-l.done
	return nil
}
