package desk

import (
	"context"
	"fmt"
	"mime"
	"strings"
	"testing"

	"ticketgate/mailin"
	"ticketgate/rules"
)

// TestMalformedFromNeverPosesAsTheRequester: a From that only looks like
// the requester's never lands on the requester's ticket as theirs. The
// angle-addr is the address; a From that names nobody for sure (two
// angle-addrs, several mailboxes without a Sender) gives an unknown sender
// on a new ticket, answered by nobody, with a security event.
func TestMalformedFromNeverPosesAsTheRequester(t *testing.T) {
	cases := []struct {
		from      string
		requester string // of the new ticket; "" unknown
		reply     string // who gets an auto-reply; "" nobody
		explain   string
	}{
		{"alice@customer.example <eve@evil.example>", "eve@evil.example", "eve@evil.example", "sender: eve@evil.example (read from the angle-addr of a malformed From)"},
		{"<alice@customer.example> <eve@evil.example>", "", "", "sender unknown: From header could not be read"},
		{"alice@customer.example, <eve@evil.example>", "", "", "sender unknown: From names 2 mailboxes and no Sender"},
	}
	for _, c := range cases {
		t.Run(c.from, func(t *testing.T) {
			g := startGateway(t)
			g.mustSend("alice@customer.example", []string{"support@example.com"},
				msg("alice@customer.example", "support@example.com", "Printer on fire", "It is really on fire."))
			tk := g.onlyTicket()
			g.settle()
			before, msgs := len(g.relay.Mails()), len(g.ticket(tk.ID).Messages)
			raw := msg(c.from, "support@example.com", "Re: ["+tk.ID+"] Printer on fire", "Please send the invoice to my new address.")
			ex, err := g.pipeline.Explain(context.Background(), &mailin.Delivery{MailFrom: "eve@evil.example", Rcpts: []string{"support@example.com"}, Raw: raw})
			if err != nil {
				t.Fatal(err)
			}
			if steps := strings.Join(ex.Steps, "\n"); !strings.Contains(steps, c.explain) {
				t.Errorf("explain does not say which rule read the sender (%q):\n%s", c.explain, steps)
			}
			g.mustSend("eve@evil.example", []string{"support@example.com"}, raw)
			g.settle()
			if n := len(g.ticket(tk.ID).Messages); n != msgs {
				t.Fatalf("the mail joined alice's ticket: %d messages, had %d", n, msgs)
			}
			var other = g.tickets()
			if len(other) != 2 {
				t.Fatalf("%d tickets, want alice's and a new one", len(other))
			}
			nt := other[0]
			if nt.ID == tk.ID {
				nt = other[1]
			}
			nt = g.ticket(nt.ID)
			if nt.Requester != c.requester {
				t.Errorf("new ticket's requester %q, want %q", nt.Requester, c.requester)
			}
			var to []string
			for _, m := range g.relay.Mails()[before:] {
				to = append(to, m.To...)
			}
			if c.reply == "" && len(to) != 0 || c.reply != "" && (len(to) != 1 || to[0] != c.reply) {
				t.Errorf("mail went to %v, want %q", to, c.reply)
			}
			if c.requester == "" && !hasEvent(nt, "security", "sender unknown") {
				t.Errorf("no security event on the new ticket: %+v", nt.Events)
			}
		})
	}
}

// TestSignedAddressCountsOnlyAsTheEnvelope: an agent's signed reply address
// copied into a To header (a leaked notification replayed by anyone, here
// with the agent's own From) does not make the mail an agent's: only the
// envelope recipient the MTA gave does.
func TestSignedAddressCountsOnlyAsTheEnvelope(t *testing.T) {
	g := startDesk(t)
	tk := agOpen(t, g, "Printer on fire", "It is really on fire.")
	signed := agSigned(t, agKey, rules.TokenReply, tk.ID, "ana@example.com")
	before := len(g.relay.Mails())
	raw := msg("ana@example.com", signed, "Re: ["+tk.ID+"] Printer on fire", "#close\nAll fixed, closing.")
	g.mustSend("ana@example.com", []string{"support@example.com"}, raw)
	g.settle()
	now := g.ticket(tk.ID)
	if now.Status == rules.StatusClosed || now.Assignee != "" {
		t.Fatalf("a signed address in To acted as the agent: status %s assignee %q", now.Status, now.Assignee)
	}
	if l := agMailsTo(g, before, "alice@customer.example"); len(l) != 0 {
		t.Errorf("the customer got %d mails from a replayed address", len(l))
	}
	// The same mail with the signed address as the envelope recipient is
	// the agent's.
	g.mustSend("ana@example.com", []string{signed}, msg("ana@example.com", signed, "Re: ["+tk.ID+"] Printer on fire", "#close\nAll fixed, closing."))
	g.settle()
	if now = g.ticket(tk.ID); now.Status != rules.StatusClosed {
		t.Errorf("the agent's real reply did not close the ticket: %s", now.Status)
	}
}

// A first mail whose To names hundreds of thousands of addresses (an
// operator raised max_header_bytes; the default 1 MiB holds some 80,000
// short ones) opens its ticket with max_participants participants and an
// event naming the rest, and its sender gets the auto-reply. Each address
// was looked up among all those before it, in the single writer: 80,000
// held every other message's commit for some 40 seconds, and these many
// are not taken before the test binary's timeout.
func TestMailNamingVeryManyAddressesIsTaken(t *testing.T) {
	g := startDesk(t)
	g.pipeline.Limits = mailin.Limits{MaxHeaderBytes: 8 << 20}
	const n = 400000
	to := make([]string, n)
	for i := range to {
		to[i] = fmt.Sprintf("u%06d@c.de", i)
	}
	raw := msg("alice@customer.example", strings.Join(to, ",\r\n "), "Printer on fire", "It is really on fire.")
	res, err := g.pipeline.Deliver(context.Background(), &mailin.Delivery{MailFrom: "alice@customer.example",
		Rcpts: []string{"support@example.com"}, Raw: raw, Source: "inject"})
	if err != nil || !res.NewTicket {
		t.Fatalf("delivery: %+v, %v", res, err)
	}
	g.settle()
	tk := g.ticket(res.TicketID)
	if len(tk.CC) != DefaultMaxParticipants || tk.CC[0] != "u000000@c.de" {
		t.Errorf("%d participants, want %d", len(tk.CC), DefaultMaxParticipants)
	}
	if !hasEvent(tk, "participants_limited", fmt.Sprintf("%d left out", n-DefaultMaxParticipants)) {
		t.Errorf("no event naming the participants left out")
	}
	if len(agMailsTo(g, 0, "alice@customer.example")) != 1 {
		t.Errorf("the sender got no auto-reply")
	}
}

// A mail whose subject is 300,000 "Re: " before its words (an
// operator raised max_header_bytes) opens its ticket under those words,
// and its sender gets the auto-reply. The subject was copied whole once
// for each prefix taken off, several times per message and once in the
// single writer: a 1 MB subject took some three minutes each time, and
// this one is not taken before the test binary's timeout.
func TestSubjectOfManyReplyPrefixesIsTaken(t *testing.T) {
	g := startDesk(t)
	g.pipeline.Limits = mailin.Limits{MaxHeaderBytes: 8 << 20}
	subject := strings.Repeat("Re: ", 300000) + "Printer on fire"
	res, err := g.pipeline.Deliver(context.Background(), &mailin.Delivery{MailFrom: "alice@customer.example",
		Rcpts: []string{"support@example.com"}, Raw: msg("alice@customer.example", "support@example.com", subject, "It is really on fire."), Source: "inject"})
	if err != nil || !res.NewTicket {
		t.Fatalf("delivery: %+v, %v", res, err)
	}
	g.settle()
	if tk := g.ticket(res.TicketID); tk.Subject != "Printer on fire" {
		t.Errorf("subject %.40q..., want %q", tk.Subject, "Printer on fire")
	}
	if len(agMailsTo(g, 0, "alice@customer.example")) != 1 {
		t.Errorf("the sender got no auto-reply")
	}
}

// A mail whose subject is a run of 30,000 ticket tokens written together
// ("HS-123456HS-123456...", 270 KB; an operator raised max_header_bytes)
// opens its ticket under the words after them. Each reading of the
// subject took one token of the run off and went over the whole subject
// again: minutes a reading, one of them in the single writer, and this
// one is not taken before the test binary's timeout.
func TestSubjectOfATokenRunIsTaken(t *testing.T) {
	g := startDesk(t)
	g.pipeline.Limits = mailin.Limits{MaxHeaderBytes: 8 << 20}
	subject := strings.Repeat("HS-123456", 30000) + " Printer on fire"
	res, err := g.pipeline.Deliver(context.Background(), &mailin.Delivery{MailFrom: "alice@customer.example",
		Rcpts: []string{"support@example.com"}, Raw: msg("alice@customer.example", "support@example.com", subject, "It is really on fire."), Source: "inject"})
	if err != nil || !res.NewTicket {
		t.Fatalf("delivery: %+v, %v", res, err)
	}
	g.settle()
	if tk := g.ticket(res.TicketID); tk.Subject != "Printer on fire" {
		t.Errorf("subject %.40q..., want %q", tk.Subject, "Printer on fire")
	}
}

// TestParticipantsAreBounded: a first mail with a 5,000-address Cc makes at
// most max_participants participants (an event names the rest), and an
// agent's reply reaches the requester and each participant once, in mails
// of at most max_recipients_per_mail envelope recipients.
func TestParticipantsAreBounded(t *testing.T) {
	g := startDesk(t)
	g.pipeline.Desk.MaxRecipients = 8
	var cc []string
	for i := range 5000 {
		cc = append(cc, fmt.Sprintf("p%d@crowd.example", i))
	}
	g.mustSend("alice@customer.example", []string{"support@example.com"},
		msg("alice@customer.example", "support@example.com", "Printer on fire", "It is really on fire.", "Cc: "+strings.Join(cc, ",\r\n ")))
	g.settle()
	tk := g.onlyTicket()
	if len(tk.CC) != DefaultMaxParticipants || tk.CC[0] != "p0@crowd.example" {
		t.Fatalf("%d participants, want %d", len(tk.CC), DefaultMaxParticipants)
	}
	if !hasEvent(tk, "participants_limited", "4980 left out") {
		t.Errorf("no event naming the participants left out: %+v", tk.Events)
	}
	before := len(g.relay.Mails())
	agReply(g, "ana@example.com", agSigned(t, agKey, rules.TokenReply, tk.ID, "ana@example.com"), tk, "Unplug it, please.")
	got := map[string]int{}
	mails := 0
	for _, m := range g.relay.Mails()[before:] {
		if !strings.Contains(string(m.Data), "Unplug it") {
			continue
		}
		mails++
		if len(m.To) > 8 {
			t.Errorf("one mail to %d recipients, want at most 8", len(m.To))
		}
		for _, r := range m.To {
			got[r]++
		}
	}
	if mails != 3 || len(got) != 1+DefaultMaxParticipants || got["alice@customer.example"] != 1 {
		t.Errorf("reply went out as %d mails to %d recipients (alice %d times); want 3 mails to 21, each once", mails, len(got), got["alice@customer.example"])
	}
	for r, n := range got {
		if n != 1 {
			t.Errorf("%s got the reply %d times", r, n)
		}
	}
}

// TestAgentsOwnMailGetsNoAutoReply: an agent writing to the plain support
// address (not a signed one) gets no confirmation mail: agents are not
// customers, and their clients would answer it.
func TestAgentsOwnMailGetsNoAutoReply(t *testing.T) {
	g := startDesk(t)
	before := len(g.relay.Mails())
	g.mustSend("ana@example.com", []string{"support@example.com"}, msg("Ana Lima <ana@example.com>", "support@example.com", "Printer on floor 3", "It is on fire too."))
	g.settle()
	if l := agMailsTo(g, before, "ana@example.com"); len(l) != 0 {
		t.Errorf("the agent got %d mails (an auto-reply), want none", len(l))
	}
	if tk := g.onlyTicket(); !hasEvent(tk, "auto_reply_suppressed", "is an agent") {
		t.Errorf("no event saying why no auto-reply went out: %+v", tk.Events)
	}
}

// TestNotificationShowsTheRealAddress: a display name that looks like an
// address never stands for the customer in the agents' notification.
func TestNotificationShowsTheRealAddress(t *testing.T) {
	g := startDesk(t)
	before := len(g.relay.Mails())
	g.mustSend("eve@evil.example", []string{"support@example.com"},
		msg(`"boss@bigcorp.example" <eve@evil.example>`, "support@example.com", "Wire the money", "Today, please."))
	g.settle()
	m := agOne(t, g, before, "ana@example.com")
	from := header(t, m.Data).Get("From")
	body := agBody(t, m.Data)
	if strings.Contains(from, "boss@bigcorp.example") || !strings.Contains(from, "eve@evil.example") || strings.Contains(body, "boss@bigcorp.example") {
		t.Errorf("notification poses as the display name: From %q\n%s", from, body)
	}
}

// TestNotificationShowsTheRealAddressBehindALookalikeAt: an address
// spelled with a fullwidth or small "at" sign (＠, ﹫), which a mail
// client shows much as "@", does not stand for the customer either.
func TestNotificationShowsTheRealAddressBehindALookalikeAt(t *testing.T) {
	for _, at := range []string{"＠", "﹫"} {
		g := startDesk(t)
		before := len(g.relay.Mails())
		g.mustSend("eve@evil.example", []string{"support@example.com"},
			msg(`"boss`+at+`bigcorp.example" <eve@evil.example>`, "support@example.com", "Wire the money", "Today, please."))
		g.settle()
		m := agOne(t, g, before, "ana@example.com")
		dec := new(mime.WordDecoder)
		from, _ := dec.DecodeHeader(header(t, m.Data).Get("From"))
		if strings.Contains(from, "bigcorp") || !strings.Contains(from, "eve@evil.example") {
			t.Errorf("notification poses as the display name: From %q", from)
		}
	}
}
