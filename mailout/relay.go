package mailout

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/emersion/go-smtp"
)

// Config is the [outbound] section of the configuration file.
type Config struct {
	Relay    string `toml:"relay"`     // smarthost host:port
	TLS      string `toml:"tls"`       // none | starttls | implicit
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
}

// Relay delivers one message to the smarthost.
type Relay struct {
	Addr     string
	TLS      string
	Hostname string // our EHLO name
	Insecure bool
	Timeout  time.Duration
}

// RcptError is a recipient the relay refused while others were accepted.
type RcptError struct {
	Rcpt string
	Err  error
}

// Send delivers raw from envelope sender from to the recipients. It returns
// the recipients refused permanently (the mail went to the others), or an
// error for the whole message; Permanent tells the two kinds apart.
func (r *Relay) Send(from string, to []string, raw []byte) ([]RcptError, error) {
	c, err := r.dial()
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if err := c.Mail(from, nil); err != nil {
		return nil, fmt.Errorf("MAIL FROM: %w", err)
	}
	var refused []RcptError
	for _, rcpt := range to {
		if err := c.Rcpt(rcpt, nil); err != nil {
			if !Permanent(err) {
				return nil, fmt.Errorf("RCPT TO <%s>: %w", rcpt, err)
			}
			refused = append(refused, RcptError{Rcpt: rcpt, Err: err})
		}
	}
	if len(refused) == len(to) {
		return refused, nil
	}
	w, err := c.Data()
	if err != nil {
		return nil, fmt.Errorf("DATA: %w", err)
	}
	if _, err := w.Write(raw); err != nil {
		return nil, fmt.Errorf("DATA: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("end of DATA: %w", err)
	}
	_ = c.Quit()
	return refused, nil
}

func (r *Relay) dial() (*smtp.Client, error) {
	timeout := r.Timeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	host, _, _ := net.SplitHostPort(r.Addr)
	tc := &tls.Config{ServerName: host, InsecureSkipVerify: r.Insecure}
	var (
		c   *smtp.Client
		err error
	)
	switch r.TLS {
	case "implicit":
		var conn net.Conn
		conn, err = tls.DialWithDialer(&net.Dialer{Timeout: timeout}, "tcp", r.Addr, tc)
		if err == nil {
			c = smtp.NewClient(conn)
		}
	case "starttls":
		c, err = smtp.DialStartTLS(r.Addr, tc)
	default:
		var conn net.Conn
		conn, err = net.DialTimeout("tcp", r.Addr, timeout)
		if err == nil {
			c = smtp.NewClient(conn)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("connect to relay %s: %w", r.Addr, err)
	}
	c.CommandTimeout = timeout
	c.SubmissionTimeout = 2 * timeout
	if err := c.Hello(r.Hostname); err != nil {
		c.Close()
		return nil, fmt.Errorf("EHLO to relay %s: %w", r.Addr, err)
	}
	return c, nil
}

// Permanent reports whether err is a 5xx answer: retrying will not help.
func Permanent(err error) bool {
	var se *smtp.SMTPError
	return errors.As(err, &se) && se.Code >= 500 && se.Code < 600
}
