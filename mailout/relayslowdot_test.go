package mailout

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// A relay that scans a mail before it answers the final dot (a content
// filter, a milter) may take minutes; RFC 5321 (4.5.3.2.6) has the
// client wait ten for that answer, since the relay may have the mail
// already. A relay that answers after far more than the session's
// command timeout still gets the mail once: it is not taken for deferred
// and sent again.
func TestOutboxWaitsForASlowAnswerToTheEndOfAMail(t *testing.T) {
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
			e.w.Sender = &Relay{Addr: e.relay.Addr, TLS: "none", Hostname: "t.example", Timeout: 200 * time.Millisecond}
			e.w.RetryBase = 50 * time.Millisecond
			e.relay.SlowEndOfData(time.Second)
			e.queue("HS-000001", []string{"a@x.example"}, "scanned slowly")
			e.run()
			deadline := time.Now().Add(10 * time.Second)
			for len(e.outbox()) > 0 && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			if n := len(e.outbox()); n != 0 {
				t.Fatalf("%d mails still queued (%d attempts, last error %q); the relay got the mail %d times",
					n, e.outbox()[0].Attempts, e.outbox()[0].LastErr, e.relay.Accepted())
			}
			time.Sleep(3 * time.Second) // a resend would have come by now
			if got := e.relay.Accepted(); got != 1 {
				t.Errorf("the relay got the mail %d times, want once", got)
			}
		})
	}
}

// Abort cuts a delivery whose relay has not answered the end of the mail:
// Run returns at once instead of after the ten minutes that answer may
// take, and the mail stays queued, one attempt counted (so the hand-off
// note written after its final dot is not taken as delivered by the next
// run), even when it has waited past give_up_after: the relay failed
// nothing.
func TestAbortCutsADeliveryAwaitingTheEndOfData(t *testing.T) {
	for _, pipelining := range []bool{true, false} {
		t.Run(fmt.Sprintf("pipelining=%v", pipelining), func(t *testing.T) {
			e := newOutboxEnv(t)
			if !pipelining {
				e.relay.WithoutPipelining()
			}
			relay := &Relay{Addr: e.relay.Addr, TLS: "none", Hostname: "t.example", Timeout: time.Second}
			e.w.Sender = relay
			e.w.GiveUp = time.Millisecond
			e.w.RetryBase = 50 * time.Millisecond
			e.w.HandoffLog = filepath.Join(t.TempDir(), "t.handoff")
			e.relay.SlowEndOfData(time.Hour)
			e.queue("HS-000001", []string{"a@x.example"}, "never answered")
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { e.w.Run(ctx); close(done) }()
			deadline := time.Now().Add(10 * time.Second)
			for {
				if fi, err := os.Stat(e.w.HandoffLog); err == nil && fi.Size() > 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("the mail never reached its final dot")
				}
				time.Sleep(10 * time.Millisecond)
			}
			cancel()
			relay.Abort()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				t.Fatal("Run still waits for the relay 5s after Abort")
			}
			q := e.outbox()
			if len(q) != 1 || q[0].Attempts != 1 || !strings.Contains(q[0].LastErr, "cut short") {
				t.Fatalf("outbox after the cut: %d entries %+v; want the mail queued, one attempt, its error saying it was cut", len(q), q)
			}
			if !slices.Equal(q[0].Pending(), []string{"a@x.example"}) {
				t.Errorf("pending after the cut: %v; the relay took nothing", q[0].Pending())
			}
			// The next run sends it.
			e.relay.SlowEndOfData(0)
			e.w.GiveUp = time.Hour
			e.w.Sender = &Relay{Addr: e.relay.Addr, TLS: "none", Hostname: "t.example", Timeout: time.Second}
			e.run()
			if got := e.relay.WaitFor(1, 10*time.Second); len(got) != 1 {
				t.Fatalf("the next run sent %d mails, want the one cut", len(got))
			}
		})
	}
}
