// Package mailin brings mail in: the SMTP/LMTP listener, the IMAP poller and
// stdin injection all hand raw messages to a Pipeline, which parses them
// into an Inbound value, asks rules what to do, and commits the outcome to
// the store before the sender is told the message was accepted.
package mailin

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"mime"
	"net/mail"
	"net/textproto"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gogs/chardet"
	"github.com/jhillyerd/enmime/v2"
	"github.com/jhillyerd/enmime/v2/mediatype"
	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/htmlindex"

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
		} else {
			in.readBody(src)
		}
	}
	if in.MessageID == "" {
		sum := sha256.Sum256(raw)
		in.MessageID = "synthetic." + hex.EncodeToString(sum[:12]) + "@ticketgate.invalid"
		in.Notes = append(in.Notes, "message had no Message-ID; a stable one was derived from its content")
	}
	return in, nil
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

// headerField is one top-level header field as found, unfolded, value
// still in its raw bytes.
type headerField struct {
	name  string
	value []byte
}

// topHeader is the top-level header read leniently.
type topHeader struct {
	fields   []headerField
	body     int // offset of the body in raw
	notes    []string
	repaired bool // the header needed forgiveness a strict reader would refuse
	tooBig   bool
}

// readLenientHeader reads the top-level header the way a person would: an
// mbox "From " line and stray lines before the first field are skipped,
// unindented continuation lines are joined to the field before them, and a
// header that runs straight into a MIME boundary ends there. It reads at
// most max bytes.
func readLenientHeader(raw []byte, max int) topHeader {
	h := topHeader{body: -1}
	pos := 0
	if bytes.HasPrefix(raw, []byte("From ")) && !bytes.HasPrefix(bytes.TrimLeft(raw[5:], " \t"), []byte(":")) {
		_, pos = nextLine(raw, 0)
		h.repaired = true
	}
	start, delim := pos, -2 // -2: not looked for yet
	for pos < len(raw) {
		if pos-start > max {
			h.tooBig = true
			return h
		}
		line, next := nextLine(raw, pos)
		switch {
		case len(line) == 0:
			h.body = next
			return h
		case line[0] == ' ' || line[0] == '\t':
			if len(h.fields) > 0 {
				last := &h.fields[len(h.fields)-1]
				last.value = append(last.value, line...)
				pos = next
				continue
			}
			line = bytes.TrimLeft(line, " \t")
			h.repaired = true
			h.notes = appendOnce(h.notes, "the header started with white space")
		}
		if name, value, ok := fieldLine(line); ok {
			h.fields = append(h.fields, headerField{name: name, value: value})
			pos = next
			continue
		}
		h.repaired = true
		if len(h.fields) == 0 {
			h.notes = appendOnce(h.notes, "lines before the first header field were skipped")
			pos = next
			continue
		}
		if delim == -2 {
			delim = delimiterAhead(raw, pos, h.boundary())
		}
		if delim >= 0 {
			h.notes = appendOnce(h.notes, "the header was not ended by an empty line")
			h.body = pos
			return h
		}
		last := &h.fields[len(h.fields)-1]
		last.value = append(append(last.value, ' '), line...)
		h.notes = appendOnce(h.notes, "header lines without indentation were read as continuations")
		pos = next
	}
	h.body = len(raw)
	return h
}

// nextLine returns the line at pos without its line ending, and the offset
// of the next line.
func nextLine(raw []byte, pos int) ([]byte, int) {
	i := bytes.IndexByte(raw[pos:], '\n')
	if i < 0 {
		return bytes.TrimSuffix(raw[pos:], []byte("\r")), len(raw)
	}
	return bytes.TrimSuffix(raw[pos:pos+i], []byte("\r")), pos + i + 1
}

// fieldLine splits "Name: value". Names are printable ASCII; white space
// before the colon is forgiven.
func fieldLine(line []byte) (string, []byte, bool) {
	i := bytes.IndexByte(line, ':')
	if i <= 0 {
		return "", nil, false
	}
	name := bytes.TrimRight(line[:i], " \t")
	if len(name) == 0 {
		return "", nil, false
	}
	for _, c := range name {
		if c <= ' ' || c >= 0x7f {
			return "", nil, false
		}
	}
	value := bytes.TrimLeft(line[i+1:], " \t")
	return string(name), append([]byte(nil), value...), true
}

// boundary is the multipart boundary named by the fields read so far.
func (h *topHeader) boundary() string {
	for _, f := range h.fields {
		if strings.EqualFold(f.name, "Content-Type") {
			if mt, params, err := mime.ParseMediaType(string(f.value)); err == nil && strings.HasPrefix(mt, "multipart/") {
				return params["boundary"]
			}
		}
	}
	return ""
}

// delimiterAhead returns the offset of the first "--boundary" line from pos
// on, before an empty line, or -1.
func delimiterAhead(raw []byte, pos int, boundary string) int {
	if boundary == "" {
		return -1
	}
	for pos < len(raw) {
		line, next := nextLine(raw, pos)
		if len(line) == 0 {
			return -1
		}
		if isDelimiter(line, boundary) != 0 {
			return pos
		}
		pos = next
	}
	return -1
}

func appendOnce(list []string, s string) []string {
	if slicesContains(list, s) {
		return list
	}
	return append(list, s)
}

// rebuild writes the header as read, one field per line, followed by the
// original body.
func (h *topHeader) rebuild(raw []byte) []byte {
	var b bytes.Buffer
	for _, f := range h.fields {
		b.WriteString(f.name)
		b.WriteString(": ")
		b.Write(f.value)
		b.WriteString("\r\n")
	}
	b.WriteString("\r\n")
	if h.body >= 0 && h.body < len(raw) {
		b.Write(raw[h.body:])
	}
	return b.Bytes()
}

// charset guesses the charset of raw 8-bit bytes in the header: detected
// from those bytes when a detector is confident, else the charset the body
// declares, else windows-1252 (which maps every byte).
func (h *topHeader) charset(raw []byte) func() encoding.Encoding {
	var enc encoding.Encoding
	return func() encoding.Encoding {
		if enc != nil {
			return enc
		}
		var sample []byte
		declared := ""
		for _, f := range h.fields {
			if !utf8.Valid(f.value) {
				sample = append(append(sample, f.value...), '\n')
			}
			if strings.EqualFold(f.name, "Content-Type") {
				if _, params, err := mime.ParseMediaType(string(f.value)); err == nil {
					declared = params["charset"]
				}
			}
		}
		if declared == "" {
			declared = firstCharset(raw)
		}
		enc = guessCharset(sample, declared)
		return enc
	}
}

// firstCharset is the first charset parameter in the first 64 KiB of the
// message, the best hint for a multipart message's header.
func firstCharset(raw []byte) string {
	if len(raw) > 64<<10 {
		raw = raw[:64<<10]
	}
	// ASCII-only lower case keeps offsets: bytes.ToLower would widen
	// invalid UTF-8.
	lower := make([]byte, len(raw))
	for i, c := range raw {
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		lower[i] = c
	}
	i := bytes.Index(lower, []byte("charset="))
	if i < 0 {
		return ""
	}
	v := raw[i+len("charset="):]
	v = bytes.TrimLeft(v, `"'`)
	end := bytes.IndexAny(v, "\"'; \t\r\n")
	if end >= 0 {
		v = v[:end]
	}
	return string(v)
}

// guessCharset picks the charset of sample: the declared multi-byte
// charset when it fits, else the detector's answer when it is confident,
// else its best answer in the language of the declared charset, else the
// declared charset, else windows-1252.
func guessCharset(sample []byte, declared string) encoding.Encoding {
	lang := charsetLanguage(declared)
	if lang != "" {
		// A multi-byte charset the body declares wins when it reads the
		// header without a single undecodable byte.
		if e, err := htmlindex.Get(declared); err == nil {
			if d, err := e.NewDecoder().Bytes(sample); err == nil && !bytes.ContainsRune(d, utf8.RuneError) {
				return e
			}
		}
	}
	results, _ := chardet.NewTextDetector().DetectAll(sample)
	for _, confident := range []bool{true, false} {
		for _, r := range results {
			if (confident && r.Confidence >= 50) || (!confident && lang != "" && r.Language == lang) {
				if e, err := htmlindex.Get(r.Charset); err == nil {
					return e
				}
			}
		}
	}
	if e, err := htmlindex.Get(declared); err == nil && declared != "" && !isASCII(declared) {
		return e
	}
	return charmap.Windows1252
}

// charsetLanguage is the language a multi-byte charset is used for.
func charsetLanguage(charset string) string {
	c := strings.ToLower(charset)
	switch {
	case strings.Contains(c, "jp") || strings.Contains(c, "jis"):
		return "ja"
	case strings.HasPrefix(c, "gb") || strings.HasPrefix(c, "big5") || strings.HasPrefix(c, "hz"):
		return "zh"
	case strings.Contains(c, "kr") || strings.HasPrefix(c, "ks_c"):
		return "ko"
	case strings.HasPrefix(c, "koi8") || c == "windows-1251" || c == "iso-8859-5":
		return "ru"
	}
	return ""
}

func isASCII(charset string) bool {
	c := strings.ToLower(charset)
	return c == "us-ascii" || c == "ascii" || c == "utf-8" || c == "utf8"
}

// decodeFields turns raw fields into a canonical header map: raw 8-bit
// bytes decoded by the guessed charset, RFC 2047 words decoded, the result
// always valid UTF-8.
func decodeFields(fields []headerField, guess func() encoding.Encoding) rules.Header {
	return readFields(fields, guess, true)
}

// addressFields is decodeFields without the RFC 2047 step, for address
// lists: an encoded word may only ever be a display name, so decoding it
// before parsing would let "=?utf-8?q?x=40evil?=" pose as an address.
func addressFields(fields []headerField, guess func() encoding.Encoding) rules.Header {
	return readFields(fields, guess, false)
}

func readFields(fields []headerField, guess func() encoding.Encoding, words bool) rules.Header {
	out := rules.Header{}
	for _, f := range fields {
		v := f.value
		if !utf8.Valid(v) {
			if d, err := guess().NewDecoder().Bytes(v); err == nil {
				v = d
			}
		}
		text := string(v)
		if words {
			text = decodeWords(text)
		}
		k := textproto.CanonicalMIMEHeaderKey(f.name)
		out[k] = append(out[k], strings.ToValidUTF8(text, "\uFFFD"))
	}
	return out
}

var encodedWord = regexp.MustCompile(`=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=`)

// decodeWords decodes RFC 2047 encoded words one by one, so that one
// broken word does not keep the others from being read. A word in an
// unknown charset is read as UTF-8 when it is; otherwise it stays as sent.
func decodeWords(v string) string {
	if !strings.Contains(v, "=?") {
		return v
	}
	if d := enmime.DecodeRFC2047(v); !strings.Contains(d, "=?") {
		return d
	}
	var b strings.Builder
	last, prevWord := 0, false
	for _, m := range encodedWord.FindAllStringIndex(v, -1) {
		between := v[last:m[0]]
		if !(prevWord && strings.TrimSpace(between) == "") {
			b.WriteString(between) // white space between two words is dropped
		}
		b.WriteString(decodeWord(v[m[0]:m[1]]))
		last, prevWord = m[1], true
	}
	b.WriteString(v[last:])
	return b.String()
}

func decodeWord(w string) string {
	if d := enmime.DecodeRFC2047(w); d != w {
		return d
	}
	parts := strings.SplitN(w[2:len(w)-2], "?", 3)
	if len(parts) != 3 {
		return w
	}
	if d := enmime.DecodeRFC2047("=?utf-8?" + parts[1] + "?" + parts[2] + "?="); d != w && utf8.ValidString(d) && !strings.HasPrefix(d, "=?") {
		return d
	}
	return w
}

func first(h rules.Header, k string) string {
	if v := h[k]; len(v) > 0 {
		return strings.TrimSpace(v[0])
	}
	return ""
}

// oneLine makes a header value fit for display: control characters and
// runs of any white space become one space.
func oneLine(v string) string {
	return strings.Join(strings.Fields(rules.CleanHeader(v)), " ")
}

// fillHeaders reads the fields of h; addresses come from addrs, the same
// fields with encoded words left for the address parser.
func (in *Inbound) fillHeaders(h, addrs rules.Header) {
	in.Subject = oneLine(first(h, "Subject"))
	for _, f := range addrs["From"] {
		if list := parseAddrs(f); len(list) > 0 {
			in.From = list[0]
			break
		}
	}
	switch {
	case in.From.Address == "" && first(h, "From") != "":
		in.Notes = append(in.Notes, "From header could not be read: "+oneLine(first(h, "From")))
	case in.From.Address == "":
		in.Notes = append(in.Notes, "message has no From header")
	}
	in.From.Name = oneLine(in.From.Name)
	for _, a := range parseAddrs(strings.Join(addrs["To"], ", ")) {
		in.To = append(in.To, a.Address)
	}
	for _, a := range parseAddrs(strings.Join(addrs["Cc"], ", ")) {
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
		in.Notes = append(in.Notes, "MIME could not be parsed ("+err.Error()+"); text taken from the raw message")
		in.Text = fallbackText(raw)
		return
	}
	for _, e := range env.Errors {
		in.Notes = append(in.Notes, "MIME problem: "+strings.ToValidUTF8(e.Error(), "\uFFFD"))
	}
	in.Text = normText(env.Text)
	in.HTML = strings.ToValidUTF8(env.HTML, "\uFFFD")
	for _, a := range env.Attachments {
		in.Attachments = append(in.Attachments, partOf(a, false))
	}
	for _, a := range env.Inlines {
		in.Attachments = append(in.Attachments, partOf(a, true))
	}
	for _, a := range env.OtherParts {
		if a.ContentType == "message/delivery-status" || a.ContentType == "message/global-delivery-status" {
			in.DeliveryStatus = strings.ToValidUTF8(string(a.Content), "\uFFFD")
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
			in.DeliveryStatus = strings.ToValidUTF8(string(ds.Content), "\uFFFD")
		}
	}
	if strings.TrimSpace(in.Text) == "" {
		in.promoteUnnamedText(env)
	}
	if strings.TrimSpace(in.Text) == "" && strings.TrimSpace(in.HTML) == "" && len(in.Attachments) == 0 {
		// Some broken messages leave enmime with nothing; keep what is readable.
		in.Text = fallbackText(raw)
	}
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

func partOf(p *enmime.Part, inline bool) Part {
	name := strings.ToValidUTF8(rules.CleanHeader(p.FileName), "_")
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

// checkStructure scans the message once, line by line, following the
// multipart boundaries the way enmime will, and reports the first
// structural limit the message breaks, or "". It keeps no bodies: memory
// is the boundary stack and one Content-Type value.
func checkStructure(raw []byte, lim Limits) string {
	s := structScan{lim: lim, inHeader: true, top: true}
	for pos := 0; pos < len(raw); {
		line, next := nextLine(raw, pos)
		if msg := s.line(line, next-pos); msg != "" {
			return msg
		}
		pos = next
	}
	return ""
}

type structScan struct {
	lim      Limits
	stack    []string // open multipart boundaries, outermost first
	parts    int
	top      bool // reading the top-level header
	inHeader bool
	inCtype  bool
	hdrBytes int
	ctype    []byte
}

func (s *structScan) line(line []byte, n int) string {
	if len(s.stack) > 0 && bytes.Contains(line, []byte("--")) {
		for i := len(s.stack) - 1; i >= 0; i-- {
			switch isDelimiter(line, s.stack[i]) {
			case 1:
				s.stack = s.stack[:i+1]
				s.parts++
				if s.parts > s.lim.MaxParts {
					return fmt.Sprintf("more than %d MIME parts", s.lim.MaxParts)
				}
				s.inHeader, s.inCtype, s.hdrBytes, s.ctype = true, false, 0, s.ctype[:0]
				return ""
			case 2:
				s.stack = s.stack[:i]
				s.inHeader = false
				return ""
			case 3:
				s.parts++
				if s.parts > s.lim.MaxParts {
					return fmt.Sprintf("more than %d MIME parts", s.lim.MaxParts)
				}
			}
		}
	}
	if !s.inHeader {
		return ""
	}
	s.hdrBytes += n
	if s.hdrBytes > s.lim.MaxHeaderBytes {
		return fmt.Sprintf("a header is larger than %d bytes", s.lim.MaxHeaderBytes)
	}
	switch {
	case len(line) == 0:
		s.inHeader = false
		if b := s.boundary(); b != "" {
			s.stack = append(s.stack, b)
			if len(s.stack) > s.lim.MaxDepth {
				return fmt.Sprintf("MIME nesting deeper than %d", s.lim.MaxDepth)
			}
		}
		s.top = false
	case line[0] == ' ' || line[0] == '\t':
		if s.inCtype {
			s.ctype = append(s.ctype, line...)
		}
	case len(s.ctype) == 0 && len(line) >= 13 && bytes.EqualFold(line[:13], []byte("content-type:")):
		s.inCtype = true
		s.ctype = append(s.ctype, ' ')
		s.ctype = append(s.ctype, line[13:]...)
	default:
		s.inCtype = false
	}
	return ""
}

// boundary is the boundary of the header just read if enmime will treat
// the part as multipart: at the top only multipart types, below any type
// but text/plain and text/html that names a boundary.
func (s *structScan) boundary() string {
	if len(s.ctype) == 0 {
		return ""
	}
	mt, params, _, _ := mediatype.Parse(string(s.ctype))
	mt = strings.ToLower(mt)
	if s.top && !strings.HasPrefix(mt, "multipart/") {
		return ""
	}
	if mt == "text/plain" || mt == "text/html" {
		return ""
	}
	return params["boundary"]
}

// isDelimiter reports 1 for a "--boundary" delimiter line, 2 for the
// closing "--boundary--", 3 for a delimiter later in the line, 0
// otherwise.
func isDelimiter(line []byte, boundary string) int {
	i := bytes.Index(line, []byte("--"+boundary))
	if i < 0 {
		return 0
	}
	if i > 0 {
		// enmime only splits at a line start, but counts any line that
		// holds a delimiter while it looks for the first one.
		return 3
	}
	rest := line[i+2+len(boundary):]
	if bytes.HasPrefix(rest, []byte("--")) {
		return 2
	}
	if len(rest) == 0 || rest[0] == ' ' || rest[0] == '\t' || rest[0] == '\r' || rest[0] == '\v' || rest[0] == '\f' {
		return 1
	}
	return 0
}

// HeaderRecipients returns the routing addresses a message names in
// Delivered-To, X-Original-To, To and Cc (in that order), for mail that
// arrives without an envelope (inject without -to, IMAP).
func HeaderRecipients(raw []byte, routes rules.Routes) []string {
	top := readLenientHeader(raw, 1<<20)
	h := addressFields(top.fields, top.charset(raw))
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
