// Package relaytest is a real SMTP server for tests: it records every
// message it accepts and can be told to refuse or to be down.
package relaytest

import (
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

// Mails returns a copy of what was accepted so far.
func (r *Relay) Mails() []Mail {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Mail(nil), r.mails...)
}

// WaitFor waits until at least n mails were accepted or timeout passes, and
// returns what was accepted. The timeout is a failure bound, not a speed
// claim.
func (r *Relay) WaitFor(n int, timeout time.Duration) []Mail {
	deadline := time.Now().Add(timeout)
	for {
		if m := r.Mails(); len(m) >= n || time.Now().After(deadline) {
			return m
		}
		select {
		case <-r.notify:
		case <-time.After(20 * time.Millisecond):
		}
	}
}

type backend struct{ r *Relay }

func (b backend) NewSession(c *smtp.Conn) (smtp.Session, error) { return &session{r: b.r, c: c}, nil }

type session struct {
	r    *Relay
	c    *smtp.Conn
	from string
	to   []string
}

func (s *session) Reset()        { s.from, s.to = "", nil }
func (s *session) Logout() error { return nil }
func (s *session) Mail(from string, _ *smtp.MailOptions) error {
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
	defer s.r.mu.Unlock()
	if s.r.fail != nil {
		return s.r.fail
	}
	if len(s.to) == 0 {
		return errors.New("no recipients")
	}
	_, overTLS := s.c.TLSConnectionState()
	s.r.mails = append(s.r.mails, Mail{From: s.from, To: append([]string(nil), s.to...), Data: b, TLS: overTLS})
	select {
	case s.r.notify <- struct{}{}:
	default:
	}
	return nil
}
