package desk

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"ticketgate/mailin"
	"ticketgate/mailout/relaytest"
	"ticketgate/store"
	"ticketgate/store/postgres/pgtest"
)

// TestOverlongMessageIDIsTakenAsNone: a Message-ID longer than a header
// line may be (RFC 5322: 998 characters) is no id the desk keeps. On
// PostgreSQL, whose index takes at most about 2.7 KB a key, such a mail
// (SMTP takes lines of 10,000 characters) was refused on every retry; it
// is stored under an id derived from it, as one without a Message-ID is.
// A reference that long threads nothing and harms nothing.
func TestOverlongMessageIDIsTakenAsNone(t *testing.T) {
	g := startPGGateway(t, pgtest.Start(t).NewDatabase(t), relaytest.Start(t))
	var b strings.Builder
	for i := range 700 {
		fmt.Fprintf(&b, "%08x", uint32(i)*2654435761) // no run PostgreSQL could compress
	}
	long := b.String() + "@customer.example"
	raw := msg("ann@customer.example", "support@example.com", "Printer", "It jams.", "Message-ID: <"+long+">", "References: <"+long+">")
	res, err := g.pipeline.Deliver(context.Background(), &mailin.Delivery{
		MailFrom: "ann@customer.example", Rcpts: []string{"support@example.com"}, Raw: raw, Source: "smtp"})
	if err != nil {
		t.Fatalf("delivery answered %v; want the mail stored", err)
	}
	err = g.store.View(context.Background(), func(tx store.Tx) error {
		tk, err := tx.TicketFull(res.TicketID)
		if err != nil {
			return err
		}
		if id := tk.Messages[0].MessageID; id == "" || len(id) > 998 {
			t.Errorf("message stored under an id of %d characters", len(id))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
