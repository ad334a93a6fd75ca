package desk

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/emersion/go-smtp"

	"ticketgate/mailin"
	"ticketgate/store"
)

// BenchmarkSMTPIngest measures durable ingest over SMTP: every message is
// acknowledged only after its ticket is committed (fsync on, bbolt's
// default). Each client keeps one connection and sends its share of the
// b.N messages on it, with RSET between messages. Every message is a new
// customer's first mail (about 4 KB), so each one opens a ticket and queues
// an auto-reply that the outbox worker delivers to the recording relay
// while the benchmark runs.
func BenchmarkSMTPIngest(b *testing.B) {
	for _, clients := range []int{1, 32} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) {
			benchIngest(b, clients)
		})
	}
}

func benchIngest(b *testing.B, clients int) {
	g := startGateway(b)
	msgs := make([][]byte, b.N)
	for i := range msgs {
		msgs[i] = benchMessage(i)
	}
	conns := make([]*smtp.Client, clients)
	for i := range conns {
		c, err := smtp.Dial(g.smtp.Addr())
		if err != nil {
			b.Fatal(err)
		}
		if err := c.Hello("bench.customer.example"); err != nil {
			b.Fatal(err)
		}
		conns[i] = c
	}
	var next atomic.Int64
	var failed atomic.Value
	var wg sync.WaitGroup
	b.SetBytes(int64(len(msgs[0])))
	b.ResetTimer()
	for _, c := range conns {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(msgs) {
					return
				}
				if err := sendOn(c, i, msgs[i]); err != nil {
					failed.CompareAndSwap(nil, err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	for _, c := range conns {
		c.Quit()
	}
	if err, _ := failed.Load().(error); err != nil {
		b.Fatal(err)
	}
	if n := len(g.tickets()); n != b.N {
		b.Fatalf("%d messages acknowledged, %d tickets stored", b.N, n)
	}
}

// sendOn sends message i on an open connection and resets it for the next.
func sendOn(c *smtp.Client, i int, raw []byte) error {
	if err := c.SendMail(benchSender(i), []string{"support@example.com"}, bytes.NewReader(raw)); err != nil {
		return fmt.Errorf("message %d: %w", i, err)
	}
	if err := c.Reset(); err != nil {
		return fmt.Errorf("RSET after message %d: %w", i, err)
	}
	return nil
}

func benchSender(i int) string { return fmt.Sprintf("customer%d@bench.example", i) }

// benchMessage is a 4 KB plain-text first mail from a distinct customer.
func benchMessage(i int) []byte {
	line := "The quick brown fox jumps over the lazy dog while the printer keeps jamming.\n"
	body := strings.Repeat(line, 4096/len(line))
	raw := msg(benchSender(i), "support@example.com", fmt.Sprintf("Bench ticket %d", i), body,
		fmt.Sprintf("Message-ID: <bench.%d@bench.example>", i))
	if len(raw) > 4096 {
		raw = append(raw[:4094:4094], '\r', '\n')
	}
	return raw
}

// BenchmarkForget measures one erasure (forget) in a database of 2,000
// tickets of 4 KB first mails: the search of every ticket in read
// transactions, then the erasure of the customer's ticket in one commit.
// Each iteration erases another customer.
func BenchmarkForget(b *testing.B) {
	const tickets = 2000
	g := startGateway(b)
	for i := range tickets {
		if _, err := g.pipeline.Deliver(context.Background(), &mailin.Delivery{MailFrom: benchSender(i),
			Rcpts: []string{"support@example.com"}, Raw: benchMessage(i), Source: "smtp"}); err != nil {
			b.Fatal(err)
		}
	}
	key := []byte("0123456789abcdef")
	b.ResetTimer()
	for i := range b.N {
		addr := benchSender(i % tickets)
		_, err := g.pipeline.Forget(context.Background(), Forget{Addr: addr, Pseudonym: Pseudonym(key, addr)})
		if err != nil && (i < tickets || !errors.Is(err, store.ErrNotFound)) {
			b.Fatal(err)
		}
	}
}
