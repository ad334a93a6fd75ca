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
	// VERPKeyFile holds the key signing bounce (VERP) return paths;
	// generated (0600) when missing. "" = verp.key next to the database.
	// Gateways sharing one database must share this file.
	VERPKeyFile string `toml:"verp_key_file"`
}

// Relay delivers one message to the smarthost.
type Relay struct {
	Addr     string
	TLS      string
	Hostname string // our EHLO name
	Insecure bool
	Timeout  time.Duration
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
// user) is the recipient's, not the message's; a 421 closes the session
// and fails the whole message for now.
func (r *Relay) Send(from string, to []string, raw []byte, handedOver func(refused []RcptError)) ([]RcptError, error) {
	c, conn, err := r.dial()
	if err != nil {
		return nil, err
	}
	quitting := false
	defer func() {
		if !quitting {
			c.Close()
		}
	}()
	var opts *smtp.MailOptions
	if !isASCII(from) || slices.ContainsFunc(to, func(a string) bool { return !isASCII(a) }) {
		// RFC 6531: a non-ASCII address travels only to a relay that
		// says SMTPUTF8; one that does not never will.
		if ok, _ := c.Extension("SMTPUTF8"); !ok {
			return nil, errNoSMTPUTF8
		}
		opts = &smtp.MailOptions{UTF8: true}
	}
	if err := c.Mail(from, opts); err != nil {
		return nil, fmt.Errorf("MAIL FROM: %w", err)
	}
	refused, err := offer(c, to)
	if err != nil {
		return nil, err
	}
	if len(refused) == len(to) {
		quitting = true
		go quit(c)
		return refused, nil
	}
	w, err := c.Data()
	if err != nil {
		return nil, fmt.Errorf("DATA: %w", err)
	}
	if _, err := w.Write(raw); err != nil {
		return nil, fmt.Errorf("DATA: %w", err)
	}
	if handedOver != nil {
		// Close writes the rest of the mail and the final dot, then
		// reads the answer: the first read is the moment to tell.
		conn.beforeRead = func() { handedOver(refused) }
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("end of DATA: %w", err)
	}
	// The caller records the 250 without waiting for QUIT's round trip.
	quitting = true
	go quit(c)
	return refused, nil
}

// relayConn is the connection to the relay under TLS, if any. It calls
// beforeRead once, before the next read, so that Send can act between
// writing the end of a mail and reading the relay's answer to it.
type relayConn struct {
	net.Conn
	beforeRead func()
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
		err := c.Rcpt(rcpt, nil)
		var se *smtp.SMTPError
		switch {
		case err == nil:
		case errors.As(err, &se) && se.Code != 421:
			refused = append(refused, RcptError{Rcpt: rcpt, Err: err})
		default:
			return nil, fmt.Errorf("RCPT TO <%s>: %w", rcpt, err)
		}
	}
	return refused, nil
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

func (r *Relay) dial() (*smtp.Client, *relayConn, error) {
	timeout := r.Timeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	host, _, _ := net.SplitHostPort(r.Addr)
	tc := &tls.Config{ServerName: host, InsecureSkipVerify: r.Insecure}
	raw, err := net.DialTimeout("tcp", r.Addr, timeout)
	if err != nil {
		return nil, nil, fmt.Errorf("connect to relay %s: %w", r.Addr, err)
	}
	conn := &relayConn{Conn: raw}
	var c *smtp.Client
	mode := EffectiveTLS(r.Addr, r.TLS)
	switch mode {
	case "implicit":
		tconn := tls.Client(conn, tc)
		raw.SetDeadline(time.Now().Add(timeout))
		err = tconn.Handshake()
		raw.SetDeadline(time.Time{})
		c = smtp.NewClient(tconn)
	case "starttls":
		// EHLO, STARTTLS; our EHLO below is the one over TLS.
		c, err = smtp.NewClientStartTLS(conn, tc)
	default:
		c = smtp.NewClient(conn)
	}
	if err != nil {
		raw.Close()
		if mode != "none" && tlsFailure(err) {
			return nil, nil, &TLSError{Addr: r.Addr, Mode: mode, Err: err}
		}
		return nil, nil, fmt.Errorf("connect to relay %s: %w", r.Addr, err)
	}
	c.CommandTimeout = timeout
	c.SubmissionTimeout = 2 * timeout
	// Under STARTTLS the handshake happens here, on the first command.
	if err := c.Hello(r.Hostname); err != nil {
		c.Close()
		if mode != "none" && tlsFailure(err) {
			return nil, nil, &TLSError{Addr: r.Addr, Mode: mode, Err: err}
		}
		return nil, nil, fmt.Errorf("EHLO to relay %s: %w", r.Addr, err)
	}
	return c, conn, nil
}

// errNoSMTPUTF8 fails a mail with a non-ASCII address for good when the
// relay does not offer SMTPUTF8.
var errNoSMTPUTF8 = &smtp.SMTPError{Code: 553, EnhancedCode: smtp.EnhancedCode{5, 6, 7},
	Message: "the relay does not offer SMTPUTF8, needed for a non-ASCII address"}

func isASCII(s string) bool {
	return !strings.ContainsFunc(s, func(r rune) bool { return r >= utf8.RuneSelf })
}

// Permanent reports whether err is a 5xx answer: retrying will not help.
func Permanent(err error) bool {
	var se *smtp.SMTPError
	return errors.As(err, &se) && se.Code >= 500 && se.Code < 600
}
