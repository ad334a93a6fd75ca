package mailin

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/emersion/go-smtp"
)

// Backend is the go-smtp backend for the SMTP and LMTP listeners.
type Backend struct {
	Handler  Handler
	Log      *slog.Logger
	lmtp     bool
	maxLine  int
	maxBytes int64
	maxRcpts int // 0: no cap
}

// NewSession implements smtp.Backend.
func (b *Backend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	g, _ := c.Conn().(*guardConn) // nil when not served by Listen
	return &session{b: b, g: g, remote: c.Conn().RemoteAddr().String()}, nil
}

type session struct {
	b        *Backend
	g        *guardConn
	remote   string
	mailFrom string
	inTx     bool  // MAIL FROM was taken: a transaction is open
	utf8     bool  // the client said SMTPUTF8 in MAIL FROM
	size     int64 // the size MAIL FROM declared, 0 when none
	rcpts    []string
	// h is the handler of the open transaction (Pinner), nil outside one.
	h Handler
}

// Reset is called by go-smtp after a message, on RSET and on a new EHLO.
func (s *session) Reset() {
	s.clear()
	s.g.idleAgain()
}

func (s *session) clear() {
	s.mailFrom, s.inTx, s.utf8, s.size, s.rcpts, s.h = "", false, false, 0, nil, nil
}
func (s *session) Logout() error { return nil }

// Mail takes the sender. A MAIL FROM within an open transaction is
// refused, as RFC 5321 (4.1.1.2) and Postfix do, and changes nothing:
// go-smtp would keep the recipients it answers for at DATA, and the
// message must go to those, from the sender they were given with.
func (s *session) Mail(from string, opts *smtp.MailOptions) error {
	if s.inTx {
		return &smtp.SMTPError{Code: 503, EnhancedCode: smtp.EnhancedCode{5, 5, 1}, Message: "nested MAIL command"}
	}
	utf8 := opts != nil && opts.UTF8
	if err := checkAddress(from, utf8, smtp.EnhancedCode{5, 1, 7}, "sender"); err != nil {
		return err
	}
	s.mailFrom, s.inTx, s.utf8, s.size = from, true, utf8, 0
	s.h = s.b.Handler
	if p, ok := s.h.(Pinner); ok {
		s.h = p.Pin()
	}
	if opts != nil {
		s.size = opts.Size
	}
	s.g.mailStarted()
	return nil
}

// Rcpt takes a recipient. The cap on recipients is applied here, with
// go-smtp's answer, not by go-smtp: its own refusals reach no session,
// and the refusal metrics would not hear of them.
func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if s.b.maxRcpts > 0 && len(s.rcpts) >= s.b.maxRcpts {
		return &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 5, 3},
			Message: fmt.Sprintf("Maximum limit of %v recipients reached", s.b.maxRcpts)}
	}
	if err := checkAddress(to, s.utf8, smtp.EnhancedCode{5, 1, 3}, "recipient"); err != nil {
		return err
	}
	if !s.handler().Accepts(to) {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1},
			Message: fmt.Sprintf("<%s>: no such mailbox here; write to one of the support addresses", to)}
	}
	s.rcpts = append(s.rcpts, to)
	return nil
}

// checkAddress refuses an envelope address with a control character
// (NUL included) or invalid UTF-8, and a non-ASCII address from a client
// that did not ask for SMTPUTF8 (RFC 6531). The address is not echoed:
// it may hold bytes unfit for the answer.
func checkAddress(addr string, smtputf8 bool, code smtp.EnhancedCode, role string) error {
	if !utf8.ValidString(addr) || strings.ContainsFunc(addr, unicode.IsControl) {
		return &smtp.SMTPError{Code: 501, EnhancedCode: code,
			Message: "the " + role + " address holds a control character or invalid UTF-8"}
	}
	if !smtputf8 && strings.ContainsFunc(addr, func(r rune) bool { return r >= utf8.RuneSelf }) {
		return &smtp.SMTPError{Code: 553, EnhancedCode: smtp.EnhancedCode{5, 6, 7},
			Message: "the " + role + " address is not ASCII: send it with MAIL FROM's SMTPUTF8 parameter"}
	}
	return nil
}

func (s *session) Data(r io.Reader) error {
	s.g.dataStarted()
	arrived := expect(s.handler())
	defer arrived()
	raw, err := s.read(r)
	if err != nil {
		return s.readError(err)
	}
	return s.deliver(raw, arrived)
}

// handler is the handler of the open transaction: the one in force at
// its MAIL FROM.
func (s *session) handler() Handler {
	if s.h != nil {
		return s.h
	}
	return s.b.Handler
}

// expect announces a message whose transfer begins to a Handler that
// wants to know (Expecter); the returned function ends the announcement.
func expect(h Handler) (arrived func()) {
	if e, ok := h.(Expecter); ok {
		return e.Expect()
	}
	return func() {}
}

// read reads the message: into one buffer of the size MAIL FROM's SIZE
// declared (Postfix declares it), at most 1 MiB ahead of the bytes since
// SIZE is only the client's word; else as io.ReadAll does.
func (s *session) read(r io.Reader) ([]byte, error) {
	if s.size <= 0 {
		return io.ReadAll(r)
	}
	b := bytes.NewBuffer(make([]byte, 0, min(s.size+bytes.MinRead, 1<<20)))
	_, err := b.ReadFrom(r)
	return b.Bytes(), err
}

// readError answers a message that could not be read in full. Only a
// message that can never be taken is refused for good (5xx); a timeout or
// a broken transfer asks the sender to try again.
func (s *session) readError(err error) error {
	var se *smtp.SMTPError
	var te *timeoutError
	switch {
	case errors.Is(err, smtp.ErrTooLongLine):
		// The client is still sending: take the rest so the answer
		// reaches it.
		s.g.drainData(s.b.maxBytes)
		s.g.hangUpAfterAnswer()
		return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0},
			Message: fmt.Sprintf("message refused: a line is longer than %d characters", s.b.maxLine)}
	case errors.As(err, &se):
		return se // go-smtp's ErrDataTooLarge answers 552 5.3.4
	case errors.As(err, &te):
		s.b.Log.Info("message transfer timed out", "remote", s.remote, "reason", te.reason)
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 4, 2},
			Message: te.reason + ", please try again"}
	}
	s.b.Log.Info("message transfer broken", "remote", s.remote, "err", err)
	return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 4, 0},
		Message: "message not received in full, please try again"}
}

// LMTPData answers once per recipient. The message is stored once (one
// ticket for all recipients), so every recipient gets the same answer.
func (s *session) LMTPData(r io.Reader, status smtp.StatusCollector) error {
	s.g.dataStarted()
	arrived := expect(s.handler())
	defer arrived()
	raw, err := s.read(r)
	if err != nil {
		return s.readError(err)
	}
	err = s.deliver(raw, arrived)
	// go-smtp writes each recipient's answer as its status is set: the
	// announcement ends before the first, as Data's ends before its one.
	arrived()
	for _, rc := range s.rcpts {
		status.SetStatus(rc, err)
	}
	return nil
}

func (s *session) deliver(raw []byte, arrived func()) error {
	source := "smtp"
	if s.b.lmtp {
		source = "lmtp"
	}
	d := &Delivery{MailFrom: s.mailFrom, Rcpts: s.rcpts, Raw: raw, Source: source, Remote: s.remote, Arrived: arrived}
	_, err := s.handler().Deliver(context.Background(), d)
	return smtpError(s.b.Log, err, s.remote)
}

// smtpError turns a pipeline error into the answer the sender can act on.
func smtpError(log *slog.Logger, err error, remote string) error {
	var se *smtp.SMTPError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &se):
		return se
	case errors.Is(err, ErrNotMail):
		return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0}, Message: "message refused: " + err.Error()}
	case errors.Is(err, ErrRateLimited):
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 7, 1}, Message: "too much mail from you right now, please try again later"}
	case errors.Is(err, ErrUnknownRecipient):
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such mailbox here"}
	}
	log.Error("delivery failed, asking sender to retry", "err", err, "remote", remote)
	return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "temporary local problem, please try again later"}
}

// DefaultMaxLineLength is the line length limit when Config sets none. RFC
// 5321 allows 1000, but real mail (HTML on one line, long headers from
// some mailers) has much longer lines.
const DefaultMaxLineLength = 10000

// Server is a running SMTP or LMTP listener.
type Server struct {
	srv   *smtp.Server
	gate  *gate
	watch *watch
}

// Listen starts an SMTP (or, with lmtp, LMTP) listener on addr with the
// limits of cfg: connections overall and per client address (answered
// 421 4.7.0 at once past a cap), time to MAIL FROM, idle commands, idle
// time per read and time per message.
func Listen(addr string, lmtp bool, cfg Config, h Handler, log *slog.Logger) (*Server, error) {
	gt, err := newGate(cfg, log)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", addr, err)
	}
	gt.Listener = ln
	be := &Backend{Handler: h, Log: log, lmtp: lmtp, maxLine: cfg.MaxLineLength, maxBytes: cfg.MaxMessageBytes,
		maxRcpts: cfg.MaxRecipients}
	if be.maxLine <= 0 {
		be.maxLine = DefaultMaxLineLength
	}
	w := newWatch(be)
	if w.obs != nil {
		// go-smtp's own refusals reach no session: the connection
		// tells of them.
		guard := gt.guard
		gt.guard = func(c net.Conn) *guardConn {
			g := guard(c)
			g.unseen = func(stage string, code int) { w.obs.Reply(w.proto, stage, code) }
			return g
		}
	}
	srv := smtp.NewServer(w)
	srv.LMTP = lmtp
	srv.Domain = cfg.Hostname
	srv.MaxMessageBytes = cfg.MaxMessageBytes
	srv.MaxRecipients = 0 // the session's: see Rcpt
	srv.ReadTimeout = 0   // guardConn sets a deadline per read
	srv.WriteTimeout = duration(cfg.WriteTimeout, time.Minute)
	srv.MaxLineLength = be.maxLine
	srv.EnableSMTPUTF8 = true
	srv.ErrorLog = slogAdapter{log}
	go func() {
		defer func() {
			if r := recover(); r != nil {
				log.Error("listener panic", "panic", r)
			}
		}()
		if err := srv.Serve(gt); err != nil && !errors.Is(err, smtp.ErrServerClosed) {
			log.Error("listener stopped", "addr", addr, "err", err)
		}
	}()
	return &Server{srv: srv, gate: gt, watch: w}, nil
}

// newGate makes the accepting side of a listener from cfg, its defaults
// filled in.
func newGate(cfg Config, log *slog.Logger) (*gate, error) {
	relays := cfg.TrustedRelays
	if relays == nil {
		relays = DefaultTrustedRelays
	}
	trusted, err := ParseTrustedRelays(relays)
	if err != nil {
		return nil, fmt.Errorf("inbound.trusted_relays: %w", err)
	}
	perIP := cfg.MaxConnectionsPerIP
	if perIP <= 0 {
		perIP = DefaultMaxConnectionsPerIP
	}
	maxJunk := cfg.MaxNoops
	if maxJunk <= 0 {
		maxJunk = DefaultMaxNoops
	}
	idle := duration(cfg.ReadTimeout, DefaultReadTimeout)
	mailFrom := duration(cfg.MailFromTimeout, DefaultMailFromTimeout)
	maxData := duration(cfg.MaxDataDuration, DefaultMaxDataDuration)
	return &gate{hostname: cfg.Hostname, max: cfg.MaxConnections, perIP: perIP, trusted: trusted, log: log,
		byIP: map[netip.Addr]int{},
		guard: func(c net.Conn) *guardConn {
			return &guardConn{Conn: c, hostname: cfg.Hostname, idle: idle, mailFrom: mailFrom, maxData: maxData,
				maxJunk: maxJunk, phase: phaseIdle, until: time.Now().Add(mailFrom)}
		}}, nil
}

// Addr is the address the listener is bound to.
func (s *Server) Addr() string { return s.gate.Addr().String() }

// Load reports the open connections and the overall cap (0: none), for
// a health check that wants to know whether the listener is full.
func (s *Server) Load() (open, max int) { return s.gate.load() }

// Shutdown stops accepting connections, answers 421 to new transactions
// on open ones, and waits until ctx ends for open sessions (a DATA in
// progress included) to end.
func (s *Server) Shutdown(ctx context.Context) error {
	s.watch.closing.Store(true)
	return s.srv.Shutdown(ctx)
}

// Close stops the listener and drops open sessions.
func (s *Server) Close() error { return s.srv.Close() }

func duration(s string, def time.Duration) time.Duration {
	if d, err := time.ParseDuration(strings.TrimSpace(s)); err == nil && d > 0 {
		return d
	}
	return def
}

type slogAdapter struct{ l *slog.Logger }

func (a slogAdapter) Printf(format string, v ...any) { a.l.Warn(fmt.Sprintf(format, v...)) }
func (a slogAdapter) Println(v ...any)               { a.l.Warn(strings.TrimSpace(fmt.Sprintln(v...))) }
