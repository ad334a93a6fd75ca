package mailin

import (
	"crypto/rand"
	"mime"
	"net/textproto"
	"slices"
	"strings"
	"ticketgate/rules"

	"github.com/emersion/go-message"
)

// HoldsSecrets reports whether raw, read the way Parse reads a message,
// shows a card or social security number in its subject, thread topic,
// text or HTML.
func HoldsSecrets(raw []byte, lim Limits) bool {
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

// RebuildHeader is the top-level header of a copy of in written anew: the
// fields of in.Raw as they are and in their order, Subject replaced by
// in.Subject, Thread-Topic redacted, and MIME fields for a UTF-8
// quoted-printable text or, with multipart, a multipart/mixed.
func RebuildHeader(in *Inbound, lim Limits, multipart bool) message.Header {
	top := readLenientHeader(in.Raw, lim.withDefaults().MaxHeaderBytes)
	var h message.Header
	// go-message inserts each field at the top: add the MIME fields first
	// so they come last, then the others from last to first.
	boundary := "tg-" + rand.Text()
	if !multipart {
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
	return h
}
