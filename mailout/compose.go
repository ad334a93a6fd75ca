// Package mailout sends mail: it composes messages with go-message, keeps
// them in the store's durable outbox, and delivers them to the relay with
// retries.
package mailout

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"mime"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"

	"ticketgate/rules"
)

// Mail is a message to compose. Every string that ends up in a header is
// cleaned of CR/LF first, so customer-supplied text (subjects, names) can
// never add header lines.
type Mail struct {
	From       mail.Address
	ReplyTo    *mail.Address
	To, Cc     []mail.Address
	Subject    string
	MessageID  string   // without angle brackets
	InReplyTo  string   // without angle brackets
	References []string // oldest first
	// Auto is the Auto-Submitted value for automatic mail ("auto-replied"
	// or "auto-generated"); "" for mail written by a person.
	Auto string
	// LoopTag, when set, is written as X-Loop so our own mail is recognised
	// if it comes back.
	LoopTag string
	// ThreadTopic is the conversation's base subject and ThreadKey what
	// identifies it (the ticket id), for Outlook's conversation view.
	ThreadTopic string
	ThreadKey   string
	Text        string
	Attachments []Attachment
	Date        time.Time
}

// Attachment is a file attached to outgoing mail.
type Attachment struct {
	Filename    string
	ContentType string
	ContentID   string // without angle brackets; "" for none
	Content     []byte
}

// NewMessageID returns a fresh Message-ID (without brackets) in domain:
// "tg.", the time in nanoseconds as 13 base-36 digits, "." and twelve
// random characters. Ids made later sort after earlier ones, so the
// store's index of Message-IDs takes ours at its end, not at a random
// place that costs a page of its own in every commit.
func NewMessageID(domain string) string {
	var b [9]byte
	_, _ = rand.Read(b[:])
	at := strconv.FormatInt(time.Now().UnixNano(), 36)
	return "tg." + strings.Repeat("0", max(0, 13-len(at))) + at + "." + strings.ToLower(base64.RawURLEncoding.EncodeToString(b[:])) + "@" + domain
}

func clean(a mail.Address) *mail.Address {
	return &mail.Address{Name: rules.CleanHeader(a.Name), Address: rules.CleanHeader(a.Address)}
}

func cleanList(l []mail.Address) []*mail.Address {
	out := make([]*mail.Address, len(l))
	for i, a := range l {
		out[i] = clean(a)
	}
	return out
}

// Compose writes m as an RFC 5322 message.
func Compose(m *Mail) ([]byte, error) {
	var h mail.Header
	date := m.Date
	if date.IsZero() {
		date = time.Now()
	}
	h.SetDate(date)
	h.SetAddressList("From", []*mail.Address{clean(m.From)})
	if m.ReplyTo != nil {
		h.SetAddressList("Reply-To", []*mail.Address{clean(*m.ReplyTo)})
	}
	h.SetAddressList("To", cleanList(m.To))
	if len(m.Cc) > 0 {
		h.SetAddressList("Cc", cleanList(m.Cc))
	}
	h.Set("Subject", mimeWord(rules.CleanHeader(m.Subject)))
	h.SetMessageID(rules.CleanHeader(m.MessageID))
	if m.InReplyTo != "" {
		h.SetMsgIDList("In-Reply-To", []string{rules.CleanHeader(m.InReplyTo)})
	}
	if refs := cleanIDs(m.References); len(refs) > 0 {
		h.SetMsgIDList("References", refs)
	}
	if m.Auto != "" {
		h.Set("Auto-Submitted", m.Auto)
		h.Set("X-Auto-Response-Suppress", "All")
		h.Set("Precedence", "auto_reply")
	}
	if m.LoopTag != "" {
		h.Set("X-Loop", rules.CleanHeader(m.LoopTag))
	}
	if m.ThreadTopic != "" {
		h.Set("Thread-Topic", mimeWord(rules.CleanHeader(m.ThreadTopic)))
		key := m.ThreadKey
		if key == "" {
			key = m.ThreadTopic
		}
		h.Set("Thread-Index", threadIndex(key, date, len(m.References)))
	}
	h.Set("MIME-Version", "1.0")
	var buf bytes.Buffer
	buf.Grow(len(m.Text) + 1024) // a header, and the text with CRLF line ends
	if err := writeBody(&buf, h, m); err != nil {
		return nil, fmt.Errorf("compose %q: %w", m.Subject, err)
	}
	return buf.Bytes(), nil
}

func cleanIDs(ids []string) []string {
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		if id = strings.Trim(rules.CleanHeader(id), "<> "); id != "" && !strings.Contains(id, " ") {
			out = append(out, id)
		}
	}
	return out
}

func writeBody(w io.Writer, h mail.Header, m *Mail) error {
	text := strings.ReplaceAll(m.Text, "\r\n", "\n")
	text = strings.ReplaceAll(text, "\n", "\r\n")
	if len(m.Attachments) == 0 {
		h.Set("Content-Type", "text/plain; charset=utf-8")
		enc := textEncoding(text)
		h.Set("Content-Transfer-Encoding", enc)
		if enc == "7bit" {
			// As it is: message.Writer would copy it a line at a time,
			// to wrap lines already known to be short.
			if !h.Has("Mime-Version") {
				h.Set("MIME-Version", "1.0")
			}
			if err := textproto.WriteHeader(w, h.Header.Header); err != nil {
				return err
			}
			_, err := io.WriteString(w, text)
			return err
		}
		mw, err := message.CreateWriter(w, h.Header)
		if err != nil {
			return err
		}
		if _, err := io.WriteString(mw, text); err != nil {
			return err
		}
		return mw.Close()
	}
	h.SetContentType("multipart/mixed", nil)
	mw, err := message.CreateWriter(w, h.Header)
	if err != nil {
		return err
	}
	if err := WriteParts(mw, text, m.Attachments); err != nil {
		return err
	}
	return mw.Close()
}

// textEncoding is the Content-Transfer-Encoding of text (CRLF line
// ends): 7bit when it is printable ASCII in lines of at most 78
// characters, as every mail system carries such text unchanged (and an
// encoder need not copy it byte by byte), else quoted-printable.
func textEncoding(text string) string {
	line := 0
	for i := 0; i < len(text); i++ {
		if c := text[i]; printable[c] {
			if line++; line > 78 {
				return "quoted-printable"
			}
		} else if c == '\r' && i+1 < len(text) && text[i+1] == '\n' {
			i, line = i+1, 0
		} else {
			return "quoted-printable"
		}
	}
	return "7bit"
}

// printable holds the bytes 7bit text is made of besides its line ends:
// printable ASCII and tab.
var printable = func() (t [256]bool) {
	for c := ' '; c <= '~'; c++ {
		t[c] = true
	}
	t['\t'] = true
	return t
}()

// WriteParts writes text and files as the parts of a multipart/mixed
// message: the text as UTF-8 (7bit or quoted-printable: textEncoding)
// with no Content-Disposition (a reader would otherwise list an "inline"
// text part among the files), each file base64-encoded with its name,
// type and Content-ID (an attached message in 7bit: RFC 2046 allows it
// no other encoding; a text file in UTF-8 labelled so). text must have
// CRLF line ends.
func WriteParts(mw *message.Writer, text string, files []Attachment) error {
	var th message.Header
	th.Set("Content-Type", "text/plain; charset=utf-8")
	th.Set("Content-Transfer-Encoding", textEncoding(text))
	tw, err := mw.CreatePart(th)
	if err != nil {
		return err
	}
	if _, err := io.WriteString(tw, text); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	for _, a := range files {
		ct := rules.CleanHeader(a.ContentType)
		if ct == "" {
			ct = "application/octet-stream"
		}
		enc, content := "base64", a.Content
		mt, params, err := mime.ParseMediaType(ct)
		switch {
		case err != nil:
		case mt == "message/rfc822":
			// RFC 2046 (5.2.1) allows a message no encoding but 7bit,
			// 8bit and binary: one in 7bit text goes as it is, any
			// other as a file of bytes.
			if c, ok := sevenBit(content); ok {
				enc, content = "7bit", c
			} else {
				ct = "application/octet-stream"
			}
		case strings.HasPrefix(mt, "text/") && params["charset"] == "" && utf8.Valid(content):
			// Text files come from mailin in UTF-8, whatever charset
			// they came in; without one a reader takes them for
			// US-ASCII (RFC 2046) and shows other text garbled.
			params["charset"] = "utf-8"
			ct = mime.FormatMediaType(mt, params)
		}
		var ah mail.AttachmentHeader
		ah.Set("Content-Type", ct)
		ah.Set("Content-Disposition", attachmentDisposition(rules.CleanHeader(a.Filename)))
		if a.ContentID != "" {
			ah.Set("Content-Id", "<"+rules.CleanHeader(a.ContentID)+">")
		}
		ah.Set("Content-Transfer-Encoding", enc)
		aw, err := mw.CreatePart(ah.Header)
		if err != nil {
			return fmt.Errorf("attachment %q: %w", a.Filename, err)
		}
		if _, err := aw.Write(content); err != nil {
			return fmt.Errorf("attachment %q: %w", a.Filename, err)
		}
		if err := aw.Close(); err != nil {
			return err
		}
	}
	return nil
}

// sevenBit is b with CRLF line ends when it is 7bit text: ASCII
// without NUL or a lone CR, in lines of at most 998 octets, each ended
// by LF or CRLF but perhaps the last.
func sevenBit(b []byte) ([]byte, bool) {
	out := make([]byte, 0, len(b)+len(b)/32)
	line := 0
	for i, c := range b {
		switch {
		case c == '\n':
			if i == 0 || b[i-1] != '\r' {
				out = append(out, '\r')
			}
			line = 0
		case c == '\r':
			if i+1 == len(b) || b[i+1] != '\n' {
				return nil, false
			}
		case c == 0 || c >= 0x80:
			return nil, false
		default:
			if line++; line > 998 {
				return nil, false
			}
		}
		out = append(out, c)
	}
	return out, true
}

// attachmentDisposition is the Content-Disposition of a file called
// name. A name that is not plain ASCII is written as RFC 2231 has it
// (the charset, then the name percent-encoded), in continuations of at
// most 45 characters when longer, so that the header folds into short
// lines at their spaces. go-message would write RFC 2047 words, which
// are not allowed in a parameter: readers that keep to the standard
// show them as they are. A plain name with a word longer than a header
// line may be (998 octets) goes the same way: go-message would cut the
// word with a fold, and the name would read back changed, or not at all.
func attachmentDisposition(name string) string {
	const encoded = "attachment; filename*=utf-8''"
	d := mime.FormatMediaType("attachment", map[string]string{"filename": name})
	v, ok := strings.CutPrefix(d, encoded)
	if !ok && len(`Content-Disposition: attachment; filename=""`)+longestWord(name) > 998 {
		v, ok = percentEncoded(name), true
	}
	if !ok || len(d) <= 76 {
		return d
	}
	var b strings.Builder
	b.WriteString("attachment")
	for i := 0; v != ""; i++ {
		n := min(len(v), 45)
		if j := strings.LastIndexByte(v[:n], '%'); n < len(v) && j > n-3 {
			n = j // a %XX escape stays whole
		}
		fmt.Fprintf(&b, "; filename*%d*=", i)
		if i == 0 {
			b.WriteString("utf-8''")
		}
		b.WriteString(v[:n])
		v = v[n:]
	}
	return b.String()
}

// longestWord is the length of the longest run of s without a space or tab.
func longestWord(s string) int {
	n := 0
	for _, w := range strings.Fields(s) {
		n = max(n, len(w))
	}
	return n
}

// percentEncoded is s as an RFC 2231 value is written after its
// charset: each byte that is not an attribute-char as %XX.
func percentEncoded(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c > ' ' && c < 0x7f && !strings.ContainsRune(`*'%()<>@,;:\"/[]?=`, rune(c)) {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// mimeWord encodes s as RFC 2047 words when it is not plain ASCII, or
// holds "=?", which a reader would take for the start of such a word
// and decode, or a word longer than a header line may be (998 octets),
// which go-message would cut with a fold that adds a space.
func mimeWord(s string) string {
	if strings.Contains(s, "=?") || len("Thread-Topic: ")+longestWord(s) > 998 {
		return bWords(s)
	}
	for _, r := range s {
		if r > 0x7e {
			return mimeQ(s)
		}
	}
	return s
}

// bWords is s as RFC 2047 B-encoded UTF-8 words of at most 60
// characters, each of whole characters, separated by spaces (which a
// reader drops between two words).
func bWords(s string) string {
	var b strings.Builder
	for s != "" {
		n := len(s)
		if n > 36 {
			n = 36
			for n > 32 && !utf8.RuneStart(s[n]) {
				n--
			}
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString("=?utf-8?b?" + base64.StdEncoding.EncodeToString([]byte(s[:n])) + "?=")
		s = s[n:]
	}
	return b.String()
}

func mimeQ(s string) string {
	var h message.Header
	h.SetText("X", s)
	v := h.Get("X")
	return v
}

// threadIndex builds an Outlook Thread-Index: a 22-byte header block derived
// from the conversation key (the ticket id: every mail of one ticket lands in
// one Outlook conversation, two tickets with the same subject do not) plus
// one 5-byte child block per earlier message.
func threadIndex(key string, date time.Time, depth int) string {
	sum := sha256.Sum256([]byte(strings.ToLower(key)))
	b := make([]byte, 0, 22+5*depth)
	var ft [8]byte
	// FILETIME of a fixed instant keeps the header block stable per topic.
	binary.BigEndian.PutUint64(ft[:], 0x01D0000000000000)
	b = append(b, ft[:6]...)
	b = append(b, sum[:16]...)
	for i := 0; i < depth && i < 50; i++ {
		b = append(b, byte(i), sum[16+i%16], 0, 0, byte(date.Unix()>>uint(i%4)))
	}
	return base64.StdEncoding.EncodeToString(b)
}

// ContentHash is a short stable hash of content, for synthetic ids.
func ContentHash(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:8])
}
