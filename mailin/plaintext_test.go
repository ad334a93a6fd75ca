package mailin

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// viaEnmime is what readBody (enmime) makes of raw's body.
func viaEnmime(raw []byte) *Inbound {
	in := &Inbound{}
	in.readBody(raw)
	return in
}

// checkPlainAsEnmime fails t when top.plainText takes raw and gives
// anything but what enmime gives: the same text, and no HTML, file,
// delivery status or note.
func checkPlainAsEnmime(t *testing.T, name string, raw []byte) (taken bool) {
	t.Helper()
	top := readLenientHeader(raw, 1<<20)
	text, ok := top.plainText(raw)
	if !ok {
		return false
	}
	want := viaEnmime(raw)
	got := &Inbound{Text: text}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s: taken as plain text\n%q\nenmime reads\n%q (html %q, %d files, notes %q, dsn %q)",
			name, got.Text, want.Text, want.HTML, len(want.Attachments), want.Notes, want.DeliveryStatus)
	}
	return true
}

// plainTextCases are messages at the edge of what plainText takes.
var plainTextCases = map[string]string{
	"no content-type":   "From: a@b.example\r\nSubject: hi\r\n\r\nHello,\r\n\r\nthe printer\tis on fire.\r\n",
	"text/plain":        "From: a@b.example\r\nMIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\nHello\r\n",
	"utf-8, 7bit":       "From: a@b.example\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=\"UTF-8\"\r\nContent-Transfer-Encoding: 7bit\r\n\r\nHello\r\n",
	"us-ascii, 8bit":    "From: a@b.example\r\nContent-Type: TEXT/PLAIN;\r\n charset=us-ascii\r\nContent-Transfer-Encoding: 8BIT\r\n\r\nHello\r\n",
	"bare LF":           "From: a@b.example\nContent-Type: text/plain\n\nHello\nthere\n",
	"lone CR":           "From: a@b.example\r\n\r\nHello\rthere\r\n",
	"mixed line ends":   "From: a@b.example\n\n\r\n\r\n",
	"empty body":        "From: a@b.example\r\nSubject: nothing\r\n\r\n",
	"only blank lines":  "From: a@b.example\r\n\r\n\r\n\r\n",
	"no MIME-Version":   "From: a@b.example\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHello\r\n",
	"leading blanks":    "From: a@b.example\r\n\r\n\r\n   Hello\r\n",
	"latin-1 text":      "From: a@b.example\r\nContent-Type: text/plain; charset=iso-8859-1\r\n\r\nCaf\xe9\r\n",
	"utf-8 text":        "From: a@b.example\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nCaf\xc3\xa9\r\n",
	"quoted-printable":  "From: a@b.example\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nCaf=C3=A9\r\n",
	"base64":            "From: a@b.example\r\nContent-Transfer-Encoding: base64\r\n\r\nSGVsbG8=\r\n",
	"html":              "From: a@b.example\r\nContent-Type: text/html\r\n\r\n<p>Hello</p>\r\n",
	"flowed":            "From: a@b.example\r\nContent-Type: text/plain; format=flowed\r\n\r\nHello \r\nthere\r\n",
	"attachment":        "From: a@b.example\r\nContent-Type: text/plain\r\nContent-Disposition: attachment; filename=a.txt\r\n\r\nHello\r\n",
	"two content-types": "From: a@b.example\r\nContent-Type: text/plain\r\nContent-Type: text/html\r\n\r\n<b>Hello</b>\r\n",
	"NUL in body":       "From: a@b.example\r\n\r\nHel\x00lo\r\n",
	"mbox From line":    "From a@b.example Mon Dec  7 06:00:00 2026\r\nFrom: a@b.example\r\n\r\nHello\r\n",
	"tab before colon":  "From: a@b.example\r\nSubject\t: x\r\n\r\nHello\r\n",
}

// TestPlainTextAsEnmime: what plainText takes, from the cases above, the
// project's test mail and the mail corpus beside the checkout, it reads
// exactly as enmime does; and it takes the plain cases.
func TestPlainTextAsEnmime(t *testing.T) {
	taken := map[string]bool{}
	for name, raw := range plainTextCases {
		taken[name] = checkPlainAsEnmime(t, name, []byte(raw))
	}
	for _, name := range []string{"no content-type", "text/plain", "utf-8, 7bit", "us-ascii, 8bit", "bare LF", "empty body", "only blank lines", "no MIME-Version", "leading blanks"} {
		if !taken[name] {
			t.Errorf("%s: not taken as plain text", name)
		}
	}
	for _, name := range []string{"lone CR", "latin-1 text", "utf-8 text", "quoted-printable", "base64", "html", "flowed", "attachment", "two content-types", "mixed line ends", "NUL in body", "mbox From line", "tab before colon"} {
		if taken[name] {
			t.Errorf("%s: taken as plain text", name)
		}
	}
	files, _ := filepath.Glob(filepath.Join("..", "testdata", "mail", "*.eml"))
	corpus := filepath.Join("..", "..", "shared", "corpus")
	for _, pat := range []string{"enmime/*/*", "zammad/*.box", "talon/*/*.eml", "email_reply_parser/*/*"} {
		m, _ := filepath.Glob(filepath.Join(corpus, pat))
		files = append(files, m...)
	}
	n := 0
	for _, p := range files {
		raw, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		if checkPlainAsEnmime(t, p, raw) {
			n++
		}
		if crlf := []byte(strings.ReplaceAll(strings.ReplaceAll(string(raw), "\r\n", "\n"), "\n", "\r\n")); checkPlainAsEnmime(t, p+" (CRLF)", crlf) {
			n++
		}
	}
	t.Logf("%d of %d files (each as it is and with CRLF line ends) taken as plain text", n, 2*len(files))
}

// FuzzPlainText: whatever plainText takes reads as enmime reads it.
func FuzzPlainText(f *testing.F) {
	for _, raw := range plainTextCases {
		f.Add([]byte(raw))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		checkPlainAsEnmime(t, "input", raw)
	})
}

// TestMalformedHeaderNoteKeptForTabBeforeColon: a field name followed by
// a tab before its colon leaves the ticket the note enmime writes of it
// (FuzzPlainText found the plain-text path dropping it).
func TestMalformedHeaderNoteKeptForTabBeforeColon(t *testing.T) {
	raw := []byte("From: a@b.example\r\nSubject\t: x\r\nMessage-ID: <x@y>\r\n\r\nHello\r\n")
	in, err := Parse(raw, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	want := viaEnmime(raw)
	if len(want.Notes) == 0 {
		t.Fatal("enmime notes nothing: the case proves nothing")
	}
	for _, n := range want.Notes {
		if !slices.Contains(in.Notes, n) {
			t.Errorf("Parse notes %q lack enmime's %q", in.Notes, n)
		}
	}
}
