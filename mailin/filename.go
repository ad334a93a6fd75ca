package mailin

import (
	"net/textproto"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/jhillyerd/enmime/v2/mediatype"
	"golang.org/x/text/encoding/htmlindex"
)

// charsetName reads the file name of a part whose header gives it in
// RFC 2231 form in a charset other than UTF-8 or US-ASCII, once or
// continued ("filename*=iso-8859-1'de'Gr%FC%DFe.txt", "filename*0*=...;
// filename*1*=..."), as mutt writes a name that fits ISO-8859-1.
// mime.ParseMediaType, and so enmime, drops such a name or keeps only its
// continued pieces, undecoded. ok is false when the header has no such name.
func charsetName(h textproto.MIMEHeader) (name string, ok bool) {
	if name, ok := charsetParam(h.Get("Content-Disposition"), "filename"); ok {
		return name, true
	}
	return charsetParam(h.Get("Content-Type"), "name")
}

// rawName reads the file name of a part whose header writes it in raw
// 8-bit bytes (Foxmail and others do, in the message's charset), as the
// top-level header is read: in the charset guessed for those bytes, the
// one the message declares first (declared) the likeliest. enmime makes
// such bytes U+FFFD. ok is false when the name is not in raw 8-bit bytes.
func rawName(h textproto.MIMEHeader, declared func() string) (name string, ok bool) {
	for _, f := range []struct{ field, param string }{{"Content-Disposition", "filename"}, {"Content-Type", "name"}} {
		v := h.Get(f.field)
		if utf8.ValidString(v) {
			continue
		}
		d, err := guessCharset([]byte(v), declared()).NewDecoder().String(v)
		if err != nil {
			continue
		}
		// mediatype.Parse writes a non-ASCII value in encoded words.
		if _, params, _, err := mediatype.Parse(d); err == nil && params[f.param] != "" {
			return decodeWords(params[f.param]), true
		}
	}
	return "", false
}

// charsetParam decodes the RFC 2231 parameter param of the header value v
// when it names a charset other than UTF-8 or US-ASCII.
func charsetParam(v, param string) (string, bool) {
	pieces := map[int]string{}
	encoded := map[int]bool{}
	for _, p := range strings.Split(v, ";") {
		key, val, found := strings.Cut(strings.TrimSpace(p), "=")
		key = strings.ToLower(strings.TrimSpace(key))
		if !found || !strings.HasPrefix(key, param+"*") {
			continue
		}
		rest := key[len(param)+1:] // "" (name*=), "0*" (name*0*=) or "1" (name*1=)
		enc := rest == "" || strings.HasSuffix(rest, "*")
		n := 0
		if rest = strings.TrimSuffix(rest, "*"); rest != "" {
			var err error
			if n, err = strconv.Atoi(rest); err != nil || n < 0 || n > 999 {
				continue
			}
		}
		pieces[n], encoded[n] = strings.Trim(strings.TrimSpace(val), `"`), enc
	}
	first, ok := pieces[0]
	if !ok || !encoded[0] {
		return "", false
	}
	charset, rest, ok := strings.Cut(first, "'")
	if !ok {
		return "", false
	}
	if _, value, ok := strings.Cut(rest, "'"); ok {
		pieces[0] = value
	} else {
		return "", false
	}
	switch strings.ToLower(charset) {
	case "", "utf-8", "us-ascii":
		return "", false
	}
	var raw []byte
	for n := 0; ; n++ {
		piece, ok := pieces[n]
		if !ok {
			break
		}
		if encoded[n] {
			piece = unescapePercent(piece)
		}
		raw = append(raw, piece...)
	}
	if enc, err := htmlindex.Get(charset); err == nil {
		if d, err := enc.NewDecoder().Bytes(raw); err == nil {
			return string(d), true
		}
	}
	if utf8.Valid(raw) {
		return string(raw), true
	}
	return strings.ToValidUTF8(string(raw), "\uFFFD"), true
}

// unescapePercent decodes %XX escapes; a malformed one stays as written.
func unescapePercent(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+3], 16, 8); err == nil {
				b.WriteByte(byte(v))
				i += 2
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
