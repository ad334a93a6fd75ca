package mailout

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"ticketgate/store"
)

// A large mail (a customer's files, notified to the agents) over a slow
// link to the relay takes longer than any one command may: the relay
// reads it steadily, only slowly. It goes out whole, once, not cut off
// after twice the command timeout at every attempt until it is given up.
// (A relay that stops reading is still left: TestRelayThatStopsReadingDuringDataTimesOut.)
func TestOutboxSendsALargeMailOverASlowLink(t *testing.T) {
	for _, pipelining := range []bool{true, false} {
		name := "pipelining"
		if !pipelining {
			name = "one command at a time"
		}
		t.Run(name, func(t *testing.T) {
			e := newOutboxEnv(t)
			if !pipelining {
				e.relay.WithoutPipelining()
			}
			// 16 MB at 4 MB/s: four seconds, twice the bound of 2 × 1 s
			// the whole mail had.
			e.relay.ReadSlowly(4 << 20)
			e.w.Sender = &Relay{Addr: e.relay.Addr, TLS: "none", Hostname: "t.example", Timeout: time.Second}
			e.w.RetryBase = time.Hour
			line := strings.Repeat("x", 76) + "\r\n"
			body := strings.Repeat(line, (16<<20)/len(line))
			m := &store.OutMail{TicketID: "HS-000001", Kind: "notify", From: "support@example.com", To: []string{"a@x.example"},
				Raw: []byte("Subject: big\r\n\r\n" + body), Created: time.Now()}
			if err := e.st.UpdateNow(context.Background(), func(tx store.Tx) error { return tx.Enqueue(m) }); err != nil {
				t.Fatal(err)
			}
			e.run()
			deadline := time.Now().Add(30 * time.Second)
			for len(e.outbox()) > 0 && e.outbox()[0].Attempts == 0 && time.Now().Before(deadline) {
				time.Sleep(50 * time.Millisecond)
			}
			if q := e.outbox(); len(q) != 0 {
				t.Fatalf("the mail is still queued after %d attempts: %s", q[0].Attempts, q[0].LastErr)
			}
			got := e.relay.Mails()
			if len(got) != 1 || !bytes.HasSuffix(got[0].Data, []byte(body)) {
				t.Fatalf("the relay got %d mails, want the one whole", len(got))
			}
		})
	}
}
