package mailin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/emersion/go-smtp"
	"golang.org/x/net/netutil"
)

// Backend is the go-smtp backend for the SMTP and LMTP listeners.
type Backend struct {
	Handler Handler
	Log     *slog.Logger
	lmtp    bool
	maxLine int
}

// NewSession implements smtp.Backend.
func (b *Backend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	return &session{b: b, remote: c.Conn().RemoteAddr().String()}, nil
}

type session struct {
	b        *Backend
	remote   string
	mailFrom string
	rcpts    []string
}

func (s *session) Reset()        { s.mailFrom, s.rcpts = "", nil }
func (s *session) Logout() error { return nil }

func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	s.Reset()
	s.mailFrom = from
	return nil
}

func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if !s.b.Handler.Accepts(to) {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1},
			Message: fmt.Sprintf("<%s>: no such mailbox here; write to one of the support addresses", to)}
	}
	s.rcpts = append(s.rcpts, to)
	return nil
}

func (s *session) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return s.readError(err)
	}
	return s.deliver(raw)
}

// readError answers a message that could not be read in full.
func (s *session) readError(err error) error {
	if errors.Is(err, smtp.ErrTooLongLine) {
		return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0},
			Message: fmt.Sprintf("message refused: a line is longer than %d characters", s.b.maxLine)}
	}
	return err // go-smtp's ErrDataTooLarge answers 552 5.3.4
}

// LMTPData answers once per recipient. The message is stored once (one
// ticket for all recipients), so every recipient gets the same answer.
func (s *session) LMTPData(r io.Reader, status smtp.StatusCollector) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return s.readError(err)
	}
	err = s.deliver(raw)
	for _, rc := range s.rcpts {
		status.SetStatus(rc, err)
	}
	return nil
}

func (s *session) deliver(raw []byte) error {
	source := "smtp"
	if s.b.lmtp {
		source = "lmtp"
	}
	d := &Delivery{MailFrom: s.mailFrom, Rcpts: s.rcpts, Raw: raw, Source: source, Remote: s.remote}
	_, err := s.b.Handler.Deliver(context.Background(), d)
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
	srv  *smtp.Server
	ln   net.Listener
	gate *gate
}

// Listen starts an SMTP (or, with lmtp, LMTP) listener on addr.
func Listen(addr string, lmtp bool, cfg Config, h Handler, log *slog.Logger) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", addr, err)
	}
	if cfg.MaxConnections > 0 {
		ln = netutil.LimitListener(ln, cfg.MaxConnections)
	}
	be := &Backend{Handler: h, Log: log, lmtp: lmtp, maxLine: cfg.MaxLineLength}
	if be.maxLine <= 0 {
		be.maxLine = DefaultMaxLineLength
	}
	g := newGate(be)
	srv := smtp.NewServer(g)
	srv.LMTP = lmtp
	srv.Domain = cfg.Hostname
	srv.MaxMessageBytes = cfg.MaxMessageBytes
	srv.MaxRecipients = cfg.MaxRecipients
	srv.ReadTimeout = duration(cfg.ReadTimeout, 5*time.Minute)
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
		if err := srv.Serve(ln); err != nil && !errors.Is(err, smtp.ErrServerClosed) {
			log.Error("listener stopped", "addr", addr, "err", err)
		}
	}()
	return &Server{srv: srv, ln: ln, gate: g}, nil
}

// Addr is the address the listener is bound to.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Shutdown stops accepting connections, answers 421 to new transactions
// on open ones, and waits until ctx ends for open sessions (a DATA in
// progress included) to end.
func (s *Server) Shutdown(ctx context.Context) error {
	s.gate.closing.Store(true)
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
