package desk

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"ticketgate/store"
)

// Proves a card number that the customer's mail client wrapped onto the
// next line (format=flowed, as Thunderbird and Apple Mail send plain
// text) is removed from the ticket, the raw copy and the agents' mail.
func TestCardNumberWrappedByTheMailClientIsRedacted(t *testing.T) {
	g := startDesk(t)
	raw := "From: Mia <mia@customer.example>\r\nTo: support@example.com\r\nSubject: Renewal\r\n" +
		"Message-ID: <flowed-card@customer.example>\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: text/plain; charset=utf-8; format=flowed\r\nContent-Transfer-Encoding: 7bit\r\n\r\n" +
		"Hello, please charge the renewal to my Visa card, the number is 4111 1111 \r\n" +
		"1111 1111, expiry 12/28.\r\n\r\nThanks, Mia\r\n"
	g.mustSend("mia@customer.example", []string{"support@example.com"}, []byte(raw))
	tk := g.onlyTicket()
	m := tk.Messages[0]
	if strings.Contains(m.Text+m.VisibleText, "4111") || !strings.Contains(m.Text, "[card number removed]") {
		t.Errorf("stored text keeps the card number: %q", m.Text)
	}
	var stored []byte
	if err := g.store.View(context.Background(), func(tx store.Tx) error {
		var err error
		stored, err = tx.Blob(m.Raw)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(stored, []byte("4111 1111")) {
		t.Errorf("raw copy keeps the card number:\n%s", stored)
	}
	if eventOf(tk, "redacted") == nil {
		t.Errorf("no redacted event: %+v", tk.Events)
	}
	g.settle()
	for _, sent := range g.relay.Mails() {
		if showsCard(sent.Data) {
			t.Errorf("mail to %v repeats the card number", sent.To)
		}
	}
}

// Proves a card number grouped by no-break spaces (Outlook's plain text
// keeps the &nbsp; of a number pasted from a web page or PDF, as =A0 in
// windows-1252) is removed from the ticket, the raw copy and the
// agents' mail, as one grouped by spaces is.
func TestCardNumberGroupedByNoBreakSpacesIsRedacted(t *testing.T) {
	g := startDesk(t)
	raw := "From: Mia <mia@customer.example>\r\nTo: support@example.com\r\nSubject: Renewal\r\n" +
		"Message-ID: <nbsp-card@customer.example>\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: text/plain; charset=\"windows-1252\"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n" +
		"Hello, please charge the renewal to my Visa card: 4111=A01111=A01111=A01111, expiry 12/28.\r\n\r\nThanks, Mia\r\n"
	g.mustSend("mia@customer.example", []string{"support@example.com"}, []byte(raw))
	tk := g.onlyTicket()
	m := tk.Messages[0]
	if strings.Contains(m.Text+m.VisibleText, "4111") || !strings.Contains(m.Text, "[card number removed]") {
		t.Errorf("stored text keeps the card number: %q", m.Text)
	}
	var stored []byte
	if err := g.store.View(context.Background(), func(tx store.Tx) error {
		var err error
		stored, err = tx.Blob(m.Raw)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(stored, []byte("4111")) {
		t.Errorf("raw copy keeps the card number:\n%s", stored)
	}
	if eventOf(tk, "redacted") == nil {
		t.Errorf("no redacted event: %+v", tk.Events)
	}
	g.settle()
	for _, sent := range g.relay.Mails() {
		if showsCard(sent.Data) {
			t.Errorf("mail to %v repeats the card number", sent.To)
		}
	}
}
