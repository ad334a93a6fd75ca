package mailout

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"ticketgate/mailout/relaytest"
	"ticketgate/rules"
	"ticketgate/store"
	"ticketgate/store/boltdb"
)

func TestOutboxOrderPerRecipientAndNoHeadOfLineBlocking(t *testing.T) {
	st, err := boltdb.Open(filepath.Join(t.TempDir(), "t.db"), boltdb.Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	relay := relaytest.Start(t)
	relay.FailRcpt("agent@example.com", &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try later"})
	queue := func(to, body string) {
		err := st.UpdateNow(context.Background(), func(tx store.Tx) error {
			return tx.Enqueue(&store.OutMail{TicketID: "HS-000001", Kind: "x", From: "support@example.com", To: []string{to},
				Raw: []byte("Subject: " + body + "\r\n\r\n" + body + "\r\n"), Created: time.Now()})
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	queue("agent@example.com", "notify")
	queue("customer@x.example", "closing")
	queue("customer@x.example", "survey")
	w := NewWorker(st, &Relay{Addr: relay.Addr, TLS: "none", Hostname: "t.example", Timeout: 5 * time.Second},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	w.RetryBase = time.Hour
	w.RunOnce(context.Background())
	got := relay.Mails()
	if len(got) != 2 || !strings.Contains(string(got[0].Data), "closing") || !strings.Contains(string(got[1].Data), "survey") {
		t.Fatalf("customer got %d mails %v; want closing then survey while the agent's mail waits", len(got), got)
	}
	relay.FailRcpt("agent@example.com", nil)
	w.Now = func() time.Time { return time.Now().Add(2 * time.Hour) }
	w.RunOnce(context.Background())
	if got := relay.Mails(); len(got) != 3 || got[2].To[0] != "agent@example.com" {
		t.Fatalf("deferred mail not delivered once the relay accepts it: %d mails", len(got))
	}
}

// A mail to a non-ASCII address goes out with SMTPUTF8 when the relay
// offers it; when it does not, the mail fails at once with an event on
// its ticket instead of being retried for days.
func TestNonASCIIAddressNeedsSMTPUTF8(t *testing.T) {
	st, err := boltdb.Open(filepath.Join(t.TempDir(), "t.db"), boltdb.Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	relay := relaytest.Start(t)
	queue := func(to string) {
		err := st.UpdateNow(context.Background(), func(tx store.Tx) error {
			if err := tx.PutTicket(&store.Ticket{ID: "HS-000001", Status: rules.StatusOpen, CreatedAt: time.Now()}); err != nil {
				return err
			}
			return tx.Enqueue(&store.OutMail{TicketID: "HS-000001", Kind: "auto", From: "support@example.com", To: []string{to},
				Raw: []byte("Subject: hi\r\n\r\nhi\r\n"), Created: time.Now()})
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	w := NewWorker(st, &Relay{Addr: relay.Addr, TLS: "none", Hostname: "t.example", Timeout: 5 * time.Second},
		slog.New(slog.NewTextHandler(io.Discard, nil)))

	queue("josé@exämple.example")
	w.RunOnce(context.Background())
	if got := relay.Mails(); len(got) != 0 {
		t.Fatalf("a relay without SMTPUTF8 got %v", got)
	}
	var failed []string
	err = st.View(context.Background(), func(tx store.Tx) error {
		tk, err := tx.TicketFull("HS-000001")
		if err != nil {
			return err
		}
		for _, e := range tk.Events {
			if e.Type == rules.EventDeliveryFailed {
				failed = append(failed, e.Detail)
			}
		}
		left, err := tx.Outbox(time.Now().Add(24*time.Hour), 10)
		if len(left) != 0 {
			t.Errorf("the mail is still queued for a retry: %+v", left[0])
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(failed) != 1 || !strings.Contains(failed[0], "SMTPUTF8") || !strings.Contains(failed[0], "josé@exämple.example") {
		t.Errorf("delivery_failed events %q, want one naming SMTPUTF8 and the address", failed)
	}

	relay.OfferSMTPUTF8(t, true)
	queue("josé@exämple.example")
	w.RunOnce(context.Background())
	if got := relay.Mails(); len(got) != 1 || got[0].To[0] != "josé@exämple.example" {
		t.Fatalf("a relay with SMTPUTF8 got %v, want the mail to josé@exämple.example", got)
	}
}
