package mailout

import (
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
