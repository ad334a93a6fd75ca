package main

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net/mail"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"ticketgate/store"
	"ticketgate/store/postgres/pgtest"
)

// killsEnv names the environment variable that sets how many times
// TestKill9SendsEachMailOnce kills serve; the closing figures of a change
// to the outbox use 100.
const killsEnv = "TICKETGATE_KILLS"

// sendOnceAgents makes every new ticket mail two agents besides the
// requester's auto-reply, so the outbox carries both kinds; the clients
// all write from one domain.
const sendOnceAgents = `
[limits]
inbound_per_domain_per_hour = 0

[agents]
secret_file = "data/agent.key"

[[agent]]
email = "ana@example.com"
queues = ["support"]

[[agent]]
email = "bo@example.com"
queues = ["support"]
`

// TestKill9SendsEachMailOnce kills serve with SIGKILL again and again
// while clients send it mail and its outbox delivers to a recording relay,
// then lets a last serve empty the outbox. Every acknowledged message must
// be stored once, every mail the tickets record as sent must have reached
// the relay, and the relay may get a mail twice only when a kill fell
// between its 250 and the note of that hand-off: at most 5 per 100
// kills. Clients re-send what was not acknowledged, as an MTA would.
// Every other process numbers new tickets sequentially, so numbering
// carries on across kills from what the killed process committed.
// TICKETGATE_KILLS=100 gives the figures a change to the outbox is
// judged by; the default is 10 kills (3 with -short).
func TestKill9SendsEachMailOnce(t *testing.T) {
	killSendOnce(t, newEnv(t, false))
}

// The same with PostgreSQL: its gateway keeps the hand-off log beside its
// keys too, and a restarted gateway applies the notes of its killed run
// before that run's claims expire (the lease is 3 s here, as in
// TestClusterProof).
func TestKill9SendsEachMailOncePostgres(t *testing.T) {
	e := newEnv(t, false)
	e.usePostgres(pgtest.Start(t).NewDatabase(t), "lease = \"3s\"\n")
	killSendOnce(t, e)
}

// killSendOnce is TestKill9SendsEachMailOnce on the installation e.
func killSendOnce(t *testing.T, e *env) {
	kills := 10
	if testing.Short() {
		kills = 3
	}
	v := os.Getenv(killsEnv)
	measured := v != ""
	if measured {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("%s=%q: want a positive number", killsEnv, v)
		}
		kills = n
	}
	appendConfig(t, e.cfg, sendOnceAgents)
	// Every other process numbers tickets sequentially, carrying on
	// after the newest ticket the killed one committed.
	random := e.cfg
	sequential := strings.TrimSuffix(random, ".toml") + "-sequential.toml"
	text, err := os.ReadFile(random)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(sequential, append(text, "\n[tickets]\nnumbers = \"sequential\"\n"...), 0o600); err != nil {
		t.Fatal(err)
	}

	l := &crashLoad{addr: e.smtp}
	for i := range kills {
		e.cfg = random
		if i%2 == 1 {
			e.cfg = sequential
		}
		s := e.serve()
		// Kill at a random moment once ingest and delivery are both busy:
		// after a few messages of this process were acknowledged, which
		// on a busy machine can take longer than the random delay.
		before := l.ackedCount()
		time.AfterFunc(100*time.Millisecond+rand.N(400*time.Millisecond), func() {
			for end := time.Now().Add(10 * time.Second); l.ackedCount() < before+4 && time.Now().Before(end); {
				time.Sleep(5 * time.Millisecond)
			}
			s.cmd.Process.Kill()
		})
		l.sendUntilGone(4)
		<-s.done
		if s.cmd.ProcessState.Success() {
			t.Fatal("serve exited normally; the kill did not happen while it ran")
		}
	}
	l.resendPending(t, e)
	e.drainOutbox()

	f := e.countSendOnce(l.acked)
	t.Logf("kills %d, acknowledged %d, stored %d, lost %d, stored twice %d, sent twice %d (relay got %d mails; replies and notifications never sent %d)",
		kills, len(l.acked), f.stored, len(l.acked)-f.stored, f.storedTwice, f.sentTwice, f.relayed, f.outLost+f.neverSent)
	if f.stored != len(l.acked) {
		t.Errorf("%d acknowledged messages lost", len(l.acked)-f.stored)
	}
	if f.storedTwice > 0 {
		t.Errorf("%d messages stored twice", f.storedTwice)
	}
	if f.neverSent > 0 || f.outLost > 0 {
		t.Errorf("mails queued for tickets never reached the relay: %d recorded replies, %d expected recipients", f.neverSent, f.outLost)
	}
	// The sequential processes numbered their tickets in runs (random
	// numbers next to each other are rare: about 1 in 400 at this size).
	numbers := map[int]bool{}
	for _, tk := range e.tickets() {
		n, _ := strconv.Atoi(strings.TrimPrefix(tk.ID, "HS-"))
		numbers[n] = true
	}
	next := 0
	for n := range numbers {
		if numbers[n-1] {
			next++
		}
	}
	if kills > 1 && next < len(numbers)/10 {
		t.Errorf("%d of %d tickets follow another's number; the sequential processes numbered at random?", next, len(numbers))
	}
	// The target, at most 5 repeats per 100 kills, is a rate: it is held
	// to when the kills are counted (TICKETGATE_KILLS). A short default
	// run on a busy machine only has to stay far below what committing
	// outcomes alone gave (about 5 repeats per kill).
	limit, target := kills, "1 per kill"
	if measured {
		limit, target = max(1, kills*5/100), "5 per 100 kills"
	}
	if f.sentTwice > limit {
		t.Errorf("relay got %d mails twice in %d kills; want at most %d (%s)", f.sentTwice, kills, limit, target)
	}
}

func appendConfig(t *testing.T, path, text string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(text); err != nil {
		t.Fatal(err)
	}
}

// crashLoad is the clients' side of the crash test: what serve
// acknowledged, and what it did not answer before it died (sent again to
// the next process).
type crashLoad struct {
	addr    string
	mu      sync.Mutex
	next    int
	acked   []string
	pending []string
}

// ackedCount is how many messages were acknowledged so far.
func (l *crashLoad) ackedCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.acked)
}

// take returns the next Message-ID to send: one not acknowledged by a
// killed process first, else a new one.
func (l *crashLoad) take() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if n := len(l.pending); n > 0 {
		id := l.pending[n-1]
		l.pending = l.pending[:n-1]
		return id
	}
	l.next++
	return fmt.Sprintf("once-%d@customer.example", l.next)
}

func crashMessage(id string) (from string, raw []byte) {
	from = "user-" + id
	return from, message(from, "support@example.com", "Crash test "+id, id, "Send my reply once.")
}

// sendUntilGone sends from several clients until the server stops
// answering.
func (l *crashLoad) sendUntilGone(clients int) {
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			s, err := dialSender(l.addr)
			if err != nil {
				return // already killed
			}
			defer s.c.Close()
			for {
				id := l.take()
				from, raw := crashMessage(id)
				err := s.send(from, "support@example.com", raw)
				l.mu.Lock()
				if err != nil {
					l.pending = append(l.pending, id)
				} else {
					l.acked = append(l.acked, id)
				}
				l.mu.Unlock()
				if err != nil {
					return
				}
			}
		})
	}
	wg.Wait()
}

// resendPending hands what the last killed process did not acknowledge to
// a process left running, as the sending MTA's retry would.
func (l *crashLoad) resendPending(t *testing.T, e *env) {
	t.Helper()
	if len(l.pending) == 0 {
		return
	}
	s := e.serve()
	c, err := dialSender(e.smtp)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range l.pending {
		from, raw := crashMessage(id)
		if err := c.send(from, "support@example.com", raw); err != nil {
			t.Fatalf("re-send %s: %v", id, err)
		}
		l.acked = append(l.acked, id)
	}
	l.pending = nil
	c.c.Quit()
	if code := s.stop(t); code != 0 {
		t.Fatalf("serve exit %d", code)
	}
}

// drainOutbox runs serve until the outbox is empty (bounded).
func (e *env) drainOutbox() {
	e.t.Helper()
	for range 10 {
		if e.outboxLen() == 0 {
			return
		}
		s := e.serve()
		last, stable := -1, 0
		for stable < 10 {
			time.Sleep(100 * time.Millisecond)
			if n := len(e.relay.Mails()); n != last {
				last, stable = n, 0
			} else {
				stable++
			}
		}
		if code := s.stop(e.t); code != 0 {
			e.t.Fatalf("serve exit %d", code)
		}
	}
	e.t.Fatalf("outbox still holds %d mails", e.outboxLen())
}

var ticketInSubject = regexp.MustCompile(`\[(HS-\d{6})\]`)

// sendOnceFigures is what the crash test counts.
type sendOnceFigures struct {
	stored, storedTwice int
	relayed, sentTwice  int
	recorded, neverSent int
	outLost             int // auto-replies and notifications that never reached the relay
}

// countSendOnce compares the database with what the clients were told and
// what the relay got.
func (e *env) countSendOnce(acked []string) sendOnceFigures {
	e.t.Helper()
	var f sendOnceFigures
	relayed := map[string]int{}
	reached := map[string]map[string]bool{} // ticket → envelope recipients
	for _, m := range e.relay.Mails() {
		msg, err := mail.ReadMessage(bytes.NewReader(m.Data))
		if err != nil {
			e.t.Fatalf("relay got a mail that does not parse: %v", err)
		}
		id := store.NormMessageID(msg.Header.Get("Message-ID"))
		relayed[id]++
		f.relayed++
		if tk := ticketInSubject.FindStringSubmatch(msg.Header.Get("Subject")); tk != nil {
			if reached[tk[1]] == nil {
				reached[tk[1]] = map[string]bool{}
			}
			for _, r := range m.To {
				reached[tk[1]][r] = true
			}
		}
	}
	var twice []string
	for id, n := range relayed {
		if n > 1 {
			f.sentTwice += n - 1
			twice = append(twice, id)
		}
	}
	sort.Strings(twice)
	if len(twice) > 0 {
		e.t.Logf("sent twice: %v", twice)
	}

	st := e.openStore()
	defer st.Close()
	in := map[string]int{}
	err := st.View(context.Background(), func(tx store.Tx) error {
		list, _, err := tx.Tickets(store.Filter{})
		if err != nil {
			return err
		}
		for _, tk := range list {
			full, err := tx.TicketFull(tk.ID)
			if err != nil {
				return err
			}
			for _, want := range []string{tk.Requester, "ana@example.com", "bo@example.com"} {
				if !reached[tk.ID][want] {
					f.outLost++
					e.t.Logf("%s: no mail reached %s", tk.ID, want)
				}
			}
			for _, m := range full.Messages {
				switch {
				case m.Direction == "out":
					f.recorded++
					if relayed[m.MessageID] == 0 {
						f.neverSent++
					}
				default:
					in[m.MessageID]++
				}
			}
		}
		return nil
	})
	if err != nil {
		e.t.Fatal(err)
	}
	for _, id := range acked {
		if in[id] > 0 {
			f.stored++
		}
	}
	for _, n := range in {
		f.storedTwice += max(0, n-1)
	}
	return f
}
