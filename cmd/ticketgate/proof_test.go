package main

import (
	"bytes"
	"fmt"
	"net/mail"
	"os"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"ticketgate/store"
)

// proofEnv names the environment variable that sets how many messages
// TestClusterProof sends; the figure is 3000.
const proofEnv = "TICKETGATE_PROOF_MESSAGES"

// proofMessage is message number i of the proof run: a new ticket, or a
// reply by References to new ticket ref's message, or by token to ticket
// id.
func proofMessage(msgid, from, subject, refs string) []byte {
	h := ""
	if refs != "" {
		h = "In-Reply-To: <" + refs + ">\r\nReferences: <" + refs + ">\r\n"
	}
	return fmt.Appendf(nil, "From: %s\r\nTo: support@example.com\r\nSubject: %s\r\nDate: Sat, 21 Nov 2026 10:00:00 +0000\r\n"+
		"Message-ID: <%s>\r\n%sMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nPlease help.\r\n", from, subject, msgid, h)
}

type proofJob struct {
	msgid, from string
	raw         []byte
	to          []int // gateways to send to at once (two for a duplicate)
	isNew       bool
}

// TestClusterProof is the proof: three gateways on one
// PostgreSQL database and one recording relay; messages sent round-robin
// over SMTP (new tickets, replies by References and by token), some of
// them to two gateways at once with the same Message-ID; one gateway
// SIGKILLed halfway and started again. Then every acknowledged message
// is stored once, every new ticket has its auto-reply, and no mail
// reached the relay twice except within the kill window (at most the
// kill's share, a few). TICKETGATE_PROOF_MESSAGES=3000 is the issue's
// size; the default is 300 (1/30 of them duplicates, as 100 of 3000).
func TestClusterProof(t *testing.T) {
	n := 300
	if v := os.Getenv(proofEnv); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 30 {
			t.Fatalf("%s=%q: want a number of at least 30", proofEnv, v)
		}
	}
	c := newCluster(t, 3, "lease = \"3s\"\n")
	for _, e := range c.envs {
		appendConfig(t, e.cfg, "\n[limits]\ninbound_per_domain_per_hour = 0\ninbound_per_sender_per_hour = 0\n")
	}
	servers := make([]*server, 3)
	for i, e := range c.envs {
		servers[i] = e.serve()
	}
	// The jobs: the first half new tickets; in the second, every fourth
	// a reply by References and every fourth a reply by token (its id
	// looked up then) to a ticket of the first half, the rest new
	// tickets. Every 30th is sent to two gateways at once.
	var jobs []proofJob
	var news []string           // Message-IDs of new tickets, by job
	from := map[string]string{} // a new ticket's Message-ID: its sender
	for i := range n {
		j := proofJob{msgid: fmt.Sprintf("proof-%d@customer.example", i), from: fmt.Sprintf("c%d@d%d.example", i, i%50), to: []int{i % 3}}
		switch {
		case i%4 == 3 && i >= n/2:
			// To a ticket of the first half, all acknowledged by the
			// time the second half is sent.
			ref := news[(i/4)%len(news[:n/4])]
			j.from = from[ref] // the customer answers their own mail
			j.raw = proofMessage(j.msgid, j.from, "Re: Problem", ref)
		default:
			j.isNew = true
			j.raw = proofMessage(j.msgid, j.from, fmt.Sprintf("Problem %d", i), "")
			news = append(news, j.msgid)
			from[j.msgid] = j.from
		}
		if i%30 == 7 {
			j.to = append(j.to, (i+1)%3)
		}
		jobs = append(jobs, j)
	}
	var (
		mu    sync.Mutex
		acked = map[string]bool{}
	)
	// send delivers job j to gateway g, moving to the next gateway (as an
	// MTA to its next MX) while one does not answer 250.
	send := func(j proofJob, g int) {
		for try := 0; try < 60; try++ {
			s, err := dialSender(c.envs[(g+try)%3].smtp)
			if err == nil {
				err = s.send(j.from, "support@example.com", j.raw)
				s.c.Close()
			}
			if err == nil {
				mu.Lock()
				acked[j.msgid] = true
				mu.Unlock()
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Errorf("%s never acknowledged", j.msgid)
	}
	run := func(jobs []proofJob) {
		ch := make(chan proofJob)
		var wg sync.WaitGroup
		for range 12 {
			wg.Go(func() {
				for j := range ch {
					var inner sync.WaitGroup
					for _, g := range j.to {
						inner.Go(func() { send(j, g) })
					}
					inner.Wait()
				}
			})
		}
		for _, j := range jobs {
			ch <- j
		}
		close(ch)
		wg.Wait()
	}
	half := n / 2
	start := time.Now()
	done := make(chan struct{})
	go func() { defer close(done); run(jobs[:half]) }()
	// Kill gateway 1 while the first half is under way, start it again.
	time.Sleep(500 * time.Millisecond)
	servers[1].cmd.Process.Kill()
	<-servers[1].done
	servers[1] = c.envs[1].serve()
	<-done
	// Token replies to tickets of the first half, now that their ids
	// are known.
	ticketOf := func(msgid string) string {
		var id string
		c.query(t, `SELECT ticket_id FROM msgids WHERE msgid = $1`, &id, []byte(store.NormMessageID(msgid)))
		return id
	}
	replies := 0
	for i := half; i < n; i++ {
		if i%4 == 1 && !jobs[i].isNew {
			continue
		}
		if i%4 == 1 {
			ref := news[(i/4+1)%len(news[:n/4])]
			if id := ticketOf(ref); id != "" {
				replies++
				jobs[i].from = from[ref]
				jobs[i].raw = proofMessage(jobs[i].msgid, jobs[i].from, "Re: Problem ["+id+"]", "")
				jobs[i].isNew = false
			}
		}
	}
	run(jobs[half:])
	took := time.Since(start)
	if replies == 0 {
		t.Fatal("no reply by token was sent")
	}

	// Everything queued leaves.
	deadline := time.Now().Add(90 * time.Second)
	for {
		var left int
		c.query(t, `SELECT count(*) FROM outbox`, &left)
		if left == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d mails still queued after 90s", left)
		}
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(time.Second)

	// Every acknowledged message stored exactly once.
	var stored, storedTwice int
	for id := range acked {
		var k int
		c.query(t, `SELECT count(*) FROM messages WHERE msgid = $1`, &k, []byte(store.NormMessageID(id)))
		if k >= 1 {
			stored++
		}
		if k > 1 {
			storedTwice++
		}
	}
	wantNew := 0
	for _, j := range jobs {
		if j.isNew && acked[j.msgid] {
			wantNew++
		}
	}
	var nTickets int
	c.query(t, `SELECT count(*) FROM tickets`, &nTickets)

	// One auto-reply per ticket; no mail twice.
	token := regexp.MustCompile(`\[HS-\d{6}\]`)
	autos := map[string]int{}
	seen := map[string]int{}
	sentTwice := 0
	mails := c.envs[0].relay.Mails()
	for _, m := range mails {
		msg, err := mail.ReadMessage(bytes.NewReader(m.Data))
		if err != nil {
			t.Fatal(err)
		}
		id := msg.Header.Get("Message-ID")
		if seen[id]++; seen[id] == 2 {
			sentTwice++
		}
		if msg.Header.Get("Auto-Submitted") != "" && msg.Header.Get("In-Reply-To") != "" {
			if tk := token.FindString(msg.Header.Get("Subject")); tk != "" && seen[id] == 1 {
				autos[tk]++
			}
		}
	}
	moreThanOne := 0
	for _, k := range autos {
		if k > 1 {
			moreThanOne++
		}
	}
	t.Logf("%d messages (%d sent to two gateways) in %v with one gateway SIGKILLed and restarted: acknowledged %d, stored %d, stored twice %d; %d tickets (want %d); relay got %d mails, %d of them twice; %d tickets with an auto-reply, %d with more than one",
		n, n/30, took.Round(100*time.Millisecond), len(acked), stored, storedTwice, nTickets, wantNew, len(mails), sentTwice, len(autos), moreThanOne)
	if stored != len(acked) || storedTwice > 0 {
		t.Errorf("of %d acknowledged messages %d stored, %d stored twice", len(acked), stored, storedTwice)
	}
	if nTickets != wantNew {
		t.Errorf("%d tickets, want %d (one per new message acknowledged)", nTickets, wantNew)
	}
	if len(autos) != nTickets || moreThanOne > 0 {
		t.Errorf("%d of %d tickets got an auto-reply, %d got more than one", len(autos), nTickets, moreThanOne)
	}
	// One kill: only a mail whose hand-off note the kill beat may go out
	// again (see TestKill9SendsEachMailOnce), one at most.
	if sentTwice > 1 {
		t.Errorf("relay got %d mails twice after one kill", sentTwice)
	}
}
