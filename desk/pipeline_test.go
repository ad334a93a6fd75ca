package desk

import (
	"context"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"ticketgate/rules"
	"ticketgate/store"
)

var tokenInSubject = regexp.MustCompile(`^\[HS-\d{6}\] `)

func TestNewMailOpensTicketAndSendsOneAutoReply(t *testing.T) {
	g := startGateway(t)
	g.mustSend("alice@customer.example", []string{"support@example.com"},
		msg(`"Alice Doe" <alice@customer.example>`, "support@example.com", "Printer on fire", "It is really on fire.",
			"Message-ID: <first@customer.example>"))

	tk := g.onlyTicket()
	if tk.Status != rules.StatusNew || tk.Priority != rules.PriorityMedium || tk.Queue != "support" {
		t.Errorf("ticket %s: status %s priority %s queue %s", tk.ID, tk.Status, tk.Priority, tk.Queue)
	}
	if tk.Requester != "alice@customer.example" || tk.RequesterName != "Alice Doe" || tk.Subject != "Printer on fire" {
		t.Errorf("ticket requester %q name %q subject %q", tk.Requester, tk.RequesterName, tk.Subject)
	}
	if !regexp.MustCompile(`^HS-\d{6}$`).MatchString(tk.ID) {
		t.Errorf("ticket id %q is not HS- and six digits", tk.ID)
	}
	if len(tk.Messages) != 2 || tk.Messages[0].Text != "It is really on fire.\n" || tk.Messages[1].Kind != "auto" {
		t.Fatalf("messages: %+v", tk.Messages)
	}

	mails := g.relay.WaitFor(1, 5*time.Second)
	g.settle()
	mails = g.relay.Mails()
	if len(mails) != 1 {
		t.Fatalf("relay got %d mails, want exactly 1", len(mails))
	}
	m := mails[0]
	if len(m.To) != 1 || m.To[0] != "alice@customer.example" {
		t.Errorf("auto-reply went to %v", m.To)
	}
	h := header(t, m.Data)
	if want := "[" + tk.ID + "] Printer on fire"; h.Get("Subject") != want {
		t.Errorf("Subject %q, want %q", h.Get("Subject"), want)
	}
	if h.Get("Auto-Submitted") != "auto-replied" || h.Get("X-Auto-Response-Suppress") != "All" {
		t.Errorf("auto headers: %q %q", h.Get("Auto-Submitted"), h.Get("X-Auto-Response-Suppress"))
	}
	if h.Get("In-Reply-To") != "<first@customer.example>" || !strings.Contains(h.Get("References"), "<first@customer.example>") {
		t.Errorf("In-Reply-To %q References %q", h.Get("In-Reply-To"), h.Get("References"))
	}
	if from := h.Get("From"); !strings.Contains(from, "Example Support") || !strings.Contains(from, "<support@example.com>") {
		t.Errorf("From %q", from)
	}
	if !strings.Contains(h.Get("Reply-To"), "support@example.com") {
		t.Errorf("Reply-To %q", h.Get("Reply-To"))
	}
	body := string(m.Data)
	if !strings.Contains(body, tk.ID) || !strings.Contains(strings.ToLower(body), "reply") {
		t.Errorf("auto-reply body does not tell the ticket number and how to add to it:\n%s", body)
	}
	if h.Get("Message-Id") != "<"+tk.Messages[1].MessageID+">" {
		t.Errorf("auto-reply Message-ID %q not the one remembered (%q)", h.Get("Message-Id"), tk.Messages[1].MessageID)
	}
}

func TestRepliesThreadIntoTheSameTicket(t *testing.T) {
	g := startGateway(t)
	g.mustSend("bob@customer.example", []string{"support@example.com"},
		msg("bob@customer.example", "support@example.com", "Cannot log in", "Help", "Message-ID: <orig@customer.example>"))
	tk := g.onlyTicket()
	autoID := tk.Messages[1].MessageID
	num := strings.TrimPrefix(tk.ID, "HS-")

	cases := []struct {
		name, subject string
		extra         []string
	}{
		{"token", "Re: [" + tk.ID + "] Cannot log in", nil},
		{"token lower case after prefixes", "AW: Fwd: RE: SV: VS: FW: hs-" + num + " still broken", nil},
		{"token without brackets", "Re: " + tk.ID, nil},
		{"In-Reply-To only", "Re: Cannot log in", []string{"In-Reply-To: <" + autoID + ">"}},
		{"References only", "about my problem", []string{"References: <unknown@elsewhere> <" + autoID + ">"}},
		{"References to the customer's own first mail", "one more thing", []string{"References: <orig@customer.example>"}},
	}
	for i, c := range cases {
		g.mustSend("bob@customer.example", []string{"support@example.com"},
			msg("Bob <bob@customer.example>", "support@example.com", c.subject, fmt.Sprintf("reply %d", i), c.extra...))
		if n := len(g.tickets()); n != 1 {
			t.Fatalf("%s: %d tickets, want the reply in the first one", c.name, n)
		}
	}
	tk = g.ticket(tk.ID)
	var customer int
	for _, m := range tk.Messages {
		if m.Kind == "customer" {
			customer++
		}
	}
	if customer != 1+len(cases) {
		t.Errorf("ticket holds %d customer messages, want %d", customer, 1+len(cases))
	}
	g.settle()
	if n := len(g.relay.Mails()); n != 1 {
		t.Errorf("relay got %d mails; replies must not get another auto-reply", n)
	}
}

// Proves a reply naming its ticket by token joins it when the configured prefix is lower case.
func TestReplyByTokenJoinsItsTicketWhateverThePrefixCase(t *testing.T) {
	g := startGateway(t)
	g.pipeline.Prefix = "hs" // tickets.prefix accepts letters in any case
	g.mustSend("bob@customer.example", []string{"support@example.com"},
		msg("bob@customer.example", "support@example.com", "Cannot log in", "Help"))
	tk := g.onlyTicket()
	g.mustSend("bob@customer.example", []string{"support@example.com"},
		msg("bob@customer.example", "support@example.com", "Re: ["+tk.ID+"] Cannot log in", "still broken"))
	if n := len(g.tickets()); n != 1 {
		t.Fatalf("%d tickets after a reply naming [%s], want the reply on it", n, tk.ID)
	}
	if got := g.ticket(tk.ID); len(messagesOfKind(got, "customer")) != 2 {
		t.Errorf("%s holds %d customer messages, want 2", tk.ID, len(messagesOfKind(got, "customer")))
	}
}

func TestUnknownTokenAndStrangerOpenNewTickets(t *testing.T) {
	g := startGateway(t)
	g.mustSend("carol@customer.example", []string{"support@example.com"},
		msg("carol@customer.example", "support@example.com", "[HS-000001] no such ticket", "hi"))
	first := g.onlyTicket()
	if first.ID == "HS-000001" {
		t.Fatal("an unknown token must not create that ticket id")
	}
	// A stranger naming Carol's ticket gets a ticket of their own.
	g.mustSend("mallory@evil.example", []string{"support@example.com"},
		msg("mallory@evil.example", "support@example.com", "Re: ["+first.ID+"] give me her data", "please"))
	list := g.tickets()
	if len(list) != 2 {
		t.Fatalf("want 2 tickets, have %d", len(list))
	}
	if c := g.ticket(first.ID); len(c.Messages) != 2 {
		t.Errorf("stranger's mail landed in %s", first.ID)
	}
	g.settle()
	for _, m := range g.relay.Mails() {
		if m.To[0] == "carol@customer.example" && strings.Contains(string(m.Data), "give me her data") {
			t.Error("stranger's text was sent to the requester")
		}
	}
}

func TestRefusals(t *testing.T) {
	g := startGateway(t)
	err := g.send("x@customer.example", []string{"nobody@example.com"}, msg("x@customer.example", "nobody@example.com", "hi", "x"))
	var se *smtp.SMTPError
	if !errors.As(err, &se) || se.Code != 550 || se.EnhancedCode != (smtp.EnhancedCode{5, 1, 1}) {
		t.Errorf("unknown recipient: %v, want 550 5.1.1", err)
	}
	big := msg("x@customer.example", "support@example.com", "big", strings.Repeat("0123456789abcdef\n", 70000))
	err = g.send("x@customer.example", []string{"support@example.com"}, big)
	if !errors.As(err, &se) || se.Code != 552 || se.EnhancedCode != (smtp.EnhancedCode{5, 3, 4}) {
		t.Errorf("oversize: %v, want 552 5.3.4", err)
	}
	if n := len(g.tickets()); n != 0 {
		t.Errorf("%d tickets from refused mail", n)
	}
	// Plus-addressed variants belong to the route.
	g.mustSend("x@customer.example", []string{"Support+Anything@Example.com"}, msg("x@customer.example", "support+anything@example.com", "plus", "x"))
	if tk := g.onlyTicket(); tk.Queue != "support" {
		t.Errorf("plus address went to queue %q", tk.Queue)
	}
}

func TestAutomaticMailGetsNoAutoReply(t *testing.T) {
	cases := []struct {
		name, mailFrom, from string
		extra                []string
	}{
		{"Auto-Submitted", "a@x.example", "a@x.example", []string{"Auto-Submitted: auto-generated"}},
		{"Precedence bulk", "a@x.example", "a@x.example", []string{"Precedence: bulk"}},
		{"Precedence junk", "a@x.example", "a@x.example", []string{"Precedence: junk"}},
		{"Precedence list", "a@x.example", "a@x.example", []string{"Precedence: list"}},
		{"List-Id", "a@x.example", "a@x.example", []string{"List-Id: <news.x.example>"}},
		{"X-Autoreply", "a@x.example", "a@x.example", []string{"X-Autoreply: yes"}},
		{"X-Autorespond", "a@x.example", "a@x.example", []string{"X-Autorespond: yes"}},
		{"null reverse path", "", "a@x.example", nil},
		{"MAILER-DAEMON", "MAILER-DAEMON@x.example", "MAILER-DAEMON@x.example", nil},
		{"postmaster", "postmaster@x.example", "postmaster@x.example", nil},
		{"our own routing address", "tech@example.com", "tech@example.com", nil},
	}
	g := startGateway(t)
	for _, c := range cases {
		g.mustSend(c.mailFrom, []string{"support@example.com"}, msg(c.from, "support@example.com", c.name, "automatic", c.extra...))
	}
	// A human control message proves the relay path works in this test.
	g.mustSend("human@x.example", []string{"support@example.com"}, msg("human@x.example", "support@example.com", "human", "hello"))
	g.relay.WaitFor(1, 5*time.Second)
	g.settle()
	mails := g.relay.Mails()
	if len(mails) != 1 || mails[0].To[0] != "human@x.example" {
		t.Fatalf("relay got %d mails (%v); only the human may get an auto-reply", len(mails), mails)
	}
	for _, tk := range g.tickets() {
		full := g.ticket(tk.ID)
		if tk.Subject == "human" {
			continue
		}
		found := false
		for _, e := range full.Events {
			found = found || e.Type == "auto_reply_suppressed"
		}
		if !found {
			t.Errorf("%s: no auto_reply_suppressed event: %+v", tk.Subject, full.Events)
		}
	}
}

func TestRelayDownThenUpDeliversOnce(t *testing.T) {
	g := startGateway(t)
	g.relay.Down()
	g.mustSend("dave@customer.example", []string{"support@example.com"}, msg("dave@customer.example", "support@example.com", "relay test", "x"))
	// Let the worker fail a few times against the closed port.
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		var attempts int
		g.store.View(context.Background(), func(tx store.Tx) error {
			all, err := tx.Outbox(time.Time{}, 0)
			if len(all) == 1 {
				attempts = all[0].Attempts
			}
			return err
		})
		if attempts >= 2 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	g.relay.Up(t)
	g.worker.Wake()
	g.relay.WaitFor(1, 10*time.Second)
	g.settle()
	if n := len(g.relay.Mails()); n != 1 {
		t.Fatalf("relay got %d mails after coming back, want 1", n)
	}
}

func TestPermanentRelayRefusalIsRecorded(t *testing.T) {
	g := startGateway(t)
	g.relay.FailRcpt("gone@customer.example", &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"})
	g.mustSend("gone@customer.example", []string{"support@example.com"}, msg("gone@customer.example", "support@example.com", "bounce me", "x"))
	g.settle()
	tk := g.onlyTicket()
	var detail string
	for _, e := range tk.Events {
		if e.Type == "delivery_failed" {
			detail = e.Detail
		}
	}
	if !strings.Contains(detail, "550") || !strings.Contains(detail, "gone@customer.example") {
		t.Errorf("no delivery_failed event naming the 550: %+v", tk.Events)
	}
	if n := len(g.relay.Mails()); n != 0 {
		t.Errorf("relay accepted %d mails", n)
	}
}

func TestAcknowledgedMailSurvivesRestart(t *testing.T) {
	g := startGateway(t)
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- g.send("e@customer.example", []string{"support@example.com"},
				msg("e@customer.example", "support@example.com", fmt.Sprintf("restart %d", i), "x", fmt.Sprintf("Message-ID: <restart%d@customer.example>", i)))
		}()
	}
	wg.Wait()
	close(errs)
	acked := 0
	for err := range errs {
		if err == nil {
			acked++
		}
	}
	g.shutdown()
	g.open()
	if n := len(g.tickets()); n != acked || acked != 20 {
		t.Fatalf("%d acknowledged, %d tickets after reopening", acked, n)
	}
	for i := range 20 {
		var id string
		if err := g.store.View(context.Background(), func(tx store.Tx) error {
			var err error
			id, err = tx.TicketByMessageID(fmt.Sprintf("restart%d@customer.example", i))
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if id == "" {
			t.Errorf("message restart%d lost", i)
		}
	}
}

func TestTwoRoutingAddressesMakeOneTicket(t *testing.T) {
	g := startGateway(t)
	g.mustSend("f@customer.example", []string{"support@example.com", "billing@example.com"},
		msg("f@customer.example", "support@example.com, billing@example.com", "two routes", "x"))
	g.onlyTicket()
	g.settle()
	if n := len(g.relay.Mails()); n != 1 {
		t.Errorf("%d auto-replies, want 1", n)
	}
}

func TestDuplicateDeliveryIsOneMessage(t *testing.T) {
	g := startGateway(t)
	raw := msg("g@customer.example", "support@example.com", "dup", "x", "Message-ID: <dup@customer.example>")
	g.mustSend("g@customer.example", []string{"support@example.com"}, raw)
	g.mustSend("g@customer.example", []string{"support@example.com"}, raw)
	g.mustSend("g@customer.example", []string{"tech@example.com"}, raw)
	tk := g.onlyTicket()
	if len(tk.Messages) != 2 { // the customer's mail and the auto-reply
		t.Errorf("%d messages, want 2", len(tk.Messages))
	}
	g.settle()
	if n := len(g.relay.Mails()); n != 1 {
		t.Errorf("%d auto-replies, want 1", n)
	}
}

func TestLMTPAnswersPerRecipient(t *testing.T) {
	g := startGateway(t)
	conn, err := net.Dial("tcp", g.lmtp.Addr())
	if err != nil {
		t.Fatal(err)
	}
	c := smtp.NewClientLMTP(conn)
	defer c.Close()
	if err := c.Hello("mx.example.com"); err != nil {
		t.Fatal(err)
	}
	if err := c.Mail("h@customer.example", nil); err != nil {
		t.Fatal(err)
	}
	for _, r := range []string{"support@example.com", "tech@example.com"} {
		if err := c.Rcpt(r, nil); err != nil {
			t.Fatalf("RCPT %s: %v", r, err)
		}
	}
	var se *smtp.SMTPError
	if err := c.Rcpt("nobody@example.com", nil); !errors.As(err, &se) || se.Code != 550 {
		t.Errorf("RCPT nobody: %v, want 550", err)
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	w.Write(msg("h@customer.example", "support@example.com, tech@example.com", "lmtp", "x"))
	resps, err := w.CloseWithLMTPResponse()
	if err != nil {
		t.Fatal(err)
	}
	if len(resps) != 2 || resps["support@example.com"] == nil || resps["tech@example.com"] == nil {
		t.Errorf("per-recipient answers %v, want one success for each of two recipients", resps)
	}
	g.onlyTicket()
}

func TestHeaderInjectionDoesNotReachSentMail(t *testing.T) {
	g := startGateway(t)
	// An encoded CR LF in the subject and display name.
	g.mustSend("i@customer.example", []string{"support@example.com"},
		msg(`"=?utf-8?q?Eve=0D=0ABcc=3A_victim=40x.example?=" <i@customer.example>`, "support@example.com",
			"=?utf-8?q?hello=0D=0ABcc=3A_victim=40x.example?=", "x"))
	mails := g.relay.WaitFor(1, 5*time.Second)
	if len(mails) != 1 {
		t.Fatalf("%d mails", len(mails))
	}
	h := header(t, mails[0].Data)
	if h.Get("Bcc") != "" || len(mails[0].To) != 1 {
		t.Errorf("header injected: Bcc %q, rcpts %v\n%s", h.Get("Bcc"), mails[0].To, mails[0].Data)
	}
}

func TestMalformedMIMEIsKept(t *testing.T) {
	g := startGateway(t)
	raw := []byte("From: j@customer.example\r\nTo: support@example.com\r\nSubject: broken\r\nMessage-ID: <broken@customer.example>\r\n" +
		"Content-Type: multipart/mixed; boundary=\"zzz\"\r\n\r\n--zzz\r\nContent-Type: text/plain; charset=bogus-charset\r\n" +
		"Content-Transfer-Encoding: base64\r\n\r\nthis is not base64 !!!\r\n--zzz\r\nContent-Type: text/plain\r\n\r\nsecond part text\r\n")
	g.mustSend("j@customer.example", []string{"support@example.com"}, raw)
	tk := g.onlyTicket()
	m := tk.Messages[0]
	if m.Raw == "" {
		t.Fatal("raw message not kept")
	}
	var kept []byte
	g.store.View(context.Background(), func(tx store.Tx) error { var err error; kept, err = tx.Blob(m.Raw); return err })
	if string(kept) != string(raw) {
		t.Error("raw copy differs from what was received")
	}
	if !strings.Contains(m.Text+strings.Join(m.Notes, " "), "second part text") && !strings.Contains(m.Text, "second part") {
		t.Errorf("readable text lost: %q notes %v", m.Text, m.Notes)
	}
}

// Scanners and web forms send every mail with the same Message-ID: a
// different message under a known id is a new message, while a repeated
// delivery of the same one (retry, second routing address) stays one.
func TestReusedMessageIDIsANewMessage(t *testing.T) {
	g := startGateway(t)
	scan := msg("scanner@office.example", "support@example.com", "Scan 1", "page one", "Message-Id: <fixed@scanner>")
	form := msg("form@web.example", "support@example.com", "Contact form", "please call me", "Message-Id: <fixed@scanner>")
	g.mustSend("scanner@office.example", []string{"support@example.com"}, scan)
	g.mustSend("form@web.example", []string{"support@example.com"}, form)
	// Retries: the same bytes, the same content through another relay,
	// and a copy to a second routing address.
	g.mustSend("form@web.example", []string{"support@example.com"}, form)
	g.mustSend("form@web.example", []string{"support@example.com"}, append([]byte("Received: from relay2.web.example by mx.example.com\r\n"), form...))
	g.mustSend("form@web.example", []string{"tech@example.com"}, form)
	g.mustSend("scanner@office.example", []string{"support@example.com"}, scan)
	list := g.tickets()
	if len(list) != 2 {
		t.Fatalf("%d tickets, want one for the scan and one for the form", len(list))
	}
	for _, x := range list {
		tk := g.ticket(x.ID)
		var customer []store.Message
		for _, m := range tk.Messages {
			if m.Kind == "customer" {
				customer = append(customer, m)
			}
		}
		if len(customer) != 1 {
			t.Fatalf("%s (%s): %d customer messages, want 1", tk.ID, tk.Requester, len(customer))
		}
		m := customer[0]
		switch tk.Requester {
		case "scanner@office.example":
			if m.MessageID != "fixed@scanner" || m.Text != "page one\n" {
				t.Errorf("first message: id %q text %q", m.MessageID, m.Text)
			}
		case "form@web.example":
			if !strings.HasPrefix(m.MessageID, "fixed+") || !strings.HasSuffix(m.MessageID, "@scanner") || m.Text != "please call me\n" {
				t.Errorf("second message: id %q text %q; want a derived id fixed+<hash>@scanner", m.MessageID, m.Text)
			}
			if !strings.Contains(strings.Join(m.Notes, " "), "fixed@scanner") {
				t.Errorf("no note about the reused Message-ID: %v", m.Notes)
			}
		default:
			t.Errorf("unexpected requester %s", tk.Requester)
		}
	}
	g.settle()
	if n := len(g.relay.Mails()); n != 2 {
		t.Errorf("%d auto-replies, want 2", n)
	}
}

// Proves scans a scanner sends with one Message-ID, one subject and one text are each kept when only their file differs.
func TestScansWithOneMessageIDAndDifferentFilesAreEachKept(t *testing.T) {
	g := startGateway(t)
	scan := func(page string) []byte {
		return []byte("From: scanner@office.example\r\nTo: support@example.com\r\nSubject: Scanned document\r\nMessage-ID: <fixed@scanner>\r\n" +
			"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=BB\r\n\r\n--BB\r\nContent-Type: text/plain\r\n\r\nPlease find the scan attached.\r\n" +
			"--BB\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=\"scan.pdf\"\r\n\r\n%PDF " + page + "\r\n--BB--\r\n")
	}
	for _, page := range []string{"invoice page", "contract page", "receipt page"} {
		g.mustSend("scanner@office.example", []string{"support@example.com"}, scan(page))
	}
	g.mustSend("scanner@office.example", []string{"support@example.com"}, scan("contract page")) // a retry
	kept := map[string]bool{}
	for _, x := range g.tickets() {
		for _, m := range messagesOfKind(g.ticket(x.ID), "customer") {
			for _, a := range m.Attachments {
				var b []byte
				g.store.View(context.Background(), func(tx store.Tx) error { var err error; b, err = tx.Blob(a.SHA256); return err })
				if kept[string(b)] {
					t.Errorf("%q stored twice", b)
				}
				kept[string(b)] = true
			}
		}
	}
	if len(kept) != 3 {
		t.Errorf("%d of the 3 scans kept: %v", len(kept), kept)
	}
}

// Proves a no-reply sender writing from a subaddress (noreply+orders@) gets no auto-reply.
func TestNoReplySubaddressGetsNoAutoReply(t *testing.T) {
	g := startGateway(t)
	g.mustSend("bounces-7f3a@esp.example", []string{"support@example.com"},
		msg("Shop <noreply+orders@shop.example>", "support@example.com", "Your order 1234 has shipped", "Tracking: 1Z999"))
	onlyHumanAutoReplied(t, g)
	for _, x := range g.tickets() {
		if tk := g.ticket(x.ID); tk.Requester == "noreply+orders@shop.example" && eventOf(tk, "auto_reply_suppressed") == nil {
			t.Errorf("no auto_reply_suppressed event on %s: %+v", tk.ID, tk.Events)
		}
	}
}

// Proves senders named no_reply@ and do_not_reply@, as some large
// senders spell them, get no auto-reply, as no-reply@ and donotreply@ get none.
func TestUnderscoredNoReplySendersGetNoAutoReply(t *testing.T) {
	g := startGateway(t)
	g.mustSend("bounces-7f3a@esp.example", []string{"support@example.com"},
		msg("Shop <no_reply@email.shop.example>", "support@example.com", "Your receipt", "Order 1234"))
	g.mustSend("bounces-7f3b@esp.example", []string{"support@example.com"},
		msg("Bank <do_not_reply@bank.example>", "support@example.com", "Your statement", "It is ready."))
	onlyHumanAutoReplied(t, g)
}

// Proves an auto-responder that marks its mail only with "Precedence: auto_reply", as ours does, gets no auto-reply.
func TestPrecedenceAutoReplyGetsNoAutoReply(t *testing.T) {
	g := startGateway(t)
	g.mustSend("desk@vendor.example", []string{"support@example.com"},
		msg("desk@vendor.example", "support@example.com", "We received your request", "A ticket was opened for you.", "Precedence: auto_reply"))
	onlyHumanAutoReplied(t, g)
}

// onlyHumanAutoReplied sends a person's mail after the automatic mail a
// test sent, waits for its auto-reply, and checks that no other went out.
func onlyHumanAutoReplied(t *testing.T, g *gateway) {
	t.Helper()
	g.mustSend("human@x.example", []string{"support@example.com"}, msg("human@x.example", "support@example.com", "human", "hello"))
	g.relay.WaitFor(1, 5*time.Second)
	g.settle()
	for _, m := range g.relay.Mails() {
		if m.To[0] != "human@x.example" {
			t.Errorf("an auto-reply went to %v; only the human may get one", m.To)
		}
	}
}
