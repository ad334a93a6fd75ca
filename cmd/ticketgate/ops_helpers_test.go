package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"ticketgate/store"
	"ticketgate/store/boltdb"
)

// opsConfig rewrites the installation's config: the usual listeners and
// relay, the [outbound] lines given, extra routes and any further
// sections.
func (e *env) opsConfig(outbound, rest string) {
	e.t.Helper()
	e.rewriteConfig(e.relay.Addr, "tls = \"none\"\nretry_base = \"50ms\"\n"+outbound, rest)
}

// rewriteConfig rewrites the installation's config with its listeners,
// the relay value and [outbound] lines given, the support route, and any
// further sections.
func (e *env) rewriteConfig(relay, outbound, rest string) {
	e.t.Helper()
	text := fmt.Sprintf(`[store]
path = "data/tickets.db"

[inbound]
smtp_listen = %q
hostname = "tickets.example.com"

[outbound]
relay = %q
%s
[admin]
listen = %q

[[route]]
address = "support@example.com"
queue = "support"

%s
`, e.smtp, relay, outbound, e.admin, rest)
	if err := os.WriteFile(e.cfg, []byte(text), 0o600); err != nil {
		e.t.Fatal(err)
	}
}

// scrape reads /metrics into "name{labels}" → value.
func (e *env) scrape() map[string]float64 {
	e.t.Helper()
	resp, err := http.Get("http://" + e.admin + "/metrics")
	if err != nil {
		e.t.Fatalf("scrape: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		e.t.Fatalf("scrape: %s\n%s", resp.Status, b)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			e.t.Fatalf("scrape: bad line %q", line)
		}
		out[line[:i]] = v
	}
	return out
}

// waitMetric polls /metrics until the series reaches at least want.
func (e *env) waitMetric(series string, want float64) map[string]float64 {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		m := e.scrape()
		if m[series] >= want {
			return m
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%s = %v after 10s, want at least %v", series, m[series], want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitLog waits until the serve log holds text.
func (s *server) waitLog(t *testing.T, text string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(s.stderr.String(), text) {
		if time.Now().After(deadline) {
			t.Fatalf("serve log has no %q after 10s:\n%s", text, s.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// running reports whether the serve process has not exited.
func (s *server) running() bool {
	select {
	case <-s.done:
		return false
	default:
		return true
	}
}

// dbPath is the installation's database file.
func (e *env) dbPath() string { return filepath.Join(e.dir, "data", "tickets.db") }

// missingMessages opens the database (no process may hold it) and returns
// the Message-IDs of ids that are not on a ticket.
func (e *env) missingMessages(ids []string) []string {
	e.t.Helper()
	st, err := boltdb.Open(e.dbPath(), boltdb.Options{ReadOnly: true}, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	defer st.Close()
	var missing []string
	err = st.View(context.Background(), func(tx store.Tx) error {
		for _, id := range ids {
			tid, err := tx.TicketByMessageID(id)
			if err != nil {
				return err
			}
			if ok, err := tx.HasMessage(tid, id); tid == "" || err != nil || !ok {
				missing = append(missing, id)
			}
		}
		return nil
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return missing
}

// load sends new-ticket mail over SMTP from several connections until
// stop is called, and keeps the Message-IDs the gateway acknowledged.
type load struct {
	mu    sync.Mutex
	acked []string
	quit  chan struct{}
	wg    sync.WaitGroup
}

func startLoad(t *testing.T, addr string, clients int) *load {
	t.Helper()
	l := &load{quit: make(chan struct{})}
	for c := range clients {
		s, err := dialSender(addr)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		l.wg.Go(func() {
			defer s.c.Close()
			for i := 0; ; i++ {
				select {
				case <-l.quit:
					s.c.Quit()
					return
				default:
				}
				id := fmt.Sprintf("load-%d-%d@customer.example", c, i)
				from := fmt.Sprintf("user%d.%d@customer.example", c, i)
				if err := s.send(from, "support@example.com", message(from, "support@example.com", "Load "+id, id, "Body.")); err != nil {
					t.Errorf("load: %s: %v", id, err)
					return
				}
				l.mu.Lock()
				l.acked = append(l.acked, id)
				l.mu.Unlock()
			}
		})
	}
	return l
}

// ackedSoFar returns a copy of the ids acknowledged until now.
func (l *load) ackedSoFar() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.acked...)
}

// waitAcked waits until n messages were acknowledged.
func (l *load) waitAcked(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for len(l.ackedSoFar()) < n {
		if time.Now().After(deadline) {
			t.Fatalf("only %d messages acknowledged after 30s, want %d", len(l.ackedSoFar()), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (l *load) stop() []string {
	close(l.quit)
	l.wg.Wait()
	return l.ackedSoFar()
}

// jsonLines decodes the records of a JSON log.
func jsonLines(t *testing.T, log string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(log), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line is not JSON: %q", line)
		}
		out = append(out, rec)
	}
	return out
}
