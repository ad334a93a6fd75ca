package mailin

import (
	"bytes"
	"mime"
	"net/textproto"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/gogs/chardet"
	"github.com/jhillyerd/enmime/v2"
	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/htmlindex"
	"golang.org/x/text/encoding/japanese"

	"ticketgate/rules"
)

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
	// spaced: a field name was followed by white space before its colon,
	// which enmime reads its own way (and may note): not plain text.
	spaced bool
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
			h.spaced = h.spaced || line[len(name)] != ':'
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
		} else if jisEscaped(v) {
			if d, err := japanese.ISO2022JP.NewDecoder().Bytes(v); err == nil {
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

// jisEscaped reports a value in raw ISO-2022-JP, as older Japanese mail
// programs write a header: 7-bit bytes, so valid UTF-8, with the escape
// sequences that switch to JIS X 0208 ("ESC $ B", "ESC $ @").
func jisEscaped(v []byte) bool {
	return bytes.Contains(v, []byte("\x1b$B")) || bytes.Contains(v, []byte("\x1b$@"))
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
