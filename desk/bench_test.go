package desk

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"ticketgate/mailin"
	"ticketgate/rules"
	"ticketgate/store"
	"ticketgate/store/boltdb"
)

// BenchmarkSMTPIngest measures durable ingest over SMTP: every message is
// acknowledged only after its ticket is committed (fsync on, bbolt's
// default). Besides ns/op it reports msgs/s, the p50 and p99 of the time
// from the end of DATA to the 250, the messages each grouped commit
// carried (msgs/commit; the outbox worker's writes count as calls too),
// the grouped commits per message (commits/msg), the process's CPU per message (cpu-ms/msg: the
// gateway, the SMTP clients and the relay, all in this process) and the
// bytes it caused to be written to disk per message (disk-B/msg, from
// /proc/self/io write_bytes). Each client keeps one connection and sends its share of the
// b.N messages on it, with RSET between messages. Every message is a new
// customer's first mail (about 4 KB), so each one opens a ticket and queues
// an auto-reply that the outbox worker delivers to the recording relay
// while the benchmark runs. In agents=2 two agents work the queue, so each
// message also queues two notifications carrying its text.
func BenchmarkSMTPIngest(b *testing.B) {
	for _, clients := range []int{1, 32} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) {
			benchIngest(b, clients, 0, nil)
		})
	}
	b.Run("agents=2/clients=32", func(b *testing.B) {
		benchIngest(b, 32, 0, agAgents[:2])
	})
	// An aged database: agedMessages tickets were opened (and their
	// auto-replies sent and dequeued, which frees pages) before the timed
	// run. Run it with a fixed -benchtime (e.g. 2000x): the ageing is redone
	// for every b.N tried.
	b.Run("aged/clients=32", func(b *testing.B) {
		benchIngest(b, 32, agedMessages, nil)
	})
	// The same with [tickets] numbers = "sequential".
	for _, clients := range []int{1, 32} {
		b.Run(fmt.Sprintf("sequential/clients=%d", clients), func(b *testing.B) {
			benchIngest(b, clients, 0, nil, sequential)
		})
	}
	b.Run("sequential/aged/clients=32", func(b *testing.B) {
		benchIngest(b, 32, agedMessages, nil, sequential)
	})
}

// sequential is benchIngest's option for sequential ticket numbers.
func sequential(p *Pipeline) { p.Sequential = true }

// agedMessages is how many tickets the aged sub-benchmark opens first.
const agedMessages = 5000

func benchIngest(b *testing.B, clients, aged int, agents []Agent, opts ...func(*Pipeline)) {
	g := startGateway(b)
	for _, o := range opts {
		o(g.pipeline)
	}
	if agents != nil {
		g.pipeline.Agents = agents
		g.pipeline.Signer = rules.Signer{Keys: [][]byte{agKey}}
	}
	msgs := make([][]byte, b.N+aged)
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
	if aged > 0 {
		sendAll(b, conns, msgs[:aged], nil)
		msgs = msgs[aged:]
		waitSent(b, g, aged)
	}
	lat := make([]time.Duration, b.N)
	db := g.store.(*boltdb.DB)
	commits0, calls0 := db.CommitStats()
	cpu0, disk0 := selfUsage(b)
	b.SetBytes(int64(len(msgs[0])))
	b.ResetTimer()
	err := sendAll(b, conns, msgs, lat)
	b.StopTimer()
	cpu1, disk1 := selfUsage(b)
	commits1, calls1 := db.CommitStats()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	slices.Sort(lat)
	b.ReportMetric(float64(lat[b.N/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[b.N*99/100].Microseconds())/1000, "p99-ms")
	if commits1 > commits0 {
		b.ReportMetric(float64(calls1-calls0)/float64(commits1-commits0), "msgs/commit")
	}
	// Grouped commits (each one fsync) per ingested message, the outbox
	// worker's included.
	b.ReportMetric(float64(commits1-commits0)/float64(b.N), "commits/msg")
	b.ReportMetric((cpu1-cpu0).Seconds()*1000/float64(b.N), "cpu-ms/msg")
	b.ReportMetric(float64(disk1-disk0)/float64(b.N), "disk-B/msg")
	for _, c := range conns {
		c.Quit()
	}
	if err != nil {
		b.Fatal(err)
	}
	if n := len(g.tickets()); n != b.N+aged {
		b.Fatalf("%d messages acknowledged, %d tickets stored", b.N+aged, n)
	}
}

// sendAll sends msgs over conns, each connection taking the next message
// as soon as it is free, and records each one's time to the 250 in lat
// (when not nil). It returns the first error.
func sendAll(b *testing.B, conns []*smtp.Client, msgs [][]byte, lat []time.Duration) error {
	var next atomic.Int64
	var failed atomic.Value
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(msgs) {
					return
				}
				start := time.Now()
				err := sendOn(c, i, msgs[i])
				if lat != nil {
					lat[i] = time.Since(start)
				}
				if err != nil {
					failed.CompareAndSwap(nil, err)
					return
				}
			}
		})
	}
	wg.Wait()
	err, _ := failed.Load().(error)
	return err
}

// waitSent waits until the relay has received n mails (the auto-replies of
// the ageing run), so that the timed run does not pay for their sending.
func waitSent(b *testing.B, g *gateway, n int) {
	if got := len(g.relay.WaitFor(n, 2*time.Minute)); got < n {
		b.Fatalf("relay got %d of %d auto-replies", got, n)
	}
}

// selfUsage is this process's CPU time (user and system) and the bytes it
// caused to be written to disk so far.
func selfUsage(b *testing.B) (time.Duration, int64) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	io, err := os.ReadFile("/proc/self/io")
	if err != nil {
		b.Skipf("no disk counters: %v", err)
	}
	for line := range strings.SplitSeq(string(io), "\n") {
		if v, ok := strings.CutPrefix(line, "write_bytes:"); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				b.Fatal(err)
			}
			return cpu, n
		}
	}
	b.Skip("no write_bytes in /proc/self/io")
	return 0, 0
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

// BenchmarkFdatasync is the disk's own pace: one 4 KB write and fdatasync
// per op in a file beside the benchmark's databases. Run it with
// BenchmarkSMTPIngest (-bench 'SMTPIngest|Fdatasync') so that the ingest
// figures can be read against the fsync rate of the same run.
func BenchmarkFdatasync(b *testing.B) {
	f, err := os.Create(b.TempDir() + "/sync")
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	page := make([]byte, 4096)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := f.WriteAt(page, int64(i%256)*4096); err != nil {
			b.Fatal(err)
		}
		if err := syscall.Fdatasync(int(f.Fd())); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "fsyncs/s")
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
