package mailin

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/textproto"
	"slices"
	"strings"

	"github.com/emersion/go-message"

	"ticketgate/mailout"
	"ticketgate/rules"
)

// rebuiltNote is recorded on a message whose raw copy was written anew.
const rebuiltNote = "raw copy rebuilt from its decoded parts: secrets were inside an encoded part"

// redact removes card numbers and social security numbers from the
// subject, the text and the raw copy before anything is stored.
func (p *Pipeline) redact(pl *plan) {
	in := pl.in
	var all []rules.Redaction
	var r []rules.Redaction
	in.Subject, r = rules.Redact(in.Subject)
	all = append(all, r...)
	in.Text, r = rules.Redact(in.Text)
	all = append(all, r...)
	in.HTML, _ = rules.Redact(in.HTML)
	// The raw copy holds the same secrets again; count them once.
	in.Raw, r = rules.RedactMessage(in.Raw)
	if len(all) > 0 {
		p.scrubRaw(pl)
	}
	if len(all) == 0 {
		all = r
	}
	if len(all) == 0 {
		return
	}
	counts := map[string]int{}
	for _, x := range all {
		counts[x.Kind] += x.Count
	}
	for _, k := range []string{"card", "ssn"} {
		if counts[k] > 0 {
			pl.redactions = append(pl.redactions, rules.Redaction{Kind: k, Count: counts[k]})
		}
	}
	pl.note("redacted: %s", describeRedactions(pl.redactions))
}

func describeRedactions(rs []rules.Redaction) string {
	var parts []string
	for _, r := range rs {
		name := map[string]string{"card": "card number", "ssn": "social security number"}[r.Kind]
		parts = append(parts, fmt.Sprintf("%d %s(s)", r.Count, name))
	}
	return strings.Join(parts, ", ")
}

// scrubRaw makes sure the raw copy no longer holds, in any encoding, the
// secrets removed from the decoded subject and text. Redacting the bytes as
// sent misses a base64 body, a number split by a quoted-printable soft line
// break and an encoded-word subject; the raw copy is then read again the
// way it was first read, and when that still shows a secret it is written
// anew from the decoded, redacted parts.
func (p *Pipeline) scrubRaw(pl *plan) {
	in := pl.in
	if !holdsSecrets(in.Raw, p.Limits) {
		return
	}
	log := p.Log
	if log == nil {
		log = slog.Default()
	}
	// A copy written from the redacted parts reads back clean. Should a
	// file ever be read back as text, the copy is written again without
	// the files, and last without the text (which the ticket keeps anyway).
	attempts := []struct {
		text  string
		files []Part
	}{{in.Text, in.Attachments}, {in.Text, nil}, {"", nil}}
	for i, a := range attempts {
		raw, err := rebuildRaw(in, p.Limits, a.text, a.files)
		if err != nil {
			log.Warn("rebuild raw copy", "msgid", in.MessageID, "err", err)
			continue
		}
		if holdsSecrets(raw, p.Limits) {
			if i < len(attempts)-1 {
				continue
			}
			log.Error("rebuilt raw copy still shows a secret", "msgid", in.MessageID)
		}
		in.Raw = raw
		in.Notes = append(in.Notes, rebuiltNote)
		pl.note("redacted: %s", rebuiltNote)
		if i > 0 {
			log.Warn("raw copy rebuilt without some parts", "msgid", in.MessageID, "attempt", i+1)
		}
		return
	}
	log.Error("raw copy could not be rebuilt; it may still hold a secret", "msgid", in.MessageID)
}

// holdsSecrets reports whether raw, read the way Parse reads a message,
// shows a card or social security number in its subject, thread topic,
// text or HTML.
func holdsSecrets(raw []byte, lim Limits) bool {
	again, err := Parse(raw, lim)
	if err != nil {
		return true
	}
	for _, s := range []string{again.Subject, first(again.Header, "Thread-Topic"), again.Text, again.HTML} {
		if _, r := rules.Redact(s); r != nil {
			return true
		}
	}
	return false
}

// replacedFields are top-level fields a rebuilt copy writes itself.
var replacedFields = map[string]bool{
	"Subject": true, "Mime-Version": true, "Content-Type": true,
	"Content-Transfer-Encoding": true, "Content-Disposition": true,
}

// rebuildRaw writes a message from in's parts: the top-level header fields
// of in.Raw as they are and in their order (Subject replaced by in.Subject,
// Thread-Topic redacted, MIME fields written anew), text as a UTF-8
// quoted-printable part, and files as base64 attachments.
func rebuildRaw(in *Inbound, lim Limits, text string, files []Part) ([]byte, error) {
	top := readLenientHeader(in.Raw, lim.withDefaults().MaxHeaderBytes)
	var h message.Header
	// go-message inserts each field at the top: add the MIME fields first
	// so they come last, then the others from last to first.
	boundary := "tg-" + rand.Text()
	if len(files) == 0 {
		h.Add("Content-Transfer-Encoding", "quoted-printable")
		h.Add("Content-Type", "text/plain; charset=utf-8")
	} else {
		h.Add("Content-Type", `multipart/mixed; boundary="`+boundary+`"`)
	}
	h.Add("MIME-Version", "1.0")
	subject := mime.QEncoding.Encode("utf-8", rules.CleanHeader(in.Subject))
	subjectAt := slices.IndexFunc(top.fields, func(f headerField) bool { return strings.EqualFold(f.name, "Subject") })
	if subjectAt < 0 {
		h.Add("Subject", subject)
	}
	for i := len(top.fields) - 1; i >= 0; i-- {
		f := top.fields[i]
		key := textproto.CanonicalMIMEHeaderKey(f.name)
		if i == subjectAt {
			h.Add("Subject", subject)
		}
		if replacedFields[key] {
			continue
		}
		value := strings.Map(func(r rune) rune {
			if r == '\r' || r == '\n' {
				return ' '
			}
			return r
		}, string(f.value))
		if key == "Thread-Topic" {
			if red, r := rules.Redact(decodeWords(value)); r != nil {
				value = mime.QEncoding.Encode("utf-8", rules.CleanHeader(red))
			}
		}
		if line := f.name + ": " + value + "\r\n"; len(line) <= 998 {
			h.AddRaw([]byte(line))
		} else {
			h.Add(f.name, value)
		}
	}
	var buf bytes.Buffer
	if err := writeRebuilt(&buf, h, text, files); err != nil {
		return nil, fmt.Errorf("rebuild raw copy of %s: %w", in.MessageID, err)
	}
	return buf.Bytes(), nil
}

// writeRebuilt writes a rebuilt copy with header h: the text alone, or the
// text followed by the files in a multipart/mixed.
func writeRebuilt(w io.Writer, h message.Header, text string, files []Part) error {
	text = strings.ReplaceAll(strings.ReplaceAll(text, "\r\n", "\n"), "\n", "\r\n")
	mw, err := message.CreateWriter(w, h)
	if err != nil {
		return err
	}
	if len(files) == 0 {
		if _, err := io.WriteString(mw, text); err != nil {
			return err
		}
		return mw.Close()
	}
	atts := make([]mailout.Attachment, len(files))
	for i, f := range files {
		atts[i] = mailout.Attachment{Filename: f.Filename, ContentType: f.ContentType, ContentID: f.ContentID, Content: f.Content}
	}
	if err := mailout.WriteParts(mw, text, atts); err != nil {
		return err
	}
	return mw.Close()
}
