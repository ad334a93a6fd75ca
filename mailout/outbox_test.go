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
