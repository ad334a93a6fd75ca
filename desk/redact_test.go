package desk

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"ticketgate/mailin"
	"ticketgate/store"
)

const cardSecret = "4111 1111 1111 1111"

// b64 encodes content in 76-character lines.
func b64(content string) string {
	enc := base64.StdEncoding.EncodeToString([]byte(content))
	var b strings.Builder
	for len(enc) > 76 {
		b.WriteString(enc[:76] + "\r\n")
		enc = enc[76:]
	}
	return b.String() + enc + "\r\n"
}

// encodedMsg builds a message from a raw Subject value, extra header
// lines and everything from Content-Type on.
func encodedMsg(from, subject, extra, mimePart string) []byte {
	return fmt.Appendf(nil, "From: Ann Customer <%s>\r\nTo: support@example.com\r\nSubject: %s\r\n"+
		"Date: Sat, 21 Nov 2026 10:00:00 +0000\r\nMessage-ID: <enc.%s.%s@customer.example>\r\n%sMIME-Version: 1.0\r\n%s",
		from, subject, digitFree(time.Now().UnixNano()), digitFree(msgSeq.Add(1)), extra, mimePart)
}

// digitFree spells n in the letters a to j, so that a Message-ID built
// from it can never contain the digits of the test card number, which
// the tests look for in every sent mail.
func digitFree(n int64) string {
	return strings.Map(func(r rune) rune { return 'a' + r - '0' }, strconv.FormatInt(n, 10))
}

// withPDF is a multipart/mixed whose text part is textPart (headers and
// body) followed by a PDF attachment.
func withPDF(textPart string) string {
	return "Content-Type: multipart/mixed; boundary=\"XX-42\"\r\n\r\n--XX-42\r\n" + textPart +
		"--XX-42\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=\"invoice.pdf\"\r\n" +
		"Content-Transfer-Encoding: base64\r\n\r\n" + b64("%PDF-1.4 invoice 2026-0042\n") + "--XX-42--\r\n"
}

func storedRaw(t *testing.T, g *gateway, m store.Message) []byte {
	t.Helper()
	var raw []byte
	if err := g.store.View(context.Background(), func(tx store.Tx) error { var err error; raw, err = tx.Blob(m.Raw); return err }); err != nil {
		t.Fatalf("read raw copy: %v", err)
	}
	return raw
}

func attachmentNames(in *mailin.Inbound) []string {
	var names []string
	for _, a := range in.Attachments {
		names = append(names, a.Filename)
	}
	slices.Sort(names)
	return names
}

// ticketIDs matches ticket ids as mail shows them ("HS-641118", and
// "hs-641118" in a signed reply address).
var ticketIDs = regexp.MustCompile(`(?i)\b[a-z]+-\d{6}\b`)

// showsCard reports whether mail shows the test card's digits ("4111"),
// its ticket ids left aside: a random ticket number may hold them.
func showsCard(mail []byte) bool {
	return bytes.Contains(ticketIDs.ReplaceAll(mail, nil), []byte("4111"))
}

func TestShowsCardLeavesTicketIDsAside(t *testing.T) {
	for text, want := range map[string]bool{
		"ticket HS-641118, reply to support+hs-641118-r-x@example.com": false,
		"your card " + cardSecret:                                      true,
		"ticket HS-641118: 4111 left":                                  true,
	} {
		if got := showsCard([]byte(text)); got != want {
			t.Errorf("showsCard(%q) = %v, want %v", text, got, want)
		}
	}
}

// redactionNotices counts the mails that tell the sender something was
// removed, and fails on any sent mail that repeats the card number.
func redactionNotices(t *testing.T, g *gateway) int {
	t.Helper()
	g.settle()
	n := 0
	for _, sent := range g.relay.Mails() {
		if showsCard(sent.Data) {
			t.Errorf("sent mail repeats the card number:\n%s", sent.Data)
		}
		if bytes.Contains(sent.Data, []byte("sensitive data")) {
			n++
		}
	}
	return n
}

func TestRawCopyHoldsNoSecretInAnyEncoding(t *testing.T) {
	subjectB := "=?utf-8?b?" + base64.StdEncoding.EncodeToString([]byte("Karte "+cardSecret+" doppelt belastet")) + "?="
	cases := []struct {
		name, subject, extra, mime string
		inSubject, inText          bool
	}{
		{"base64 text body", "charged twice", "",
			withPDF("Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
				b64("Hello,\nmy card "+cardSecret+" was charged twice.\nAnn\n")), false, true},
		{"quoted-printable soft break", "charged twice", "",
			"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n" +
				"Hello,\r\nmy card 4111 1111 11=\r\n11 1111 was charged tw=C3=AFce.\r\n", false, true},
		{"base64 encoded-word subject", subjectB, "Thread-Topic: " + subjectB + "\r\n",
			withPDF("Content-Type: text/plain; charset=utf-8\r\n\r\nsee the subject\r\n"), true, false},
		{"q encoded-word subject", "=?utf-8?q?card_4111_1111_1111_1111_charged_tw=C3=AFce?=", "",
			"Content-Type: text/plain; charset=utf-8\r\n\r\nsee the subject\r\n", true, false},
		{"html only body", "charged twice", "",
			"Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n" +
				"<html><body><p>My card is <b>4111 1111 11=\r\n11 1111</b>, charged twice.</p></body></html>\r\n", false, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := startGateway(t)
			from := "ann@customer.example"
			sent := encodedMsg(from, c.subject, c.extra, c.mime)
			orig, err := mailin.Parse(sent, mailin.Limits{})
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(orig.Subject+orig.Text, cardSecret) {
				t.Fatalf("test message does not carry the card once decoded: %q / %q", orig.Subject, orig.Text)
			}
			g.mustSend(from, []string{"support@example.com"}, sent)
			tk := g.onlyTicket()
			m := tk.Messages[0]
			if c.inSubject && !strings.Contains(tk.Subject, "[card number removed]") {
				t.Errorf("ticket subject %q lacks the removal marker", tk.Subject)
			}
			if c.inText && !strings.Contains(m.Text, "[card number removed]") {
				t.Errorf("ticket text %q lacks the removal marker", m.Text)
			}
			raw := storedRaw(t, g, m)
			again, err := mailin.Parse(raw, mailin.Limits{})
			if err != nil {
				t.Fatalf("stored raw copy does not parse: %v\n%s", err, raw)
			}
			for _, s := range []string{again.Subject, again.Header.Get("Thread-Topic"), again.Text, again.HTML} {
				if strings.Contains(s, "4111") || strings.Contains(s, "1111 1111") {
					t.Errorf("raw copy still shows the card once decoded: %q\n%s", s, raw)
				}
			}
			if c.inSubject && !strings.Contains(again.Subject, "[card number removed]") {
				t.Errorf("raw copy subject %q lacks the removal marker", again.Subject)
			}
			if again.From.Address != from || again.From.Address != tk.Requester || again.MessageID != orig.MessageID {
				t.Errorf("raw copy is from %q with id %q; want %q (requester %q) and %q", again.From.Address, again.MessageID, from, tk.Requester, orig.MessageID)
			}
			if got, want := attachmentNames(again), attachmentNames(orig); !slices.Equal(got, want) {
				t.Errorf("raw copy has attachments %v, want %v", got, want)
			}
			if !slices.Contains(m.Notes, rebuiltNote) {
				t.Errorf("message notes %q do not say the raw copy was rebuilt", m.Notes)
			}
			if eventOf(tk, "redacted") == nil {
				t.Errorf("no redacted event: %+v", tk.Events)
			}
			if n := redactionNotices(t, g); n != 1 {
				t.Errorf("%d redaction notices, want 1", n)
			}
		})
	}
}

func TestRawCopyOfAttachmentsSurvivesRebuild(t *testing.T) {
	g := startGateway(t)
	from := "bob@customer.example"
	pdf := "%PDF-1.4 invoice 2026-0042\n"
	sent := encodedMsg(from, "charged twice", "", withPDF("Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"+
		b64("card "+cardSecret+"\n")))
	g.mustSend(from, []string{"support@example.com"}, sent)
	again, err := mailin.Parse(storedRaw(t, g, g.onlyTicket().Messages[0]), mailin.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if len(again.Attachments) != 1 || string(again.Attachments[0].Content) != pdf || again.Attachments[0].ContentType != "application/pdf" {
		t.Errorf("attachment in the raw copy is %+v, want invoice.pdf with its bytes", again.Attachments)
	}
	if again.Header.Get("Date") != "Sat, 21 Nov 2026 10:00:00 +0000" || again.Header.Get("To") != "support@example.com" {
		t.Errorf("raw copy lost header fields: %v", again.Header)
	}
}

func TestRawCopyWithoutSecretsIsKeptByteForByte(t *testing.T) {
	g := startGateway(t)
	from := "cy@customer.example"
	sent := encodedMsg(from, "=?utf-8?q?order_2026-0042_tw=C3=AFce?=", "",
		withPDF("Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"+
			b64("Order 2026-0042 of 3.1415926535897932 units arrived, ref 1234567890123.\n")))
	g.mustSend(from, []string{"support@example.com"}, sent)
	tk := g.onlyTicket()
	if raw := storedRaw(t, g, tk.Messages[0]); !bytes.Equal(raw, sent) {
		t.Errorf("raw copy changed:\n%s\nwant:\n%s", raw, sent)
	}
	if slices.Contains(tk.Messages[0].Notes, rebuiltNote) || eventOf(tk, "redacted") != nil {
		t.Errorf("clean message marked as redacted: notes %q, events %+v", tk.Messages[0].Notes, tk.Events)
	}
	if n := redactionNotices(t, g); n != 0 {
		t.Errorf("%d redaction notices for a clean message", n)
	}
}

// A card number only in the HTML part is scrubbed from the raw copy and recorded.
func TestCardOnlyInHTMLPartIsRedacted(t *testing.T) {
	g := startGateway(t)
	from := "ann@customer.example"
	mime := "Content-Type: multipart/alternative; boundary=\"ALT-1\"\r\n\r\n" +
		"--ALT-1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nPlease see the HTML version of this mail.\r\n" +
		"--ALT-1\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
		b64("<html><body><p>My card is <b>"+cardSecret+"</b>, charged twice.</p></body></html>\n") +
		"--ALT-1--\r\n"
	sent := encodedMsg(from, "charged twice", "", mime)
	g.mustSend(from, []string{"support@example.com"}, sent)
	tk := g.onlyTicket()
	raw := storedRaw(t, g, tk.Messages[0])
	again, err := mailin.Parse(raw, mailin.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(again.HTML, "4111") || strings.Contains(again.Text, "4111") {
		t.Errorf("stored raw copy still shows the card in its HTML part once decoded: html %q", again.HTML)
	}
	if eventOf(tk, "redacted") == nil {
		t.Errorf("no redacted event: %+v", tk.Events)
	}
}
