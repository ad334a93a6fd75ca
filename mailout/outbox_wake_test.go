package mailout

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"ticketgate/mailout/relaytest"
	"ticketgate/store"
	"ticketgate/store/boltdb"
)

// Mail queued behind a deferred message waits for it across wakes, and
// the worker sleeps until the deferred message is due instead of taking
// the waiting mail for due.
func TestOutboxDeferredMailHoldsBackItsQueueAcrossWakes(t *testing.T) {
	st, err := boltdb.Open(filepath.Join(t.TempDir(), "t.db"), boltdb.Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	relay := relaytest.Start(t)
	relay.FailRcpt("customer@x.example", &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try later"})
	queue := func(to, body string) {
		err := st.UpdateNow(context.Background(), func(tx store.Tx) error {
			return tx.Enqueue(&store.OutMail{TicketID: "HS-000001", Kind: "x", From: "support@example.com", To: []string{to},
				Raw: []byte("Subject: " + body + "\r\n\r\n" + body + "\r\n"), Created: time.Now()})
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	queue("customer@x.example", "closing")
	queue("agent@example.com", "notify")
	w := NewWorker(st, &Relay{Addr: relay.Addr, TLS: "none", Hostname: "t.example", Timeout: 5 * time.Second},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	w.RetryBase = time.Hour
	start := time.Now()
	next := w.RunOnce(context.Background())
	if got := relay.Mails(); len(got) != 1 || got[0].To[0] != "agent@example.com" {
		t.Fatalf("first wake: %d mails, want the agent's only", len(got))
	}
	if next.Before(start.Add(30 * time.Minute)) {
		t.Fatalf("next wake at %v, want the deferred closing notice's retry (~1h)", next.Sub(start))
	}

	// The survey is queued after the closing notice was deferred.
	queue("customer@x.example", "survey")
	relay.FailRcpt("customer@x.example", nil)
	if again := w.RunOnce(context.Background()); !again.Equal(next) {
		t.Errorf("with the survey queued, next wake at %v, want %v (the closing notice's retry)", again.Sub(start), next.Sub(start))
	}
	if got := relay.Mails(); len(got) != 1 {
		t.Fatalf("the survey went out before the deferred closing notice: %d mails", len(got))
	}
	w.Now = func() time.Time { return time.Now().Add(2 * time.Hour) }
	w.RunOnce(context.Background())
	got := relay.Mails()
	if len(got) != 3 || !strings.Contains(string(got[1].Data), "closing") || !strings.Contains(string(got[2].Data), "survey") {
		t.Fatalf("after the retry: %d mails; want closing then survey", len(got))
	}
}

// acceptAll is a relay that takes every mail at once.
type acceptAll struct{ n atomic.Int64 }

func (a *acceptAll) Send(_ string, _ []string, _ []byte, handedOver func([]RcptError)) ([]RcptError, error) {
	if handedOver != nil {
		handedOver(nil)
	}
	a.n.Add(1)
	return nil, nil
}

// BenchmarkWake is one wake of the worker (RunOnce) through the real
// store: 10 mails due, read, sent to a relay that accepts at once, and
// dequeued, with `deferred` more mails waiting for later. Its cost must
// not grow with the deferred ones. The 10 due mails are queued again,
// off the clock, before each wake.
func BenchmarkWake(b *testing.B) {
	for _, deferred := range []int{0, 100000} {
		b.Run(fmt.Sprintf("due=10/deferred=%d", deferred), func(b *testing.B) {
			st, err := boltdb.Open(filepath.Join(b.TempDir(), "t.db"), boltdb.Options{}, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			ctx := context.Background()
			now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
			mail := func(ticket string, next time.Time) *store.OutMail {
				return &store.OutMail{TicketID: ticket, Kind: "auto", From: "bounces@example.com",
					To: []string{"someone@customer.example"}, NextAt: next, Created: now,
					Raw: []byte("Subject: mail for " + ticket + "\r\n\r\nbody\r\n")}
			}
			// Filled 10,000 a transaction: bbolt splits its nodes on commit.
			for start := 0; start < deferred; start += 10000 {
				err = st.UpdateNow(ctx, func(tx store.Tx) error {
					for i := start; i < min(start+10000, deferred); i++ {
						if err := tx.Enqueue(mail(fmt.Sprintf("HS-%06d", i), now.Add(time.Hour+time.Duration(i)*time.Second))); err != nil {
							return err
						}
					}
					return nil
				})
				if err != nil {
					b.Fatal(err)
				}
			}
			sender := &acceptAll{}
			w := NewWorker(st, sender, slog.New(slog.NewTextHandler(io.Discard, nil)))
			w.Now = func() time.Time { return now }
			wakes := 0
			for b.Loop() {
				b.StopTimer()
				err := st.UpdateNow(ctx, func(tx store.Tx) error {
					for i := range 10 {
						if err := tx.Enqueue(mail(fmt.Sprintf("HS-9%05d", i), now.Add(-time.Minute))); err != nil {
							return err
						}
					}
					return nil
				})
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				if next := w.RunOnce(ctx); deferred > 0 && !next.Equal(now.Add(time.Hour)) {
					b.Fatalf("next wake %v, want the first deferred mail's time", next)
				}
				wakes++
			}
			if got := sender.n.Load(); got != int64(10*wakes) {
				b.Fatalf("%d mails sent in %d wakes, want 10 a wake", got, wakes)
			}
			var left []*store.OutMail
			st.View(ctx, func(tx store.Tx) error {
				left, err = tx.Outbox(store.Forever, 0)
				return err
			})
			if len(left) != deferred {
				b.Fatalf("%d mails left, want the %d deferred", len(left), deferred)
			}
		})
	}
}
