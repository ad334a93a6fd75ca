package mailout

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/mail"
	"slices"
	"strings"
	"sync"
	"text/template/parse"
	"time"

	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/s2"

	"ticketgate/store"
	"ticketgate/store/binrec"
)

// ErrCarriedGone is returned by OutboxMail for an entry whose carried
// message is no longer on its ticket as it was when the mail was queued:
// gone, or erased (its sender, text or files changed). Such a mail is not
// sent.
var ErrCarriedGone = errors.New("the message it carries is gone or was erased")

// draft is the outbox's copy of a mail that carries a stored message
// (store.OutMail.Carries): the mail without the message's text and files,
// its text split where the message's text goes. It is kept as
// encodeDraft writes it (before that: as JSON, Mail's fields under their
// Go names).
type draft struct {
	Mail   Mail   `json:"mail"`
	Before string `json:"before"`
	After  string `json:"after"`
	// From and TextSHA256 are the message's sender and the SHA-256 of
	// its text when the mail was queued.
	From       string `json:"from"`
	TextSHA256 string `json:"text_sha256"`
}

// carriedText is the text of m a mail carrying it shows: its visible text,
// trimmed.
func carriedText(m *store.Message) string { return strings.TrimSpace(m.VisibleText) }

// textSum is the SHA-256 of s in hex. s is hashed a piece at a time:
// sha256.Sum256([]byte(s)) would copy the whole text first.
func textSum(s string) string {
	h := sha256.New()
	var piece [512]byte
	for len(s) > 0 {
		n := copy(piece[:], s)
		h.Write(piece[:n])
		s = s[n:]
	}
	return hex.EncodeToString(h.Sum(nil))
}

// textMark stands for the carried text while the template renders.
const textMark = "\x00carried text\x00"

// carry composes o, which carries o.Carries, as the draft the outbox keeps
// instead of the whole mail, and returns the mail (without its text), the
// draft, and the text the mail will have before and after the carried
// text. The mail is nil when it cannot:
// the message has no text, or o's template does anything with its Text
// but print it once as it is; o is then composed whole.
func (d *Mailer) carry(t *store.Ticket, o Out, to []mail.Address, now time.Time) (m *Mail, raw []byte, before, after string, err error) {
	text := carriedText(o.Carries)
	if text == "" || o.Template == "" || !d.Templates.printsPlain(o.Template, "Text") {
		return nil, nil, "", "", nil
	}
	o.Data = withValue(o.Data, "Text", textMark)
	o.Attachments = nil
	m, rendered, err := d.compose(t, o, to, now)
	if err != nil || strings.Count(rendered, textMark) != 1 {
		return nil, nil, "", "", err
	}
	before, after, _ = strings.Cut(rendered, textMark)
	m.Text = ""
	raw, err = encodeDraft(draft{Mail: *m, Before: before, After: after, From: o.Carries.From, TextSHA256: textSum(text)})
	if err != nil || raw == nil {
		return nil, nil, "", "", err
	}
	return m, raw, before, after, nil
}

// draftDeflated begins a draft as encodeDraft writes it. A draft queued
// before is JSON, and begins with '{'.
const draftDeflated = 4

// mailDeflated begins a whole mail kept deflated in the outbox (a mail
// composed before the transaction: Prepare). A mail kept as it is begins
// with a header field, never with this byte.
const mailDeflated = 5

// draftPacked and mailPacked begin a draft and a whole mail kept packed
// (see pack): what this release writes. draftDeflated and mailDeflated
// are still read.
const (
	draftPacked = 6
	mailPacked  = 7
)

// maxDraft bounds a draft or mail unpacked: far above any notification's
// text without the message it carries, and above any mail Prepare
// packs.
const maxDraft = 1 << 20

// encodeDraft is d as the outbox keeps it: draftPacked, then the fields
// appendDraft writes, packed. Not JSON: the text, most of the draft,
// was escaped on the way in and scanned on every send. It is nil for a
// draft larger than unpack reads back (maxDraft): such a mail is kept
// whole.
func encodeDraft(d draft) ([]byte, error) {
	m := &d.Mail
	if len(m.Attachments) > 0 || m.Text != "" {
		return nil, errors.New("a draft holds no text or files of its own")
	}
	b := appendDraft(make([]byte, 0, 256+len(d.Before)+len(d.After)+len(m.Subject)+len(m.ThreadTopic)), d)
	if len(b) > maxDraft {
		return nil, nil
	}
	return pack(draftPacked, b), nil
}

// outboxDictBytes are an auto-reply and a notification draft as the
// built-in templates made them on 2026-12-06: most of what the outbox
// keeps is the same text each time. NEVER CHANGE THE FILE: mail queued
// by earlier releases is unpacked with it (TestOutboxDictionaryIsFrozen).
// A new dictionary needs leading bytes of its own.
//
//go:embed outbox.dict
var outboxDictBytes []byte

// outboxDict is outboxDictBytes as s2's dictionary, its first repeat
// offset fixed (not left to the library to choose) so that it reads the
// same in every release.
var outboxDict = s2.MakeDictManual(outboxDictBytes, 0)

// pack is b compressed with s2 and outboxDict after the byte first. s2,
// with the dictionary: a built-in notification's draft of 1,390 bytes
// keeps in about 90 (deflate: 740), and unpacks in under a microsecond
// (inflate: 7 µs, most of it setting up the block's tables).
func pack(first byte, b []byte) []byte {
	out := make([]byte, 1, 1+s2.MaxEncodedLen(len(b)))
	out[0] = first
	enc := outboxDict.Encode(out[1:], b) // in out's room after first
	return out[:1+len(enc)]
}

// unpack is b, packed by pack (without the byte before it), unpacked.
func unpack(b []byte) ([]byte, error) {
	n, err := s2.DecodedLen(b)
	if err != nil {
		return nil, fmt.Errorf("unpack: %w", err)
	}
	if n > maxDraft {
		return nil, errors.New("draft too large")
	}
	out, err := outboxDict.Decode(make([]byte, n), b)
	if err != nil {
		return nil, fmt.Errorf("unpack: %w", err)
	}
	return out, nil
}

// unpacked is raw as the outbox keeps a whole mail, made whole: raw
// itself, or unpacked or inflated.
func unpacked(raw []byte) ([]byte, error) {
	if body, ok, err := expand(raw, mailPacked, mailDeflated); ok {
		return body, err
	}
	return raw, nil
}

// expand is raw's bytes after its leading byte, unpacked when it is
// packed and inflated when it is deflated; ok is false when raw begins
// with neither.
func expand(raw []byte, packed, deflated byte) (body []byte, ok bool, err error) {
	switch {
	case len(raw) > 0 && raw[0] == packed:
		body, err = unpack(raw[1:])
	case len(raw) > 0 && raw[0] == deflated:
		body, err = inflate(raw[1:])
	default:
		return nil, false, nil
	}
	return body, true, err
}

// appendDraft appends the mail's fields and the draft's in the order
// below (see binrec), the text before and after the carried one as it is;
// readDraft reads them back.
func appendDraft(b []byte, d draft) []byte {
	m := &d.Mail
	b = appendAddrs(b, []mail.Address{m.From}, false)
	b = appendAddrs(b, addrOrNone(m.ReplyTo), m.ReplyTo == nil)
	b = appendAddrs(b, m.To, m.To == nil)
	b = appendAddrs(b, m.Cc, m.Cc == nil)
	b = binrec.AppendStrings(b, m.Subject, m.MessageID, m.InReplyTo)
	b = binrec.AppendListOrNil(b, m.References)
	b = binrec.AppendStrings(b, m.Auto, m.LoopTag, m.ThreadTopic, m.ThreadKey)
	b = binrec.AppendTimes(b, m.Date)
	return binrec.AppendStrings(b, d.From, d.TextSHA256, d.Before, d.After)
}

var inflaters sync.Pool

// inflate is b, deflated by a release before packing (without the byte
// before it), inflated.
func inflate(b []byte) ([]byte, error) {
	src := bytes.NewReader(b)
	r, _ := inflaters.Get().(io.ReadCloser)
	if r == nil {
		r = flate.NewReader(src)
	} else if err := r.(flate.Resetter).Reset(src, nil); err != nil {
		return nil, err
	}
	defer inflaters.Put(r)
	out := bytes.NewBuffer(make([]byte, 0, 3*len(b)))
	if _, err := out.ReadFrom(io.LimitReader(r, maxDraft+1)); err != nil {
		return nil, fmt.Errorf("inflate draft: %w", err)
	}
	if out.Len() > maxDraft {
		return nil, errors.New("draft too large")
	}
	return out.Bytes(), nil
}

func addrOrNone(a *mail.Address) []mail.Address {
	if a == nil {
		return nil
	}
	return []mail.Address{*a}
}

// appendAddrs appends a list of addresses, each its name and address.
func appendAddrs(b []byte, l []mail.Address, isNil bool) []byte {
	b = binrec.AppendLen(b, len(l), isNil)
	for _, a := range l {
		b = binrec.AppendStrings(b, a.Name, a.Address)
	}
	return b
}

func readAddrs(d *binrec.Reader) []mail.Address {
	n := d.Len()
	if n < 0 {
		return nil
	}
	l := make([]mail.Address, n)
	for i := range l {
		l[i] = mail.Address{Name: d.String(), Address: d.String()}
	}
	return l
}

// decodeDraft reads a draft encodeDraft wrote, or one queued as JSON.
func decodeDraft(raw []byte) (draft, error) {
	if len(raw) > 0 && raw[0] == '{' {
		var dr draft
		err := json.Unmarshal(raw, &dr)
		return dr, err
	}
	body, ok, err := expand(raw, draftPacked, draftDeflated)
	if !ok {
		return draft{}, errors.New("not a draft")
	}
	if err != nil {
		return draft{}, err
	}
	return readDraft(body)
}

// readDraft reads the fields appendDraft wrote.
func readDraft(body []byte) (draft, error) {
	var dr draft
	d, m := binrec.NewReader(body), &dr.Mail
	if from := readAddrs(d); len(from) == 1 {
		m.From = from[0]
	} else {
		d.Fail()
	}
	switch replyTo := readAddrs(d); len(replyTo) {
	case 0:
	case 1:
		m.ReplyTo = &replyTo[0]
	default:
		d.Fail()
	}
	m.To, m.Cc = readAddrs(d), readAddrs(d)
	m.Subject, m.MessageID, m.InReplyTo = d.String(), d.String(), d.String()
	m.References = d.ListOrNil()
	m.Auto, m.LoopTag, m.ThreadTopic, m.ThreadKey = d.String(), d.String(), d.String(), d.String()
	m.Date = d.Time()
	dr.From, dr.TextSHA256, dr.Before, dr.After = d.String(), d.String(), d.String(), d.String()
	return dr, d.Err()
}

// withValue is a copy of data with key set to v.
func withValue(data map[string]any, key string, v any) map[string]any {
	out := make(map[string]any, len(data)+1)
	for k, x := range data {
		out[k] = x
	}
	out[key] = v
	return out
}

// OutboxMail returns the mail outbox entry m sends, as the relay gets it:
// the bytes queued, or for an entry that carries a stored message, its
// draft completed with that message's text and files as the store holds
// them now. It returns ErrCarriedGone when that message is gone or erased.
func OutboxMail(r store.Reader, m *store.OutMail) ([]byte, error) {
	if m.Carries == "" {
		raw, err := r.OutboxRaw(m.ID)
		if err != nil {
			return nil, err
		}
		if raw, err = unpacked(raw); err != nil {
			return nil, fmt.Errorf("outbox entry %d: %w", m.ID, err)
		}
		return raw, nil
	}
	d, msg, err := carried(r, m)
	if err != nil {
		return nil, err
	}
	out := d.Mail
	out.Text = d.Before + carriedText(msg) + d.After
	for _, a := range msg.Attachments {
		content, err := r.Blob(a.SHA256)
		if errors.Is(err, store.ErrNotFound) || a.SHA256 == "" {
			return nil, ErrCarriedGone
		}
		if err != nil {
			return nil, err
		}
		out.Attachments = append(out.Attachments, Attachment{Filename: a.Filename, ContentType: a.ContentType, Content: content})
	}
	return Compose(&out)
}

// CarriedGone reports whether outbox entry m carries a stored message
// that is gone or erased, without composing the mail: OutboxMail would
// return ErrCarriedGone for it (a file of the message missing from the
// blob store aside).
func CarriedGone(r store.Reader, m *store.OutMail) (bool, error) {
	if m.Carries == "" {
		return false, nil
	}
	_, _, err := carried(r, m)
	if errors.Is(err, ErrCarriedGone) {
		return true, nil
	}
	return false, err
}

// carried reads the draft of entry m and the message it carries, and
// returns ErrCarriedGone unless that message is on its ticket as it was
// when m was queued.
func carried(r store.Reader, m *store.OutMail) (draft, *store.Message, error) {
	raw, err := r.OutboxRaw(m.ID)
	if err != nil {
		return draft{}, nil, err
	}
	d, err := decodeDraft(raw)
	if err != nil {
		return d, nil, fmt.Errorf("outbox entry %d: read draft: %w", m.ID, err)
	}
	msg, found, err := r.MessageByID(m.TicketID, m.Carries)
	if err != nil {
		return d, nil, err
	}
	if !found || msg.From != d.From || textSum(carriedText(msg)) != d.TextSHA256 {
		return d, nil, ErrCarriedGone
	}
	return d, msg, nil
}

// SuppressedDetail is the detail of the mail_suppressed event for entry m,
// not sent to rcpts because of err.
func SuppressedDetail(m *store.OutMail, rcpts []string, err error) string {
	return fmt.Sprintf("%s mail to %s not sent: %v", m.Kind, strings.Join(rcpts, ", "), err)
}

// printsPlain reports whether template name (its override and built-in
// text both) reads field only to print it as it is ({{.Field}}, outside
// {{with}}, {{range}} and templates it calls) and never reads the data
// as a whole: rendering it with a stand-in for the field and putting the
// value in the stand-in's place is then rendering it with the value.
func (ts *Templates) printsPlain(name, field string) bool {
	key := name + "\x00" + field
	if v, ok := ts.plain.Load(key); ok {
		return v.(bool)
	}
	plain := true
	for _, w := range ts.walk(name, field) {
		if w.whole || slices.Contains(w.fields, field) {
			plain = false
			break
		}
	}
	ts.plain.Store(key, plain)
	return plain
}

// printsField reports whether action n is {{.field}}.
func printsField(n *parse.ActionNode, field string) bool {
	p := n.Pipe
	if p == nil || len(p.Decl) > 0 || len(p.Cmds) != 1 || len(p.Cmds[0].Args) != 1 {
		return false
	}
	f, ok := p.Cmds[0].Args[0].(*parse.FieldNode)
	return ok && len(f.Ident) == 1 && f.Ident[0] == field
}
