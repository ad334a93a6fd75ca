package mailout

import (
	"bytes"
	"encoding/base64"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jhillyerd/enmime/v2"
	"golang.org/x/text/encoding/htmlindex"
)

func threadHeader(t *testing.T, m *Mail) []byte {
	t.Helper()
	raw, err := Compose(m)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	idx, err := base64.StdEncoding.DecodeString(msg.Header.Get("Thread-Index"))
	if err != nil || len(idx) < 22 {
		t.Fatalf("Thread-Index %q: %v", msg.Header.Get("Thread-Index"), err)
	}
	return idx
}

// Outlook groups mail by the Thread-Index header block: one ticket is one
// conversation, and two tickets with the same subject are two.
func TestThreadIndexIsOneConversationPerTicket(t *testing.T) {
	at := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	base := func(key string, refs ...string) *Mail {
		return &Mail{From: mail.Address{Address: "support@example.com"}, To: []mail.Address{{Address: "a@x.example"}},
			Subject: "[" + key + "] Invoice", MessageID: "m@tickets.example.com", References: refs,
			ThreadTopic: "Invoice", ThreadKey: key, Text: "x", Date: at}
	}
	first := threadHeader(t, base("HS-000001"))
	later := threadHeader(t, base("HS-000001", "a@x", "b@x"))
	other := threadHeader(t, base("HS-000002"))
	if !bytes.Equal(first[:22], later[:22]) {
		t.Error("two mails of one ticket have different conversation blocks")
	}
	if len(later) != 22+2*5 {
		t.Errorf("reply Thread-Index has %d bytes, want a 5-byte child block per earlier message", len(later))
	}
	if bytes.Equal(first[:22], other[:22]) {
		t.Error("two tickets with the same subject share one conversation")
	}
}

// Header values from customers can never add header lines.
func TestComposeCleansHeaderInjection(t *testing.T) {
	raw, err := Compose(&Mail{From: mail.Address{Name: "Eve\r\nBcc: victim@x.example", Address: "support@example.com"},
		To: []mail.Address{{Name: "A\nB", Address: "a@x.example"}}, Subject: "hi\r\nBcc: victim@x.example",
		MessageID: "m@x", Text: "body"})
	if err != nil {
		t.Fatal(err)
	}
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	if msg.Header.Get("Bcc") != "" || strings.Contains(string(raw), "\r\nBcc:") {
		t.Errorf("header injected:\n%s", raw)
	}
}

// Mail with files reads back as one text and exactly its files.
func TestComposedAttachmentsReadBack(t *testing.T) {
	raw, err := Compose(&Mail{From: mail.Address{Address: "support@example.com"}, To: []mail.Address{{Address: "a@x.example"}},
		Subject: "files", MessageID: "m@x", Text: "see the files",
		Attachments: []Attachment{{Filename: "report.pdf", ContentType: "application/pdf", Content: []byte("%PDF-1.4 x")},
			{Filename: "größe.txt", ContentType: "text/plain", Content: []byte("hello")}}})
	if err != nil {
		t.Fatal(err)
	}
	env, err := enmime.ReadEnvelope(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(env.Text) != "see the files" {
		t.Errorf("text %q", env.Text)
	}
	var names []string
	for _, a := range append(env.Attachments, env.Inlines...) {
		names = append(names, a.FileName)
	}
	if strings.Join(names, ",") != "report.pdf,größe.txt" || string(env.Attachments[0].Content) != "%PDF-1.4 x" {
		t.Errorf("attachments read back as %v", names)
	}
}

// TestComposedTextReadsBack: a mail's text reads back as it was written,
// sent as it is (7bit) when it is printable ASCII in lines of at most 78
// characters, quoted-printable otherwise, with files or without.
func TestComposedTextReadsBack(t *testing.T) {
	long := strings.Repeat("x", 79)
	for _, tc := range []struct{ name, text, encoding string }{
		{"short ASCII lines", "Hello,\n\nthe printer jams.\n-- \nSupport", "7bit"},
		{"a line of 78", strings.Repeat("y", 78) + "\nend", "7bit"},
		{"a line of 79", long + "\nend", "quoted-printable"},
		{"UTF-8", "Grüße aus Köln", "quoted-printable"},
		{"a control character", "bell \x07 rings", "quoted-printable"},
		{"a lone CR", "one\rtwo", "quoted-printable"},
		{"a dot line and an equals sign", "a = b\n.\nend", "7bit"},
	} {
		for _, files := range [][]Attachment{nil, {{Filename: "a.txt", ContentType: "text/plain", Content: []byte("file")}}} {
			raw, err := Compose(&Mail{From: mail.Address{Address: "support@example.com"}, To: []mail.Address{{Address: "a@x.example"}},
				Subject: "text", MessageID: "m@x", Text: tc.text, Attachments: files})
			if err != nil {
				t.Fatal(err)
			}
			env, err := enmime.ReadEnvelope(bytes.NewReader(raw))
			if err != nil {
				t.Fatal(err)
			}
			want := tc.text
			if tc.name == "a lone CR" {
				want = "one\ntwo" // a reader takes a lone CR for a line end
			}
			if got := strings.ReplaceAll(env.Text, "\r\n", "\n"); got != want {
				t.Errorf("%s (%d files): text read back %q", tc.name, len(files), env.Text)
			}
			if !bytes.Contains(raw, []byte("Content-Transfer-Encoding: "+tc.encoding+"\r\n")) {
				t.Errorf("%s (%d files): not sent as %s:\n%s", tc.name, len(files), tc.encoding, raw)
			}
		}
	}
}

// BenchmarkCompose composes a notification-sized mail: 4 KB of text in
// short ASCII lines.
func BenchmarkCompose(b *testing.B) {
	var text strings.Builder
	for text.Len() < 4000 {
		text.WriteString("the printer on floor three jams again after the update, please help\n")
	}
	m := &Mail{From: mail.Address{Name: "Ann via Support", Address: "support@example.com"}, To: []mail.Address{{Address: "agent@example.com"}},
		Subject: "[HS-123456] Printer", MessageID: "m@x", Text: text.String(), Date: time.Now()}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Compose(m); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzComposeText: whatever a mail's text, it reads back from the
// composed mail as it was written (line ends aside), whichever encoding
// it was sent in, and 7bit only when it is printable ASCII in short lines.
func FuzzComposeText(f *testing.F) {
	for _, s := range []string{"Hello,\n\nthe printer jams.\n-- \nSupport", strings.Repeat("y", 78) + "\r\nend", strings.Repeat("x", 79),
		"Grüße", "bell \x07", "one\rtwo", "a = b\n.\n", "=41\n", "\n\n", "trailing space \n", "\xff\xfe"} {
		f.Add(s)
	}
	lineEnds := strings.NewReplacer("\r\n", "\n", "\r", "\n")
	f.Fuzz(func(t *testing.T, text string) {
		raw, err := Compose(&Mail{From: mail.Address{Address: "support@example.com"}, To: []mail.Address{{Address: "a@x.example"}},
			Subject: "text", MessageID: "m@x", Text: text, Date: time.Unix(0, 0)})
		if err != nil {
			t.Fatal(err)
		}
		msg, err := mail.ReadMessage(bytes.NewReader(raw))
		if err != nil {
			t.Fatalf("composed mail does not parse: %v\n%q", err, raw)
		}
		var body io.Reader = msg.Body
		switch enc := msg.Header.Get("Content-Transfer-Encoding"); enc {
		case "quoted-printable":
			body = quotedprintable.NewReader(body)
		case "7bit":
			for i := 0; i < len(raw); i++ {
				if raw[i] > '~' || raw[i] < ' ' && raw[i] != '\t' && raw[i] != '\r' && raw[i] != '\n' {
					t.Fatalf("sent as 7bit with byte %#x", raw[i])
				}
			}
			for _, l := range strings.Split(string(raw), "\r\n") {
				if len(l) > 998 {
					t.Fatalf("sent as 7bit with a line of %d", len(l))
				}
			}
		default:
			t.Fatalf("Content-Transfer-Encoding %q", enc)
		}
		got, err := io.ReadAll(body)
		if err != nil {
			t.Fatalf("body: %v", err)
		}
		if g, w := lineEnds.Replace(string(got)), lineEnds.Replace(text); g != w {
			t.Fatalf("text read back %q, want %q", g, w)
		}
	})
}

// An attachment's non-ASCII name is written as RFC 2231 has it, so a
// reader that takes parameters by the standard (net/mail and mime here,
// mutt) shows the name, not an encoded-word; an ASCII name is as it is.
// A long name folds into short lines.
func TestAttachmentNameIsRFC2231(t *testing.T) {
	names := []string{"Rechnung März 2026.pdf", "报价单.xlsx", "plain report.pdf", strings.Repeat("Größe-", 40) + ".txt"}
	var files []Attachment
	for _, n := range names {
		files = append(files, Attachment{Filename: n, ContentType: "application/octet-stream", Content: []byte("x")})
	}
	raw, mr := composeFiles(t, "see the files", files)
	var got []string
	for {
		p, err := mr.NextRawPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if cd := p.Header.Get("Content-Disposition"); cd != "" {
			_, dp, err := mime.ParseMediaType(cd)
			if err != nil {
				t.Fatalf("Content-Disposition %q: %v", cd, err)
			}
			got = append(got, dp["filename"])
		}
	}
	if !slices.Equal(got, names) {
		t.Errorf("attachment names read back as\n%q\nwant\n%q", got, names)
	}
	for _, l := range strings.Split(string(raw), "\r\n") {
		if strings.Contains(l, "filename") && len(l) > 78 {
			t.Errorf("a line of %d octets naming a file: %q", len(l), l)
		}
	}
}

// A subject that holds text in the form of an RFC 2047 word (a customer
// asking why "=?utf-8?q?caf=C3=A9?=" shows in their inbox) reads back
// as it was written, in the Subject and in Outlook's Thread-Topic: a
// reader would otherwise decode it into something else.
func TestSubjectThatLooksEncodedReadsAsWritten(t *testing.T) {
	for _, topic := range []string{
		"=?utf-8?q?caf=C3=A9?= shows in my inbox",
		"why =?UTF-8?B?SGk=?= and not Hi",
		"Grüße =?utf-8?q?x?=",
		strings.Repeat("=?iso-8859-1?q?a?= ", 60) + "end",
	} {
		subject := "[HS-000001] " + topic
		raw, err := Compose(&Mail{From: mail.Address{Address: "support@example.com"}, To: []mail.Address{{Address: "a@x.example"}},
			Subject: subject, ThreadTopic: topic, ThreadKey: "HS-000001", MessageID: "m@x", Text: "x"})
		if err != nil {
			t.Fatal(err)
		}
		msg, err := mail.ReadMessage(bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		dec := new(mime.WordDecoder)
		if got, err := dec.DecodeHeader(msg.Header.Get("Subject")); err != nil || got != subject {
			t.Errorf("Subject reads back as %q (%v), want %q", got, err, subject)
		}
		if got, err := dec.DecodeHeader(msg.Header.Get("Thread-Topic")); err != nil || got != topic {
			t.Errorf("Thread-Topic reads back as %q (%v), want %q", got, err, topic)
		}
		for _, l := range strings.Split(string(raw), "\r\n") {
			if len(l) > 998 {
				t.Errorf("a line of %d octets", len(l))
			}
		}
	}
}

// A mail attached to a mail (a customer's "forward as attachment")
// goes as RFC 2046 (5.2.1) has it: a message/rfc822 part in 7bit, 8bit
// or binary, never base64 or quoted-printable, which Postfix with
// strict_mime_encoding_domain refuses and a reader that keeps to the
// standard takes for the message's text. One that is not 7bit text
// goes as a file of bytes. Every attached file reads back as it was.
func TestAttachedMessageIsNotEncoded(t *testing.T) {
	crlf := "From: boss@x.example\r\nTo: alice@customer.example\r\nSubject: Offer\r\nMessage-ID: <offer@x.example>\r\n\r\nHello Alice,\r\nsee the offer.\r\n"
	lf := strings.ReplaceAll(crlf, "\r\n", "\n")
	eight := strings.Replace(crlf, "Hello Alice", "Grüße Alice", 1)
	files := []Attachment{{Filename: "offer.eml", ContentType: "message/rfc822", Content: []byte(crlf)},
		{Filename: "offer-lf.eml", ContentType: "message/rfc822", Content: []byte(lf)},
		{Filename: "offer-8bit.eml", ContentType: "message/rfc822", Content: []byte(eight)}}
	raw, mr := composeFiles(t, "see the forwarded mail", files)
	messages := 0
	for {
		p, err := mr.NextRawPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if mt, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type")); mt != "message/rfc822" {
			continue
		}
		messages++
		if cte := strings.ToLower(p.Header.Get("Content-Transfer-Encoding")); cte != "" && cte != "7bit" && cte != "8bit" && cte != "binary" {
			t.Errorf("an attached message sent as %s", cte)
			continue
		}
		inner, err := mail.ReadMessage(p)
		if err != nil || inner.Header.Get("Subject") != "Offer" {
			t.Errorf("an attached message does not read as one: %v", err)
		}
	}
	if messages < 2 {
		t.Errorf("%d attached messages sent as message/rfc822, want the two in 7bit text", messages)
	}
	env, err := enmime.ReadEnvelope(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, a := range append(env.Attachments, env.Inlines...) {
		got[a.FileName] = strings.ReplaceAll(string(a.Content), "\r\n", "\n")
	}
	for _, f := range files {
		if want := strings.ReplaceAll(string(f.Content), "\r\n", "\n"); got[f.Filename] != want {
			t.Errorf("%s reads back as %q, want %q", f.Filename, got[f.Filename], want)
		}
	}
}

// A text file in UTF-8 (as the desk keeps a customer's text files,
// whatever their charset was) is labelled UTF-8, so a reader that shows
// it inline shows its text: without a charset it is US-ASCII (RFC 2046),
// which readers take for windows-1252.
func TestTextFileCarriesItsCharset(t *testing.T) {
	files := []Attachment{{Filename: "notiz.txt", ContentType: "text/plain", Content: []byte("Grüße aus Köln\n")},
		{Filename: "list.csv", ContentType: "text/csv", Content: []byte("name;city\nJörg;Zürich\n")},
		{Filename: "plain.txt", ContentType: "text/plain", Content: []byte("plain ASCII\n")}}
	_, mr := composeFiles(t, "see the files", files)
	want := map[string]string{"notiz.txt": "Grüße aus Köln\n", "list.csv": "name;city\nJörg;Zürich\n", "plain.txt": "plain ASCII\n"}
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		name := p.FileName()
		if name == "" {
			continue
		}
		_, tp, err := mime.ParseMediaType(p.Header.Get("Content-Type"))
		if err != nil {
			t.Fatal(err)
		}
		cs := tp["charset"]
		if cs == "" {
			cs = "us-ascii"
		}
		enc, err := htmlindex.Get(cs)
		if err != nil {
			t.Fatalf("%s: charset %q: %v", name, cs, err)
		}
		b, err := io.ReadAll(base64.NewDecoder(base64.StdEncoding, p))
		if err != nil {
			t.Fatal(err)
		}
		text, err := enc.NewDecoder().Bytes(b)
		if err != nil || string(text) != want[name] {
			t.Errorf("%s (%s) shows as %q, want %q", name, p.Header.Get("Content-Type"), text, want[name])
		}
		delete(want, name)
	}
	if len(want) > 0 {
		t.Errorf("files missing: %v", want)
	}
}

// composeFiles composes a mail of text with files and returns it, and a
// reader of its parts.
func composeFiles(t *testing.T, text string, files []Attachment) ([]byte, *multipart.Reader) {
	t.Helper()
	raw, err := Compose(&Mail{From: mail.Address{Address: "support@example.com"}, To: []mail.Address{{Address: "a@x.example"}},
		Subject: "files", MessageID: "m@x", Text: text, Attachments: files})
	if err != nil {
		t.Fatal(err)
	}
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	_, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil {
		t.Fatal(err)
	}
	return raw, multipart.NewReader(msg.Body, params["boundary"])
}

// A file name longer than a header line can hold, with no white space to
// fold it at, reads back whole: written as one quoted value, it was cut
// by a fold in the middle and read back changed, or not at all.
func TestLongFileNameReadsBack(t *testing.T) {
	names := []string{strings.Repeat("a", 1200) + ".pdf", strings.Repeat("b", 70) + ".pdf",
		"x " + strings.Repeat("c", 1000) + `"q".txt`}
	var files []Attachment
	for _, n := range names {
		files = append(files, Attachment{Filename: n, ContentType: "application/octet-stream", Content: []byte("x")})
	}
	raw, mr := composeFiles(t, "see the files", files)
	var got []string
	for {
		p, err := mr.NextRawPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if cd := p.Header.Get("Content-Disposition"); cd != "" {
			_, dp, err := mime.ParseMediaType(cd)
			if err != nil {
				t.Errorf("Content-Disposition %q: %v", cd, err)
			}
			got = append(got, dp["filename"])
		}
	}
	if !slices.Equal(got, names) {
		t.Errorf("attachment names read back as\n%q\nwant\n%q", got, names)
	}
	env, err := enmime.ReadEnvelope(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	got = nil
	for _, a := range env.Attachments {
		got = append(got, a.FileName)
	}
	if !slices.Equal(got, names) {
		t.Errorf("a mail reader reads the names as\n%q\nwant\n%q", got, names)
	}
}

// A subject holding a word longer than a header line may be (a pasted
// token, a URL) reads back as the customer wrote it, in the Subject and
// in Thread-Topic: folded inside the word, it gained a space.
func TestSubjectWithAWordLongerThanALineReadsAsWritten(t *testing.T) {
	for _, topic := range []string{strings.Repeat("x", 1200), "see " + strings.Repeat("ab", 600) + " please", strings.Repeat("ü", 600)} {
		subject := "[HS-000001] " + topic
		raw, err := Compose(&Mail{From: mail.Address{Address: "support@example.com"}, To: []mail.Address{{Address: "a@x.example"}},
			Subject: subject, ThreadTopic: topic, ThreadKey: "HS-000001", MessageID: "m@x", Text: "x"})
		if err != nil {
			t.Fatal(err)
		}
		msg, err := mail.ReadMessage(bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		dec := new(mime.WordDecoder)
		if got, err := dec.DecodeHeader(msg.Header.Get("Subject")); err != nil || got != subject {
			t.Errorf("Subject reads back as %q (%v), want %q", got, err, subject)
		}
		if got, err := dec.DecodeHeader(msg.Header.Get("Thread-Topic")); err != nil || got != topic {
			t.Errorf("Thread-Topic reads back as %q (%v), want %q", got, err, topic)
		}
	}
}
