package mailout

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"
)

// Two gateways share one outbox: a delivery that takes longer than the
// claim's lease (a relay far away or slow to answer the end of a mail)
// keeps its claim renewed, so the other gateway never takes the mail and
// sends it a second time.
func TestOutboxSlowDeliveryKeepsItsClaim(t *testing.T) {
	e := newOutboxEnv(t)
	// Every answer of the relay's comes 1.5 s late: a delivery on a
	// new session (greeting, EHLO, the pipelined transaction, the end of
	// the mail) takes about 6 s, three leases.
	e.relay.Latency(1500 * time.Millisecond)
	e.queue("HS-000001", []string{"a@x.example"}, "slow relay")
	e.w.Lease = 2 * time.Second
	other := NewWorker(e.st, &Relay{Addr: e.relay.Addr, TLS: "none", Hostname: "t.example", Timeout: 10 * time.Second},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	other.Lease = 2 * time.Second
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { other.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	e.run()
	e.relay.WaitFor(1, 30*time.Second)
	deadline := time.Now().Add(30 * time.Second)
	for len(e.outbox()) != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := timesSent(e.relay.Mails())["slow relay"]; got != 1 {
		t.Errorf("the relay got the mail %d times, want once", got)
	}
	if n := len(e.outbox()); n != 0 {
		t.Errorf("%d mails still queued", n)
	}
}
