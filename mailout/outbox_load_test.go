package mailout

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"ticketgate/mailout/relaytest"
	"ticketgate/store"
	"ticketgate/store/boltdb"
)

// fill queues n mails of about 2 KB, each to its own recipient about its
// own ticket, a few thousand a transaction.
func fill(tb testing.TB, st store.Store, n int) {
	tb.Helper()
	body := strings.Repeat("Thank you for your mail; we will answer soon.\r\n", 40)
	for start := 0; start < n; start += 5000 {
		err := st.UpdateNow(context.Background(), func(tx store.Tx) error {
			for i := start; i < min(start+5000, n); i++ {
				m := &store.OutMail{TicketID: fmt.Sprintf("HS-%06d", i+1), Kind: "auto", From: "bounces@example.com",
					To: []string{fmt.Sprintf("c%d@x.example", i)}, Created: time.Now(),
					Raw: []byte(fmt.Sprintf("Subject: mail %d\r\n\r\n%s", i, body))}
				if err := tx.Enqueue(m); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			tb.Fatal(err)
		}
	}
}

// outboxEmpty reports whether nothing is queued.
func outboxEmpty(tb testing.TB, st store.Store) bool {
	var next time.Time
	err := st.View(context.Background(), func(tx store.Tx) error {
		var err error
		next, err = tx.NextOutboxAt()
		return err
	})
	if err != nil {
		tb.Fatal(err)
	}
	return next.IsZero()
}

// freshRelay opens a new SMTP session for every mail, as the relay client
// did before it kept sessions: the baseline for BenchmarkOutboxThroughput.
type freshRelay struct{ addr string }

func (f freshRelay) Send(from string, to []string, raw []byte, handedOver func([]RcptError)) ([]RcptError, error) {
	r := &Relay{Addr: f.addr, TLS: "none", Hostname: "t.example", Timeout: 5 * time.Second, Sessions: 1}
	defer func() { go r.Close() }()
	return r.Send(from, to, raw, handedOver)
}

// BenchmarkOutboxThroughput delivers b.N queued mails (about 2 KB each,
// all due, queued off the clock) with the running worker (Run) to a
// recording SMTP relay on 127.0.0.1, until the outbox is empty (every
// outcome committed, with fsync), and reports mails/s: over the relay
// sessions the worker keeps, each transaction pipelined (reuse), over
// kept sessions to a relay that does not offer PIPELINING (unpipelined),
// and with a new session for every mail (fresh); then the first two with
// the relay's answers 10 ms late (a relay 10 ms away).
func BenchmarkOutboxThroughput(b *testing.B) {
	for _, mode := range []string{"reuse", "unpipelined", "fresh", "reuse-10ms", "unpipelined-10ms"} {
		b.Run(mode, func(b *testing.B) {
			st, err := boltdb.Open(filepath.Join(b.TempDir(), "t.db"), boltdb.Options{}, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			relay := relaytest.Start(b)
			if strings.HasPrefix(mode, "unpipelined") {
				relay.WithoutPipelining()
			}
			if strings.HasSuffix(mode, "-10ms") {
				relay.Latency(10 * time.Millisecond)
			}
			var sender Sender = &Relay{Addr: relay.Addr, TLS: "none", Hostname: "t.example", Timeout: 5 * time.Second}
			if mode == "fresh" {
				sender = freshRelay{relay.Addr}
			}
			fill(b, st, b.N)
			w := NewWorker(st, sender, slog.New(slog.NewTextHandler(io.Discard, nil)))
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			b.ResetTimer()
			go func() { w.Run(ctx); close(done) }()
			relay.WaitFor(b.N, 10*time.Minute)
			for !outboxEmpty(b, st) {
				time.Sleep(time.Millisecond)
			}
			b.StopTimer()
			cancel()
			<-done
			if got := len(relay.Mails()); got != b.N {
				b.Fatalf("relay got %d mails, want %d", got, b.N)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "mails/s")
			b.ReportMetric(float64(relay.Sessions()), "sessions")
		})
	}
}

// memoryEnv names the environment variable that runs
// TestOutbox100KDeferredMemory.
const memoryEnv = "TICKETGATE_OUTBOX_100K"

// procStatus reads a "kB" field of /proc/self/status, in bytes.
func procStatus(field string) uint64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			n, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n << 10
		}
	}
	return 0
}

// peakMemory samples anonymous RSS and the Go heap in use until stopped.
type peakMemory struct {
	rss, heap atomic.Uint64
	stop      chan struct{}
	wg        sync.WaitGroup
}

func samplePeak() *peakMemory {
	p := &peakMemory{stop: make(chan struct{})}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		var ms runtime.MemStats
		for {
			if r := procStatus("RssAnon"); r > p.rss.Load() {
				p.rss.Store(r)
			}
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > p.heap.Load() {
				p.heap.Store(ms.HeapInuse)
			}
			select {
			case <-p.stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	return p
}

func (p *peakMemory) end() (rss, heap uint64) {
	close(p.stop)
	p.wg.Wait()
	return p.rss.Load(), p.heap.Load()
}

// counting counts the mails offered to the relay.
type counting struct {
	Sender
	n atomic.Int64
}

func (c *counting) Send(from string, to []string, raw []byte, handedOver func([]RcptError)) ([]RcptError, error) {
	c.n.Add(1)
	return c.Sender.Send(from, to, raw, handedOver)
}

// With the relay down, 100,000 queued mails are each tried, deferred and
// recorded while the worker's process keeps its anonymous RSS under
// 64 MiB; then the relay comes back, every deferred mail is woken and
// delivered, also under 64 MiB. The peak RSS and heap in use are logged.
// A measurement of several minutes: run with TICKETGATE_OUTBOX_100K=1
// (and -v for the figures).
func TestOutbox100KDeferredMemory(t *testing.T) {
	if os.Getenv(memoryEnv) == "" {
		t.Skip("a measurement of several minutes: set " + memoryEnv + "=1")
	}
	const n, limit = 100000, 64 << 20
	st, err := boltdb.Open(filepath.Join(t.TempDir(), "t.db"), boltdb.Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	relay := relaytest.Start(t)
	relay.Down()
	start := time.Now()
	fill(t, st, n)
	t.Logf("queued %d mails in %v", n, time.Since(start).Round(time.Millisecond))
	runtime.GC()
	debug.FreeOSMemory()
	base := procStatus("RssAnon")

	sender := &counting{Sender: &Relay{Addr: relay.Addr, TLS: "none", Hostname: "t.example", Timeout: 5 * time.Second}}
	w := NewWorker(st, sender, slog.New(slog.NewTextHandler(io.Discard, nil)))
	w.RetryBase = time.Hour
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	peak := samplePeak()
	start = time.Now()
	go func() { w.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	for deadline := time.Now().Add(15 * time.Minute); ; time.Sleep(100 * time.Millisecond) {
		var next time.Time
		st.View(ctx, func(tx store.Tx) error { next, err = tx.NextOutboxAt(); return err })
		if sender.n.Load() >= n && next.After(time.Now().Add(30*time.Minute)) {
			break // every mail tried and its deferral committed
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d mails tried in 15 minutes", sender.n.Load(), n)
		}
	}
	rss, heap := peak.end()
	t.Logf("relay down: %d mails tried and deferred in %v; peak RssAnon %.1f MiB (%.1f MiB before the worker started), peak HeapInuse %.1f MiB",
		n, time.Since(start).Round(time.Millisecond), mib(rss), mib(base), mib(heap))
	if rss > limit {
		t.Errorf("anonymous RSS reached %.1f MiB with %d mails deferred; want under 64 MiB", mib(rss), n)
	}

	// The relay is back: the first mail it takes wakes the deferred. It
	// keeps no mail, so that the figures are the worker's.
	relay.CountOnly()
	relay.Up(t)
	peak = samplePeak()
	start = time.Now()
	err = st.UpdateNow(ctx, func(tx store.Tx) error {
		return tx.Enqueue(&store.OutMail{TicketID: "HS-999999", Kind: "auto", From: "bounces@example.com",
			To: []string{"back@x.example"}, Created: time.Now(), Raw: []byte("Subject: relay back\r\n\r\nx\r\n")})
	})
	if err != nil {
		t.Fatal(err)
	}
	w.Wake()
	relay.WaitFor(n+1, 15*time.Minute)
	got := relay.Accepted()
	for deadline := time.Now().Add(time.Minute); !outboxEmpty(t, st); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the outbox did not empty")
		}
	}
	rss, heap = peak.end()
	elapsed := time.Since(start)
	t.Logf("relay back: %d mails delivered in %v (%.0f mails/s) over %d SMTP sessions; peak RssAnon %.1f MiB, peak HeapInuse %.1f MiB",
		got, elapsed.Round(time.Millisecond), float64(got)/elapsed.Seconds(), relay.Sessions(), mib(rss), mib(heap))
	if got != n+1 {
		t.Errorf("relay got %d mails, want %d", got, n+1)
	}
	if rss > limit {
		t.Errorf("anonymous RSS reached %.1f MiB delivering %d deferred mails; want under 64 MiB", mib(rss), n)
	}
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }
