package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"ticketgate/store/postgres"
	"ticketgate/store/postgres/pgtest"
)

// freezer passes TCP connections on to a server until frozen: then it
// holds them open and passes nothing either way, as a database that
// stopped answering (a link lost without a reset, a host hung) does.
type freezer struct {
	addr   string
	mu     sync.Mutex
	frozen bool
	thaw   chan struct{}
}

func startFreezer(t *testing.T, to string) *freezer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &freezer{addr: ln.Addr().String(), thaw: make(chan struct{})}
	var conns []net.Conn
	var cmu sync.Mutex
	t.Cleanup(func() {
		ln.Close()
		f.unfreeze()
		cmu.Lock()
		for _, c := range conns {
			c.Close()
		}
		cmu.Unlock()
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", to)
			if err != nil {
				c.Close()
				continue
			}
			cmu.Lock()
			conns = append(conns, c, s)
			cmu.Unlock()
			go f.pass(s, c)
			go f.pass(c, s)
		}
	}()
	return f
}

// pass copies from src to dst, holding each read back while frozen.
func (f *freezer) pass(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		f.mu.Lock()
		thaw := f.thaw
		frozen := f.frozen
		f.mu.Unlock()
		if frozen {
			<-thaw
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			dst.Close()
			return
		}
	}
}

func (f *freezer) freeze() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.frozen = true
}

func (f *freezer) unfreeze() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.frozen {
		f.frozen = false
		close(f.thaw)
		f.thaw = make(chan struct{})
	}
}

// A gateway whose database stops answering (no refusal, no reset: a
// link lost, a host hung) stops the work it holds a lease for within two
// thirds of the lease, as docs/scale.md promises: before another gateway
// takes the lease over, so that the two never poll one mailbox at once.
func TestLeaseWorkStopsWhenTheDatabaseStopsAnswering(t *testing.T) {
	c := pgtest.Start(t)
	dsn := c.NewDatabase(t)
	direct, err := postgres.Open(context.Background(), dsn, postgres.Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { direct.Close() })
	fz := startFreezer(t, "127.0.0.1:"+strconv.Itoa(c.Port))
	host, port, _ := net.SplitHostPort(fz.addr)
	proxied, err := postgres.Open(context.Background(), "host="+host+" port="+port+" user=postgres dbname="+dsnDB(dsn)+" sslmode=disable", postgres.Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proxied.Close() })
	const ttl = 3 * time.Second
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	var (
		mu             sync.Mutex
		aEnded, bBegan time.Time
	)
	started := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { fz.unfreeze(); cancel(); wg.Wait() }()
	a := newLease(proxied, "imap:support", "gateway-a", ttl, log)
	wg.Go(func() {
		a.run(ctx, func(wctx context.Context) {
			close(started)
			<-wctx.Done()
			mu.Lock()
			aEnded = time.Now()
			mu.Unlock()
		})
	})
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("gateway a did not take the lease")
	}
	b := newLease(direct, "imap:support", "gateway-b", ttl, log)
	wg.Go(func() {
		b.run(ctx, func(wctx context.Context) {
			mu.Lock()
			if bBegan.IsZero() {
				bBegan = time.Now()
			}
			mu.Unlock()
			<-wctx.Done()
		})
	})
	fz.freeze()
	frozen := time.Now()
	deadline := time.Now().Add(4 * ttl)
	for {
		mu.Lock()
		ae, bb := aEnded, bBegan
		mu.Unlock()
		if !bb.IsZero() {
			if ae.IsZero() || ae.After(bb) {
				t.Fatalf("gateway b took the lease %v after the database stopped answering gateway a, whose work went on (ended: %v)",
					bb.Sub(frozen).Round(100*time.Millisecond), !ae.IsZero())
			}
			t.Logf("a stopped %v after the freeze, b began %v after it", ae.Sub(frozen).Round(100*time.Millisecond), bb.Sub(frozen).Round(100*time.Millisecond))
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("gateway b never took the lease (a's work ended: %v)", !ae.IsZero())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// dsnDB is the dbname of a pgtest DSN.
func dsnDB(dsn string) string {
	for _, f := range strings.Fields(dsn) {
		if v, ok := strings.CutPrefix(f, "dbname="); ok {
			return v
		}
	}
	return ""
}
