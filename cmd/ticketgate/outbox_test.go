package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"ticketgate/rules"
	"ticketgate/store"
	"ticketgate/store/boltdb"
)

// outboxConfig rewrites the installation's config with the relay value
// and [outbound] lines given.
func (e *env) outboxConfig(relay, outbound string) {
	e.t.Helper()
	e.rewriteConfig(relay, outbound, "")
}

// outboxJSON runs "outbox -json" and decodes it.
func (e *env) outboxJSON() []map[string]any {
	e.t.Helper()
	r := e.run(nil, "outbox", "-json")
	var list []map[string]any
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &list) != nil {
		e.t.Fatalf("outbox -json: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	return list
}

// A mail the relay defers waits with its error and next attempt in the
// listing, prints whole with "outbox show", and "outbox retry" sends it
// now instead of an hour later; all of it with serve running or not.
func TestOutboxListsShowsAndRetriesQueuedMail(t *testing.T) {
	e := newEnv(t, true)
	e.outboxConfig(e.relay.Addr, "tls = \"none\"\nretry_base = \"1h\"\n")
	e.relay.FailData(&smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Try again later"})
	id := e.injectOK(message("alice@customer.example", "support@example.com", "Queued", "q1@customer.example", "Where is my mail?"))

	list := e.outboxJSON()
	if len(list) != 1 {
		t.Fatalf("outbox -json lists %d mails, want the auto-reply: %v", len(list), list)
	}
	m := list[0]
	for _, k := range []string{"id", "ticket", "kind", "to", "attempts", "next_attempt", "last_error"} {
		if _, ok := m[k]; !ok {
			t.Errorf("outbox -json entry lacks %q: %v", k, m)
		}
	}
	if len(m) != 7 {
		t.Errorf("outbox -json entry has fields %v, want exactly id, ticket, kind, to, attempts, next_attempt, last_error", m)
	}
	if m["ticket"] != id || m["kind"] != "auto" || fmt.Sprint(m["to"]) != "[alice@customer.example]" || m["attempts"] != 0.0 || m["last_error"] != "" {
		t.Errorf("queued auto-reply listed as %v", m)
	}
	qid := fmt.Sprint(m["id"])
	if r := e.run(nil, "outbox"); r.code != 0 || !strings.Contains(r.stdout, "NEXT ATTEMPT") || !strings.Contains(r.stdout, id) {
		t.Errorf("outbox: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if r := e.run(nil, "outbox", "show", qid); r.code != 0 || !strings.Contains(r.stdout, "Subject: ["+id+"] Queued") {
		t.Errorf("outbox show %s: exit %d, stdout %q, stderr %q", qid, r.code, r.stdout, r.stderr)
	}
	// The order the usage gives: the subcommand first, then -config.
	c := exec.Command(binary, "outbox", "show", "-config", e.cfg, qid)
	c.Dir = t.TempDir()
	if out, err := c.Output(); err != nil || !bytes.Contains(out, []byte("Subject: ["+id+"] Queued")) {
		t.Errorf("outbox show -config F %s from another directory: %v, stdout %q", qid, err, out)
	}

	s := e.serve()
	deadline := time.Now().Add(10 * time.Second)
	for {
		list = e.outboxJSON() // handed over to serve
		if len(list) == 1 && list[0]["attempts"] == 1.0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the deferral never shows in the listing: %v", list)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if le := fmt.Sprint(list[0]["last_error"]); !strings.Contains(le, "451") {
		t.Errorf("last_error %q does not carry the relay's answer", le)
	}
	next, err := time.Parse(time.RFC3339, fmt.Sprint(list[0]["next_attempt"]))
	if err != nil || time.Until(next) < 30*time.Minute {
		t.Fatalf("next_attempt %v (%v), want about an hour from now", list[0]["next_attempt"], err)
	}
	if r := e.run(nil, "outbox", "show", qid); r.code != 0 || !strings.Contains(r.stdout, "Subject: ["+id+"] Queued") {
		t.Errorf("outbox show %s via serve: exit %d, stdout %q, stderr %q", qid, r.code, r.stdout, r.stderr)
	}
	// "show" lists the ticket's mail with where it stands.
	if tk := e.show(id); len(tk.Mail) != 1 || fmt.Sprint(tk.Mail[0].ID) != qid || tk.Mail[0].State != "queued" ||
		tk.Mail[0].Kind != "auto" || tk.Mail[0].Attempts != 1 || !strings.Contains(tk.Mail[0].LastError, "451") {
		t.Errorf("show -json mail while deferred: %+v", tk.Mail)
	}
	if r := e.run(nil, "show", id); !strings.Contains(r.stdout, "#"+qid) || !strings.Contains(r.stdout, "to alice@customer.example: queued, next try") {
		t.Errorf("show while deferred does not list the queued auto-reply:\n%s", r.stdout)
	}

	e.relay.FailData(nil)
	if r := e.run(nil, "outbox", "retry", "999"); r.code != 1 || !strings.Contains(r.stderr, "no mail 999") {
		t.Errorf("outbox retry 999: exit %d, stderr %q", r.code, r.stderr)
	}
	if r := e.run(nil, "outbox", "retry", qid); r.code != 0 || !strings.Contains(r.stdout, "1 mail(s) due now") {
		t.Fatalf("outbox retry %s: exit %d, stdout %q, stderr %q", qid, r.code, r.stdout, r.stderr)
	}
	mails := e.relay.WaitFor(1, 10*time.Second)
	if len(mails) != 1 || !bytes.Contains(mails[0].Data, []byte("Subject: ["+id+"] Queued")) {
		t.Fatalf("after retry the relay got %d mails, want the auto-reply", len(mails))
	}
	if code := s.stop(t); code != 0 {
		t.Fatalf("serve exit %d", code)
	}
	if list := e.outboxJSON(); len(list) != 0 {
		t.Errorf("outbox after delivery: %v", list)
	}
	if tk := e.show(id); len(tk.Mail) != 1 || fmt.Sprint(tk.Mail[0].ID) != qid || tk.Mail[0].State != "sent" ||
		fmt.Sprint(tk.Mail[0].To) != "[alice@customer.example]" || tk.Mail[0].At.IsZero() {
		t.Errorf("show -json mail after delivery: %+v", tk.Mail)
	}
	if r := e.run(nil, "show", id); !strings.Contains(r.stdout, "#"+qid) || !strings.Contains(r.stdout, "to alice@customer.example: sent ") {
		t.Errorf("show after delivery does not list the sent auto-reply:\n%s", r.stdout)
	}
	if r := e.run(nil, "outbox", "retry", "-all"); r.code != 0 || !strings.Contains(r.stdout, "0 mail(s) due now") {
		t.Errorf("outbox retry -all on an empty outbox: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if r := e.run(nil, "outbox", "retry"); r.code != 64 {
		t.Errorf("outbox retry without id or -all: exit %d, want 64", r.code)
	}
}

// relay = "maildir:sent" writes every outgoing mail as one file in
// sent/new next to the config file, wherever the gateway was started.
func TestMaildirRelayWritesEachMailAsOneFile(t *testing.T) {
	e := newEnv(t, true)
	e.outboxConfig("maildir:sent", "")
	s := e.serve()
	for i, subj := range []string{"First", "Second"} {
		c, err := dialSender(e.smtp)
		if err != nil {
			t.Fatal(err)
		}
		raw := message("bob@customer.example", "support@example.com", subj, fmt.Sprintf("m%d@customer.example", i), "Hello.")
		if err := c.send("bob@customer.example", "support@example.com", raw); err != nil {
			t.Fatal(err)
		}
		c.c.Close()
	}
	dir := filepath.Join(e.dir, "sent")
	var files []os.DirEntry
	deadline := time.Now().Add(10 * time.Second)
	for len(files) < 2 && time.Now().Before(deadline) {
		files, _ = os.ReadDir(filepath.Join(dir, "new"))
		time.Sleep(20 * time.Millisecond)
	}
	if code := s.stop(t); code != 0 {
		t.Fatalf("serve exit %d", code)
	}
	files, _ = os.ReadDir(filepath.Join(dir, "new"))
	if len(files) != 2 {
		t.Fatalf("%s/new holds %d files, want the 2 auto-replies", dir, len(files))
	}
	subjects := map[string]bool{}
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(dir, "new", f.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(b, []byte("Return-Path: <")) || !bytes.Contains(b, []byte("Delivered-To: bob@customer.example\r\n")) {
			t.Errorf("%s lacks the envelope fields:\n%s", f.Name(), b)
		}
		for _, subj := range []string{"First", "Second"} {
			if bytes.Contains(b, []byte("] "+subj+"\r\n")) {
				subjects[subj] = true
			}
		}
	}
	if len(subjects) != 2 {
		t.Errorf("auto-replies found for %v, want First and Second", subjects)
	}
	if tmp, _ := os.ReadDir(filepath.Join(dir, "tmp")); len(tmp) != 0 {
		t.Errorf("%d files left in tmp", len(tmp))
	}
	if list := e.outboxJSON(); len(list) != 0 {
		t.Errorf("outbox after maildir delivery: %v", list)
	}
}

// POST /api/outbox/retry with a parameter given twice, or one it does
// not take, is refused with 400: it never retries some of what was asked
// and answers as if it had done all of it.
func TestOutboxRetryAPIRefusesAParameterGivenTwice(t *testing.T) {
	e := newEnv(t, true)
	e.serve()
	for _, q := range []string{"id=1&id=2", "all=1&all=1", "ids=1"} {
		resp, err := e.apiDo("POST", "/api/outbox/retry?"+q, "", "")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("POST /api/outbox/retry?%s: %s, want 400", q, resp.Status)
		}
	}
}

// "outbox retry -all" while the relay is taking a mail does not send
// that mail again: the mail being delivered is due already, and making
// it due now must not take it from the delivery under way.
func TestOutboxRetryDuringDeliverySendsOnce(t *testing.T) {
	e := newEnv(t, true)
	e.relay.Latency(400 * time.Millisecond) // a delivery takes a few seconds
	s := e.serve()
	c, err := dialSender(e.smtp)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.send("carol@customer.example", "support@example.com",
		message("carol@customer.example", "support@example.com", "Retry", "r1@customer.example", "Hello.")); err != nil {
		t.Fatal(err)
	}
	c.c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for e.relay.Sessions() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the outbox never opened a session to the relay")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if r := e.run(nil, "outbox", "retry", "-all"); r.code != 0 {
		t.Fatalf("outbox retry -all: exit %d, stderr %q", r.code, r.stderr)
	}
	if mails := e.relay.WaitFor(1, 10*time.Second); len(mails) != 1 {
		t.Fatalf("the relay got %d mails, want the auto-reply", len(mails))
	}
	if mails := e.relay.WaitFor(2, 5*time.Second); len(mails) != 1 {
		t.Errorf("the relay got the auto-reply %d times, want once", len(mails))
	}
	if code := s.stop(t); code != 0 {
		t.Fatalf("serve exit %d", code)
	}
}

// Mail queued to go at once and not tried yet is listed as due since it
// was queued, by "outbox" and by "show": never as due in the year 1.
func TestOutboxListsMailNotTriedYetAsDueSinceQueued(t *testing.T) {
	e := newEnv(t, false)
	before := time.Now().Add(-time.Second)
	id := e.injectOK(message("dora@customer.example", "support@example.com", "Not tried", "nt1@customer.example", "Hello."))
	after := time.Now().Add(time.Second)
	list := e.outboxJSON()
	if len(list) != 1 {
		t.Fatalf("outbox -json lists %d mails, want the auto-reply: %v", len(list), list)
	}
	next, err := time.Parse(time.RFC3339, fmt.Sprint(list[0]["next_attempt"]))
	if err != nil || next.Before(before) || next.After(after) {
		t.Errorf("next_attempt %v (%v), want the time it was queued", list[0]["next_attempt"], err)
	}
	if r := e.run(nil, "outbox"); r.code != 0 || strings.Contains(r.stdout, "0001-01-01") {
		t.Errorf("outbox: exit %d, stdout %q", r.code, r.stdout)
	}
	if tk := e.show(id); len(tk.Mail) != 1 || tk.Mail[0].State != "queued" || tk.Mail[0].At.Before(before) || tk.Mail[0].At.After(after) {
		t.Errorf("show -json mail of a mail not tried yet: %+v, want it queued at the time it was queued", tk.Mail)
	}
	if r := e.run(nil, "show", id); strings.Contains(r.stdout, "0001-01-01") {
		t.Errorf("show lists the queued auto-reply as due in the year 1:\n%s", r.stdout)
	}
}

// "outbox retry -all" after a long relay outage, with many mails
// deferred, does not hold the database's single writer until it has gone
// over every one of them: a message that arrives meanwhile is committed
// (and answered 250) while the retry goes on, not once it ended.
func TestOutboxRetryAllLetsMailInMeanwhile(t *testing.T) {
	st, err := boltdb.Open(filepath.Join(t.TempDir(), "tickets.db"), boltdb.Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	later := time.Now().Add(time.Hour)
	const deferred = 30000
	for i := 0; i < deferred; i += 5000 {
		if err := st.UpdateNow(context.Background(), func(tx store.Tx) error {
			for j := range 5000 {
				m := &store.OutMail{TicketID: fmt.Sprintf("HS-%06d", i+j), Kind: "auto", From: "support@example.com",
					To: []string{"cy@customer.example"}, NextAt: later, Attempts: 5, LastErr: "451 4.3.0 try later", Raw: []byte("mail")}
				if err := tx.Enqueue(m); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	a := &app{store: st}
	type result struct {
		n   int
		err error
		at  time.Time
	}
	done := make(chan result, 1)
	start := time.Now()
	go func() {
		n, err := a.retryOutbox(context.Background(), 0)
		done <- result{n, err, time.Now()}
	}()
	time.Sleep(50 * time.Millisecond)
	err = st.Update(context.Background(), func(tx store.Tx) error {
		return tx.PutTicket(&store.Ticket{ID: "HS-999999", Subject: "Printer on fire", Status: rules.StatusNew, CreatedAt: time.Now()})
	})
	committed := time.Now()
	if err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil || r.n != deferred {
		t.Fatalf("retry -all: %d %v, want %d mails due now", r.n, r.err, deferred)
	}
	if !committed.Before(r.at) {
		t.Errorf("the message arriving during retry -all was committed %s after it began, once the retry of %d mails ended (%s): its sender waited for all of them",
			committed.Sub(start).Round(time.Millisecond), deferred, r.at.Sub(start).Round(time.Millisecond))
	}
	var due []*store.OutMail
	st.View(context.Background(), func(tx store.Tx) error {
		due, err = tx.Outbox(time.Now(), 0)
		return err
	})
	if len(due) != deferred {
		t.Errorf("%d mails due after retry -all, want %d", len(due), deferred)
	}
}
