// Package mailin brings mail in: the SMTP/LMTP listener and the IMAP
// poller hand each message to a Handler (the ticket desk), which commits it
// before the sender is told it was accepted; Parse reads a message into an
// Inbound value within structure limits. Nothing here knows about tickets.
package mailin

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"mime"
	"net/mail"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/inbucket/html2text"
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
	Header rules.Header
	// From is who sent the message (see readSender): the From mailbox,
	// Sender's when From names several. SenderRule says which rule read
	// it; SenderProblem, when set, says why nobody could be read, and From
	// is then empty: the sender is unknown.
	From                      mail.Address
	SenderRule, SenderProblem string
	To, Cc                    []string
	Subject                   string
	Date                      time.Time
	MessageID                 string   // without angle brackets; synthetic when missing
	InReplyTo                 []string // without angle brackets
	References                []string
	Text                      string // the text body; HTML turned into text when there is no text part
	HTML                      string
	Attachments               []Part
	Notes                     []string // problems met while parsing, for people reading the ticket
	Raw                       []byte
	Truncated                 bool // a structural limit was hit and the MIME tree was not parsed
	// DeliveryStatus holds the text of a message/delivery-status part, if any.
	DeliveryStatus string
	// ReturnedHeader is the header of the message a delivery report
	// (multipart/report) returns in its text/rfc822-headers or
	// message/rfc822 part, one unfolded field a line.
	ReturnedHeader string
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
// all (empty, or nothing but white space); broken headers, broken MIME, bad
// charsets and limits hit are recorded in Notes and as much text as can be
// read is kept. Parse never keeps more than the message itself plus its
// decoded parts, and a message past a structural limit is not parsed further.
func Parse(raw []byte, lim Limits) (*Inbound, error) {
	lim = lim.withDefaults()
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil, fmt.Errorf("%w: empty input", ErrNotMail)
	}
	top := readLenientHeader(raw, lim.MaxHeaderBytes)
	in := &Inbound{Raw: raw, Notes: top.notes}
	in.Header = decodeFields(top.fields, top.charset(raw))
	in.fillHeaders(in.Header, addressFields(top.fields, top.charset(raw)))
	switch {
	case len(top.fields) == 0 && looksBinary(raw):
		return nil, fmt.Errorf("%w: no header and binary content", ErrNotMail)
	case len(top.fields) == 0:
		in.Notes = append(in.Notes, "message has no header; the whole input is kept as its text")
		in.Text = plainText(raw)
	case top.tooBig:
		in.truncate(fmt.Sprintf("the header is larger than %d bytes", lim.MaxHeaderBytes), raw)
	default:
		src := raw
		if top.repaired {
			// enmime refuses what this reader forgave: hand it a clean header.
			src = top.rebuild(raw)
		}
		if problem := checkStructure(src, lim); problem != "" {
			in.truncate(problem, raw)
		} else if text, ok := top.plainText(raw); ok {
			in.Text = text
		} else {
			in.readBody(src)
		}
	}
	if in.MessageID == "" {
		sum := top.contentSum(raw)
		in.MessageID = "synthetic." + hex.EncodeToString(sum[:12]) + "@ticketgate.invalid"
		in.Notes = append(in.Notes, "message had no Message-ID; a stable one was derived from its content")
	}
	return in, nil
}

// contentSum is the SHA-256 of what the sender wrote: the header fields
// but those each server on the way adds (traceFields), and the body. The
// same message in again by another path (one more Received line, another
// Delivered-To) sums the same. A header too large to read whole is summed
// with the rest of raw as it is.
func (h topHeader) contentSum(raw []byte) [32]byte {
	if h.tooBig || h.body <= 0 || h.body > len(raw) {
		return sha256.Sum256(raw)
	}
	d := sha256.New()
	for _, f := range h.fields {
		if traceFields[strings.ToLower(f.name)] {
			continue
		}
		d.Write([]byte(f.name))
		d.Write([]byte{':'})
		d.Write(f.value)
		d.Write([]byte{'\n'})
	}
	d.Write([]byte{'\n'})
	d.Write(raw[h.body:])
	var sum [32]byte
	d.Sum(sum[:0])
	return sum
}

// traceFields are the header fields servers add on a message's way
// (RFC 5321 section 4.4 and what MTAs and filters commonly prepend).
var traceFields = map[string]bool{
	"received": true, "return-path": true, "delivered-to": true, "x-original-to": true,
	"authentication-results": true, "received-spf": true, "arc-seal": true,
	"arc-message-signature": true, "arc-authentication-results": true, "x-received": true,
}

// looksBinary reports input no mail client would write as text: NUL
// bytes, or mostly invalid UTF-8, in its first kilobyte.
func looksBinary(raw []byte) bool {
	head := raw[:min(len(raw), 1024)]
	if bytes.IndexByte(head, 0) >= 0 {
		return true
	}
	bad := 0
	for len(head) > 0 {
		r, n := utf8.DecodeRune(head)
		if r == utf8.RuneError && n == 1 {
			bad++
		}
		head = head[n:]
	}
	return bad*4 > min(len(raw), 1024)
}

func (in *Inbound) truncate(problem string, raw []byte) {
	in.Truncated = true
	in.Notes = append(in.Notes, "message not parsed further: "+problem+"; the raw message is kept")
	in.Text = fallbackText(raw)
}

// fillHeaders reads the fields of h; addresses come from addrs, the same
// fields with encoded words left for the address parser.
func (in *Inbound) fillHeaders(h, addrs rules.Header) {
	in.Subject = oneLine(first(h, "Subject"))
	in.From, in.SenderRule, in.SenderProblem = readSender(addrs["From"], addrs["Sender"])
	if in.SenderProblem != "" {
		in.Notes = append(in.Notes, in.SenderProblem)
	}
	in.From.Name = oneLine(in.From.Name)
	for _, a := range parseAddrs(strings.Join(addrs["To"], ", ")) {
		in.To = append(in.To, a.Address)
	}
	for _, a := range parseAddrs(strings.Join(addrs["Cc"], ", ")) {
		in.Cc = append(in.Cc, a.Address)
	}
	if d, err := parseDate(first(h, "Date")); err == nil {
		in.Date = d
	}
	if ids := MsgIDs(first(h, "Message-Id")); len(ids) > 0 {
		in.MessageID = ids[0]
	}
	in.InReplyTo = MsgIDs(strings.Join(h["In-Reply-To"], " "))
	in.References = MsgIDs(strings.Join(h["References"], " "))
}

// dateLayout is the Date of RFC 5322 (3.3) as nearly every mail program
// writes it, the day in one digit or two.
const dateLayout = "Mon, 2 Jan 2006 15:04:05 -0700"

// parseDate is mail.ParseDate, which tries its layouts one after another
// (72 allocations for the most common date), with the most common layout
// tried first.
func parseDate(s string) (time.Time, error) {
	if d, err := time.Parse(dateLayout, s); err == nil {
		return d, nil
	}
	return mail.ParseDate(s)
}

// parseAddrs reads an address list leniently: RFC 5322 first, then
// enmime's repair of a list missing its commas, then a plain scan for
// something@something. Encoded words are decoded in display names only,
// as in From: an addr-spec spelled in them is kept as written, for no
// mail system delivers to what they decode to.
func parseAddrs(v string) []mail.Address {
	if strings.TrimSpace(v) == "" {
		return nil
	}
	var out []mail.Address
	p := mail.AddressParser{WordDecoder: nameWords}
	list, err := p.ParseList(v)
	if err != nil && err.Error() == "mail: expected comma" {
		// enmime decodes the addr-specs of a list that parses as it
		// stands (the first parse above keeps them from it), but not of
		// the list it repaired.
		list, err = enmime.ParseAddressList(v)
	}
	if err == nil {
		for _, a := range list {
			a.Address = strings.ToLower(strings.TrimSpace(a.Address))
			if a.Address != "" {
				out = append(out, *a)
			}
		}
		return out
	}
	// White space and control characters end an address too: a stray
	// carriage return kept in one would make it no address a relay takes.
	for _, f := range strings.FieldsFunc(v, func(r rune) bool {
		return r == ',' || r == ';' || r <= ' ' || r == 0x7f || r == '<' || r == '>'
	}) {
		if strings.Count(f, "@") == 1 && !strings.HasPrefix(f, "@") && !strings.HasSuffix(f, "@") {
			out = append(out, mail.Address{Address: strings.ToLower(strings.Trim(f, `"'()`))})
		}
	}
	return out
}

// maxMsgID is the longest message id taken: what a header line may
// hold (RFC 5322: 998 characters). A longer one is no id any mail system
// keeps, and more than PostgreSQL's index takes (about 2.7 KB a key).
const maxMsgID = 998

// MsgIDs extracts message ids (without angle brackets) from a header
// value, leaving out any longer than maxMsgID.
func MsgIDs(v string) []string {
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
		if id := strings.TrimSpace(v[i+1 : i+j]); id != "" && len(id) <= maxMsgID && !strings.ContainsAny(id, " \t") {
			out = append(out, id)
		}
		v = v[i+j+1:]
	}
	if len(out) == 0 {
		// Some clients send bare ids.
		for _, f := range strings.Fields(v) {
			if id := strings.Trim(f, "<>,"); strings.Contains(f, "@") && len(id) <= maxMsgID {
				out = append(out, id)
			}
		}
	}
	return out
}

// plainText is the text of a message that is one part of plain ASCII
// text: no Content-Type or text/plain in UTF-8 or ASCII, sent as it is
// (no transfer encoding or 7bit/8bit), not a file (no
// Content-Disposition or Content-ID), all of it printable ASCII and tabs
// in lines ended the same way (CRLF, as SMTP carries mail, or LF), the
// header by an empty line, each field name right before its colon. Most
// mail a desk gets from people is such, and for it enmime would read the
// header a second time and copy the body three times to give the same
// text (TestPlainTextAsEnmime holds it to that). ok is false for any
// other message.
func (h topHeader) plainText(raw []byte) (text string, ok bool) {
	head := raw[:max(h.body, 0)]
	crlf := bytes.HasSuffix(head, []byte("\r\n\r\n"))
	if h.tooBig || h.repaired || h.spaced || !(crlf || bytes.HasSuffix(head, []byte("\n\n"))) || !plainLines(raw, crlf) {
		return "", false
	}
	var ctype, cte []byte
	for _, f := range h.fields {
		switch {
		case strings.EqualFold(f.name, "Content-Type"):
			if ctype != nil {
				return "", false
			}
			ctype = f.value
		case strings.EqualFold(f.name, "Content-Transfer-Encoding"):
			if cte != nil {
				return "", false
			}
			cte = f.value
		case strings.EqualFold(f.name, "Content-Disposition"), strings.EqualFold(f.name, "Content-ID"):
			return "", false // a file, or a part meant to be shown inline
		}
	}
	if ctype != nil && !plainTextType(string(ctype)) {
		return "", false
	}
	if cte != nil {
		switch strings.ToLower(strings.TrimSpace(string(cte))) {
		case "7bit", "8bit":
		default:
			return "", false
		}
	}
	return normText(string(raw[h.body:])), true
}

// plainLines reports raw all printable ASCII and tabs in lines that end
// in CRLF (crlf) or LF alone (!crlf), every one of them.
func plainLines(raw []byte, crlf bool) bool {
	for i, c := range raw {
		switch {
		case c == '\n':
			if crlf && (i == 0 || raw[i-1] != '\r') {
				return false
			}
		case c == '\r':
			if !crlf || i+1 == len(raw) || raw[i+1] != '\n' {
				return false
			}
		case (c < ' ' && c != '\t') || c >= 0x7f:
			return false
		}
	}
	return true
}

// plainTextType reports a Content-Type of text/plain with no parameter
// but a charset of UTF-8 or US-ASCII.
func plainTextType(v string) bool {
	mt, params, err := mime.ParseMediaType(v)
	if err != nil || mt != "text/plain" {
		return false
	}
	for k, v := range params {
		if k != "charset" || !(strings.EqualFold(v, "utf-8") || strings.EqualFold(v, "us-ascii")) {
			return false
		}
	}
	return true
}

// Two enmime parsers: charset detection costs more than the rest of
// parsing together, and cannot change text that decodes to plain ASCII.
var (
	quickParser = enmime.NewParser(enmime.DisableCharacterDetection(true), enmime.MaxStoredPartErrors(20),
		enmime.SetReadPartErrorPolicy(enmime.AllowCorruptTextPartErrorPolicy))
	detectParser = enmime.NewParser(enmime.MaxStoredPartErrors(20),
		enmime.SetReadPartErrorPolicy(enmime.AllowCorruptTextPartErrorPolicy))
)

func plainASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

func (in *Inbound) readBody(raw []byte) {
	env, err := quickParser.ReadEnvelope(bytes.NewReader(raw))
	if err == nil && !(plainASCII(env.Text) && plainASCII(env.HTML)) {
		env, err = detectParser.ReadEnvelope(bytes.NewReader(raw))
	}
	if err != nil {
		in.Notes = append(in.Notes, "MIME could not be parsed ("+strings.ToValidUTF8(err.Error(), "\uFFFD")+"); text taken from the raw message")
		in.Text = fallbackText(raw)
		return
	}
	for _, e := range env.Errors {
		in.Notes = append(in.Notes, "MIME problem: "+strings.ToValidUTF8(e.Error(), "\uFFFD"))
	}
	if htmlConvertedTwice(env.Root) {
		env.HTML, env.Text = string(env.Root.Content), "" // the text is made of it below
	}
	readUndeclared(env)
	in.Text = normText(bodyText(env))
	in.HTML = strings.ToValidUTF8(env.HTML, "\uFFFD")
	for _, a := range env.Attachments {
		if a.Disposition == "inline" {
			// An inline application/octet-stream part: enmime lists it
			// among the inlines too, where it is taken.
			continue
		}
		in.Attachments = append(in.Attachments, partOf(a, false, raw))
	}
	body := bodyParts(env)
	for _, a := range env.Inlines {
		if body[a] && a.FileName == "" {
			continue // the text or HTML read above, marked inline
		}
		in.Attachments = append(in.Attachments, partOf(a, true, raw))
	}
	for _, a := range env.OtherParts {
		if a.ContentType == "message/delivery-status" || a.ContentType == "message/global-delivery-status" {
			in.DeliveryStatus = strings.ToValidUTF8(string(a.Content), "\uFFFD")
			continue
		}
		if a.ContentType == "text/rfc822-headers" {
			continue
		}
		in.Attachments = append(in.Attachments, partOf(a, a.ContentID != "", raw))
	}
	if in.DeliveryStatus == "" && env.Root != nil {
		if ds := env.Root.BreadthMatchFirst(func(p *enmime.Part) bool {
			return strings.HasPrefix(p.ContentType, "message/delivery-status") || strings.HasPrefix(p.ContentType, "message/global-delivery-status")
		}); ds != nil {
			in.DeliveryStatus = strings.ToValidUTF8(string(ds.Content), "\uFFFD")
		}
	}
	in.ReturnedHeader = returnedHeader(env.Root)
	if strings.TrimSpace(in.Text) == "" {
		in.promoteUnnamedText(env)
	}
	if strings.TrimSpace(in.Text) == "" && strings.TrimSpace(in.HTML) != "" {
		// A text part of blank lines beside the HTML one: enmime turns
		// HTML into text only when there is no text at all.
		if text, err := html2text.FromString(in.HTML); err == nil {
			in.Text = normText(text)
		}
	}
	if strings.TrimSpace(in.Text) == "" && strings.TrimSpace(in.HTML) == "" && len(in.Attachments) == 0 {
		// Some broken messages leave enmime with nothing; keep what is readable.
		in.Text = fallbackText(raw)
	}
}

// readUndeclared reads the text parts that enmime left in bytes that are
// not UTF-8, their header naming no charset and its detector unsure (a
// short text in Latin-1 or windows-1252, as old mailers and scripts send
// it), as the header's 8-bit bytes are read (guessCharset: the charset
// detected when the detector is sure, else windows-1252, which maps every
// byte), instead of as U+FFFD for each letter outside ASCII. A part that
// names its charset keeps what enmime made of it.
func readUndeclared(env *enmime.Envelope) {
	parts := textParts(env.Root)
	if env.Root != nil && env.Root.ContentType == "text/plain" {
		parts = []*enmime.Part{env.Root}
	}
	for _, p := range parts {
		if p.Charset != "" || utf8.Valid(p.Content) {
			continue
		}
		if _, params, err := mime.ParseMediaType(p.Header.Get("Content-Type")); err == nil && params["charset"] != "" {
			continue
		}
		d, err := guessCharset(p.Content[:min(len(p.Content), 64<<10)], "").NewDecoder().Bytes(p.Content)
		if err != nil {
			continue
		}
		if len(parts) == 1 && env.Text == string(p.Content) {
			env.Text = string(d)
		}
		p.Content = d
	}
}

// htmlConvertedTwice reports whether enmime read root, a mail of HTML
// alone, into UTF-8 twice: its header names no charset, so enmime
// detects one and converts the part (root.Content is UTF-8 then); it
// then converts that text again as the HTML's meta tag says (Shift_JIS,
// windows-1252), which turns every character outside ASCII into others.
func htmlConvertedTwice(root *enmime.Part) bool {
	if root == nil || root.ContentType != "text/html" || root.Charset == "" {
		return false
	}
	_, params, err := mime.ParseMediaType(root.Header.Get("Content-Type"))
	return err != nil || params["charset"] == ""
}

// bodyParts are the parts of a multipart message enmime read as its text
// and HTML, picked as it picks them (textParts, and the first text/html
// part that is no attachment). enmime also lists those marked
// Content-Disposition inline among its inlines.
func bodyParts(env *enmime.Envelope) map[*enmime.Part]bool {
	root := env.Root
	if root == nil || !strings.HasPrefix(root.ContentType, "multipart/") {
		return nil
	}
	body := map[*enmime.Part]bool{}
	for _, p := range textParts(root) {
		body[p] = true
	}
	if p := root.DepthMatchFirst(func(p *enmime.Part) bool { return p.ContentType == "text/html" && p.Disposition != "attachment" }); p != nil {
		body[p] = true
	}
	return body
}

// textParts are the text/plain parts, none an attachment, enmime reads
// as a multipart message's text: the first of a multipart/alternative,
// every one of other multiparts, in order.
func textParts(root *enmime.Part) []*enmime.Part {
	if root == nil || !strings.HasPrefix(root.ContentType, "multipart/") {
		return nil
	}
	text := func(p *enmime.Part) bool { return p.ContentType == "text/plain" && p.Disposition != "attachment" }
	if root.ContentType == "multipart/alternative" {
		if p := root.BreadthMatchFirst(text); p != nil {
			return []*enmime.Part{p}
		}
		return nil
	}
	return root.DepthMatchAll(text)
}

// bodyText is enmime's text of the message with its text parts joined by
// an empty line. enmime joins them (text written before and after a
// picture, a list's footer) with a line "--", which reads as a signature
// delimiter: all but the first part were cut from the visible text.
func bodyText(env *enmime.Envelope) string {
	parts := textParts(env.Root)
	if len(parts) < 2 {
		return env.Text
	}
	texts := make([]string, len(parts))
	for i, p := range parts {
		texts[i] = string(p.Content)
		if i < len(parts)-1 {
			texts[i] = strings.TrimRight(texts[i], "\r\n")
		}
	}
	return strings.Join(texts, "\n\n")
}

// returnedHeader is the header of the message a delivery report returns,
// one unfolded field a line; "" when root is no report or returns none.
func returnedHeader(root *enmime.Part) string {
	if root == nil || root.ContentType != "multipart/report" {
		return ""
	}
	p := root.BreadthMatchFirst(func(p *enmime.Part) bool {
		switch p.ContentType {
		case "text/rfc822-headers", "message/rfc822", "message/global-headers", "message/global":
			return true
		}
		return false
	})
	if p == nil {
		return ""
	}
	var b strings.Builder
	for _, f := range readLenientHeader(p.Content, 1<<20).fields {
		b.WriteString(f.name + ": " + strings.ToValidUTF8(string(f.value), "\uFFFD") + "\n")
	}
	return b.String()
}

// promoteUnnamedText uses a part that has no name, no attachment
// disposition and a text (or no) type as the text body, when enmime filed
// it among the attachments (a part without Content-Type is text/plain).
func (in *Inbound) promoteUnnamedText(env *enmime.Envelope) {
	for _, list := range [][]*enmime.Part{env.Attachments, env.OtherParts, env.Inlines} {
		for _, a := range list {
			if a.FileName != "" || a.Disposition == "attachment" || (a.ContentType != "" && a.ContentType != "text/plain") {
				continue
			}
			text := normText(string(a.Content))
			if strings.TrimSpace(text) == "" {
				continue
			}
			in.Text = text
			for i, p := range in.Attachments {
				if bytes.Equal(p.Content, a.Content) && p.ContentType == a.ContentType {
					in.Attachments = append(in.Attachments[:i], in.Attachments[i+1:]...)
					break
				}
			}
			return
		}
	}
}

// normText makes body text valid UTF-8 with "\n" line ends; a carriage
// return left over from an encoded "=0D" before the line end is dropped.
func normText(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if !strings.Contains(s, "\r") {
		return s
	}
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.ReplaceAll(s, "\r\n", "\n")
	return strings.ReplaceAll(s, "\r", "\n")
}

// partOf is the file p of the message raw.
func partOf(p *enmime.Part, inline bool, raw []byte) Part {
	name := p.FileName
	if n, ok := charsetName(p.Header); ok {
		name = n
	} else if n, ok := rawName(p.Header, func() string { return cmp.Or(p.Charset, firstCharset(raw)) }); ok {
		name = n
	}
	name = strings.ToValidUTF8(rules.CleanHeader(name), "_")
	// A name is a name, never a path: "../../etc/passwd" is "passwd".
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	name = strings.TrimLeft(strings.TrimSpace(name), ".")
	if name == "" {
		ext := ""
		if exts, _ := mime.ExtensionsByType(p.ContentType); len(exts) > 0 {
			ext = exts[0]
		}
		name = "attachment" + ext
	}
	return Part{Filename: name, ContentType: p.ContentType, ContentID: strings.Trim(p.ContentID, "<>"), Inline: inline, Content: p.Content}
}

// maxFallbackText caps the text kept from a message that was not parsed.
const maxFallbackText = 1 << 20

// fallbackText returns the body of a raw message as text when MIME parsing
// gave up: the bytes after the header, made valid UTF-8, capped at 1 MiB.
func fallbackText(raw []byte) string {
	body := raw
	if i := bytes.Index(raw, []byte("\r\n\r\n")); i >= 0 {
		body = raw[i+4:]
	} else if i := bytes.Index(raw, []byte("\n\n")); i >= 0 {
		body = raw[i+2:]
	}
	return plainText(body)
}

// plainText is b as valid UTF-8 text with "\n" line ends, capped at 1 MiB.
func plainText(b []byte) string {
	if len(b) > maxFallbackText {
		b = b[:maxFallbackText]
	}
	return normText(string(b))
}

// HeaderRecipients returns the routing addresses a message names in
// Delivered-To, X-Original-To, To and Cc (in that order), for mail that
// arrives without an envelope (inject without -to, IMAP).
func HeaderRecipients(raw []byte, routes rules.Routes) []string {
	top := readLenientHeader(raw, 1<<20)
	h := addressFields(top.fields, top.charset(raw))
	var out []string
	seen := map[string]bool{}
	for _, k := range []string{"Delivered-To", "X-Original-To", "To", "Cc"} {
		for _, a := range parseAddrs(strings.Join(h[k], ", ")) {
			if !seen[a.Address] && routes.IsOwn(a.Address) {
				seen[a.Address] = true
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
