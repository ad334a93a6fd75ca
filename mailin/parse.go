// Package mailin brings mail in: the SMTP/LMTP listener, the IMAP poller and
// stdin injection all hand raw messages to a Pipeline, which parses them
// into an Inbound value, asks rules what to do, and commits the outcome to
// the store before the sender is told the message was accepted.
package mailin

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/mail"
	"net/textproto"
	"strings"
	"time"

	gmtextproto "github.com/emersion/go-message/textproto"
	"github.com/jhillyerd/enmime/v2"

	"ticketgate/rules"
)

// Limits bound what the parser accepts from one message.
type Limits struct {
	MaxHeaderBytes int // total header size of any part; default 1 MiB
	MaxDepth       int // MIME nesting depth; default 20
	MaxParts       int // number of MIME parts; default 500
}

func (l Limits) withDefaults() Limits {
	if l.MaxHeaderBytes <= 0 {
		l.MaxHeaderBytes = 1 << 20
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = 20
	}
	if l.MaxParts <= 0 {
		l.MaxParts = 500
	}
	return l
}

// Inbound is one received message, parsed. Text is always valid UTF-8:
// undecodable bytes become U+FFFD.
type Inbound struct {
	Header      rules.Header
	From        mail.Address
	To, Cc      []string
	Subject     string
	Date        time.Time
	MessageID   string   // without angle brackets; synthetic when missing
	InReplyTo   []string // without angle brackets
	References  []string
	Text        string // the text body; HTML turned into text when there is no text part
	HTML        string
	Attachments []Part
	Notes       []string // problems met while parsing, for people reading the ticket
	Raw         []byte
	Truncated   bool // a structural limit was hit and the MIME tree was not parsed
	// DeliveryStatus holds the text of a message/delivery-status part, if any.
	DeliveryStatus string
}

// Part is an attachment or inline file.
type Part struct {
	Filename    string
	ContentType string
	ContentID   string
	Inline      bool
	Content     []byte
}

// ErrNotMail is returned for input that is not an RFC 5322 message at all.
var ErrNotMail = errors.New("not an e-mail message")

// Parse reads a raw message. It only fails for input that is not mail at
// all (empty, or no header); broken MIME, bad charsets and limits hit are
// recorded in Notes and as much text as can be read is kept.
func Parse(raw []byte, lim Limits) (*Inbound, error) {
	lim = lim.withDefaults()
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil, fmt.Errorf("%w: empty input", ErrNotMail)
	}
	hdr, err := readTopHeader(raw, lim.MaxHeaderBytes)
	if err != nil {
		return nil, err
	}
	in := &Inbound{Raw: raw, Header: hdr}
	in.fillHeaders(hdr)
	if problem := checkStructure(raw, lim); problem != "" {
		in.Truncated = true
		in.Notes = append(in.Notes, "message not parsed further: "+problem+"; the raw message is kept")
		in.Text = fallbackText(raw)
	} else {
		in.readBody(raw)
	}
	if in.MessageID == "" {
		sum := sha256.Sum256(raw)
		in.MessageID = "synthetic." + hex.EncodeToString(sum[:12]) + "@ticketgate.invalid"
		in.Notes = append(in.Notes, "message had no Message-ID; a stable one was derived from its content")
	}
	return in, nil
}

// readTopHeader decodes the top-level header into a canonical map with
// RFC 2047 words decoded.
func readTopHeader(raw []byte, max int) (rules.Header, error) {
	end := bytes.Index(raw, []byte("\n\n"))
	if e2 := bytes.Index(raw, []byte("\r\n\r\n")); e2 >= 0 && (end < 0 || e2 < end) {
		end = e2
	}
	if end < 0 {
		end = len(raw)
	}
	if end > max {
		return nil, fmt.Errorf("%w: header is larger than %d bytes", ErrNotMail, max)
	}
	br := bufio.NewReader(io.LimitReader(bytes.NewReader(raw), int64(max)+4))
	h, err := gmtextproto.ReadHeader(br)
	if err != nil && h.Len() == 0 {
		return nil, fmt.Errorf("%w: %v", ErrNotMail, err)
	}
	out := rules.Header{}
	fields := h.Fields()
	for fields.Next() {
		k := textproto.CanonicalMIMEHeaderKey(fields.Key())
		out[k] = append(out[k], enmime.DecodeRFC2047(fields.Value()))
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: no header fields", ErrNotMail)
	}
	return out, nil
}

func first(h rules.Header, k string) string {
	if v := h[k]; len(v) > 0 {
		return strings.TrimSpace(v[0])
	}
	return ""
}

func (in *Inbound) fillHeaders(h rules.Header) {
	in.Subject = strings.ToValidUTF8(rules.CleanHeader(first(h, "Subject")), "\uFFFD")
	if list := parseAddrs(first(h, "From")); len(list) > 0 {
		in.From = list[0]
	} else if f := first(h, "From"); f != "" {
		in.Notes = append(in.Notes, "From header could not be read: "+rules.CleanHeader(f))
	}
	in.From.Name = strings.ToValidUTF8(rules.CleanHeader(in.From.Name), "\uFFFD")
	for _, a := range parseAddrs(strings.Join(h["To"], ", ")) {
		in.To = append(in.To, a.Address)
	}
	for _, a := range parseAddrs(strings.Join(h["Cc"], ", ")) {
		in.Cc = append(in.Cc, a.Address)
	}
	if d, err := mail.ParseDate(first(h, "Date")); err == nil {
		in.Date = d
	}
	if ids := msgIDs(first(h, "Message-Id")); len(ids) > 0 {
		in.MessageID = ids[0]
	}
	in.InReplyTo = msgIDs(strings.Join(h["In-Reply-To"], " "))
	in.References = msgIDs(strings.Join(h["References"], " "))
}

// parseAddrs reads an address list leniently: enmime's parser first, then
// a plain scan for something@something.
func parseAddrs(v string) []mail.Address {
	if strings.TrimSpace(v) == "" {
		return nil
	}
	var out []mail.Address
	if list, err := enmime.ParseAddressList(v); err == nil {
		for _, a := range list {
			a.Address = strings.ToLower(strings.TrimSpace(a.Address))
			if a.Address != "" {
				out = append(out, *a)
			}
		}
		return out
	}
	for _, f := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ';' || r == ' ' || r == '<' || r == '>' }) {
		if strings.Count(f, "@") == 1 && !strings.HasPrefix(f, "@") && !strings.HasSuffix(f, "@") {
			out = append(out, mail.Address{Address: strings.ToLower(strings.Trim(f, `"'()`))})
		}
	}
	return out
}

// msgIDs extracts message ids (without angle brackets) from a header value.
func msgIDs(v string) []string {
	var out []string
	for {
		i := strings.IndexByte(v, '<')
		if i < 0 {
			break
		}
		j := strings.IndexByte(v[i:], '>')
		if j < 0 {
			break
		}
		if id := strings.TrimSpace(v[i+1 : i+j]); id != "" && !strings.ContainsAny(id, " \t") {
			out = append(out, id)
		}
		v = v[i+j+1:]
	}
	if len(out) == 0 {
		// Some clients send bare ids.
		for _, f := range strings.Fields(v) {
			if strings.Contains(f, "@") {
				out = append(out, strings.Trim(f, "<>,"))
			}
		}
	}
	return out
}

func (in *Inbound) readBody(raw []byte) {
	p := enmime.NewParser(enmime.MaxStoredPartErrors(20), enmime.SetReadPartErrorPolicy(enmime.AllowCorruptTextPartErrorPolicy))
	env, err := p.ReadEnvelope(bytes.NewReader(raw))
	if err != nil {
		in.Notes = append(in.Notes, "MIME could not be parsed ("+err.Error()+"); text taken from the raw message")
		in.Text = fallbackText(raw)
		return
	}
	for _, e := range env.Errors {
		in.Notes = append(in.Notes, "MIME problem: "+e.Error())
	}
	in.Text = strings.ReplaceAll(strings.ToValidUTF8(env.Text, "\uFFFD"), "\r\n", "\n")
	in.HTML = strings.ToValidUTF8(env.HTML, "\uFFFD")
	for _, a := range env.Attachments {
		in.Attachments = append(in.Attachments, partOf(a, false))
	}
	for _, a := range env.Inlines {
		in.Attachments = append(in.Attachments, partOf(a, true))
	}
	for _, a := range env.OtherParts {
		if a.ContentType == "message/delivery-status" || a.ContentType == "message/global-delivery-status" {
			in.DeliveryStatus = string(a.Content)
			continue
		}
		if a.ContentType == "text/rfc822-headers" {
			continue
		}
		in.Attachments = append(in.Attachments, partOf(a, a.ContentID != ""))
	}
	if in.DeliveryStatus == "" && env.Root != nil {
		if ds := env.Root.BreadthMatchFirst(func(p *enmime.Part) bool {
			return strings.HasPrefix(p.ContentType, "message/delivery-status") || strings.HasPrefix(p.ContentType, "message/global-delivery-status")
		}); ds != nil {
			in.DeliveryStatus = string(ds.Content)
		}
	}
	if strings.TrimSpace(in.Text) == "" && strings.TrimSpace(in.HTML) == "" && len(in.Attachments) == 0 {
		// Some broken messages leave enmime with nothing; keep what is readable.
		in.Text = fallbackText(raw)
	}
}

func partOf(p *enmime.Part, inline bool) Part {
	name := strings.ToValidUTF8(rules.CleanHeader(p.FileName), "_")
	if name == "" {
		ext := ""
		if exts, _ := mime.ExtensionsByType(p.ContentType); len(exts) > 0 {
			ext = exts[0]
		}
		name = "attachment" + ext
	}
	return Part{Filename: name, ContentType: p.ContentType, ContentID: strings.Trim(p.ContentID, "<>"), Inline: inline, Content: p.Content}
}

// fallbackText returns the body of a raw message as text when MIME parsing
// gave up: the bytes after the header, made valid UTF-8, capped at 1 MiB.
func fallbackText(raw []byte) string {
	body := raw
	if i := bytes.Index(raw, []byte("\r\n\r\n")); i >= 0 {
		body = raw[i+4:]
	} else if i := bytes.Index(raw, []byte("\n\n")); i >= 0 {
		body = raw[i+2:]
	}
	if len(body) > 1<<20 {
		body = body[:1<<20]
	}
	return strings.ToValidUTF8(strings.ReplaceAll(string(body), "\r\n", "\n"), "\uFFFD")
}

// checkStructure walks the MIME tree without keeping bodies and reports the
// first structural limit the message breaks, or "". It reads each byte once.
func checkStructure(raw []byte, lim Limits) string {
	parts := 0
	var walk func(r io.Reader, depth int) string
	walk = func(r io.Reader, depth int) string {
		br := bufio.NewReader(&limitedHeader{r: r, max: lim.MaxHeaderBytes})
		h, err := gmtextproto.ReadHeader(br)
		if errors.Is(err, errHeaderTooBig) {
			return fmt.Sprintf("a header is larger than %d bytes", lim.MaxHeaderBytes)
		}
		if err != nil {
			return "" // broken headers are enmime's problem, not a limit
		}
		parts++
		if parts > lim.MaxParts {
			return fmt.Sprintf("more than %d MIME parts", lim.MaxParts)
		}
		if depth > lim.MaxDepth {
			return fmt.Sprintf("MIME nesting deeper than %d", lim.MaxDepth)
		}
		mt, params, err := mime.ParseMediaType(h.Get("Content-Type"))
		if err != nil || !strings.HasPrefix(mt, "multipart/") || params["boundary"] == "" {
			return ""
		}
		mr := gmtextproto.NewMultipartReader(br, params["boundary"])
		for {
			p, err := mr.NextPart()
			if err != nil {
				return ""
			}
			// Re-assemble the part so the nested walk sees header and body.
			var hb bytes.Buffer
			if err := gmtextproto.WriteHeader(&hb, p.Header); err != nil {
				return ""
			}
			if msg := walk(io.MultiReader(&hb, p), depth+1); msg != "" {
				return msg
			}
		}
	}
	return walk(bytes.NewReader(raw), 0)
}

var errHeaderTooBig = errors.New("header too big")

// limitedHeader fails once more than max bytes were read before the blank
// line that ends a header, and passes everything after it through.
type limitedHeader struct {
	r     io.Reader
	max   int
	n     int
	done  bool
	last2 [2]byte
}

func (l *limitedHeader) Read(p []byte) (int, error) {
	n, err := l.r.Read(p)
	if l.done {
		return n, err
	}
	for i := 0; i < n; i++ {
		l.n++
		c := p[i]
		if c == '\n' && (l.last2[1] == '\n' || (l.last2[1] == '\r' && l.last2[0] == '\n')) {
			l.done = true
			return n, err
		}
		l.last2[0], l.last2[1] = l.last2[1], c
		if l.n > l.max {
			return i, errHeaderTooBig
		}
	}
	return n, err
}

// HeaderRecipients returns the routing addresses a message names in
// Delivered-To, X-Original-To, To and Cc (in that order), for mail that
// arrives without an envelope (inject without -to, IMAP).
func HeaderRecipients(raw []byte, routes rules.Routes) []string {
	h, err := readTopHeader(raw, 1<<20)
	if err != nil {
		return nil
	}
	var out []string
	for _, k := range []string{"Delivered-To", "X-Original-To", "To", "Cc"} {
		for _, a := range parseAddrs(strings.Join(h[k], ", ")) {
			if routes.IsOwn(a.Address) && !slicesContains(out, a.Address) {
				out = append(out, a.Address)
			}
		}
	}
	return out
}

func slicesContains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
