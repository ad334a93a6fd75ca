package main

import (
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"
)

// kind is what one generated message is for the desk.
type kind int

const (
	kindNew   kind = iota // a new ticket from a new sender
	kindToken             // a reply with [HS-nnnnnn] in the subject
	kindRef               // a reply threaded by In-Reply-To only
	kindCount
)

var kindNames = [kindCount]string{"new", "token replies", "in-reply-to replies"}

// thread is a conversation this run started: the customer who wrote, the
// subject, the Message-ID to answer and, when known, the ticket id.
type thread struct {
	from, subject, msgid, ticket string
}

// mix makes the messages of one run and remembers the threads the target
// accepted, so that replies go to tickets of this run from their own
// customer (a reply from anyone else would be a new, linked ticket).
type mix struct {
	run        string // unique per run: senders and Message-IDs never repeat
	domains    int
	bodySize   int
	attachRate float64
	attachment string // base64 lines, made once

	mu      sync.Mutex
	seeding bool // only new tickets
	newOnly bool // only new tickets, the whole run (-new-only)
	seq     int
	threads []thread // accepted new tickets, ticket id unknown
	tickets []thread // threads whose ticket id is known (seeds)
}

func newMix(bodySize, attachSize int, attachRate float64) *mix {
	m := &mix{
		run:        fmt.Sprintf("%x", time.Now().UnixNano()),
		domains:    2000,
		bodySize:   bodySize,
		attachRate: attachRate,
	}
	raw := make([]byte, attachSize)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range raw {
		raw[i] = byte(r.Uint32())
	}
	enc := base64.StdEncoding.EncodeToString(raw)
	var b strings.Builder
	for len(enc) > 76 {
		b.WriteString(enc[:76] + "\r\n")
		enc = enc[76:]
	}
	b.WriteString(enc + "\r\n")
	m.attachment = b.String()
	return m
}

// message is one mail to send and what to remember once it is accepted.
type message struct {
	kind   kind
	from   string
	raw    []byte
	attach bool
	thread thread // for kindNew: the thread it starts
}

// next makes the next message: half new tickets, a quarter replies by
// token (to tickets whose id is known), a quarter replies by In-Reply-To;
// attachRate of all carry the attachment. Replies fall back to new
// tickets while no thread exists yet.
func (m *mix) next(r *rand.Rand) message {
	m.mu.Lock()
	m.seq++
	seq := m.seq
	k := kindNew
	var t thread
	switch p := r.IntN(4); {
	case m.seeding || m.newOnly:
	case p == 2 && len(m.tickets) > 0:
		k, t = kindToken, m.tickets[r.IntN(len(m.tickets))]
	case p >= 2 && len(m.threads) > 0:
		k, t = kindRef, m.threads[r.IntN(len(m.threads))]
	}
	m.mu.Unlock()

	msg := message{kind: k, attach: r.Float64() < m.attachRate}
	msgid := fmt.Sprintf("tgload.%s.%d@loadgen.example", m.run, seq)
	var subject, refs string
	switch k {
	case kindNew:
		domain := fmt.Sprintf("customer%d.example", r.IntN(m.domains))
		t = thread{from: fmt.Sprintf("user.%s.%d@%s", m.run, seq, domain),
			subject: fmt.Sprintf("%s (load %s/%d)", subjects[r.IntN(len(subjects))], m.run, seq), msgid: msgid}
		subject, msg.thread = t.subject, t
	case kindToken:
		subject = "Re: [" + t.ticket + "] " + t.subject
	case kindRef:
		subject = "Re: " + t.subject
		refs = "In-Reply-To: <" + t.msgid + ">\r\n"
	}
	msg.from = t.from
	msg.raw = m.compose(t.from, subject, msgid, refs, msg.attach, r)
	return msg
}

// accepted records a new ticket the target answered 250 for.
func (m *mix) accepted(t thread) {
	m.mu.Lock()
	m.threads = append(m.threads, t)
	m.mu.Unlock()
}

// known records threads whose ticket ids were learned.
func (m *mix) known(ts []thread) {
	m.mu.Lock()
	m.tickets = append(m.tickets, ts...)
	m.mu.Unlock()
}

var subjects = []string{
	"Printer on fire", "Cannot log in", "Invoice 2026-11 is wrong", "Password reset does not arrive",
	"Order not delivered", "Refund request", "App crashes on start", "Question about my plan",
}

var words = strings.Fields("the a printer invoice order account login page error again please help " +
	"thanks since yesterday when I try to open it shows nothing and my colleague has the same problem")

// compose writes a plain message, or a multipart one with the attachment.
func (m *mix) compose(from, subject, msgid, refs string, attach bool, r *rand.Rand) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "From: %s\r\nTo: support@example.com\r\nSubject: %s\r\nDate: %s\r\nMessage-ID: <%s>\r\n%sMIME-Version: 1.0\r\n",
		from, subject, time.Now().Format(time.RFC1123Z), msgid, refs)
	if attach {
		b.WriteString("Content-Type: multipart/mixed; boundary=\"tgload-b\"\r\n\r\n--tgload-b\r\n")
	}
	b.WriteString("Content-Type: text/plain; charset=utf-8\r\n\r\nHello,\r\n\r\n")
	line := 0
	for n := 0; n < m.bodySize; {
		w := words[r.IntN(len(words))]
		b.WriteString(w)
		n += len(w) + 1
		if line += len(w) + 1; line > 66 {
			b.WriteString("\r\n")
			line = 0
		} else {
			b.WriteByte(' ')
		}
	}
	b.WriteString("\r\n\r\nRegards\r\n")
	if attach {
		b.WriteString("--tgload-b\r\nContent-Type: application/octet-stream\r\n" +
			"Content-Disposition: attachment; filename=\"log.bin\"\r\nContent-Transfer-Encoding: base64\r\n\r\n")
		b.WriteString(m.attachment)
		b.WriteString("--tgload-b--\r\n")
	}
	return []byte(b.String())
}
