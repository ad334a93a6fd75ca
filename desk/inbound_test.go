package desk

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"ticketgate/mailin"
	"ticketgate/rules"
	"ticketgate/store"
)

// withAttachments builds a multipart message with files of the given sizes.
func withAttachments(from, subject string, sizes ...int) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: %s\r\nTo: support@example.com\r\nSubject: %s\r\nMessage-ID: <att.%s@customer.example>\r\n", from, subject, digitFree(time.Now().UnixNano()))
	b.WriteString("MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=BB\r\n\r\n--BB\r\nContent-Type: text/plain\r\n\r\nfiles attached\r\n")
	for i, n := range sizes {
		fmt.Fprintf(&b, "--BB\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"file%d.bin\"\r\nContent-Transfer-Encoding: base64\r\n\r\n", i+1)
		content := bytes.Repeat([]byte{byte('a' + i)}, n)
		enc := base64.StdEncoding.EncodeToString(content)
		for len(enc) > 76 {
			b.WriteString(enc[:76] + "\r\n")
			enc = enc[76:]
		}
		b.WriteString(enc + "\r\n")
	}
	b.WriteString("--BB--\r\n")
	return b.Bytes()
}

func eventOf(tk *store.Ticket, typ string) *store.Event {
	for i := range tk.Events {
		if string(tk.Events[i].Type) == typ {
			return &tk.Events[i]
		}
	}
	return nil
}

func TestAttachmentsPastTheLimitsAreRefusedButTheMessageIsKept(t *testing.T) {
	g := startGateway(t)
	g.pipeline.Policies = Policies{MaxAttachments: 2, MaxAttachmentBytes: 3000, MaxAttachmentsTotal: 5000}
	// file1 1000 ok, file2 4000 too big, file3 2000 ok, file4 1000: third file (count limit)
	g.mustSend("k@customer.example", []string{"support@example.com"}, withAttachments("k@customer.example", "files", 1000, 4000, 2000, 1000))
	tk := g.onlyTicket()
	var names []string
	for _, a := range tk.Messages[0].Attachments {
		names = append(names, a.Filename)
	}
	if strings.Join(names, ",") != "file1.bin,file3.bin" {
		t.Errorf("kept %v, want file1.bin and file3.bin", names)
	}
	if eventOf(tk, "attachments_refused") == nil {
		t.Errorf("no attachments_refused event: %+v", tk.Events)
	}
	g.relay.WaitFor(2, 5*time.Second)
	g.settle()
	var refusal string
	for _, m := range g.relay.Mails() {
		if strings.Contains(string(m.Data), "could not be accepted") {
			refusal = string(m.Data)
		}
	}
	if !strings.Contains(refusal, "file2.bin") || !strings.Contains(refusal, "file4.bin") || strings.Contains(refusal, "file1.bin") {
		t.Errorf("refusal does not list exactly the refused files:\n%s", refusal)
	}
}

func TestSameAttachmentIsStoredOnce(t *testing.T) {
	g := startGateway(t)
	g.mustSend("l@customer.example", []string{"support@example.com"}, withAttachments("l@customer.example", "one", 2000))
	g.mustSend("l@customer.example", []string{"support@example.com"}, withAttachments("l@customer.example", "two", 2000))
	list := g.tickets()
	if len(list) != 2 {
		t.Fatalf("%d tickets", len(list))
	}
	a, b := g.ticket(list[0].ID).Messages[0].Attachments, g.ticket(list[1].ID).Messages[0].Attachments
	if len(a) != 1 || len(b) != 1 || a[0].SHA256 == "" || a[0].SHA256 != b[0].SHA256 {
		t.Fatalf("attachments %+v / %+v do not share one stored copy", a, b)
	}
	var content []byte
	g.store.View(context.Background(), func(tx store.Tx) error { var err error; content, err = tx.Blob(a[0].SHA256); return err })
	if len(content) != 2000 {
		t.Errorf("stored attachment has %d bytes", len(content))
	}
}

func TestCardNumbersAreRedactedEverywhere(t *testing.T) {
	g := startGateway(t)
	g.mustSend("m@customer.example", []string{"support@example.com"},
		msg("m@customer.example", "support@example.com", "card 4111 1111 1111 1111 charged twice", "My card 5500-0000-0000-0004 and SSN 123-45-6789 were charged."))
	tk := g.onlyTicket()
	m := tk.Messages[0]
	for _, secret := range []string{"4111 1111 1111 1111", "5500-0000-0000-0004", "123-45-6789"} {
		if strings.Contains(tk.Subject+m.Subject+m.Text+m.VisibleText, secret) {
			t.Errorf("%s stored in subject or text", secret)
		}
	}
	if !strings.Contains(m.Text, "[card number removed]") || !strings.Contains(m.Text, "[SSN removed]") {
		t.Errorf("text %q lacks the removal markers", m.Text)
	}
	var raw []byte
	g.store.View(context.Background(), func(tx store.Tx) error { var err error; raw, err = tx.Blob(m.Raw); return err })
	if bytes.Contains(raw, []byte("5500-0000-0000-0004")) || bytes.Contains(raw, []byte("4111 1111 1111 1111")) {
		t.Error("raw copy still holds the card number")
	}
	if eventOf(tk, "redacted") == nil {
		t.Errorf("no redacted event")
	}
	g.relay.WaitFor(2, 5*time.Second)
	g.settle()
	notices := 0
	for _, sent := range g.relay.Mails() {
		if showsCard(sent.Data) || bytes.Contains(sent.Data, []byte("5500-0000")) {
			t.Errorf("sent mail repeats the card number:\n%s", sent.Data)
		}
		if bytes.Contains(sent.Data, []byte("sensitive data")) {
			notices++
		}
	}
	if notices != 1 {
		t.Errorf("%d redaction notices, want 1", notices)
	}
}

func TestInboundFloodGets451(t *testing.T) {
	g := startGateway(t)
	g.pipeline.Policies = Policies{PerSender: 3}
	for i := range 3 {
		g.mustSend("n@customer.example", []string{"support@example.com"}, msg("n@customer.example", "support@example.com", fmt.Sprintf("flood %d", i), "x"))
	}
	err := g.send("n@customer.example", []string{"support@example.com"}, msg("n@customer.example", "support@example.com", "flood 4", "x"))
	var se *smtp.SMTPError
	if !errors.As(err, &se) || se.Code != 451 || se.EnhancedCode != (smtp.EnhancedCode{4, 7, 1}) {
		t.Fatalf("4th message: %v, want 451 4.7.1", err)
	}
	if n := len(g.tickets()); n != 3 {
		t.Errorf("%d tickets, want 3", n)
	}
	// Another sender is not affected.
	g.mustSend("o@customer.example", []string{"support@example.com"}, msg("o@customer.example", "support@example.com", "other", "x"))
}

func TestAutoRepliesAreRateLimitedPerAddress(t *testing.T) {
	g := startGateway(t)
	g.pipeline.Desk.AutoLimits = []rules.Limit{{Per: time.Hour, Max: 2}}
	for i := range 4 {
		g.mustSend("robot@customer.example", []string{"support@example.com"}, msg("robot@customer.example", "support@example.com", fmt.Sprintf("ping %d", i), "x"))
	}
	g.relay.WaitFor(2, 5*time.Second)
	g.settle()
	if n := len(g.relay.Mails()); n != 2 {
		t.Fatalf("%d auto-replies to one address, want 2", n)
	}
	limited := 0
	for _, tk := range g.tickets() {
		if e := eventOf(g.ticket(tk.ID), "auto_reply_suppressed"); e != nil && strings.Contains(e.Detail, "rate limit") {
			limited++
		}
	}
	if limited != 2 {
		t.Errorf("%d tickets record the rate limit, want 2", limited)
	}
}

func TestBounceToVERPAddressIsAnEventNotATicket(t *testing.T) {
	g := startGateway(t)
	g.pipeline.Desk.VERPKeys = [][]byte{[]byte("0123456789abcdef0123456789abcdef")}
	g.mustSend("gone@customer.example", []string{"support@example.com"}, msg("gone@customer.example", "support@example.com", "will bounce", "x"))
	mails := g.relay.WaitFor(1, 5*time.Second)
	if len(mails) != 1 || !strings.HasPrefix(mails[0].From, "bounces+") {
		t.Fatalf("auto-reply return path %q is not a bounce address", mails[0].From)
	}
	g.settle()
	tk := g.onlyTicket()
	dsn := "From: MAILER-DAEMON@mx.customer.example\r\nTo: " + mails[0].From + "\r\nSubject: Undelivered Mail Returned to Sender\r\n" +
		"Message-ID: <dsn1@mx.customer.example>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=RR\r\n\r\n" +
		"--RR\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n" +
		"--RR\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.customer.example\r\n\r\n" +
		"Final-Recipient: rfc822; gone@customer.example\r\nAction: failed\r\nStatus: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 <gone@customer.example>: user unknown\r\n" +
		"--RR--\r\n"
	g.mustSend("", []string{mails[0].From}, []byte(dsn))
	g.mustSend("", []string{mails[0].From}, []byte(dsn)) // the reporting MTA retries
	if n := len(g.tickets()); n != 1 {
		t.Fatalf("bounce created a ticket: %d tickets", n)
	}
	e := eventOf(g.ticket(tk.ID), "delivery_failed")
	if e == nil || !strings.Contains(e.Detail, "gone@customer.example") || !strings.Contains(e.Detail, "5.1.1") {
		t.Fatalf("no delivery_failed event naming the recipient and status: %+v", g.ticket(tk.ID).Events)
	}
	if got := g.ticket(tk.ID); len(agEvents(got, "delivery_failed")) != 1 || len(messagesOfKind(got, "system")) != 1 {
		t.Errorf("report delivered twice: %d delivery_failed events, %d system messages; want 1 and 1",
			len(agEvents(got, "delivery_failed")), len(messagesOfKind(got, "system")))
	}
	// The address is bouncing now: its next automatic mail is held back.
	g.mustSend("gone@customer.example", []string{"support@example.com"}, msg("gone@customer.example", "support@example.com", "second", "x"))
	g.settle()
	if n := len(g.relay.Mails()); n != 1 {
		t.Errorf("relay got %d mails; nothing may go to a bouncing address or answer the bounce", n)
	}
	// A forged bounce address is refused at RCPT.
	err := g.send("", []string{"bounces+aaaaaaaaaaaaaaaaaaaaaaaaaaaaa@tickets.example.com"}, []byte(dsn))
	var se *smtp.SMTPError
	if !errors.As(err, &se) || se.Code != 550 {
		t.Errorf("forged bounce address: %v, want 550", err)
	}
}

func TestOutOfOfficeIsStoredWithoutChangingStatus(t *testing.T) {
	g := startGateway(t)
	g.mustSend("p@customer.example", []string{"support@example.com"}, msg("p@customer.example", "support@example.com", "question", "x"))
	tk := g.onlyTicket()
	g.change(tk.ID, func(t *store.Ticket) { t.Status = rules.StatusWaiting })
	g.mustSend("p@customer.example", []string{"support@example.com"}, msg("p@customer.example", "support@example.com",
		"Automatic reply: ["+tk.ID+"] question", "I am out of the office until Monday.", "Auto-Submitted: auto-replied", "X-Autoreply: yes"))
	tk = g.ticket(tk.ID)
	last := tk.Messages[len(tk.Messages)-1]
	if last.Kind != "system" || tk.Status != rules.StatusWaiting {
		t.Errorf("out-of-office stored as %q, status %s; want system and still waiting", last.Kind, tk.Status)
	}
}

func TestReopenWindow(t *testing.T) {
	g := startGateway(t)
	now := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	g.pipeline.Now = func() time.Time { return now }
	g.mustSend("q@customer.example", []string{"support@example.com"}, msg("q@customer.example", "support@example.com", "first", "x"))
	tk := g.onlyTicket()
	closeTicket := func() { g.change(tk.ID, func(t *store.Ticket) { t.Status, t.ClosedAt = rules.StatusClosed, &now }) }
	closeTicket()
	now = now.Add(3 * 24 * time.Hour)
	g.mustSend("q@customer.example", []string{"support@example.com"}, msg("q@customer.example", "support@example.com", "Re: ["+tk.ID+"] first", "still broken"))
	if got := g.ticket(tk.ID); got.Status != rules.StatusOpen || eventOf(got, "reopened") == nil {
		t.Fatalf("reply within the window: status %s, events %+v", got.Status, got.Events)
	}
	closeTicket()
	now = now.Add(8 * 24 * time.Hour)
	g.mustSend("q@customer.example", []string{"support@example.com"}, msg("q@customer.example", "support@example.com", "Re: ["+tk.ID+"] first", "broken again"))
	list := g.tickets()
	if len(list) != 2 {
		t.Fatalf("reply after the window: %d tickets, want a new one", len(list))
	}
	old := g.ticket(tk.ID)
	if old.Status != rules.StatusClosed || len(old.Linked) != 1 {
		t.Errorf("old ticket: status %s linked %v", old.Status, old.Linked)
	}
	newT := g.ticket(old.Linked[0])
	if len(newT.Linked) != 1 || newT.Linked[0] != tk.ID {
		t.Errorf("new ticket does not reference the old one: %v", newT.Linked)
	}
}

func TestOutgoingMailThreadsInOutlook(t *testing.T) {
	g := startGateway(t)
	g.mustSend("r@customer.example", []string{"support@example.com"}, msg("r@customer.example", "support@example.com", "threading", "x", "Message-ID: <r1@customer.example>"))
	mails := g.relay.WaitFor(1, 5*time.Second)
	h := header(t, mails[0].Data)
	if h.Get("Thread-Topic") != "threading" || h.Get("Thread-Index") == "" {
		t.Errorf("Thread-Topic %q Thread-Index %q", h.Get("Thread-Topic"), h.Get("Thread-Index"))
	}
	if idx, err := base64.StdEncoding.DecodeString(h.Get("Thread-Index")); err != nil || len(idx) < 22 {
		t.Errorf("Thread-Index is not a valid 22+ byte value: %v %d", err, len(idx))
	}
	if !strings.Contains(h.Get("References"), "<r1@customer.example>") {
		t.Errorf("References %q", h.Get("References"))
	}
}

// Mail to the team is automatic mail too, but customer limits never hold it:
// an agent whose address once bounced still gets the next notification.
func TestTeamMailIsMarkedAutomaticAndNeverHeld(t *testing.T) {
	g := startDesk(t)
	g.pipeline.Desk.AutoLimits = []rules.Limit{{Per: time.Hour, Max: 1}}
	g.store.UpdateNow(context.Background(), func(tx store.Tx) error {
		return tx.MarkBouncing("ana@example.com", time.Now().Add(time.Hour))
	})
	for i := range 3 {
		g.mustSend("v@customer.example", []string{"support@example.com"},
			msg("v@customer.example", "support@example.com", fmt.Sprintf("need help %d", i), "x"))
	}
	g.settle()
	notes := agMailsTo(g, 0, "ana@example.com")
	if len(notes) != 3 {
		t.Fatalf("ana got %d notifications, want 3 (bounce hold and rate limit are for customers)", len(notes))
	}
	for _, n := range notes {
		h := header(t, n.Data)
		if h.Get("Auto-Submitted") != "auto-generated" || h.Get("X-Auto-Response-Suppress") != "All" {
			t.Errorf("notification headers: Auto-Submitted %q, X-Auto-Response-Suppress %q", h.Get("Auto-Submitted"), h.Get("X-Auto-Response-Suppress"))
		}
	}
	if n := len(agMailsTo(g, 0, "v@customer.example")); n != 1 {
		t.Errorf("customer got %d auto-replies, want 1 (rate limit 1 per hour)", n)
	}
}

func TestPlusAddressTokenFollowsTheSenderCheck(t *testing.T) {
	g := startGateway(t)
	g.mustSend("w@customer.example", []string{"support@example.com"}, msg("w@customer.example", "support@example.com", "plus token", "x"))
	tk := g.onlyTicket()
	plus := "support+" + strings.ToLower(tk.ID) + "@example.com"
	// The requester may write to the ticket's plus address with any subject.
	g.mustSend("w@customer.example", []string{plus}, msg("w@customer.example", plus, "more", "another detail"))
	if n := len(g.tickets()); n != 1 || len(g.ticket(tk.ID).Messages) != 3 {
		t.Fatalf("requester via plus address: %d tickets, %d messages", n, len(g.ticket(tk.ID).Messages))
	}
	// A stranger using it opens a ticket of their own, linked.
	g.mustSend("x@evil.example", []string{plus}, msg("x@evil.example", plus, "hello", "let me in"))
	if n := len(g.tickets()); n != 2 {
		t.Fatalf("stranger via plus address: %d tickets, want a new one", n)
	}
	if len(g.ticket(tk.ID).Messages) != 3 || len(g.ticket(tk.ID).Linked) != 1 {
		t.Errorf("stranger's mail reached the ticket or no link recorded")
	}
}

// sendTo delivers raw over SMTP to the listener at addr.
func sendTo(addr, from string, to []string, raw []byte) error {
	c, err := smtp.Dial(addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.SendMail(from, to, bytes.NewReader(raw)); err != nil {
		return err
	}
	return c.Quit()
}

func TestLineLengthLimitComesFromConfig(t *testing.T) {
	g := startGateway(t)
	cfg := mailin.Config{Hostname: "tickets.example.com", MaxMessageBytes: 1 << 20, MaxRecipients: 10, MaxLineLength: 1000}
	srv, err := mailin.Listen("127.0.0.1:0", false, cfg, g.pipeline, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	long := strings.Repeat("x", 1200)
	err = sendTo(srv.Addr(), "s@customer.example", []string{"support@example.com"}, msg("s@customer.example", "support@example.com", "long line", long))
	var se *smtp.SMTPError
	if !errors.As(err, &se) || se.Code < 500 {
		t.Fatalf("1200-character line with max_line_length 1000: %v, want a 5xx", err)
	}
	if !strings.Contains(se.Message, "longer than 1000 characters") {
		t.Errorf("answer %q does not say what is wrong", se.Message)
	}
	fits := strings.Repeat("y", 900)
	if err := sendTo(srv.Addr(), "s@customer.example", []string{"support@example.com"}, msg("s@customer.example", "support@example.com", "fits", fits)); err != nil {
		t.Fatalf("900-character line: %v", err)
	}
	if tk := g.onlyTicket(); !strings.Contains(tk.Messages[0].Text, fits) {
		t.Errorf("stored text lacks the 900-character line")
	}
}

func TestInboundFloodPerDomainSparesFreemail(t *testing.T) {
	g := startGateway(t)
	g.pipeline.Policies = Policies{PerDomain: 2}
	for _, from := range []string{"a@corp.example", "b@corp.example", "x@gmail.com", "y@gmail.com", "z@gmail.com"} {
		g.mustSend(from, []string{"support@example.com"}, msg(from, "support@example.com", "hello from "+from, "x"))
	}
	err := g.send("c@corp.example", []string{"support@example.com"}, msg("c@corp.example", "support@example.com", "third from corp", "x"))
	var se *smtp.SMTPError
	if !errors.As(err, &se) || se.Code != 451 || se.EnhancedCode != (smtp.EnhancedCode{4, 7, 1}) {
		t.Fatalf("third message from corp.example: %v, want 451 4.7.1", err)
	}
	if n := len(g.tickets()); n != 5 {
		t.Errorf("%d tickets, want 5 (gmail.com users are not one sender)", n)
	}
}

func TestInboundFloodPerTicketGets451(t *testing.T) {
	g := startDesk(t)
	g.pipeline.Policies = Policies{PerTicket: 2}
	// The customer copies the agent they know: the agent is a participant
	// too, but agent mail is never held against the ticket's limit.
	g.mustSend("alice@customer.example", []string{"support@example.com"},
		msg(`"Alice Doe" <alice@customer.example>`, "support@example.com", "Printer on fire", "It is really on fire.", "Cc: ana@example.com"))
	g.settle()
	tk := g.onlyTicket()
	reply := func(i int) error {
		return g.send("alice@customer.example", []string{"support@example.com"},
			msg("alice@customer.example", "support@example.com", "Re: ["+tk.ID+"] Printer on fire", fmt.Sprintf("update %d", i)))
	}
	for i := range 2 {
		if err := reply(i); err != nil {
			t.Fatalf("reply %d: %v", i, err)
		}
	}
	var se *smtp.SMTPError
	if err := reply(2); !errors.As(err, &se) || se.Code != 451 || se.EnhancedCode != (smtp.EnhancedCode{4, 7, 1}) {
		t.Fatalf("third reply to %s within the hour: %v, want 451 4.7.1", tk.ID, err)
	}
	// The agent still answers the ticket, and the customer may open another.
	var signed string
	for _, m := range agMailsTo(g, 0, "ana@example.com") {
		if a := agReplyTo(t, m); strings.HasPrefix(a, "support+") {
			signed = a
		}
	}
	if signed == "" {
		t.Fatal("ana got no mail with a signed reply address")
	}
	agReply(g, "Ana Lima <ana@example.com>", signed, tk, "We are on it.")
	g.mustSend("alice@customer.example", []string{"support@example.com"}, msg("alice@customer.example", "support@example.com", "Another matter", "x"))
	got := g.ticket(tk.ID)
	counts := map[string]int{}
	for _, m := range got.Messages {
		counts[m.Kind]++
	}
	if counts["customer"] != 3 || counts["agent"] != 1 || len(g.tickets()) != 2 {
		t.Errorf("messages by kind %v and %d tickets; want 3 customer, 1 agent, 2 tickets", counts, len(g.tickets()))
	}
}

// A refused flood is answered from a read-only look at the counts: it never
// waits for, or fails, the write transaction other senders' mail is in.
func TestFloodIsRefusedWithoutTheWriter(t *testing.T) {
	g := startGateway(t)
	g.pipeline.Policies = Policies{PerSender: 1, PerTicket: 1}
	g.mustSend("p@customer.example", []string{"support@example.com"},
		msg("p@customer.example", "support@example.com", "shared", "x", "Cc: q@customer.example, r@customer.example"))
	tk := g.onlyTicket()
	g.mustSend("q@customer.example", []string{"support@example.com"}, msg("q@customer.example", "support@example.com", "Re: ["+tk.ID+"] shared", "from q"))
	g.settle()
	held, release := make(chan struct{}), make(chan struct{})
	go g.store.UpdateNow(context.Background(), func(store.Tx) error { close(held); <-release; return nil })
	<-held
	defer close(release)
	for _, c := range []struct{ why, from, subject string }{
		{"sender over its limit", "p@customer.example", "new question"},
		{"ticket over its limit", "r@customer.example", "Re: [" + tk.ID + "] shared"},
	} {
		answer := make(chan error, 1)
		go func() {
			answer <- g.send(c.from, []string{"support@example.com"}, msg(c.from, "support@example.com", c.subject, "x"))
		}()
		select {
		case err := <-answer:
			var se *smtp.SMTPError
			if !errors.As(err, &se) || se.Code != 451 {
				t.Errorf("%s: %v, want 451", c.why, err)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("%s: no answer within 5s while another transaction writes", c.why)
		}
	}
}

// dsnTo is a delivery status report to the return path to, saying that
// gone@customer.example does not exist.
func dsnTo(to, msgid string) []byte {
	return []byte("From: MAILER-DAEMON@mx.customer.example\r\nTo: " + to + "\r\nSubject: Undelivered Mail Returned to Sender\r\n" +
		"Message-ID: <" + msgid + ">\r\nMIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=RR\r\n\r\n" +
		"--RR\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n" +
		"--RR\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.customer.example\r\n\r\n" +
		"Final-Recipient: rfc822; gone@customer.example\r\nAction: failed\r\nStatus: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 <gone@customer.example>: user unknown\r\n" +
		"--RR--\r\n")
}

func (g *gateway) bouncing(addr string) bool {
	var b bool
	if err := g.store.View(context.Background(), func(tx store.Tx) error {
		var err error
		b, err = tx.Bouncing(addr, time.Now())
		return err
	}); err != nil {
		g.t.Fatal(err)
	}
	return b
}

func messagesOfKind(tk *store.Ticket, kind string) []store.Message {
	var out []store.Message
	for _, m := range tk.Messages {
		if m.Kind == kind {
			out = append(out, m)
		}
	}
	return out
}

// A vacation responder answers the return path (RFC 5230): that is not a
// delivery failure, and must not hold back mail to the customer.
func TestOutOfOfficeToTheBounceAddressIsNoBounce(t *testing.T) {
	g := startGateway(t)
	g.pipeline.Desk.VERPKeys = [][]byte{[]byte("0123456789abcdef0123456789abcdef")}
	g.mustSend("away@customer.example", []string{"support@example.com"}, msg("away@customer.example", "support@example.com", "question", "x"))
	mails := g.relay.WaitFor(1, 5*time.Second)
	g.settle()
	tk := g.onlyTicket()
	bounceAddr := mails[0].From
	ooo := msg("away@customer.example", bounceAddr, "Automatic reply: ["+tk.ID+"] question", "I am away until Monday.", "Auto-Submitted: auto-replied")
	g.mustSend("", []string{bounceAddr}, ooo)
	g.mustSend("", []string{bounceAddr}, ooo)
	got := g.ticket(tk.ID)
	if e := eventOf(got, "delivery_failed"); e != nil {
		t.Errorf("out-of-office recorded as a failed delivery: %+v", e)
	}
	if g.bouncing("away@customer.example") {
		t.Error("out-of-office marked the customer as bouncing")
	}
	sys := messagesOfKind(got, "system")
	if len(sys) != 1 || !strings.Contains(sys[0].Text, "away until Monday") || got.Status != tk.Status || len(g.tickets()) != 1 {
		t.Fatalf("%d system messages %+v, status %s (was %s), %d tickets; want the reply kept once on the ticket, nothing else changed",
			len(sys), sys, got.Status, tk.Status, len(g.tickets()))
	}
	// Mail to the customer is not held back.
	g.mustSend("away@customer.example", []string{"support@example.com"}, msg("away@customer.example", "support@example.com", "another", "x"))
	if n := len(g.relay.WaitFor(2, 5*time.Second)); n != 2 {
		t.Errorf("relay got %d mails, want the second auto-reply too", n)
	}
}

// A report about mail still waiting in the outbox is not about a delivery
// that failed: it is kept, and the mail still goes out.
func TestReportForMailStillInTheOutboxIsNoFailure(t *testing.T) {
	g := startGateway(t)
	g.pipeline.Desk.VERPKeys = [][]byte{[]byte("0123456789abcdef0123456789abcdef")}
	g.relay.Down()
	g.mustSend("gone@customer.example", []string{"support@example.com"}, msg("gone@customer.example", "support@example.com", "queued", "x"))
	tk := g.onlyTicket()
	var queued []*store.OutMail
	g.store.View(context.Background(), func(tx store.Tx) error { var err error; queued, err = tx.Outbox(time.Time{}, 0); return err })
	if len(queued) != 1 || !strings.HasPrefix(queued[0].From, "bounces+") {
		t.Fatalf("outbox %+v, want the auto-reply with a bounce return path", queued)
	}
	g.mustSend("", []string{queued[0].From}, dsnTo(queued[0].From, "early@mx.customer.example"))
	got := g.ticket(tk.ID)
	if e := eventOf(got, "delivery_failed"); e != nil || g.bouncing("gone@customer.example") {
		t.Errorf("report for unsent mail counted as a failure: event %+v, bouncing %v", e, g.bouncing("gone@customer.example"))
	}
	if sys := messagesOfKind(got, "system"); len(sys) != 1 || sys[0].MessageID != "early@mx.customer.example" {
		t.Errorf("report not kept as a system message: %+v", got.Messages)
	}
	g.relay.Up(t)
	if mails := g.relay.WaitFor(1, 10*time.Second); len(mails) != 1 || mails[0].To[0] != "gone@customer.example" {
		t.Errorf("auto-reply not delivered after the relay came back: %+v", mails)
	}
}

// A bounce at a routing address is kept on the ticket it quotes even when
// no failure can be read from it, and a retried report adds nothing.
func TestBouncesAtRoutingAddressAreKeptOnce(t *testing.T) {
	g := startGateway(t)
	g.mustSend("gone@customer.example", []string{"support@example.com"}, msg("gone@customer.example", "support@example.com", "hello", "x"))
	g.settle()
	tk := g.onlyTicket()
	sent := messagesOfKind(tk, "auto")
	if len(sent) != 1 {
		t.Fatalf("auto-reply not recorded: %+v", tk.Messages)
	}
	unreadable := []byte("From: MAILER-DAEMON@mx.customer.example\r\nTo: support@example.com\r\nSubject: Undelivered Mail Returned to Sender\r\n" +
		"Message-ID: <nd1@mx.customer.example>\r\n\r\nSomething went wrong with your message.\r\n\r\nMessage-ID: <" + sent[0].MessageID + ">\r\n")
	readable := []byte("From: MAILER-DAEMON@mx.customer.example\r\nTo: support@example.com\r\nSubject: Undelivered Mail Returned to Sender\r\n" +
		"Message-ID: <nd2@mx.customer.example>\r\nIn-Reply-To: <" + sent[0].MessageID + ">\r\n\r\n" +
		"I'm sorry to have to inform you that your message could not\r\nbe delivered to one or more recipients.\r\n\r\n" +
		"<gone@customer.example>: host mx.customer.example said: 550 5.1.1 user unknown\r\n")
	for range 2 {
		g.mustSend("", []string{"support@example.com"}, unreadable)
		g.mustSend("", []string{"support@example.com"}, readable)
	}
	got := g.ticket(tk.ID)
	if len(g.tickets()) != 1 {
		t.Fatalf("bounces opened tickets: %d", len(g.tickets()))
	}
	sys := messagesOfKind(got, "system")
	if len(sys) != 2 || sys[0].MessageID != "nd1@mx.customer.example" || sys[1].MessageID != "nd2@mx.customer.example" {
		t.Fatalf("system messages %+v, want each report once", sys)
	}
	var raw []byte
	g.store.View(context.Background(), func(tx store.Tx) error { var err error; raw, err = tx.Blob(sys[0].Raw); return err })
	if !bytes.Equal(raw, unreadable) {
		t.Errorf("raw copy of the unreadable report not kept")
	}
	if n := len(agEvents(got, "delivery_failed")); n != 1 || !g.bouncing("gone@customer.example") {
		t.Errorf("%d delivery_failed events, bouncing %v; want one from the readable report", n, g.bouncing("gone@customer.example"))
	}
}

// BenchmarkIngestUnderFlood measures how fast 16 clients get distinct
// customers' mail stored while 16 other connections keep sending mail from
// one sender past its hourly limit (each refused with 451).
func BenchmarkIngestUnderFlood(b *testing.B) {
	g := startGateway(b)
	g.pipeline.Policies = Policies{PerSender: 1}
	g.mustSend("flood@spam.example", []string{"support@example.com"}, msg("flood@spam.example", "support@example.com", "first", "x"))
	stop := make(chan struct{})
	var refused atomic.Int64
	var flooders sync.WaitGroup
	for range 16 {
		c, err := smtp.Dial(g.smtp.Addr())
		if err != nil {
			b.Fatal(err)
		}
		flooders.Go(func() {
			defer c.Close()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				err := c.SendMail("flood@spam.example", []string{"support@example.com"},
					bytes.NewReader(msg("flood@spam.example", "support@example.com", fmt.Sprintf("flood %d", i), "x")))
				var se *smtp.SMTPError
				if !errors.As(err, &se) || se.Code != 451 {
					return
				}
				refused.Add(1)
				c.Reset()
			}
		})
	}
	benchIngest(b, 16, 0, nil)
	close(stop)
	flooders.Wait()
	b.ReportMetric(float64(refused.Load())/b.Elapsed().Seconds(), "refused/s")
}

// TestAttachmentLimitsArePerTicket: the file limits count a ticket's files
// over all its mail: a second mail cannot take it past five files.
func TestAttachmentLimitsArePerTicket(t *testing.T) {
	g := startGateway(t)
	g.pipeline.Policies = Policies{MaxAttachments: 5, MaxAttachmentBytes: 10 << 20, MaxAttachmentsTotal: 50 << 20}
	withFiles := func(subject string, names ...string) []byte {
		var b strings.Builder
		fmt.Fprintf(&b, "From: erin@customer.example\r\nTo: support@example.com\r\nSubject: %s\r\nMessage-ID: <%s@customer.example>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nFiles attached.\r\n", subject, strings.ReplaceAll(names[0], ".", "-"))
		for _, n := range names {
			fmt.Fprintf(&b, "--b\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=%q\r\n\r\ncontent of %s\r\n", n, n)
		}
		b.WriteString("--b--\r\n")
		return []byte(b.String())
	}
	g.mustSend("erin@customer.example", []string{"support@example.com"}, withFiles("Printer logs", "a1.txt", "a2.txt", "a3.txt", "a4.txt"))
	tk := g.onlyTicket()
	g.settle()
	before := len(g.relay.Mails())
	g.mustSend("erin@customer.example", []string{"support@example.com"}, withFiles("Re: ["+tk.ID+"] Printer logs", "b1.txt", "b2.txt", "b3.txt"))
	g.settle()
	tk = g.ticket(tk.ID)
	var names []string
	for _, m := range tk.Messages {
		for _, a := range m.Attachments {
			names = append(names, a.Filename)
		}
	}
	if strings.Join(names, ",") != "a1.txt,a2.txt,a3.txt,a4.txt,b1.txt" {
		t.Errorf("files on the ticket %v; want the first five", names)
	}
	var refusal string
	for _, m := range g.relay.Mails()[before:] {
		if b := string(m.Data); strings.Contains(b, "b2.txt") {
			refusal = b
		}
	}
	if refusal == "" || !strings.Contains(refusal, "b3.txt") || strings.Contains(refusal, "b1.txt") || !strings.Contains(refusal, "per ticket") {
		t.Errorf("no refusal naming b2.txt and b3.txt (and only those) per ticket:\n%s", refusal)
	}
}

// A delay warning (4.x.x) at the bounce address does not mark the customer as bouncing.
func TestDelayedDeliveryReportDoesNotHoldMailToTheCustomer(t *testing.T) {
	g := startGateway(t)
	g.pipeline.Desk.VERPKeys = [][]byte{[]byte("0123456789abcdef0123456789abcdef")}
	g.mustSend("slow@customer.example", []string{"support@example.com"}, msg("slow@customer.example", "support@example.com", "question", "x"))
	mails := g.relay.WaitFor(1, 5*time.Second)
	g.settle()
	delayed := "From: MAILER-DAEMON@mx.customer.example\r\nTo: " + mails[0].From + "\r\nSubject: Delayed Mail (still being retried)\r\n" +
		"Message-ID: <delay1@mx.customer.example>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=RR\r\n\r\n" +
		"--RR\r\nContent-Type: text/plain\r\n\r\nTHIS IS A WARNING ONLY.  YOU DO NOT NEED TO RESEND YOUR MESSAGE.\r\n" +
		"--RR\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.customer.example\r\n\r\n" +
		"Final-Recipient: rfc822; slow@customer.example\r\nAction: delayed\r\nStatus: 4.4.1\r\nDiagnostic-Code: smtp; 451 4.4.1 try again later\r\n" +
		"--RR--\r\n"
	g.mustSend("", []string{mails[0].From}, []byte(delayed))
	if g.bouncing("slow@customer.example") {
		t.Error("a delay warning marked the customer as bouncing")
	}
	if len(g.tickets()) != 1 {
		t.Errorf("the delay warning opened a ticket: %d tickets", len(g.tickets()))
	}
}

// A delivery report about our mail holds only the mail's own recipients:
// whoever got that mail and its return path cannot name someone else as
// failed and so stop every automatic mail to them for 60 days.
func TestBounceHoldsOnlyTheReportedMailsRecipients(t *testing.T) {
	g := startGateway(t)
	g.pipeline.Desk.VERPKeys = [][]byte{[]byte("0123456789abcdef0123456789abcdef")}
	g.mustSend("mallory@customer.example", []string{"support@example.com"}, msg("mallory@customer.example", "support@example.com", "question", "x"))
	mails := g.relay.WaitFor(1, 5*time.Second)
	g.settle()
	forged := "From: MAILER-DAEMON@mx.customer.example\r\nTo: " + mails[0].From + "\r\nSubject: Undelivered Mail Returned to Sender\r\n" +
		"Message-ID: <forged1@mx.customer.example>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=RR\r\n\r\n" +
		"--RR\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n" +
		"--RR\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.customer.example\r\n\r\n" +
		"Final-Recipient: rfc822; victim@other.example\r\nAction: failed\r\nStatus: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 user unknown\r\n" +
		"--RR--\r\n"
	g.mustSend("", []string{mails[0].From}, []byte(forged))
	if g.bouncing("victim@other.example") {
		t.Error("a report about mail to mallory@customer.example marked victim@other.example as bouncing")
	}
	g.mustSend("victim@other.example", []string{"support@example.com"}, msg("victim@other.example", "support@example.com", "my own question", "y"))
	g.settle()
	if n := len(agMailsTo(g, 0, "victim@other.example")); n != 1 {
		t.Errorf("victim@other.example got %d auto-replies to a new ticket, want 1", n)
	}
}

// A report sent to a routing address holds only the recipients of our
// mail it quotes: quoting one's own message (or our mail to someone
// else) names nobody whose automatic mail may be stopped.
func TestBounceAtRoutingAddressHoldsOnlyTheQuotedMailsRecipients(t *testing.T) {
	g := startGateway(t)
	g.mustSend("mallory@customer.example", []string{"support@example.com"},
		msg("mallory@customer.example", "support@example.com", "question", "x", "Message-ID: <m1@customer.example>"))
	g.settle()
	forged := []byte("From: MAILER-DAEMON@mx.customer.example\r\nTo: support@example.com\r\nSubject: Undelivered Mail Returned to Sender\r\n" +
		"Message-ID: <forged2@mx.customer.example>\r\nIn-Reply-To: <m1@customer.example>\r\n" +
		"MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=RR\r\n\r\n" +
		"--RR\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n" +
		"--RR\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.customer.example\r\n\r\n" +
		"Final-Recipient: rfc822; victim@other.example\r\nAction: failed\r\nStatus: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 user unknown\r\n" +
		"--RR--\r\n")
	g.mustSend("", []string{"support@example.com"}, forged)
	if g.bouncing("victim@other.example") {
		t.Error("a report quoting mallory's own message marked victim@other.example as bouncing")
	}
	if len(g.tickets()) != 1 {
		t.Errorf("the report opened a ticket: %d tickets", len(g.tickets()))
	}
}

// Inline images the text does not show count as files on the ticket in every later mail too.
func TestUnshownInlineImagesCountAgainstTheTicketsFileLimit(t *testing.T) {
	g := startGateway(t)
	g.pipeline.Policies = Policies{MaxAttachments: 2}
	first := "From: ivy@customer.example\r\nTo: support@example.com\r\nSubject: Photos\r\nMessage-ID: <photos1@customer.example>\r\n" +
		"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nTwo photos.\r\n" +
		"--b\r\nContent-Type: image/png\r\nContent-Disposition: inline; filename=p1.png\r\nContent-ID: <p1@customer.example>\r\nContent-Transfer-Encoding: base64\r\n\r\niVBORw0KGgo=\r\n" +
		"--b\r\nContent-Type: image/png\r\nContent-Disposition: inline; filename=p2.png\r\nContent-ID: <p2@customer.example>\r\nContent-Transfer-Encoding: base64\r\n\r\niVBORw0KGgoA\r\n--b--\r\n"
	g.mustSend("ivy@customer.example", []string{"support@example.com"}, []byte(first))
	tk := g.onlyTicket()
	if n := len(tk.Messages[0].Attachments); n != 2 {
		t.Fatalf("first mail kept %d files, want 2", n)
	}
	g.mustSend("ivy@customer.example", []string{"support@example.com"}, withAttachments("ivy@customer.example", "Re: ["+tk.ID+"] Photos", 100))
	tk = g.ticket(tk.ID)
	if n := len(tk.Messages[len(tk.Messages)-1].Attachments); n != 0 {
		t.Errorf("a third file was kept on a ticket limited to 2 files: %+v", tk.Messages[len(tk.Messages)-1].Attachments)
	}
}

// A file on an out-of-office reply does not use up the customer's files on the ticket.
func TestOutOfOfficeFilesDoNotUseUpTheCustomersFileLimit(t *testing.T) {
	g := startGateway(t)
	g.pipeline.Policies = Policies{MaxAttachments: 1}
	g.mustSend("jo@customer.example", []string{"support@example.com"}, msg("jo@customer.example", "support@example.com", "Scanner", "It jams."))
	tk := g.onlyTicket()
	ooo := "From: jo@customer.example\r\nTo: support@example.com\r\nSubject: Automatic reply: [" + tk.ID + "] Scanner\r\nAuto-Submitted: auto-replied\r\n" +
		"Message-ID: <ooo1@customer.example>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nI am away.\r\n" +
		"--b\r\nContent-Type: image/png\r\nContent-Disposition: attachment; filename=logo.png\r\nContent-Transfer-Encoding: base64\r\n\r\niVBORw0KGgo=\r\n--b--\r\n"
	g.mustSend("jo@customer.example", []string{"support@example.com"}, []byte(ooo))
	g.mustSend("jo@customer.example", []string{"support@example.com"}, withAttachments("jo@customer.example", "Re: ["+tk.ID+"] Scanner", 100))
	tk = g.ticket(tk.ID)
	cust := messagesOfKind(tk, "customer")
	if last := cust[len(cust)-1]; len(last.Attachments) != 1 || eventOf(tk, "attachments_refused") != nil {
		t.Errorf("the customer's only file was refused after an out-of-office with a logo: files %+v, notes %q", last.Attachments, last.Notes)
	}
}

// TestFileSentInlineIsKeptOnce: Apple Mail sends a file of a type it does
// not know as application/octet-stream with Content-Disposition inline;
// the ticket keeps it once, and it counts once against max_attachments.
func TestFileSentInlineIsKeptOnce(t *testing.T) {
	g := startGateway(t)
	g.pipeline.Policies = Policies{MaxAttachments: 1}
	raw := "From: Oskar <o@customer.example>\r\nTo: support@example.com\r\nSubject: the export\r\nMessage-ID: <inline-file@customer.example>\r\n" +
		"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"Apple-Mail=_1\"\r\n\r\n" +
		"--Apple-Mail=_1\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nThe export is attached.\r\n" +
		"--Apple-Mail=_1\r\nContent-Disposition: inline; filename=export.dat\r\nContent-Type: application/octet-stream; name=\"export.dat\"\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
		base64.StdEncoding.EncodeToString([]byte("one two three")) + "\r\n--Apple-Mail=_1--\r\n"
	g.mustSend("o@customer.example", []string{"support@example.com"}, []byte(raw))
	tk := g.onlyTicket()
	var names []string
	for _, a := range tk.Messages[0].Attachments {
		names = append(names, a.Filename)
	}
	if strings.Join(names, ",") != "export.dat" {
		t.Errorf("files kept %v, want export.dat once", names)
	}
	if ev := eventOf(tk, "attachments_refused"); ev != nil {
		t.Errorf("the one file sent was refused: %s", ev.Detail)
	}
}

// TestBodyMarkedInlineIsNoFile: Lotus Notes, Sparrow and others mark the
// text and HTML versions of a message Content-Disposition inline; they
// are the message's text, not files of the ticket.
func TestBodyMarkedInlineIsNoFile(t *testing.T) {
	g := startGateway(t)
	raw := "From: Thomas <thomas@customer.example>\r\nTo: support@example.com\r\nSubject: printer\r\nMessage-ID: <notes-inline@customer.example>\r\n" +
		"MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=\"0__=4EBB\"\r\nContent-Disposition: inline\r\n\r\n" +
		"--0__=4EBB\r\nContent-Type: text/plain; charset=US-ASCII\r\nContent-Disposition: inline\r\n\r\nThe printer is jammed again.\r\n" +
		"--0__=4EBB\r\nContent-Type: text/html; charset=US-ASCII\r\nContent-Disposition: inline\r\n\r\n<html><body>The printer is <b>jammed</b> again.</body></html>\r\n" +
		"--0__=4EBB--\r\n"
	g.mustSend("thomas@customer.example", []string{"support@example.com"}, []byte(raw))
	m := g.onlyTicket().Messages[0]
	if !strings.Contains(m.Text, "The printer is jammed again.") {
		t.Errorf("text %q", m.Text)
	}
	for _, a := range m.Attachments {
		t.Errorf("the message's own text kept as a file: %s (%s, %d bytes)", a.Filename, a.ContentType, a.Size)
	}
}

// TestBlankTextPartLeavesTheHTMLToRead: a message whose text/plain
// alternative holds nothing but blank lines is read from its HTML, as a
// message without a text part is.
func TestBlankTextPartLeavesTheHTMLToRead(t *testing.T) {
	g := startGateway(t)
	raw := "From: Rosa <rosa@customer.example>\r\nTo: support@example.com\r\nSubject: order 4711\r\nMessage-ID: <blank-text@customer.example>\r\n" +
		"MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=\"alt\"\r\n\r\n" +
		"--alt\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\r\n\r\n" +
		"--alt\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<html><body><p>Order 4711 arrived broken.</p><p>Rosa</p></body></html>\r\n" +
		"--alt--\r\n"
	g.mustSend("rosa@customer.example", []string{"support@example.com"}, []byte(raw))
	m := g.onlyTicket().Messages[0]
	if !strings.Contains(m.Text, "Order 4711 arrived broken.") || !strings.Contains(m.VisibleText, "Order 4711 arrived broken.") {
		t.Errorf("text %q, visible text %q; want the HTML's words", m.Text, m.VisibleText)
	}
}

// TestTextAfterAnInlineImageIsVisible: Apple Mail and iOS Mail send text
// written around a picture as text parts before and after it; what the
// customer wrote after the picture is part of what agents read.
func TestTextAfterAnInlineImageIsVisible(t *testing.T) {
	g := startGateway(t)
	raw := "From: Uma <uma@customer.example>\r\nTo: support@example.com\r\nSubject: save button\r\nMessage-ID: <text-around-image@customer.example>\r\n" +
		"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"Apple-Mail=_2\"\r\n\r\n" +
		"--Apple-Mail=_2\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nHere is the screen:\r\n\r\n" +
		"--Apple-Mail=_2\r\nContent-Type: image/png; name=screen.png\r\nContent-Disposition: inline; filename=screen.png\r\nContent-Transfer-Encoding: base64\r\n\r\niVBORw0KGgo=\r\n" +
		"--Apple-Mail=_2\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n\r\nThe Save button is gone since the update.\r\n\r\nUma\r\n" +
		"--Apple-Mail=_2--\r\n"
	g.mustSend("uma@customer.example", []string{"support@example.com"}, []byte(raw))
	m := g.onlyTicket().Messages[0]
	for _, want := range []string{"Here is the screen:", "The Save button is gone since the update."} {
		if !strings.Contains(m.VisibleText, want) {
			t.Errorf("visible text %q lacks %q", m.VisibleText, want)
		}
	}
}

// TestReportAtRoutingAddressFindsTheTicketInItsReturnedHeader: a delivery
// report sent to a routing address instead of the bounce address names our
// mail only in the header it returns (a text/rfc822-headers part, as
// Postfix, Exim and Exchange send it): it is kept on that ticket, and the
// failed recipient is held.
func TestReportAtRoutingAddressFindsTheTicketInItsReturnedHeader(t *testing.T) {
	g := startGateway(t)
	g.mustSend("gone@customer.example", []string{"support@example.com"}, msg("gone@customer.example", "support@example.com", "hello", "x"))
	g.settle()
	tk := g.onlyTicket()
	sent := messagesOfKind(tk, "auto")
	if len(sent) != 1 {
		t.Fatalf("auto-reply not recorded: %+v", tk.Messages)
	}
	report := "From: MAILER-DAEMON@mx.customer.example (Mail Delivery System)\r\nTo: support@example.com\r\nSubject: Undelivered Mail Returned to Sender\r\n" +
		"Message-ID: <nd3@mx.customer.example>\r\nAuto-Submitted: auto-replied\r\n" +
		"MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"RR\"\r\n\r\n" +
		"--RR\r\nContent-Type: text/plain\r\n\r\nI'm sorry to have to inform you that your message could not\r\nbe delivered to one or more recipients.\r\n\r\n" +
		"<gone@customer.example>: host mx.customer.example said: 550 5.1.1 user unknown\r\n" +
		"--RR\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.customer.example\r\n\r\n" +
		"Final-Recipient: rfc822; gone@customer.example\r\nAction: failed\r\nStatus: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 user unknown\r\n" +
		"--RR\r\nContent-Type: text/rfc822-headers\r\n\r\nFrom: Example Support <support@example.com>\r\nTo: gone@customer.example\r\n" +
		"Subject: Re: hello\r\nMessage-ID: <" + sent[0].MessageID + ">\r\n" +
		"--RR--\r\n"
	g.mustSend("", []string{"support@example.com"}, []byte(report))
	if n := len(g.tickets()); n != 1 {
		t.Errorf("the report opened a ticket of its own: %d tickets", n)
	}
	got := g.ticket(tk.ID)
	if sys := messagesOfKind(got, "system"); len(sys) != 1 || sys[0].MessageID != "nd3@mx.customer.example" {
		t.Errorf("report not kept on %s: system messages %+v", tk.ID, sys)
	}
	if !g.bouncing("gone@customer.example") {
		t.Error("gone@customer.example not held after the report")
	}
}

// TestFileNameInLatin1KeepsItsName: mutt writes a file name that fits
// ISO-8859-1 in that charset (RFC 2231), once or continued over several
// parameters; the ticket keeps the name the sender gave the file.
func TestFileNameInLatin1KeepsItsName(t *testing.T) {
	g := startGateway(t)
	raw := "From: Jörg <joerg@customer.example>\r\nTo: support@example.com\r\nSubject: Rechnung\r\nMessage-ID: <mutt-latin1@customer.example>\r\n" +
		"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"mutt\"\r\n\r\n" +
		"--mutt\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nSee the files.\r\n" +
		"--mutt\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename*=iso-8859-1''Gr%FC%DFe.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0=\r\n" +
		"--mutt\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Disposition: attachment;\r\n\tfilename*0*=iso-8859-1''Rechnungs%FC;\r\n\tfilename*1*=bersicht%20M%E4rz.txt\r\n\r\nSumme 12\r\n" +
		"--mutt--\r\n"
	g.mustSend("joerg@customer.example", []string{"support@example.com"}, []byte(raw))
	var names []string
	for _, a := range g.onlyTicket().Messages[0].Attachments {
		names = append(names, a.Filename)
	}
	if strings.Join(names, "|") != "Grüße.pdf|Rechnungsübersicht März.txt" {
		t.Errorf("files kept as %q, want Grüße.pdf and Rechnungsübersicht März.txt", names)
	}
}

// TestQuotedEncodedNameIsDecoded: many mailers put the encoded words of a
// display name in quotes ("=?iso-8859-1?Q?J=F6rg?=" <...>); the ticket
// and the auto-reply greet the customer by the name, not its encoding.
func TestQuotedEncodedNameIsDecoded(t *testing.T) {
	g := startGateway(t)
	g.mustSend("joerg@customer.example", []string{"support@example.com"},
		msg(`"=?iso-8859-1?Q?J=F6rg_M=FCller?=" <joerg@customer.example>`, "support@example.com", "printer", "It jams."))
	tk := g.onlyTicket()
	if tk.RequesterName != "Jörg Müller" {
		t.Errorf("requester name %q, want Jörg Müller", tk.RequesterName)
	}
	mails := g.relay.WaitFor(1, 5*time.Second)
	if len(mails) != 1 || !strings.Contains(string(mails[0].Data), "Hello J=C3=B6rg M=C3=BCller,") {
		t.Errorf("auto-reply does not greet Jörg Müller by name:\n%s", mails[0].Data)
	}
}

// TestFileNameInRaw8BitKeepsItsName: Foxmail and other mailers write a
// file name as raw bytes in the message's charset; the ticket keeps the
// name, read in that charset, as it does a raw 8-bit Subject.
func TestFileNameInRaw8BitKeepsItsName(t *testing.T) {
	g := startGateway(t)
	for _, c := range []struct{ id, charset, name, text string }{
		{"gbk-name", "GB2312", "\xb1\xa8\xb8\xe6.pdf", "\xc7\xeb\xbf\xb4\xb8\xbd\xbc\xfe"},
		{"latin1-name", "iso-8859-1", "Gr\xfc\xdfe.pdf", "Sch\xf6ne Gr\xfc\xdfe"},
	} {
		raw := "From: li@customer.example\r\nTo: support@example.com\r\nSubject: " + c.id + "\r\nMessage-ID: <" + c.id + "@customer.example>\r\n" +
			"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"fm\"\r\n\r\n" +
			"--fm\r\nContent-Type: text/plain; charset=" + c.charset + "\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" + c.text + "\r\n" +
			"--fm\r\nContent-Type: application/pdf; name=\"" + c.name + "\"\r\nContent-Disposition: attachment; filename=\"" + c.name + "\"\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0=\r\n" +
			"--fm--\r\n"
		g.mustSend("li@customer.example", []string{"support@example.com"}, []byte(raw))
	}
	names := map[string]string{}
	for _, tk := range g.tickets() {
		for _, a := range g.ticket(tk.ID).Messages[0].Attachments {
			names[tk.Subject] += a.Filename
		}
	}
	if names["gbk-name"] != "报告.pdf" || names["latin1-name"] != "Grüße.pdf" {
		t.Errorf("files kept as %q, want 报告.pdf and Grüße.pdf", names)
	}
}
