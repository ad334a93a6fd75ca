package desk

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"ticketgate/mailin"
	"ticketgate/mailout"
	"ticketgate/rules"

	"github.com/emersion/go-message"
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
	// The HTML part and the raw copy mostly hold the text's secrets
	// again: count them once, from the first that shows any. A secret
	// only in the HTML part (a mail whose text part says "see the HTML
	// version") still counts, and the raw copy is scrubbed of it.
	var html []rules.Redaction
	in.HTML, html = rules.Redact(in.HTML)
	scrub := len(all) > 0 || len(html) > 0
	if len(all) == 0 {
		all = html
	}
	in.Raw, r = rules.RedactMessage(in.Raw)
	if scrub {
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
	if !mailin.HoldsSecrets(in.Raw, p.Limits) {
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
		files []mailin.Part
	}{{in.Text, in.Attachments}, {in.Text, nil}, {"", nil}}
	for i, a := range attempts {
		raw, err := rebuildRaw(in, p.Limits, a.text, a.files)
		if err != nil {
			log.Warn("rebuild raw copy", "msgid", in.MessageID, "err", err)
			continue
		}
		if mailin.HoldsSecrets(raw, p.Limits) {
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

// rebuildRaw writes a copy of in from its parts: the header as
// mailin.RebuildHeader makes it, text as a UTF-8 quoted-printable part, and
// files as base64 attachments.
func rebuildRaw(in *mailin.Inbound, lim mailin.Limits, text string, files []mailin.Part) ([]byte, error) {
	h := mailin.RebuildHeader(in, lim, len(files) > 0)
	var buf bytes.Buffer
	if err := writeRebuilt(&buf, h, text, files); err != nil {
		return nil, fmt.Errorf("rebuild raw copy of %s: %w", in.MessageID, err)
	}
	return buf.Bytes(), nil
}

// writeRebuilt writes a rebuilt copy with header h: the text alone, or the
// text followed by the files in a multipart/mixed.
func writeRebuilt(w io.Writer, h message.Header, text string, files []mailin.Part) error {
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
