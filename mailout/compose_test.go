package mailout

import (
	"bytes"
	"encoding/base64"
	"net/mail"
	"strings"
	"testing"
	"time"

	"github.com/jhillyerd/enmime/v2"
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
