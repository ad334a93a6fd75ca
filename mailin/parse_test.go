package mailin

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"net/mail"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/htmlindex"

	"ticketgate/mailin/mailintest"
	"ticketgate/rules"
)

var update = flag.Bool("update", false, "rewrite testdata/mail/*.golden.json from the parser's output")

// golden is what a person reads off a parsed message.
type golden struct {
	From        string       `json:"from"`
	Subject     string       `json:"subject"`
	Text        string       `json:"text"`
	VisibleText string       `json:"visible_text,omitempty"`
	Attachments []goldenPart `json:"attachments"`
}

type goldenPart struct {
	Filename    string `json:"filename"`
	ContentType string `json:"content_type"`
	Size        int    `json:"size"`
}

func goldenOf(in *Inbound) golden {
	g := golden{From: strings.TrimSpace(in.From.Name + " <" + in.From.Address + ">"), Subject: in.Subject, Text: in.Text, Attachments: []goldenPart{}}
	if in.From.Address == "" {
		g.From = ""
	}
	if v := rules.VisibleText(in.Text); v != in.Text {
		g.VisibleText = v
	}
	for _, a := range in.Attachments {
		g.Attachments = append(g.Attachments, goldenPart{a.Filename, a.ContentType, len(a.Content)})
	}
	return g
}

// TestGoldenMail parses every testdata/mail/*.eml and compares what a
// person would read with the reviewed .golden.json next to it.
func TestGoldenMail(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "testdata", "mail", "*.eml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			raw, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			in, err := Parse(raw, Limits{})
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			var buf bytes.Buffer
			enc := json.NewEncoder(&buf)
			enc.SetEscapeHTML(false)
			enc.SetIndent("", "  ")
			if err := enc.Encode(goldenOf(in)); err != nil {
				t.Fatal(err)
			}
			got := buf.Bytes()
			path := strings.TrimSuffix(f, ".eml") + ".golden.json"
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("no golden file (run with -update and review it): %v", err)
			}
			if !bytes.Equal(bytes.TrimSpace(got), bytes.TrimSpace(want)) {
				t.Errorf("parsed %s differs from %s:\ngot:\n%s\nwant:\n%s", f, path, got, want)
			}
		})
	}
}

// TestCharsetsReadAsPeopleWroteThem checks the words a person wrote come
// out of every charset fixture, headers and body.
func TestCharsetsReadAsPeopleWroteThem(t *testing.T) {
	cases := []struct{ file, name, subject, text string }{
		{"charset-iso-8859-1.eml", "Jürgen Müller", "Drucker läuft nicht", "weiße Seiten"},
		{"charset-iso-8859-2.eml", "Paweł Łukasik", "Żółta kartka - błąd", "gęślą jaźń"},
		{"charset-iso-8859-15.eml", "Émile Dubois", "Facture de 50 €", "Œuvre à corriger"},
		{"charset-windows-1250.eml", "Jiří Novák", "Čtvrteční objednávka", "ještě nedorazila"},
		{"charset-windows-1251.eml", "Иван Петров", "Не работает принтер", "принтер в офисе"},
		{"charset-windows-1252.eml", "Zoë O’Brien", "“Smart quotes” – broken", "em dash — badly"},
		{"charset-koi8-r.eml", "Ольга Смирнова", "Счёт за октябрь", "счёт за октябрь"},
		{"charset-shift_jis.eml", "山田太郎", "請求書について", "請求書の金額"},
		{"charset-gb2312.eml", "王小明", "发票问题", "我的发票金额不对"},
		{"charset-gbk.eml", "王小明", "发票问题", "我的发票金额不对"},
		{"charset-big5.eml", "陳大文", "帳單問題", "我的帳單金額有誤"},
		{"charset-euc-kr.eml", "김철수", "비밀번호 재설정", "비밀번호를 재설정할"},
		{"charset-raw-8bit-gbk-header.eml", "李华", "转发：服务水平", "请看转发的邮件"},
		{"charset-raw-8bit-shiftjis-header.eml", "", "ツール", "今なら無料です"},
	}
	for _, c := range cases {
		raw, err := os.ReadFile(filepath.Join("..", "testdata", "mail", c.file))
		if err != nil {
			t.Fatal(err)
		}
		in, err := Parse(raw, Limits{})
		if err != nil {
			t.Fatalf("%s: %v", c.file, err)
		}
		if in.From.Name != c.name || in.Subject != c.subject || !strings.Contains(in.Text, c.text) {
			t.Errorf("%s: name %q subject %q text %q; want %q, %q, text with %q", c.file, in.From.Name, in.Subject, in.Text, c.name, c.subject, c.text)
		}
	}
}

// TestRawISO2022JPHeaderIsRead: an older Japanese mail program writes
// the subject and the sender's name in raw ISO-2022-JP, 7-bit bytes with
// escape sequences, not in encoded words; they read as written.
func TestRawISO2022JPHeaderIsRead(t *testing.T) {
	raw := "From: \x1b$B;3ED\x1b(B <yamada@example.jp>\r\nTo: support@example.com\r\nSubject: Re: [HS-123456] \x1b$B%D!<%k\x1b(B\r\n" +
		"Message-ID: <jis@example.jp>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=ISO-2022-JP\r\nContent-Transfer-Encoding: 7bit\r\n\r\n" +
		"\x1b$B%D!<%k\x1b(B\r\n"
	in, err := Parse([]byte(raw), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if in.Subject != "Re: [HS-123456] ツール" || in.From.Name != "山田" || in.From.Address != "yamada@example.jp" {
		t.Errorf("subject %q, sender %q <%s>; want \"Re: [HS-123456] ツール\", \"山田\" <yamada@example.jp>", in.Subject, in.From.Name, in.From.Address)
	}
}

// TestMislabelledBytesBecomeReplacementCharacters: text that is not what
// its label says is never a rejection; what cannot be read becomes U+FFFD
// and the rest stays.
func TestMislabelledBytesBecomeReplacementCharacters(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "testdata", "mail", "charset-mislabelled-latin1-as-utf8.eml"))
	if err != nil {
		t.Fatal(err)
	}
	in, err := Parse(raw, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if !utf8.ValidString(in.Text) || !strings.Contains(in.Text, "printeren p") || !strings.Contains(in.Text, "virker ikke") {
		t.Errorf("text %q", in.Text)
	}
	junk := []byte("From: x@customer.example\r\nSubject: \xff\xfe =?bogus?Q?=FF?=\r\nContent-Type: text/plain; charset=no-such-charset\r\n\r\nok \xff\xfe\xfd end\r\n")
	in, err = Parse(junk, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if !utf8.ValidString(in.Text) || !utf8.ValidString(in.Subject) || !strings.Contains(in.Text, "end") {
		t.Errorf("subject %q text %q", in.Subject, in.Text)
	}
}

// TestHTMLOnlyMailReadsAsText: paragraphs, list items and link targets
// survive the conversion to text.
func TestHTMLOnlyMailReadsAsText(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "testdata", "mail", "html-only.eml"))
	if err != nil {
		t.Fatal(err)
	}
	in, err := Parse(raw, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Hello support,\n\nmy order", "one blue chair", "two green lamps", "https://track.example/4711", "the depot", "Thanks,\nAnna"} {
		if !strings.Contains(in.Text, want) {
			t.Errorf("text lacks %q:\n%s", want, in.Text)
		}
	}
	if strings.Contains(in.Text, "<") || strings.Contains(in.Text, "color: red") || strings.Contains(in.Text, "ignored") {
		t.Errorf("markup, style or title left in text:\n%s", in.Text)
	}
}

// TestHTMLOnlyMailInTheCharsetOfItsMetaTag: an HTML-only mail whose
// Content-Type names no charset, its HTML's meta tag does (Japanese
// mailers, Outlook's windows-1252), reads as written; its text was
// converted twice (once as detected, then again as the meta tag says)
// and read as mojibake.
func TestHTMLOnlyMailInTheCharsetOfItsMetaTag(t *testing.T) {
	cases := []struct{ charset, text string }{
		{"Shift_JIS", "プリンターが故障しました。よろしくお願いします。"},
		{"ISO-2022-JP", "プリンターが故障しました。よろしくお願いします。"},
		{"windows-1252", "Le café est froid, la vérification a échoué — merci d’avance."},
		{"windows-1251", "Принтер не работает, помогите пожалуйста."},
	}
	for _, c := range cases {
		enc, err := htmlindex.Get(c.charset)
		if err != nil {
			t.Fatal(err)
		}
		html := `<html><head><meta http-equiv="Content-Type" content="text/html; charset=` + c.charset + `"></head><body><p>` + c.text + `</p></body></html>`
		body, err := enc.NewEncoder().String(html)
		if err != nil {
			t.Fatal(err)
		}
		raw := "From: a@customer.example\r\nTo: support@example.com\r\nSubject: html\r\nMIME-Version: 1.0\r\n" +
			"Content-Type: text/html\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" + body + "\r\n"
		in, err := Parse([]byte(raw), Limits{})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(in.Text, c.text) || !strings.Contains(in.HTML, c.text) {
			t.Errorf("%s: text %q, HTML %q; want both with %q", c.charset, in.Text, in.HTML, c.text)
		}
	}
}

// TestUndeclared8BitTextIsRead: text in 8-bit bytes that are not UTF-8,
// its charset named nowhere (old mailers, scripts), reads as the header's
// 8-bit bytes do: in the charset detected when the detector is sure, else
// windows-1252, which western mail of that kind is written in. It read
// as U+FFFD in place of every accented letter.
func TestUndeclared8BitTextIsRead(t *testing.T) {
	latin1 := func(s string) string {
		b, err := charmap.Windows1252.NewEncoder().String(s)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	text := "Bonjour, la facture de d\u00e9cembre est erron\u00e9e, le montant d\u00fb est diff\u00e9rent \u2014 merci."
	for name, raw := range map[string]string{
		"single part":    "From: a@customer.example\r\nSubject: facture\r\nMIME-Version: 1.0\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" + latin1(text) + "\r\n",
		"no MIME at all": "From: a@customer.example\r\nSubject: facture\r\n\r\n" + latin1(text) + "\r\n",
		"alternative": "From: a@customer.example\r\nSubject: facture\r\nMIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=b\r\n\r\n" +
			"--b\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" + latin1(text) + "\r\n" +
			"--b\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>" + text + "</p>\r\n--b--\r\n",
		"mixed": "From: a@customer.example\r\nSubject: facture\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n" +
			"--b\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" + latin1(text) + "\r\n" +
			"--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nsecond part\r\n--b--\r\n",
	} {
		in, err := Parse([]byte(raw), Limits{})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(in.Text, text) {
			t.Errorf("%s: text %q, want it to hold %q", name, in.Text, text)
		}
	}
}

// TestBrokenHeadersAreForgiven: headers a strict reader refuses still give
// sender, subject and body.
func TestBrokenHeadersAreForgiven(t *testing.T) {
	cases := []struct{ name, raw, from, subject, text string }{
		{"mbox From_ line", "From someone@example.net Mon Nov  2 09:00:00 2026\nFrom: a@customer.example\nSubject: hi\n\nbody one\n", "a@customer.example", "hi", "body one"},
		{"junk before the header", "---- forwarded ----\r\nFrom: b@customer.example\r\nSubject: two\r\n\r\nbody two\r\n", "b@customer.example", "two", "body two"},
		{"header starts with a space", " From: c@customer.example\nSubject: three\n\nbody three\n", "c@customer.example", "three", "body three"},
		{"unindented continuation", "From: d@customer.example\nReceived: from x\nby y with ESMTP\nSubject: four\n\nbody four\n", "d@customer.example", "four", "body four"},
		{"no empty line before the boundary", "From: e@customer.example\nSubject: five\nContent-Type: multipart/mixed; boundary=\"b1\"\nThis is MIME.\n--b1\nContent-Type: text/plain\n\nbody five\n--b1--\n", "e@customer.example", "five", "body five"},
		{"second From readable", "From: [??????]\nFrom: Real <f@customer.example>\nSubject: six\n\nbody six\n", "f@customer.example", "six", "body six"},
		{"no header at all", "// just a line of text\n", "", "", "just a line of text"},
		{"space before colon", "From : g@customer.example\nSubject : seven\n\nbody seven\n", "g@customer.example", "seven", "body seven"},
	}
	for _, c := range cases {
		in, err := Parse([]byte(c.raw), Limits{})
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if in.From.Address != c.from || in.Subject != c.subject || !strings.Contains(in.Text, c.text) {
			t.Errorf("%s: from %q subject %q text %q notes %q", c.name, in.From.Address, in.Subject, in.Text, in.Notes)
		}
		if c.from == "" && len(in.Notes) == 0 {
			t.Errorf("%s: no sender and no note saying why", c.name)
		}
	}
	// Found by fuzzing: invalid UTF-8 before a charset parameter.
	if _, err := Parse([]byte("0000:0000\xa80000ChArset="), Limits{}); err != nil {
		t.Errorf("invalid UTF-8 before charset=: %v", err)
	}
	if _, err := Parse([]byte(" \r\n\t\r\n"), Limits{}); err == nil {
		t.Error("white space alone was accepted as mail")
	}
}

// Hostile structures, built small enough to keep in memory many times.

// TestHostileStructureStopsParsing: past a structural limit the message is
// not parsed further, is marked and noted, and keeps readable text; below
// it, it parses. Every case finishes quickly.
func TestHostileStructureStopsParsing(t *testing.T) {
	for _, c := range mailintest.HostileCases() {
		t.Run(c.Name, func(t *testing.T) {
			start := time.Now()
			in, err := Parse(c.Raw, Limits{})
			took := time.Since(start)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if took > 5*time.Second {
				t.Errorf("took %v", took)
			}
			note := strings.Join(in.Notes, "; ")
			if c.Problem != "" && (!in.Truncated || !strings.Contains(note, c.Problem) || !strings.Contains(note, "raw message is kept")) {
				t.Errorf("truncated %v notes %q; want a note naming %q", in.Truncated, note, c.Problem)
			}
			if c.Problem == "" && in.Truncated {
				t.Errorf("a message within limits was truncated: %q", note)
			}
			if !strings.Contains(in.Text, c.Text) || !utf8.ValidString(in.Text) || len(in.Text) > maxFallbackText {
				t.Errorf("text (%d bytes) lacks %q", len(in.Text), c.Text)
			}
			if !bytes.Equal(in.Raw, c.Raw) {
				t.Error("raw message not kept as received")
			}
		})
	}
}

// TestHostileStructureMemoryIsBounded: parsing the largest hostile cases
// allocates a small multiple of the message, not of its part count.
func TestHostileStructureMemoryIsBounded(t *testing.T) {
	for _, c := range mailintest.HostileCases() {
		if c.Problem == "" {
			continue
		}
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		if _, err := Parse(c.Raw, Limits{}); err != nil {
			t.Fatal(err)
		}
		runtime.ReadMemStats(&after)
		if alloc := after.TotalAlloc - before.TotalAlloc; alloc > uint64(4*len(c.Raw))+4<<20 {
			t.Errorf("%s: %d bytes allocated for a %d byte message", c.Name, alloc, len(c.Raw))
		}
	}
}

// TestStructureCheckAgreesWithEnmime: a message the structural check lets
// through never has more parts or deeper nesting in enmime's tree than the
// limits allow.
func TestStructureCheckAgreesWithEnmime(t *testing.T) {
	lim := Limits{MaxDepth: 3, MaxParts: 10, MaxHeaderBytes: 4096}.withDefaults()
	for _, raw := range [][]byte{mailintest.DeepNesting(3), mailintest.DeepNesting(4), mailintest.ManyParts(9), mailintest.ManyParts(10), mailintest.ManyParts(11)} {
		checkAgainstEnmime(t, raw, lim)
	}
}

// TestHostileMailStillBecomesATicket: over SMTP, a message past a
// structural limit is accepted, not parsed further, and kept raw on a
// ticket whose message says why.
func TestBinaryInputWithoutHeaderIsNotMail(t *testing.T) {
	png := append([]byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"), bytes.Repeat([]byte{0xff, 0x00, 0x13}, 200)...)
	if _, err := Parse(png, Limits{}); !errors.Is(err, ErrNotMail) {
		t.Errorf("binary junk: %v, want ErrNotMail", err)
	}
	if in, err := Parse([]byte("just a line of text, no header\n"), Limits{}); err != nil || !strings.Contains(in.Text, "just a line") {
		t.Errorf("plain text without header: %v", err)
	}
}

func TestAttachmentNamesAreNeverPaths(t *testing.T) {
	raw := "From: a@x.example\r\nTo: support@example.com\r\nSubject: files\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\nhi\r\n" +
		"--B\r\nContent-Type: text/plain\r\nContent-Disposition: attachment; filename=\"../../etc/passwd\"\r\n\r\nx\r\n" +
		"--B\r\nContent-Type: text/plain\r\nContent-Disposition: attachment; filename=\"C:\\\\Users\\\\a\\\\..\\\\evil.bat\"\r\n\r\ny\r\n--B--\r\n"
	in, err := Parse([]byte(raw), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, a := range in.Attachments {
		names = append(names, a.Filename)
	}
	if strings.Join(names, ",") != "passwd,evil.bat" {
		t.Errorf("attachment names %q", names)
	}
}

// TestParseDateAsNetMail: the common layout tried first reads every date
// as net/mail does, and what it refuses still goes to net/mail.
func TestParseDateAsNetMail(t *testing.T) {
	for _, s := range []string{
		"Mon, 07 Dec 2026 06:18:13 +0000",
		"Mon, 7 Dec 2026 06:18:13 +0100",
		"Thu, 31 Dec 2026 23:59:59 -0930",
		"Sun, 1 Feb 2026 00:00:00 +1400",
		"7 Dec 2026 06:18:13 +0000",            // no day of the week
		"Mon, 7 Dec 2026 06:18 +0000",          // no seconds
		"Mon, 7 Dec 2026 06:18:13 +0000 (UTC)", // a comment
		"Mon, 7 Dec 2026 06:18:13 GMT",
		"Mon,  7 Dec 2026 06:18:13 +0000",
		"Tue, 7 Dec 2026 06:18:13 +0000", // the wrong day of the week
		"Mon, 32 Dec 2026 06:18:13 +0000",
		"Mon, 7 Dec 2026 24:00:00 +0000",
		"",
		"yesterday",
	} {
		got, gotErr := parseDate(s)
		want, wantErr := mail.ParseDate(s)
		if (gotErr == nil) != (wantErr == nil) || !got.Equal(want) || got.Location().String() != want.Location().String() {
			t.Errorf("%q: read as %v (%v), net/mail reads %v (%v)", s, got, gotErr, want, wantErr)
		}
	}
}

// FuzzParseDate: parseDate reads whatever it is given as net/mail does.
func FuzzParseDate(f *testing.F) {
	f.Add("Mon, 7 Dec 2026 06:18:13 +0000")
	f.Add("Mon, 07 Dec 2026 06:18:13 -0700")
	f.Fuzz(func(t *testing.T, s string) {
		got, gotErr := parseDate(s)
		want, wantErr := mail.ParseDate(s)
		if (gotErr == nil) != (wantErr == nil) || !got.Equal(want) {
			t.Errorf("%q: read as %v (%v), net/mail reads %v (%v)", s, got, gotErr, want, wantErr)
		}
	})
}

// TestEncodedWordAddressIsNoRecipient: an addr-spec spelled in encoded
// words in To or Cc, which no mail system delivers to, makes nobody a
// participant and routes nothing, with or without the commas of its list.
func TestEncodedWordAddressIsNoRecipient(t *testing.T) {
	for _, cc := range []string{"=?utf-8?q?victim?=@=?utf-8?q?example.org?=", "=?utf-8?q?victim?=@=?utf-8?q?example.org?= b@customer.example"} {
		raw := []byte("From: a@customer.example\r\nTo: =?utf-8?q?support?=@=?utf-8?q?example.com?=\r\n" +
			"Cc: " + cc + "\r\nSubject: x\r\nMessage-ID: <x@y>\r\n\r\nhi\r\n")
		in, err := Parse(raw, Limits{})
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range append(in.To, in.Cc...) {
			if a == "victim@example.org" || a == "support@example.com" {
				t.Errorf("To %q, Cc %q: an encoded-word addr-spec was read as %s", in.To, in.Cc, a)
			}
		}
		if got := HeaderRecipients(raw, rules.Routes{{Address: "support@example.com"}}); len(got) > 0 {
			t.Errorf("HeaderRecipients %q: routed by an encoded-word addr-spec", got)
		}
	}
}

// TestMessageWithoutIDKeepsItsDerivedIDByAnotherPath: a message without
// a Message-ID that comes in again by another path (one more Received
// line, another Delivered-To) gets the same derived id, so the desk takes
// it for the duplicate it is; another text gets another id.
func TestMessageWithoutIDKeepsItsDerivedIDByAnotherPath(t *testing.T) {
	body := "From: ann@customer.example\r\nTo: support@example.com\r\nSubject: printer\r\nDate: Mon, 7 Dec 2026 10:00:00 +0000\r\n\r\nThe printer is on fire.\r\n"
	id := func(raw string) string {
		t.Helper()
		in, err := Parse([]byte(raw), Limits{})
		if err != nil {
			t.Fatal(err)
		}
		return in.MessageID
	}
	first := id("Received: from a.example by mx1.example; Mon, 7 Dec 2026 10:00:01 +0000\r\n" + body)
	again := id("Received: from mx1.example by mx2.example; Mon, 7 Dec 2026 10:05:00 +0000\r\n" +
		"Delivered-To: support@example.com\r\nReceived: from a.example by mx1.example; Mon, 7 Dec 2026 10:00:01 +0000\r\n" + body)
	if first == "" || first != again {
		t.Errorf("the same message by two paths: ids %q and %q, want one", first, again)
	}
	if other := id(strings.Replace(body, "on fire", "jammed", 1)); other == first {
		t.Errorf("another text got the same id %q", other)
	}
}

// TestHeaderRecipientsOfVeryManyPlusAddresses: a mail whose Cc names
// 45,000 plus addresses of a route (what the 1 MiB the header is read for
// holds) gives each once, within a second. Each was looked for among all
// those before it: seconds of a core for every such mail in inject and
// in the IMAP poller, which an attacker could send again and again.
func TestHeaderRecipientsOfVeryManyPlusAddresses(t *testing.T) {
	var b strings.Builder
	b.WriteString("From: a@customer.example\r\nTo: support@example.com\r\nCc: ")
	const n = 45000
	for i := range n {
		if i > 0 {
			b.WriteString(",\r\n ")
		}
		b.WriteString("support+" + strconv.Itoa(i) + "@example.com")
	}
	b.WriteString("\r\nSubject: x\r\n\r\nhi\r\n")
	t0 := time.Now()
	got := HeaderRecipients([]byte(b.String()), rules.Routes{{Address: "support@example.com"}})
	if took := time.Since(t0); took > time.Second {
		t.Errorf("%d recipients read in %v, want within a second", len(got), took)
	}
	if len(got) < n/2 || got[0] != "support@example.com" || got[1] != "support+0@example.com" {
		t.Errorf("%d recipients, starting %q", len(got), got[:min(len(got), 2)])
	}
}
