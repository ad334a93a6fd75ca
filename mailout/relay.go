package mailout

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/emersion/go-smtp"
)

// Config is the [outbound] section of the configuration file.
type Config struct {
	Relay    string `toml:"relay"`     // smarthost host:port
	TLS      string `toml:"tls"`       // auto | none | starttls | implicit (see EffectiveTLS)
	FromName string `toml:"from_name"` // display name on mail the gateway sends
	// RetryBase is the first retry delay; each later one doubles, up to 6h.
	RetryBase string `toml:"retry_base"`
	// GiveUpAfter is how long a message may stay in the outbox before it is
	// failed for good.
	GiveUpAfter string `toml:"give_up_after"`
	// TLSInsecure skips certificate checks on the relay (for a relay on
	// the same host with a self-signed certificate).
	TLSInsecure bool `toml:"tls_insecure_skip_verify"`
	// Templates is a directory whose .txt files override the built-in
	// mail templates; "" uses the built-in ones.
	Templates string `toml:"templates"`
	// MaxRecipientsPerMail caps the envelope recipients of one outgoing
	// mail; a reply to more goes out as several (0: 50).
	MaxRecipientsPerMail int `toml:"max_recipients_per_mail"`
	// RelaySessions caps the SMTP sessions the outbox keeps open to the
	// relay, each delivering mail after mail, and so the deliveries
	// running at once (0: DefaultRelaySessions). Unused by maildir:PATH.
	RelaySessions int `toml:"relay_sessions"`
	// VERPKeyFile holds the key signing bounce (VERP) return paths;
	// generated (0600) when missing. "" = verp.key next to the database.
	// Gateways sharing one database must share this file.
	VERPKeyFile string `toml:"verp_key_file"`
}

// Relay delivers mail to the smarthost. It keeps a few SMTP sessions
// open and sends mail after mail over each (see relaypool.go): a session
// that fails in any way is closed and the next mail gets a new one, and a
// session left idle for IdleTimeout is closed. A Relay is safe for
// concurrent use; its zero pool is ready.
type Relay struct {
	Addr     string
	TLS      string
	Hostname string // our EHLO name
	Insecure bool
	Timeout  time.Duration
	// Sessions caps the SMTP sessions open to the relay at once (0: 4);
	// a Send finding them all busy waits for one.
	Sessions int
	// IdleTimeout closes a session no mail used for this long (0: 10s),
	// well before a relay's own idle timeout (Postfix: 300s).
	IdleTimeout time.Duration

	pool sessionPool
}

// RcptError is a recipient the relay refused, for good (5xx) or for now
// (4xx).
type RcptError struct {
	Rcpt string
	Err  error
}

// Send offers raw from envelope sender from to the recipients in to, and
// tells handedOver as Sender promises. It returns the recipients the relay
// refused (the mail went to the others) or an error for the whole
// message; Permanent tells the kinds apart. A refusal of one recipient
// (a 452 for too many recipients or a full mailbox, a 550 for an unknown
// user) is the recipient's, not the message's, and the session goes on
// with the next mail; a 421 closes the session and fails the whole
// message for now.
//
// The mail goes over an open session when there is one. When that
// session turns out to be closed by the relay before it took anything of
// this mail (at RSET or MAIL FROM), Send retries once on a new session:
// nothing was handed over, so nothing can go twice.
func (r *Relay) Send(from string, to []string, raw []byte, handedOver func(refused []RcptError)) ([]RcptError, error) {
	r.pool.acquire(r.sessions())
	defer r.pool.release()
	s, reused, err := r.session()
	if err != nil {
		return nil, r.aborted(err)
	}
	defer func() {
		if s != nil {
			r.pool.unuse(s.conn)
		}
	}()
	refused, err, early := s.send(from, to, raw, handedOver)
	if err != nil && reused && (early && stale(err) || err == errNoSMTPUTF8) && !r.pool.isAborted() {
		// A session kept open between mails may have been closed by
		// the relay meanwhile (its idle timeout, a restart), and what
		// it offered may have changed since its EHLO: a mail is not
		// failed for good on an old session's word.
		s.close()
		r.pool.unuse(s.conn)
		if s, err = r.dial(); err != nil {
			return nil, r.aborted(err)
		}
		refused, err, _ = s.send(from, to, raw, handedOver)
	}
	if err != nil && r.pool.isAborted() {
		s.close()
		return nil, r.aborted(err)
	}
	if err != nil && err != errNoSMTPUTF8 {
		s.close()
		if early && needsTLS(err) {
			// The relay takes mail only over TLS: no mail can go until
			// [outbound] tls changes, and the mail waits as for any
			// other TLS failure.
			return nil, &TLSError{Addr: r.Addr, Mode: EffectiveTLS(r.Addr, r.TLS), Err: err}
		}
		return nil, err
	}
	r.pool.put(s, r.idleTimeout())
	return refused, err
}

// relaySession is one SMTP session with the relay, used by one Send at a
// time.
type relaySession struct {
	c    *smtp.Client
	conn *relayConn
	// pipe runs the transactions when the relay offers PIPELINING
	// (relaypipe.go); nil: go-smtp's client runs them.
	pipe *pipe
	// dirty says the last mail transaction ended without DATA (every
	// recipient refused) and needs an RSET before the next.
	dirty bool
	idle  time.Time // when it was put back in the pool
}

// send runs one mail transaction on s. early reports that err came before
// the relay was offered anything of this mail (RSET, MAIL FROM).
func (s *relaySession) send(from string, to []string, raw []byte, handedOver func(refused []RcptError)) (refused []RcptError, err error, early bool) {
	c := s.c
	if s.dirty && s.pipe == nil {
		// go-smtp's Reset says EHLO again before the next command; the
		// pipelined transaction sends its own RSET with its MAIL FROM.
		if err := c.Reset(); err != nil {
			return nil, fmt.Errorf("RSET: %w", err), true
		}
		s.dirty = false
	}
	var opts *smtp.MailOptions
	if !isASCII(from) || slices.ContainsFunc(to, func(a string) bool { return !isASCII(a) }) {
		// RFC 6531: a non-ASCII address travels only to a relay that
		// says SMTPUTF8; one that does not never will.
		if ok, _ := c.Extension("SMTPUTF8"); !ok {
			return nil, errNoSMTPUTF8, false
		}
		opts = &smtp.MailOptions{UTF8: true}
	}
	if s.pipe != nil {
		return s.pipelined(from, to, opts != nil, raw, handedOver)
	}
	if err := c.Mail(from, opts); err != nil {
		return nil, fmt.Errorf("MAIL FROM: %w", err), true
	}
	refused, err = offer(c, to)
	if err != nil {
		return nil, err, false
	}
	if len(refused) == len(to) {
		s.dirty = true
		return refused, nil, false
	}
	w, err := c.Data()
	if err != nil {
		return nil, fmt.Errorf("DATA: %w", err), false
	}
	// go-smtp clears the deadline once DATA is answered and sets one only
	// for the answer to the final dot (SubmissionTimeout: endOfData):
	// writing the mail to a relay that stopped reading would wait
	// forever. Each write has the command timeout, as on the pipelined
	// path (see relayConn.writeFor).
	s.conn.writeFor = c.CommandTimeout
	defer func() { s.conn.writeFor = 0 }()
	if _, err := w.Write(raw); err != nil {
		return nil, fmt.Errorf("DATA: %w", err), false
	}
	if handedOver != nil {
		// Close writes the rest of the mail and the final dot, then
		// reads the answer: the first read is the moment to tell.
		s.conn.beforeRead = func() { handedOver(refused) }
	}
	err = w.Close()
	s.conn.beforeRead = nil
	if err != nil {
		return nil, fmt.Errorf("end of DATA: %w", err), false
	}
	return refused, nil, false
}

// stale reports whether err is what a session closed by the relay gives:
// a broken connection, or a 421 (the relay closing the session).
func stale(err error) bool {
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		return se.Code == 421
	}
	return true
}

func (s *relaySession) close() { s.c.Close() }

// relayConn is the connection to the relay under TLS, if any. It calls
// beforeRead once, before the next read, so that Send can act between
// writing the end of a mail and reading the relay's answer to it.
type relayConn struct {
	net.Conn
	beforeRead func()
	// writeFor, when set, bounds each write (a mail is written while it
	// is set): a relay that stops reading fails the mail within it, and
	// one that takes a large mail slowly but steadily, over a slow link,
	// gets it whole however long it takes.
	writeFor time.Duration
}

func (c *relayConn) Write(p []byte) (int, error) {
	if c.writeFor > 0 {
		c.Conn.SetWriteDeadline(time.Now().Add(c.writeFor))
	}
	return c.Conn.Write(p)
}

func (c *relayConn) Read(p []byte) (int, error) {
	if f := c.beforeRead; f != nil {
		c.beforeRead = nil
		f()
	}
	return c.Conn.Read(p)
}

// offer sends RCPT TO for each recipient and returns those refused.
func offer(c *smtp.Client, to []string) ([]RcptError, error) {
	var refused []RcptError
	for _, rcpt := range to {
		re, err := rcptAnswer(rcpt, c.Rcpt(rcpt, nil))
		if err != nil {
			return nil, err
		}
		if re != nil {
			refused = append(refused, *re)
		}
	}
	return refused, nil
}

// rcptAnswer sorts the relay's answer to RCPT TO:<rcpt>, err: taken (both
// nil), refused for this recipient alone (an SMTP reply other than 421),
// or an error for the whole mail (a 421, the session closing, or a broken
// connection).
func rcptAnswer(rcpt string, err error) (*RcptError, error) {
	var se *smtp.SMTPError
	switch {
	case err == nil:
		return nil, nil
	case errors.As(err, &se) && se.Code != 421:
		return &RcptError{Rcpt: rcpt, Err: err}, nil
	}
	return nil, fmt.Errorf("RCPT TO <%s>: %w", rcpt, err)
}

// quit ends a session whose outcome is known; its errors change nothing.
func quit(c *smtp.Client) {
	defer func() {
		if r := recover(); r != nil {
			slog.Error("relay QUIT panic", "panic", r)
		}
	}()
	_ = c.Quit()
	c.Close()
}

func (r *Relay) dial() (s *relaySession, err error) {
	timeout := r.Timeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	host, _, _ := net.SplitHostPort(r.Addr)
	tc := &tls.Config{ServerName: host, InsecureSkipVerify: r.Insecure}
	raw, err := net.DialTimeout("tcp", r.Addr, timeout)
	if err != nil {
		return nil, fmt.Errorf("connect to relay %s: %w", r.Addr, err)
	}
	conn := &relayConn{Conn: raw}
	if !r.pool.use(conn) {
		raw.Close()
		return nil, ErrAborted
	}
	defer func() {
		if s == nil {
			r.pool.unuse(conn)
		}
	}()
	// wire is the connection the session runs over: conn, or TLS over it.
	var wire net.Conn = conn
	mode := EffectiveTLS(r.Addr, r.TLS)
	switch mode {
	case "implicit":
		tconn := tls.Client(conn, tc)
		raw.SetDeadline(time.Now().Add(timeout))
		err = tconn.Handshake()
		raw.SetDeadline(time.Time{})
		wire = tconn
	case "starttls":
		// EHLO, STARTTLS; our EHLO below is the one over TLS.
		wire, err = startTLS(conn, r.Hostname, tc, timeout)
	}
	if err != nil {
		raw.Close()
		if mode != "none" && tlsFailure(err) {
			return nil, &TLSError{Addr: r.Addr, Mode: mode, Err: err}
		}
		return nil, fmt.Errorf("connect to relay %s: %w", r.Addr, err)
	}
	c := smtp.NewClient(wire)
	c.CommandTimeout = timeout
	c.SubmissionTimeout = endOfData
	if err := c.Hello(r.Hostname); err != nil {
		c.Close()
		if mode != "none" && tlsFailure(err) {
			return nil, &TLSError{Addr: r.Addr, Mode: mode, Err: err}
		}
		// Not wrapped: a 5xx greeting or answer to EHLO (a client outside
		// the relay's mynetworks, a relay out of service) says nothing
		// of the mail, which waits for the next attempt, as Postfix
		// defers it, instead of failing for good.
		return nil, fmt.Errorf("EHLO to relay %s: %v", r.Addr, err)
	}
	return &relaySession{c: c, conn: conn, pipe: newPipe(c, wire, timeout)}, nil
}

// ErrAborted fails a delivery Relay.Abort cut short: the relay said
// nothing of the mail, which stays queued and is sent again.
var ErrAborted = errors.New("delivery cut short: the gateway is stopping; the mail is sent again after the restart")

// aborted is err, or ErrAborted when Abort ran meanwhile: an error of a
// cut connection says nothing of the relay.
func (r *Relay) aborted(err error) error {
	if errors.Is(err, ErrAborted) || !r.pool.isAborted() {
		return err
	}
	return fmt.Errorf("%w (%v)", ErrAborted, err)
}

// endOfData is how long the answer to the final dot of a mail may take:
// ten minutes, as RFC 5321 (4.5.3.2.6) has it. A relay may scan the mail
// before it answers (a content filter, a milter), and may have it
// already: a mail given up on sooner would be sent again, and the
// customer get it twice.
const endOfData = 10 * time.Minute

// errNoSMTPUTF8 fails a mail with a non-ASCII address for good when the
// relay does not offer SMTPUTF8.
var errNoSMTPUTF8 = &smtp.SMTPError{Code: 553, EnhancedCode: smtp.EnhancedCode{5, 6, 7},
	Message: "the relay does not offer SMTPUTF8, needed for a non-ASCII address"}

func isASCII(s string) bool {
	return !strings.ContainsFunc(s, func(r rune) bool { return r >= utf8.RuneSelf })
}

// Permanent reports whether err is a 5xx answer: retrying will not help.
// A TLS failure is not, whatever the relay answered: it lasts until the
// relay or the configuration changes, and the mail waits for that.
func Permanent(err error) bool {
	var se *smtp.SMTPError
	return errors.As(err, &se) && se.Code >= 500 && se.Code < 600 && !IsTLSError(err)
}

// needsTLS reports whether err is a relay's refusal of mail on a session
// without TLS: "530 5.7.0 Must issue a STARTTLS command first" (RFC 3207),
// Postfix's answer to MAIL FROM under smtpd_tls_security_level = encrypt.
func needsTLS(err error) bool {
	var se *smtp.SMTPError
	return errors.As(err, &se) && se.Code == 530 && strings.Contains(strings.ToUpper(se.Message), "STARTTLS")
}
