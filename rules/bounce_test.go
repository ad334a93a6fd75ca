package rules

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/jhillyerd/enmime/v2"
)

func readBounce(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "testdata", "bounce", name))
	if err != nil {
		t.Fatalf("read fixture: %v", err)
	}
	return string(b)
}

func TestParseDSN(t *testing.T) {
	got := ParseDSN(readBounce(t, "dsn.txt"))
	want := []Failure{
		{Recipient: "anna.berg@customer.example", Status: "5.1.1",
			Diagnostic: "550 5.1.1 <anna.berg@customer.example>: Recipient address rejected: User unknown", Permanent: true},
		{Recipient: "gone@customer.example", Status: "4.4.7", Diagnostic: "delivery time expired", Permanent: false},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ParseDSN:\n got %+v\nwant %+v", got, want)
	}
}

func TestParseDSNCRLFAndNoise(t *testing.T) {
	ds := "Reporting-MTA: dns; a\r\n\r\nFinal-Recipient: rfc822; <X@Y.example>\r\nStatus: 5.0.0 (permanent failure)\r\n"
	got := ParseDSN(ds)
	if len(got) != 1 || got[0].Recipient != "x@y.example" || got[0].Status != "5.0.0" || !got[0].Permanent {
		t.Errorf("no Action, 5.x.x status: got %+v", got)
	}
	for _, s := range []string{"", "garbage", "Final-Recipient: x400; whatever\nAction: failed\n", "Action: failed\nStatus: 5.1.1\n"} {
		if got := ParseDSN(s); got != nil {
			t.Errorf("ParseDSN(%q) = %+v, want none", s, got)
		}
	}
}

func TestParseBounceText(t *testing.T) {
	tests := []struct {
		file string
		want []Failure
	}{
		{"postfix.txt", []Failure{
			{Recipient: "anna.berg@customer.example", Status: "5.1.1", Diagnostic: "550 5.1.1 <anna.berg@customer.example>: Recipient address rejected: User unknown in local recipient table", Permanent: true},
			{Recipient: "sales@lists.example", Status: "4.2.2", Diagnostic: "452 4.2.2 Mailbox full", Permanent: false, Original: "team@shop.example"},
		}},
		{"postfix-delay.txt", nil},
		{"exim.txt", []Failure{
			{Recipient: "jonas@customer.example", Status: "5.1.1", Diagnostic: "550 5.1.1 <jonas@customer.example>: Recipient address rejected: User unknown", Permanent: true},
			{Recipient: "old-team@customer.example", Status: "", Diagnostic: "Unrouteable address", Permanent: true},
		}},
		{"exchange.txt", []Failure{
			{Recipient: "m.keller@customer.example", Status: "5.1.1", Diagnostic: "550 5.1.1 RESOLVER.ADR.RecipNotFound; not found", Permanent: true},
		}},
		{"office365.txt", []Failure{
			{Recipient: "lea@customer.example", Status: "5.1.10", Diagnostic: "550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup", Permanent: true},
		}},
		{"gmail.txt", []Failure{
			{Recipient: "pat.lee@customer.example", Status: "5.1.1", Diagnostic: "550 5.1.1 The email account that you tried to reach does not exist. Please try double-checking the recipient's email address for typos or unnecessary spaces.", Permanent: true},
		}},
		{"gmail-old.txt", []Failure{
			{Recipient: "kim@customer.example", Status: "5.2.1", Diagnostic: "550 5.2.1 <kim@customer.example>: Mailbox disabled for this recipient", Permanent: true},
		}},
		{"qmail.txt", []Failure{
			{Recipient: "rob@customer.example", Status: "5.1.1", Diagnostic: "550 5.1.1 <rob@customer.example>... User unknown", Permanent: true},
			{Recipient: "full@customer.example", Status: "5.4.6", Diagnostic: "This message is looping: it already has my Delivered-To line. (#5.4.6)", Permanent: true},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			got := ParseBounceText(readBounce(t, tt.file))
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestParseBounceTextHuman(t *testing.T) {
	// A person's mail that mentions an address is not a bounce.
	for _, s := range []string{"", "Hello, please write to bob@example.com instead.\nThanks\n"} {
		if got := ParseBounceText(s); got != nil {
			t.Errorf("ParseBounceText(%q) = %+v, want none", s, got)
		}
	}
}

// corpusBounce parses one corpus message and returns the failures found
// in its delivery-status part and in its text.
func corpusBounce(t *testing.T, name string) (dsn, text []Failure) {
	t.Helper()
	path := filepath.Join("..", "..", "shared", "corpus", "zammad", name)
	raw, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		t.Skip("corpus not present")
	}
	if err != nil {
		t.Fatalf("read corpus: %v", err)
	}
	if bytes.HasPrefix(raw, []byte("From ")) { // mbox separator line
		raw = raw[bytes.IndexByte(raw, '\n')+1:]
	}
	env, err := enmime.ReadEnvelope(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("parse %s: %v", name, err)
	}
	var walk func(p *enmime.Part)
	walk = func(p *enmime.Part) {
		for ; p != nil; p = p.NextSibling {
			if strings.EqualFold(p.ContentType, "message/delivery-status") {
				dsn = append(dsn, ParseDSN(string(p.Content))...)
			}
			if p.ContentType != "message/rfc822" {
				walk(p.FirstChild)
			}
		}
	}
	walk(env.Root)
	return dsn, ParseBounceText(env.Text)
}

func TestParseCorpusBounces(t *testing.T) {
	tests := []struct {
		file   string
		rcpt   string // "" when no failure may be reported
		status string
		inText bool // the human-readable part names the recipient too
	}{
		{"mail033-undelivered-mail-returned-to-sender-notification.box", "not_existing@znuny.com", "5.1.1", true},
		{"mail055.box", "ticket-bounce-trigger2@example.com", "5.1.1", true},
		{"mail092.box", "receiver@example.org", "5.2.2", false},
		{"mail078.box", "", "", false}, // Gmail delay notice: still being retried
		{"mail052.box", "", "", false}, // bounce subject, but no report in it
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			dsn, text := corpusBounce(t, tt.file)
			if tt.rcpt == "" {
				if len(dsn)+len(text) != 0 {
					t.Fatalf("want no failures, got dsn %+v text %+v", dsn, text)
				}
				return
			}
			if len(dsn) != 1 || dsn[0].Recipient != tt.rcpt || dsn[0].Status != tt.status || !dsn[0].Permanent {
				t.Errorf("DSN: got %+v, want %s %s permanent", dsn, tt.rcpt, tt.status)
			}
			if tt.inText && (len(text) != 1 || text[0].Recipient != tt.rcpt || text[0].Status != tt.status) {
				t.Errorf("text: got %+v, want %s %s", text, tt.rcpt, tt.status)
			}
			if !tt.inText && len(text) != 0 {
				t.Errorf("text: got %+v, want none", text)
			}
		})
	}
}
