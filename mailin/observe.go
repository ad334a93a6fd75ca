package mailin

import (
	"errors"
	"io"
	"sync/atomic"
	"time"

	"github.com/emersion/go-smtp"
)

// Observer hears what the listeners and pollers do, for metrics. A Handler
// that also implements Observer is told; mailin itself keeps no counts.
// The methods are called from many goroutines and must return at once.
type Observer interface {
	// Session is called when an SMTP or LMTP connection opens (proto
	// "smtp" or "lmtp").
	Session(proto string)
	// Reply is called with the code of each answer to MAIL, RCPT and DATA
	// (stage "mail", "rcpt", "data"); under LMTP once per recipient.
	Reply(proto, stage string, code int)
	// Ingest is called with the time from the end of a message's data to
	// its answer.
	Ingest(proto string, d time.Duration)
	// Poll is called after each pass over an IMAP mailbox, and with the
	// error of a pass or session that failed.
	Poll(mailbox string, err error)
}

// errShuttingDown answers a new transaction once the listener is shutting
// down; the sender tries again later, by then with another process.
var errShuttingDown = &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 3, 2},
	Message: "shutting down, please try again later"}

// watch is the backend the server runs: it refuses new transactions once
// Shutdown began, and tells the Handler's Observer what happened.
type watch struct {
	be      *Backend
	obs     Observer // nil: nobody listens
	proto   string
	closing atomic.Bool
}

func newWatch(be *Backend) *watch {
	g := &watch{be: be, proto: "smtp"}
	if be.lmtp {
		g.proto = "lmtp"
	}
	g.obs, _ = be.Handler.(Observer)
	return g
}

// NewSession implements smtp.Backend.
func (g *watch) NewSession(c *smtp.Conn) (smtp.Session, error) {
	s, err := g.be.NewSession(c)
	if err != nil {
		return nil, err
	}
	if g.obs != nil {
		g.obs.Session(g.proto)
	}
	return &watchedSession{session: s.(*session), g: g}, nil
}

func (g *watch) reply(stage string, err error, fallback int) {
	if g.obs == nil {
		return
	}
	code := 250
	var se *smtp.SMTPError
	switch {
	case errors.As(err, &se):
		code = se.Code
	case err != nil:
		code = fallback // what go-smtp answers to a plain error
	}
	g.obs.Reply(g.proto, stage, code)
}

// watchedSession is a session seen through its watch.
type watchedSession struct {
	*session
	g *watch
}

func (s *watchedSession) Mail(from string, opts *smtp.MailOptions) error {
	s.session.g.handled()
	err := error(errShuttingDown)
	if !s.g.closing.Load() {
		err = s.session.Mail(from, opts)
	}
	s.g.reply("mail", err, 451)
	return err
}

func (s *watchedSession) Rcpt(to string, opts *smtp.RcptOptions) error {
	s.session.g.handled()
	err := s.session.Rcpt(to, opts)
	s.g.reply("rcpt", err, 451)
	return err
}

func (s *watchedSession) Data(r io.Reader) error {
	er := &endReader{r: r}
	err := s.session.Data(er)
	s.g.answered(er)
	s.g.reply("data", err, 554)
	return err
}

func (s *watchedSession) LMTPData(r io.Reader, status smtp.StatusCollector) error {
	// Counted now: a message sent with BDAT is read on a goroutine of
	// its own, and when a chunk fails go-smtp answers it and resets the
	// session (its recipients) while this reading is still ending.
	rcpts := len(s.rcpts)
	er := &endReader{r: r}
	err := s.session.LMTPData(er, statusSeen{status, s.g})
	s.g.answered(er)
	if err != nil {
		// go-smtp gives every recipient this answer itself, past
		// statusSeen.
		for range rcpts {
			s.g.reply("data", err, 554)
		}
	}
	return err
}

// answered reports the ingest latency of a message read to its end.
func (g *watch) answered(er *endReader) {
	if g.obs != nil && !er.end.IsZero() {
		g.obs.Ingest(g.proto, time.Since(er.end))
	}
}

// statusSeen reports each LMTP recipient's answer.
type statusSeen struct {
	smtp.StatusCollector
	g *watch
}

func (s statusSeen) SetStatus(rcpt string, err error) {
	s.g.reply("data", err, 554)
	s.StatusCollector.SetStatus(rcpt, err)
}

// endReader notes when the message's data ended.
type endReader struct {
	r   io.Reader
	end time.Time
}

func (e *endReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err == io.EOF && e.end.IsZero() {
		e.end = time.Now()
	}
	return n, err
}

// observe tells the Handler's Observer of a pass over the mailbox.
func (p *Poller) observe(err error) {
	if o, ok := p.in.Handler.(Observer); ok {
		o.Poll(p.cfg.Name, err)
	}
}
