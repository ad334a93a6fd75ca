package mailin

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// imapSession is one logged-in connection with the mailbox selected.
type imapSession struct {
	c        *imapclient.Client
	validity uint32
	canIdle  bool
	uidPlus  bool
	// keywords: the mailbox keeps our own keyword, so "seen" mode can
	// mark what it took instead of trusting \Seen (which people set too).
	keywords bool
	timeout  time.Duration
	newMail  chan struct{}
	// retry: the last drain left a message to try again, so IDLE lasts
	// at most poll_every.
	retry    bool
	timedOut atomic.Bool
	p        *Poller
}

func (p *Poller) connect(ctx context.Context) (*imapSession, error) {
	pw, err := readPassword(p.cfg.PasswordFile)
	if err != nil {
		return nil, err
	}
	s := &imapSession{p: p, timeout: orDur(p.Timeout, time.Minute), newMail: make(chan struct{}, 1)}
	opts := &imapclient.Options{
		UnilateralDataHandler: &imapclient.UnilateralDataHandler{Mailbox: func(m *imapclient.UnilateralDataMailbox) {
			if m.NumMessages != nil {
				select {
				case s.newMail <- struct{}{}:
				default:
				}
			}
		}},
	}
	s.c, err = p.dial(ctx, s.timeout, opts)
	if err != nil {
		return nil, fmt.Errorf("connect %s: %w", p.cfg.Addr, err)
	}
	stop := context.AfterFunc(ctx, func() { s.c.Close() })
	defer stop()
	if err := s.do("login", func() error { return s.c.Login(p.cfg.Username, pw).Wait() }); err != nil {
		s.c.Close()
		return nil, err
	}
	if err := s.prepare(); err != nil {
		s.c.Close()
		return nil, err
	}
	p.mu.Lock()
	p.st.Connected, p.st.Idle = true, s.canIdle
	p.mu.Unlock()
	p.log.Info("imap connected", "addr", p.cfg.Addr, "mailbox", p.cfg.Mailbox, "idle", s.canIdle, "uidvalidity", s.validity)
	return s, nil
}

// dial connects to the server as the configured tls says, over a
// silenceConn.
func (p *Poller) dial(ctx context.Context, timeout time.Duration, opts *imapclient.Options) (*imapclient.Client, error) {
	host, _, err := net.SplitHostPort(p.cfg.Addr)
	if err != nil {
		return nil, err
	}
	conn, err := (&net.Dialer{Timeout: timeout}).DialContext(ctx, "tcp", p.cfg.Addr)
	if err != nil {
		return nil, err
	}
	sc := &silenceConn{Conn: conn}
	cfg := p.TLSConfig.Clone()
	if cfg == nil {
		cfg = &tls.Config{}
	}
	if cfg.ServerName == "" {
		cfg.ServerName = host
	}
	switch p.cfg.TLS {
	case "implicit":
		if cfg.NextProtos == nil {
			cfg.NextProtos = []string{"imap"}
		}
		tc := tls.Client(sc, cfg)
		hctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		if err := tc.HandshakeContext(hctx); err != nil {
			conn.Close()
			return nil, err
		}
		return imapclient.New(tc, opts), nil
	case "starttls":
		opts.TLSConfig = cfg
		return imapclient.NewStartTLS(sc, opts) // it closes conn on failure
	default:
		return imapclient.New(sc, opts), nil
	}
}

// silenceConn makes each read deadline the IMAP library sets a bound on
// silence: the time it gives (30s for the rest of an answer, 5 minutes
// for a message's body) counts again from each read. The library sets
// the body's once, before it comes, so a message that took longer than
// 5 minutes to arrive failed however steadily it came, on every try, and
// held up the mail behind it.
type silenceConn struct {
	net.Conn
	mu     sync.Mutex
	window time.Duration // 0: no deadline
}

func (c *silenceConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	c.window = 0
	if !t.IsZero() {
		c.window = max(time.Until(t), time.Millisecond)
	}
	c.mu.Unlock()
	return c.Conn.SetReadDeadline(t)
}

func (c *silenceConn) Read(b []byte) (int, error) {
	c.mu.Lock()
	window := c.window
	c.mu.Unlock()
	if window > 0 {
		if err := c.Conn.SetReadDeadline(time.Now().Add(window)); err != nil {
			return 0, err
		}
	}
	return c.Conn.Read(b)
}

// prepare creates the folders messages go to and selects the mailbox.
func (s *imapSession) prepare() error {
	cfg := s.p.cfg
	caps := s.c.Caps()
	s.canIdle = !s.p.noIdle && (caps.Has(imap.CapIdle) || caps.Has(imap.CapIMAP4rev2))
	s.uidPlus = caps.Has(imap.CapUIDPlus) || caps.Has(imap.CapIMAP4rev2)
	for _, folder := range []string{cfg.MoveTo, cfg.FailedFolder} {
		if folder == "" || (folder == cfg.MoveTo && cfg.After != "move") {
			continue
		}
		if err := s.ensureFolder(folder); err != nil {
			return err
		}
	}
	var sel *imap.SelectData
	err := s.do("select "+cfg.Mailbox, func() (err error) {
		sel, err = s.c.Select(cfg.Mailbox, nil).Wait()
		return err
	})
	if err != nil {
		return err
	}
	s.validity = sel.UIDValidity
	for _, f := range sel.PermanentFlags {
		if f == imap.FlagWildcard || f == takenFlag {
			s.keywords = true
		}
	}
	return nil
}

// takenFlag marks, in "seen" mode, a message whose ticket change is
// committed. \Seen alone cannot say so: a person reading the shared mailbox
// sets it too, and a message that failed to commit must still be retried.
const takenFlag imap.Flag = "$TicketgateTaken"

func (s *imapSession) ensureFolder(name string) error {
	return s.do("create "+name, func() error {
		list, err := s.c.List("", name, nil).Collect()
		if err != nil || len(list) > 0 {
			return err
		}
		err = s.c.Create(name, nil).Wait()
		var ierr *imap.Error
		if errors.As(err, &ierr) && ierr.Code == imap.ResponseCodeAlreadyExists {
			return nil
		}
		return err
	})
}

// do runs one exchange with the server, closing the connection when it
// takes longer than the timeout: the IMAP library waits for answers
// without a deadline.
func (s *imapSession) do(what string, f func() error) error {
	t := time.AfterFunc(s.timeout, func() { s.timedOut.Store(true); s.c.Close() })
	err := f()
	t.Stop()
	if s.timedOut.Load() {
		return fmt.Errorf("%s: no answer from the server within %v", what, s.timeout)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

func (s *imapSession) logout() {
	_ = s.do("logout", func() error { return s.c.Logout().Wait() })
}

func (s *imapSession) close() {
	s.c.Close()
	s.p.mu.Lock()
	s.p.st.Connected = false
	s.p.mu.Unlock()
}

// wait returns when there may be new mail: IDLE until the server reports
// some (or the watchdog or restart timer fires, the latter after at most
// poll_every when a message waits to be tried again), or sleep poll_every.
func (p *Poller) wait(ctx context.Context, s *imapSession) error {
	if !s.canIdle {
		select {
		case <-ctx.Done():
		case <-time.After(p.pollEvery):
		}
		return nil
	}
	var idle *imapclient.IdleCommand
	if err := s.do("idle", func() (err error) { idle, err = s.c.Idle(); return err }); err != nil {
		return err
	}
	restartIn := orDur(p.IdleRestart, IdleRestart)
	if s.retry {
		restartIn = min(restartIn, p.pollEvery)
	}
	restart := time.NewTimer(restartIn)
	defer restart.Stop()
	watchdog := time.NewTimer(orDur(p.Watchdog, IdleWatchdog))
	defer watchdog.Stop()
	noop := false
	select {
	case <-ctx.Done():
	case <-s.newMail:
	case <-restart.C:
	case <-watchdog.C:
		noop = true
	case <-s.c.Closed():
		return errors.New("idle: connection closed by the server")
	}
	if err := s.do("end idle", func() error {
		if err := idle.Close(); err != nil {
			return err
		}
		return idle.Wait()
	}); err != nil {
		return err
	}
	if noop {
		return s.do("noop", func() error { return s.c.Noop().Wait() })
	}
	return nil
}
