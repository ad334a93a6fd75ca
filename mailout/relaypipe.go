package mailout

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/textproto"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-smtp"
)

// A relay that offers PIPELINING (RFC 2920; Postfix, Exchange and Gmail
// do) gets each mail in two round trips instead of four: RSET when
// needed, MAIL FROM, every RCPT TO and DATA go out in one write and
// their answers are read in turn, then the mail and its final dot.
// go-smtp's client sends one command at a time, so a pipelining session
// reads and writes its transactions itself (pipe); go-smtp's client still
// opens the session (greeting, EHLO) and ends it (QUIT), and runs every
// transaction with a relay that does not pipeline.

// pipe is a pipelining session's own reader and writer over the session's
// connection (TLS included). go-smtp's client has read everything the
// relay sent before the first transaction, and reads nothing after it
// but the answer to QUIT.
type pipe struct {
	wire    net.Conn
	r       *textproto.Reader
	w       *textproto.Writer
	timeout time.Duration
	params  string // MAIL FROM parameters the relay takes (BODY=8BITMIME)
}

// pipeWriteSize is the pipe's write buffer: most mails the desk sends
// (auto-replies, notifications carrying a customer's text) fit in it.
const pipeWriteSize = 32 << 10

func newPipe(c *smtp.Client, wire net.Conn, timeout time.Duration) *pipe {
	if ok, _ := c.Extension("PIPELINING"); !ok {
		return nil
	}
	// A mail goes out in one write when it fits pipeWriteSize, not in
	// bufio's 4 KB pieces: each write is a system call, and a 4 KB mail
	// with its headers took two.
	p := &pipe{wire: wire, r: textproto.NewReader(bufio.NewReader(wire)), w: textproto.NewWriter(bufio.NewWriterSize(wire, pipeWriteSize)), timeout: timeout}
	// go-smtp's client asks for 8-bit MIME whenever it is offered; so
	// does the pipe, and a relay sees the same MAIL FROM either way.
	if ok, _ := c.Extension("8BITMIME"); ok {
		p.params = " BODY=8BITMIME"
	}
	return p
}

// pipelined is relaySession.send over s.pipe: the same outcomes, told
// the same way (early: the error came before the relay took anything of
// this mail, at RSET or MAIL FROM).
func (s *relaySession) pipelined(from string, to []string, utf8 bool, raw []byte, handedOver func(refused []RcptError)) (refused []RcptError, err error, early bool) {
	p := s.pipe
	for _, a := range append([]string{from}, to...) {
		if strings.ContainsAny(a, "\r\n") {
			return nil, errors.New("smtp: an address must not contain CR or LF"), true
		}
	}
	p.wire.SetDeadline(time.Now().Add(p.timeout))
	defer p.wire.SetDeadline(time.Time{})
	bw := p.w.W
	if s.dirty {
		bw.WriteString("RSET\r\n")
	}
	bw.WriteString("MAIL FROM:<" + from + ">" + p.params)
	if utf8 {
		bw.WriteString(" SMTPUTF8")
	}
	bw.WriteString("\r\n")
	for _, rcpt := range to {
		bw.WriteString("RCPT TO:<" + rcpt + ">\r\n")
	}
	bw.WriteString("DATA\r\n")
	if err := bw.Flush(); err != nil {
		return nil, fmt.Errorf("MAIL FROM: %w", err), true
	}
	if s.dirty {
		if err := p.answer(250); err != nil {
			return nil, fmt.Errorf("RSET: %w", err), true
		}
		s.dirty = false
	}
	if err := p.answer(250); err != nil {
		return nil, fmt.Errorf("MAIL FROM: %w", err), true
	}
	for _, rcpt := range to {
		re, err := rcptAnswer(rcpt, p.answer(25))
		if err != nil {
			return nil, err, false
		}
		if re != nil {
			refused = append(refused, *re)
		}
	}
	err = p.answer(354)
	if len(refused) == len(to) {
		return refused, s.endRefused(err), false
	}
	if err != nil {
		return nil, fmt.Errorf("DATA: %w", err), false
	}
	s.conn.writeFor = p.timeout // each write of the mail, not all of it
	defer func() { s.conn.writeFor = 0 }()
	if handedOver != nil {
		// writeDotted writes the mail and the final dot; the first read
		// after it waits for the answer: the moment to tell.
		s.conn.beforeRead = func() { handedOver(refused) }
	}
	err = writeDotted(p.w.W, raw)
	if err == nil {
		err = p.answerWithin(250, endOfData)
	}
	s.conn.beforeRead = nil
	if err != nil {
		return nil, fmt.Errorf("end of DATA: %w", err), false
	}
	return refused, nil, false
}

// writeDotted writes raw as the data of a mail (RFC 5321 4.5.2) and the
// final dot, and flushes: the bytes textproto's DotWriter writes for raw
// and its Close (a dot beginning a line doubled, a newline not ended by
// its own CR given one, the end of the mail on a line of its own), a line
// at a time instead of a byte at a time.
func writeDotted(w *bufio.Writer, raw []byte) error {
	if len(raw) == 0 {
		return endData(w, "\r\n.\r\n") // an empty line: DotWriter's empty mail
	}
	for len(raw) > 0 {
		if raw[0] == '.' {
			w.WriteByte('.')
		}
		i := bytes.IndexByte(raw, '\n')
		if i < 0 {
			w.Write(raw)
			if endsInCR(raw) {
				return endData(w, "\n.\r\n")
			}
			return endData(w, "\r\n.\r\n")
		}
		w.Write(raw[:i])
		if !endsInCR(raw[:i]) {
			w.WriteByte('\r')
		}
		w.WriteByte('\n')
		raw = raw[i+1:]
	}
	return endData(w, ".\r\n")
}

// endData sends what w holds of the mail, then the end of the data
// (term, the final dot) in a write of its own. Between the write that
// ends the data and the hand-off note nothing may happen that a kill can
// fall into (the relay then has the mail and the outbox does not know):
// a write of a few bytes is over sooner than one of the whole mail, which
// on a loopback relay includes the relay's side of taking it in.
func endData(w *bufio.Writer, term string) error {
	if err := w.Flush(); err != nil {
		return err
	}
	w.WriteString(term)
	return w.Flush()
}

// endsInCR reports whether the CR that b may end with ends its line: it
// does unless it follows a CR that does (DotWriter takes "\r\r" as a CR
// and a byte of text).
func endsInCR(b []byte) bool {
	n := len(b) - len(bytes.TrimRight(b, "\r"))
	return n%2 == 1
}

// endRefused ends a pipelined transaction whose every recipient was
// refused, given the answer to its DATA: a refusal, as RFC 2920 has it
// (the transaction then stays open until the RSET before the next), or
// 354 from a relay that takes DATA anyway, which gets an empty mail to no
// one.
func (s *relaySession) endRefused(data error) error {
	var se *smtp.SMTPError
	if errors.As(data, &se) && se.Code != 421 {
		s.dirty = true
		return nil
	}
	if data != nil {
		return fmt.Errorf("DATA: %w", data)
	}
	p := s.pipe
	if err := p.w.PrintfLine("."); err != nil {
		return fmt.Errorf("end of DATA: %w", err)
	}
	if err := p.answer(250); err != nil && (!errors.As(err, &se) || se.Code == 421) {
		return fmt.Errorf("end of DATA: %w", err)
	}
	return nil
}

// answer reads the relay's answer to the next command in the pipeline;
// one with another code than expect (a prefix: 25 takes 250 and 251) is
// an *smtp.SMTPError, as go-smtp's client gives. Each answer has the
// session's timeout, as each command has in go-smtp's client: a relay
// that takes its time over each recipient is not timed out for the
// number of recipients.
func (p *pipe) answer(expect int) error { return p.answerWithin(expect, p.timeout) }

// answerWithin is answer, waiting at most d for the answer.
func (p *pipe) answerWithin(expect int, d time.Duration) error {
	p.wire.SetReadDeadline(time.Now().Add(d))
	_, _, err := p.r.ReadResponse(expect)
	var te *textproto.Error
	if errors.As(err, &te) {
		return smtpError(te)
	}
	return err
}

// smtpError is the relay's answer te as an *smtp.SMTPError, the enhanced
// status code (RFC 2034) taken out of the text when it begins with one.
func smtpError(te *textproto.Error) *smtp.SMTPError {
	se := &smtp.SMTPError{Code: te.Code, Message: te.Msg}
	first, rest, ok := strings.Cut(te.Msg, " ")
	parts := strings.Split(first, ".")
	if !ok || len(parts) != 3 {
		return se
	}
	var code smtp.EnhancedCode
	for i, part := range parts {
		n, err := strconv.Atoi(part)
		if err != nil || n < 0 || n > 999 {
			return se
		}
		code[i] = n
	}
	se.EnhancedCode = code
	se.Message = strings.ReplaceAll(rest, "\n"+first+" ", "\n")
	return se
}

// startTLS opens TLS on conn with STARTTLS (RFC 3207) and returns the
// TLS connection for go-smtp's client. The client reads a greeting first
// on a new connection: it gets the one the relay sent before TLS.
func startTLS(conn net.Conn, hostname string, tc *tls.Config, timeout time.Duration) (net.Conn, error) {
	conn.SetDeadline(time.Now().Add(timeout))
	defer conn.SetDeadline(time.Time{})
	text := textproto.NewConn(conn)
	_, greeting, err := text.ReadResponse(220)
	if err != nil {
		return nil, err
	}
	if err := text.PrintfLine("EHLO %s", hostname); err != nil {
		return nil, err
	}
	_, offers, err := text.ReadResponse(250)
	if err != nil {
		return nil, err
	}
	if !offered(offers, "STARTTLS") {
		return nil, errors.New("smtp: server doesn't support STARTTLS")
	}
	if err := text.PrintfLine("STARTTLS"); err != nil {
		return nil, err
	}
	if _, _, err := text.ReadResponse(220); err != nil {
		return nil, err
	}
	tconn := tls.Client(conn, tc)
	if err := tconn.Handshake(); err != nil {
		return nil, err
	}
	first, _, _ := strings.Cut(greeting, "\n")
	return &greeted{Conn: tconn, greeting: strings.NewReader("220 " + first + "\r\n")}, nil
}

// offered reports whether the EHLO answer ehlo (its lines after the
// first) names extension ext.
func offered(ehlo, ext string) bool {
	lines := strings.Split(ehlo, "\n")
	for _, l := range lines[1:] {
		if name, _, _ := strings.Cut(l, " "); strings.EqualFold(name, ext) {
			return true
		}
	}
	return false
}

// greeted is a connection whose greeting was read before STARTTLS, and is
// read again, once, in front of what comes over TLS.
type greeted struct {
	net.Conn
	greeting *strings.Reader
}

func (g *greeted) Read(b []byte) (int, error) {
	if g.greeting.Len() > 0 {
		return g.greeting.Read(b)
	}
	return g.Conn.Read(b)
}
