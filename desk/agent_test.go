package desk

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/mail"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-message"
	_ "github.com/emersion/go-message/charset"

	"ticketgate/mailout/relaytest"
	"ticketgate/rules"
	"ticketgate/store"
)

var (
	agKey    = []byte("0123456789abcdef0123456789abcdef")
	agOldKey = []byte("fedcba9876543210fedcba9876543210")
	agAgents = []Agent{
		{Email: "ana@example.com", Name: "Ana Lima", Queues: []string{"support"}},
		{Email: "ben@example.com", Name: "Ben Ode", Queues: []string{"support", "tech"}},
		{Email: "tom@example.com", Name: "Tom Tech", Queues: []string{"tech"}},
		{Email: "meg@example.com", Name: "Meg Boss", Manager: true},
	}
	agPlans = []rules.Plan{
		{Name: "gold", Match: []string{"@bigcorp.example"}, MaxPriority: rules.PriorityCritical},
		{Name: "bronze", Match: []string{"cheap@customer.example"}, MaxPriority: rules.PriorityMedium},
	}
)

// startDesk is a gateway with agents, a signing key and plans.
func startDesk(t *testing.T) *gateway {
	t.Helper()
	g := startGateway(t)
	g.pipeline.Agents = agAgents
	g.pipeline.Signer = rules.Signer{Keys: [][]byte{agKey}}
	g.pipeline.Plans = agPlans
	return g
}

// agOpen has alice open a ticket (Cc carol) and returns it once the
// auto-reply and the notifications have gone out.
func agOpen(t *testing.T, g *gateway, subject, body string) *store.Ticket {
	t.Helper()
	before := len(g.relay.Mails())
	g.mustSend("alice@customer.example", []string{"support@example.com"},
		msg(`"Alice Doe" <alice@customer.example>`, "support@example.com", subject, body, "Cc: carol@customer.example"))
	var tk *store.Ticket
	for _, x := range g.tickets() {
		if tk == nil || x.CreatedAt.After(tk.CreatedAt) {
			tk = x
		}
	}
	g.settle()
	if len(g.relay.Mails()) <= before {
		t.Fatal("no mail went out for the new ticket")
	}
	return g.ticket(tk.ID)
}

// agMailsTo returns the relayed mails for addr, from index from on.
func agMailsTo(g *gateway, from int, addr string) []relaytest.Mail {
	var out []relaytest.Mail
	for _, m := range g.relay.Mails()[from:] {
		if slices.Contains(m.To, addr) {
			out = append(out, m)
		}
	}
	return out
}

// agOne returns the only mail to addr since from, failing otherwise.
func agOne(t *testing.T, g *gateway, from int, addr string) relaytest.Mail {
	t.Helper()
	l := agMailsTo(g, from, addr)
	if len(l) != 1 {
		t.Fatalf("%s got %d mails, want 1", addr, len(l))
	}
	return l[0]
}

// agBody decodes the text of a relayed mail (all text parts).
func agBody(t *testing.T, raw []byte) string {
	t.Helper()
	e, err := message.Read(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("relayed mail does not parse: %v", err)
	}
	var b strings.Builder
	e.Walk(func(_ []int, p *message.Entity, _ error) error {
		if ct, _, _ := p.Header.ContentType(); strings.HasPrefix(ct, "text/") {
			body, _ := io.ReadAll(p.Body)
			b.Write(body)
		}
		return nil
	})
	return strings.ReplaceAll(b.String(), "\r\n", "\n")
}

// agReplyTo is the Reply-To address of a relayed mail.
func agReplyTo(t *testing.T, m relaytest.Mail) string {
	t.Helper()
	a, err := mail.ParseAddress(header(t, m.Data).Get("Reply-To"))
	if err != nil {
		t.Fatalf("Reply-To: %v", err)
	}
	return a.Address
}

// agReply sends an agent's mail to a (signed) address as a mail client
// would: quoting the notification below the new text.
func agReply(g *gateway, from, to string, tk *store.Ticket, text string, extra ...string) {
	body := text + "\n\nOn Sat, 21 Nov 2026 at 10:00, Alice Doe via Example Support wrote:\n> " + replyMarker +
		"\n>\n> It is really on fire.\n> -- \n> #status open|waiting\n> " + endMarker + "\n"
	env := from
	if a, err := mail.ParseAddress(from); err == nil {
		env = a.Address
	}
	g.mustSend(env, []string{to}, msg(from, to, "Re: ["+tk.ID+"] "+tk.Subject, body, extra...))
	g.settle()
}

func agEvents(tk *store.Ticket, typ string) []store.Event {
	var out []store.Event
	for _, e := range tk.Events {
		if string(e.Type) == typ {
			out = append(out, e)
		}
	}
	return out
}

func agSigned(t *testing.T, key []byte, kind rules.TokenKind, id, agent string) string {
	t.Helper()
	tok := rules.Signer{Keys: [][]byte{key}}.Token(kind, id, agent)
	if tok == "" {
		t.Fatalf("no token for %s", id)
	}
	return "support+" + tok + "@example.com"
}

func TestNewTicketNotifiesTheQueueWithSignedReplyAddresses(t *testing.T) {
	g := startDesk(t)
	raw := "From: \"Alice Doe\" <alice@customer.example>\r\nTo: support@example.com\r\nSubject: Printer on fire\r\n" +
		"Message-ID: <n1@customer.example>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n" +
		"--b\r\nContent-Type: text/plain\r\n\r\nIt is really on fire.\r\n--b\r\nContent-Type: image/png\r\n" +
		"Content-Disposition: attachment; filename=fire.png\r\nContent-Transfer-Encoding: base64\r\n\r\niVBORw0KGgo=\r\n--b--\r\n"
	g.mustSend("alice@customer.example", []string{"support@example.com"}, []byte(raw))
	g.settle()
	tk := g.onlyTicket()

	if n := len(agMailsTo(g, 0, "tom@example.com")) + len(agMailsTo(g, 0, "meg@example.com")); n != 0 {
		t.Errorf("agents outside the support queue got %d notifications", n)
	}
	seen := map[string]bool{}
	for _, agent := range []string{"ana@example.com", "ben@example.com"} {
		m := agOne(t, g, 0, agent)
		h := header(t, m.Data)
		if want := "[" + tk.ID + "] Printer on fire"; h.Get("Subject") != want {
			t.Errorf("%s: Subject %q, want %q", agent, h.Get("Subject"), want)
		}
		from, _ := mail.ParseAddress(h.Get("From"))
		if from == nil || from.Name != "Alice Doe via Example Support" || from.Address != "support@example.com" {
			t.Errorf("%s: From %q", agent, h.Get("From"))
		}
		reply := agReplyTo(t, m)
		_, tag, _ := testRoutes.Match(reply)
		if !g.pipeline.Signer.Verify(tag, rules.TokenReply, tk.ID, agent) || seen[reply] {
			t.Errorf("%s: Reply-To %q is not a reply address signed for this agent", agent, reply)
		}
		seen[reply] = true
		body := agBody(t, m.Data)
		for _, want := range []string{"Requester: Alice Doe <alice@customer.example>", "Queue:     support", "Priority:  medium",
			"Status:    new", "It is really on fire.", "fire.png", "#status", "#assign me", "#note", "#cc add"} {
			if !strings.Contains(body, want) {
				t.Errorf("%s: notification lacks %q:\n%s", agent, want, body)
			}
		}
		if !bytes.Contains(m.Data, []byte("filename=fire.png")) || !bytes.Contains(m.Data, []byte("iVBORw0KGgo=")) {
			t.Errorf("%s: the customer's attachment is not attached", agent)
		}
	}
	if len(agEvents(tk, "notified")) != 1 {
		t.Errorf("events: %+v", tk.Events)
	}

	// Once assigned, later customer mail goes to the assignee only.
	before := len(g.relay.Mails())
	agReply(g, "ana@example.com", agSigned(t, agKey, rules.TokenReply, tk.ID, "ana@example.com"), tk, "#assign me")
	g.mustSend("alice@customer.example", []string{"support@example.com"},
		msg("alice@customer.example", "support@example.com", "Re: ["+tk.ID+"] Printer on fire", "Still burning."))
	g.settle()
	m := agOne(t, g, before, "ana@example.com")
	if !strings.Contains(agBody(t, m.Data), "Still burning.") {
		t.Errorf("assignee's notification lacks the new text:\n%s", agBody(t, m.Data))
	}
	if n := len(agMailsTo(g, before, "ben@example.com")); n != 0 {
		t.Errorf("ben got %d mails about a ticket assigned to ana", n)
	}
}

func TestAgentReplyReachesCustomerWithoutAgentAddress(t *testing.T) {
	g := startDesk(t)
	tk := agOpen(t, g, "Printer on fire", "It is really on fire.")
	notif := agOne(t, g, 0, "ana@example.com")
	before := len(g.relay.Mails())
	agReply(g, "Ana Lima <ana@example.com>", agReplyTo(t, notif), tk, "Please unplug it and call us back.",
		"Message-ID: <r1@ana-laptop.example.com>", "In-Reply-To: "+header(t, notif.Data).Get("Message-Id"))

	out := agMailsTo(g, before, "alice@customer.example")
	if len(out) != 1 || !slices.Contains(out[0].To, "carol@customer.example") {
		t.Fatalf("reply to customer: %d mails, rcpts %v", len(out), out)
	}
	m := out[0]
	h := header(t, m.Data)
	from, _ := mail.ParseAddress(h.Get("From"))
	if from == nil || from.Name != "Ana Lima via Example Support" || from.Address != "support@example.com" {
		t.Errorf("From %q", h.Get("From"))
	}
	if want := "[" + tk.ID + "] Printer on fire"; h.Get("Subject") != want {
		t.Errorf("Subject %q, want %q", h.Get("Subject"), want)
	}
	if h.Get("In-Reply-To") != "<"+tk.LastInID+">" {
		t.Errorf("In-Reply-To %q, want the customer's <%s>", h.Get("In-Reply-To"), tk.LastInID)
	}
	head, _, _ := bytes.Cut(m.Data, []byte("\r\n\r\n"))
	for _, line := range strings.Split(string(head), "\r\n") {
		l := strings.ToLower(line)
		if strings.Contains(l, "ana@") || strings.Contains(l, "ana-laptop") || strings.Contains(l, "+hs-") {
			t.Errorf("agent address in the customer's mail: %q", line)
		}
	}
	body := agBody(t, m.Data)
	if !strings.Contains(body, "Please unplug it and call us back.") || strings.Contains(body, "really on fire") || strings.Contains(body, "#status") {
		t.Errorf("customer got more than the reply text:\n%s", body)
	}
	tk = g.ticket(tk.ID)
	if tk.Status != rules.StatusOpen || tk.Assignee != "ana@example.com" || len(agEvents(tk, "assigned")) != 1 {
		t.Errorf("after reply: status %s assignee %q events %+v", tk.Status, tk.Assignee, tk.Events)
	}
	last := tk.Messages[len(tk.Messages)-1]
	if last.Kind != "agent" || last.VisibleText != "Please unplug it and call us back." {
		t.Errorf("stored reply: kind %q visible %q", last.Kind, last.VisibleText)
	}

	// The customer's answer to the agent's mail threads into the ticket.
	g.mustSend("alice@customer.example", []string{"support@example.com"},
		msg("alice@customer.example", "support@example.com", "Re: Printer", "Unplugged.", "In-Reply-To: "+h.Get("Message-Id")))
	if len(g.tickets()) != 1 {
		t.Errorf("the customer's answer to the agent reply opened a new ticket")
	}
}

// An attribution line the agent's client wrapped in two is cut with the quote, not half of it sent to the customer.
func TestWrappedAttributionDoesNotReachTheCustomer(t *testing.T) {
	g := startDesk(t)
	tk := agOpen(t, g, "Printer on fire", "It is really on fire.")
	ana := agSigned(t, agKey, rules.TokenReply, tk.ID, "ana@example.com")
	quote := "\n\n> " + replyMarker + "\n>\n> It is really on fire.\n> " + endMarker + "\n"
	for _, attr := range []string{
		"On Sat, Nov 21, 2026 at 10:00 AM Alice Doe via Example Support <\nsupport@example.com> wrote:",
		"Am Sa., 21. Nov. 2026 um 10:00 Uhr schrieb Alice Doe via Example Support\n<support@example.com>:",
	} {
		before := len(g.relay.Mails())
		g.mustSend("ana@example.com", []string{ana}, msg("ana@example.com", ana, "Re: Printer", "Please unplug it.\n\n"+attr+quote))
		g.settle()
		out := agMailsTo(g, before, "alice@customer.example")
		if len(out) != 1 {
			t.Fatalf("the customer got %d mails, want the reply", len(out))
		}
		if body := strings.TrimSpace(agBody(t, out[0].Data)); body != "Please unplug it." {
			t.Errorf("the customer got:\n%s", body)
		}
	}
}

// Gmail in Japanese, Russian, Chinese or Korean writes its attribution
// without "wrote", or with a full-width colon, and wraps it inside the
// address: none of it reaches the customer with the agent's reply.
func TestLocalizedAttributionDoesNotReachTheCustomer(t *testing.T) {
	g := startDesk(t)
	tk := agOpen(t, g, "Printer on fire", "It is really on fire.")
	ana := agSigned(t, agKey, rules.TokenReply, tk.ID, "ana@example.com")
	quote := "\n\n> " + replyMarker + "\n>\n> It is really on fire.\n> " + endMarker + "\n"
	for _, attr := range []string{
		"2026年11月21日(土) 10:00 Alice Doe via Example Support <\nsupport@example.com>:",
		"сб, 21 нояб. 2026 г. в 10:00, Alice Doe via Example Support <\nsupport@example.com>:",
		"Alice Doe via Example Support <support@example.com> 于2026年11月21日周六 10:00写道：",
		"Alice Doe via Example Support <\nsupport@example.com> 于2026年11月21日周六 10:00写道：",
		"2026년 11월 21일 (토) 오전 10:00, Alice Doe via Example Support <\nsupport@example.com>님이 작성:",
	} {
		before := len(g.relay.Mails())
		g.mustSend("ana@example.com", []string{ana}, msg("ana@example.com", ana, "Re: Printer", "Please unplug it.\n\n"+attr+quote))
		g.settle()
		out := agMailsTo(g, before, "alice@customer.example")
		if len(out) != 1 {
			t.Fatalf("the customer got %d mails, want the reply", len(out))
		}
		if body := strings.TrimSpace(agBody(t, out[0].Data)); body != "Please unplug it." {
			t.Errorf("after %q the customer got:\n%s", attr, body)
		}
	}
}

// Outlook in Japanese, Chinese, Korean, Polish, Czech, Turkish, Finnish
// or Hungarian heads the quoted notification with its own header block:
// it is cut, and the agent's address in it never reaches the customer.
func TestLocalizedOutlookHeaderDoesNotReachTheCustomer(t *testing.T) {
	g := startDesk(t)
	tk := agOpen(t, g, "Printer on fire", "It is really on fire.")
	ana := agSigned(t, agKey, rules.TokenReply, tk.ID, "ana@example.com")
	quote := "\n\n" + replyMarker + "\n\nIt is really on fire.\n" + endMarker + "\n"
	from, to, subject := "Alice Doe via Example Support <support@example.com>", "Ana Lima <ana@example.com>", "["+tk.ID+"] Printer on fire"
	for _, keys := range [][4]string{
		{"差出人", "送信日時", "宛先", "件名"},
		{"发件人", "发送时间", "收件人", "主题"},
		{"寄件者", "寄件日期", "收件者", "主旨"},
		{"보낸 사람", "보낸 날짜", "받는 사람", "제목"},
		{"Od", "Wysłane", "Do", "Temat"},
		{"Od", "Odesláno", "Komu", "Předmět"},
		{"Kimden", "Gönderildi", "Kime", "Konu"},
		{"Lähettäjä", "Lähetetty", "Vastaanottaja", "Aihe"},
		{"Feladó", "Elküldve", "Címzett", "Tárgy"},
	} {
		block := keys[0] + ": " + from + "\n" + keys[1] + ": 2026-11-21 10:00\n" + keys[2] + ": " + to + "\n" + keys[3] + ": " + subject
		before := len(g.relay.Mails())
		g.mustSend("ana@example.com", []string{ana}, msg("ana@example.com", ana, "RE: "+subject, "Please unplug it.\n\n________________________________\n"+block+quote))
		g.settle()
		out := agMailsTo(g, before, "alice@customer.example")
		if len(out) != 1 {
			t.Fatalf("the customer got %d mails, want the reply", len(out))
		}
		if body := strings.TrimSpace(agBody(t, out[0].Data)); body != "Please unplug it." {
			t.Errorf("under %s the customer got:\n%s", keys[0], body)
		}
	}
}

func TestInternalNotesNeverReachTheCustomer(t *testing.T) {
	g := startDesk(t)
	tk := agOpen(t, g, "Printer on fire", "It is really on fire.")
	before := len(g.relay.Mails())
	agReply(g, "ana@example.com", agSigned(t, agKey, rules.TokenReply, tk.ID, "ana@example.com"), tk,
		"#note\nThe customer is on the old firmware.")
	note := agOne(t, g, before, "ben@example.com")
	if body := agBody(t, note.Data); !strings.Contains(body, "The customer is on the old firmware.") || !strings.Contains(body, "Ana Lima") {
		t.Errorf("note mail:\n%s", body)
	}
	// Mail to the signed note address is a note too, and goes to ana.
	agReply(g, "ben@example.com", agReplyTo(t, note), tk, "Firmware 2.1 fixes it.")

	if n := len(agMailsTo(g, before, "alice@customer.example")) + len(agMailsTo(g, before, "carol@customer.example")); n != 0 {
		t.Fatalf("the customer got %d mails from internal notes", n)
	}
	if n := len(agMailsTo(g, before, "ana@example.com")); n != 1 {
		t.Errorf("ana got %d mails, want only ben's note (not her own)", n)
	}
	tk = g.ticket(tk.ID)
	var notes []string
	for _, m := range tk.Messages {
		if m.Kind == "note" {
			notes = append(notes, m.VisibleText)
		}
	}
	if len(notes) != 2 || notes[0] != "The customer is on the old firmware." || notes[1] != "Firmware 2.1 fixes it." {
		t.Errorf("notes stored: %q", notes)
	}
	if tk.Status != rules.StatusNew || tk.Assignee != "" {
		t.Errorf("notes changed the ticket: status %s assignee %q", tk.Status, tk.Assignee)
	}
}

// An agent removed from the configuration gets no more customer mail or notes of the tickets assigned to her; the queue does.
func TestRemovedAgentIsNoLongerSentTicketMail(t *testing.T) {
	g := startDesk(t)
	tk := agOpen(t, g, "Printer on fire", "It is really on fire.")
	agReply(g, "ana@example.com", agSigned(t, agKey, rules.TokenReply, tk.ID, "ana@example.com"), tk, "#assign me")
	g.pipeline.Agents = agAgents[1:] // ana has left
	before := len(g.relay.Mails())
	g.mustSend("alice@customer.example", []string{"support@example.com"},
		msg("alice@customer.example", "support@example.com", "Re: ["+tk.ID+"] Printer on fire", "Still burning."))
	g.settle()
	agReply(g, "ben@example.com", agSigned(t, agKey, rules.TokenNote, tk.ID, "ben@example.com"), tk, "Ana has left; who takes this?")
	if l := agMailsTo(g, before, "ana@example.com"); len(l) != 0 {
		t.Errorf("ana, no longer an agent, got %d mails of the ticket", len(l))
	}
	if l := agMailsTo(g, before, "ben@example.com"); len(l) != 1 || !strings.Contains(agBody(t, l[0].Data), "Still burning.") {
		t.Errorf("ben (queue support) got %d mails, want the customer's", len(l))
	}
}

// Commands alone sent to the note address change the ticket without mailing the other agents an empty note.
func TestCommandsToTheNoteAddressMailNoEmptyNote(t *testing.T) {
	g := startDesk(t)
	tk := agOpen(t, g, "Printer on fire", "It is really on fire.")
	before := len(g.relay.Mails())
	agReply(g, "ana@example.com", agSigned(t, agKey, rules.TokenNote, tk.ID, "ana@example.com"), tk, "#assign me")
	if n := len(g.relay.Mails()) - before; n != 0 {
		t.Errorf("commands to the note address sent %d mails, want none", n)
	}
	if now := g.ticket(tk.ID); now.Assignee != "ana@example.com" || hasEvent(now, "note", "") {
		t.Errorf("assignee %q, note events %v", now.Assignee, agEvents(now, "note"))
	}
}

func TestCommandsByMail(t *testing.T) {
	g := startDesk(t)
	tk := agOpen(t, g, "Printer on fire", "It is really on fire.")
	ana := agSigned(t, agKey, rules.TokenReply, tk.ID, "ana@example.com")
	ben := agSigned(t, agKey, rules.TokenReply, tk.ID, "ben@example.com")
	tom := agSigned(t, agKey, rules.TokenReply, tk.ID, "tom@example.com")
	meg := agSigned(t, agKey, rules.TokenReply, tk.ID, "meg@example.com")

	type check func(*store.Ticket) bool
	steps := []struct {
		name, from, to, text string
		ok                   check
		refused              string // part of the error reply; "" when the mail applies
	}{
		{"take it", "ana@example.com", ana, "#assign me\n#priority high\n#status on_hold", func(t *store.Ticket) bool {
			return t.Assignee == "ana@example.com" && t.Priority == rules.PriorityHigh && t.Status == rules.StatusOnHold
		}, ""},
		{"cc add", "ana@example.com", ana, "#cc add dave@customer.example", func(t *store.Ticket) bool { return slices.Contains(t.CC, "dave@customer.example") }, ""},
		{"cc remove", "ana@example.com", ana, "#cc remove dave@customer.example", func(t *store.Ticket) bool { return !slices.Contains(t.CC, "dave@customer.example") }, ""},
		{"cc add an agent", "ana@example.com", ana, "#cc add Ben@example.com", nil, "ben@example.com is an agent"},
		{"not the assignee", "ben@example.com", ben, "#status resolved\nHere is the fix.", nil, "only the assignee ana@example.com"},
		{"priority by a non-assignee", "ben@example.com", ben, "#priority low", nil, "only the assignee ana@example.com or a manager can change the priority"},
		{"close by a non-assignee", "ben@example.com", ben, "#close", nil, "only the assignee ana@example.com or a manager can close the ticket"},
		{"malformed", "ana@example.com", ana, "#priorty high\nHere is the fix.", nil, "unknown command #priorty"},
		{"bad value", "ana@example.com", ana, "#status done", nil, "unknown status"},
		{"one bad refuses all", "ana@example.com", ana, "#priority low\n#assign nobody@else.example", nil, "is not an agent"},
		{"other queue", "tom@example.com", tom, "#unassign", nil, "only the assignee"},
		{"unassign", "ana@example.com", ana, "#unassign", func(t *store.Ticket) bool { return t.Assignee == "" }, ""},
		{"take from other queue", "tom@example.com", tom, "#assign me", nil, "only agents of the queue \"support\""},
		{"assign another by a non-manager", "ben@example.com", ben, "#assign ana@example.com", nil, "only a manager can assign an unassigned ticket to someone else"},
		{"status from outside the queue", "tom@example.com", tom, "#status open", nil, "only agents of the queue \"support\" or a manager can change the status"},
		{"manager assigns", "meg@example.com", meg, "#assign ben@example.com", func(t *store.Ticket) bool { return t.Assignee == "ben@example.com" }, ""},
		{"close", "ben@example.com", ben, "#close", func(t *store.Ticket) bool { return t.Status == rules.StatusClosed && t.ClosedAt != nil }, ""},
	}
	for _, s := range steps {
		before := len(g.relay.Mails())
		prev := g.ticket(tk.ID)
		agReply(g, s.from, s.to, tk, s.text)
		now := g.ticket(tk.ID)
		l := append(agMailsTo(g, before, "alice@customer.example"), agMailsTo(g, before, "carol@customer.example")...)
		if s.name == "close" {
			// Closing is a status the customer is told of: one notice
			// (no text of the agent's, so the notice alone) and the survey.
			if len(l) != 2 || !strings.Contains(agBody(t, l[0].Data), "as closed") || !strings.Contains(agBody(t, l[1].Data), "How satisfied") {
				t.Errorf("%s: the customer got %d mails, want the closing notice and the survey", s.name, len(l))
			}
		} else if len(l) != 0 {
			t.Errorf("%s: the customer got %d mails from a command mail:\n%s", s.name, len(l), l[0].Data)
		}
		if s.refused == "" {
			if !s.ok(now) {
				t.Errorf("%s: not applied: status %s priority %s assignee %q cc %v", s.name, now.Status, now.Priority, now.Assignee, now.CC)
			}
			if len(now.Events) <= len(prev.Events) {
				t.Errorf("%s: no event recorded", s.name)
			}
			if n := len(agMailsTo(g, before, s.from)); n != 0 {
				t.Errorf("%s: the agent got %d mails for a command that applied", s.name, n)
			}
			continue
		}
		errMails := agMailsTo(g, before, s.from)
		if len(errMails) != 1 {
			t.Errorf("%s: %s got %d mails, want the error reply", s.name, s.from, len(errMails))
		} else if body := agBody(t, errMails[0].Data); !strings.Contains(body, s.refused) || !strings.Contains(body, "nothing was sent to the customer") {
			t.Errorf("%s: error reply lacks %q:\n%s", s.name, s.refused, body)
		}
		if now.Status != prev.Status || now.Priority != prev.Priority || now.Assignee != prev.Assignee || !slices.Equal(now.CC, prev.CC) {
			t.Errorf("%s: refused mail changed the ticket: status %s priority %s assignee %q", s.name, now.Status, now.Priority, now.Assignee)
		}
		if ev := agEvents(now, "commands_refused"); len(ev) == 0 || !strings.Contains(ev[len(ev)-1].Detail, s.refused) {
			t.Errorf("%s: no commands_refused event", s.name)
		}
	}
}

func TestResolvingMailsTheResolution(t *testing.T) {
	g := startDesk(t)
	tk := agOpen(t, g, "Printer on fire", "It is really on fire.")
	before := len(g.relay.Mails())
	agReply(g, "ana@example.com", agSigned(t, agKey, rules.TokenReply, tk.ID, "ana@example.com"), tk,
		"#status resolved\nReplace the fuse; that fixes it.")
	m := agOne(t, g, before, "alice@customer.example")
	body := agBody(t, m.Data)
	if !strings.Contains(body, "Replace the fuse; that fixes it.") || !strings.Contains(body, "reopen") || strings.Contains(body, "#status") {
		t.Errorf("resolution mail:\n%s", body)
	}
	tk = g.ticket(tk.ID)
	if tk.Status != rules.StatusResolved || tk.Assignee != "ana@example.com" {
		t.Errorf("status %s assignee %q", tk.Status, tk.Assignee)
	}
	// The customer answers: the ticket opens again.
	g.mustSend("alice@customer.example", []string{"support@example.com"},
		msg("alice@customer.example", "support@example.com", "Re: ["+tk.ID+"] Printer on fire", "Still broken."))
	if tk = g.ticket(tk.ID); tk.Status != rules.StatusOpen {
		t.Errorf("customer reply after resolution: status %s", tk.Status)
	}
}

func TestMailThatIsNotAnAgentsIsCustomerMail(t *testing.T) {
	g := startDesk(t)
	tk := agOpen(t, g, "Printer on fire", "It is really on fire.")
	good := agSigned(t, agKey, rules.TokenReply, tk.ID, "ana@example.com")
	_, tag, _ := testRoutes.Match(good)
	flipped := tag[:len(tag)-1] + string("ab"[map[bool]int{true: 1}[tag[len(tag)-1] == 'a']])
	cases := []struct{ name, from, to, subject string }{
		{"forged From", "ana@example.com", agSigned(t, agKey, rules.TokenReply, tk.ID, "ben@example.com"), "Re: Printer"},
		{"wrong signature", "ana@example.com", "support+" + flipped + "@example.com", "Re: Printer"},
		{"stale key", "ana@example.com", agSigned(t, agOldKey, rules.TokenReply, tk.ID, "ana@example.com"), "Re: Printer"},
		{"not an agent", "mallory@evil.example", good, "Re: Printer"},
		{"plain address", "ana@example.com", "support@example.com", "Re: [" + tk.ID + "] Printer"},
	}
	for i, c := range cases {
		before := len(g.relay.Mails())
		text := fmt.Sprintf("#status closed\nsecret %d", i)
		g.mustSend(c.from, []string{c.to}, msg(c.from, c.to, c.subject, text))
		g.settle()
		now := g.ticket(tk.ID)
		if now.Status != rules.StatusNew || now.Assignee != "" {
			t.Errorf("%s: ticket changed: status %s assignee %q", c.name, now.Status, now.Assignee)
		}
		sec := agEvents(now, "security")
		if len(sec) != i+1 {
			t.Errorf("%s: %d security events, want %d", c.name, len(sec), i+1)
		}
		for _, m := range agMailsTo(g, before, "alice@customer.example") {
			if strings.Contains(agBody(t, m.Data), fmt.Sprintf("secret %d", i)) {
				t.Errorf("%s: the text reached the customer", c.name)
			}
		}
		found := false
		for _, x := range g.tickets() {
			for _, m := range g.ticket(x.ID).Messages {
				if strings.Contains(m.Text, fmt.Sprintf("secret %d", i)) && m.Kind == "customer" {
					found = true
				}
			}
		}
		if !found {
			t.Errorf("%s: the mail was not kept as customer mail", c.name)
		}
	}

	// After a key rotation the previous key still verifies.
	g.pipeline.Signer = rules.Signer{Keys: [][]byte{[]byte("a-brand-new-key-0123456789"), agKey}}
	agReply(g, "ana@example.com", good, tk, "#assign me")
	if now := g.ticket(tk.ID); now.Assignee != "ana@example.com" {
		t.Errorf("address signed with the previous key refused after rotation")
	}
}

func TestRequireAuthDemandsAPassFromTheTrustedServer(t *testing.T) {
	g := startDesk(t)
	g.pipeline.Agents = AgentsConfig{RequireAuth: true, TrustedAuthservID: "mx.example.com"}.ApplyAuth(agAgents)
	tk := agOpen(t, g, "Printer on fire", "It is really on fire.")
	ana := agSigned(t, agKey, rules.TokenReply, tk.ID, "ana@example.com")
	for _, ar := range []string{
		"",
		"Authentication-Results: evil.example; dkim=pass header.d=example.com",
		"Authentication-Results: mx.example.com; dkim=fail header.d=example.com; spf=pass smtp.mailfrom=x@evil.example",
	} {
		var extra []string
		if ar != "" {
			extra = append(extra, ar)
		}
		agReply(g, "ana@example.com", ana, tk, "#assign me", extra...)
		if now := g.ticket(tk.ID); now.Assignee != "" {
			t.Fatalf("accepted as agent mail with %q", ar)
		}
	}
	if n := len(agEvents(g.ticket(tk.ID), "security")); n != 3 {
		t.Errorf("%d security events, want 3", n)
	}
	agReply(g, "ana@example.com", ana, tk, "#assign me",
		"Authentication-Results: mx.example.com (Postfix; see docs);\r\n dkim=pass (2048-bit key) header.d=example.com header.i=@example.com")
	if now := g.ticket(tk.ID); now.Assignee != "ana@example.com" {
		t.Errorf("refused with a dkim=pass from the trusted server")
	}
}

func TestAgentOutOfOfficeStaysOnTheTicket(t *testing.T) {
	g := startDesk(t)
	tk := agOpen(t, g, "Printer on fire", "It is really on fire.")
	before := len(g.relay.Mails())
	agReply(g, "ana@example.com", agSigned(t, agKey, rules.TokenReply, tk.ID, "ana@example.com"), tk,
		"I am on holiday until Monday.", "Auto-Submitted: auto-replied")
	if n := len(g.relay.Mails()) - before; n != 0 {
		t.Errorf("an agent's out-of-office answer sent %d mails", n)
	}
	now := g.ticket(tk.ID)
	if last := now.Messages[len(now.Messages)-1]; last.Kind != "system" || now.Status != rules.StatusNew || now.Assignee != "" {
		t.Errorf("stored as %q, status %s, assignee %q", last.Kind, now.Status, now.Assignee)
	}
}

func TestEscalation(t *testing.T) {
	g := startDesk(t)
	tk := agOpen(t, g, "Printer on fire", "It is really on fire.")

	// A reply asking to escalate: up one level, managers watch, customer acknowledged.
	before := len(g.relay.Mails())
	g.mustSend("alice@customer.example", []string{"support@example.com"},
		msg("alice@customer.example", "support@example.com", "Re: ["+tk.ID+"] Printer on fire", "This takes too long. Please escalate this."))
	g.settle()
	tk = g.ticket(tk.ID)
	if tk.Priority != rules.PriorityHigh || !tk.Escalated || !slices.Equal(tk.Watchers, []string{"meg@example.com"}) || len(agEvents(tk, "escalated")) != 1 {
		t.Fatalf("after escalation: priority %s escalated %v watchers %v", tk.Priority, tk.Escalated, tk.Watchers)
	}
	if body := agBody(t, agOne(t, g, before, "meg@example.com").Data); !strings.Contains(body, "ESCALATED") || !strings.Contains(body, "Please escalate") {
		t.Errorf("manager's notification:\n%s", body)
	}
	ack := agOne(t, g, before, "alice@customer.example")
	if body := agBody(t, ack.Data); !strings.Contains(body, "escalated") || header(t, ack.Data).Get("Auto-Submitted") != "auto-replied" {
		t.Errorf("acknowledgement:\n%s", ack.Data)
	}

	// Asking again on the escalated ticket is recorded, nothing more: no
	// second escalation, no second acknowledgement.
	before = len(g.relay.Mails())
	g.mustSend("alice@customer.example", []string{"support@example.com"},
		msg("alice@customer.example", "support@example.com", "Re: ["+tk.ID+"] Printer on fire", "Still nothing. Please escalate this now!"))
	g.settle()
	tk = g.ticket(tk.ID)
	if tk.Priority != rules.PriorityHigh || len(agEvents(tk, "escalated")) != 1 || len(agEvents(tk, "escalation_requested")) != 1 {
		t.Errorf("second request: priority %s, %d escalated and %d escalation_requested events", tk.Priority,
			len(agEvents(tk, "escalated")), len(agEvents(tk, "escalation_requested")))
	}
	if n := len(agMailsTo(g, before, "alice@customer.example")); n != 0 {
		t.Errorf("second request: the customer got %d mails, want no second acknowledgement", n)
	}
	if n := len(agMailsTo(g, before, "meg@example.com")); n != 1 {
		t.Errorf("second request: the watching manager got %d mails, want the notification", n)
	}

	// Mail to escalation@ naming a gold customer's ticket raises it one level.
	g.mustSend("boss@bigcorp.example", []string{"support@example.com"},
		msg("boss@bigcorp.example", "support@example.com", "Outage", "Everything is down."))
	var gold *store.Ticket
	for _, x := range g.tickets() {
		if x.Requester == "boss@bigcorp.example" {
			gold = x
		}
	}
	g.mustSend("boss@bigcorp.example", []string{"escalation@example.com"},
		msg("boss@bigcorp.example", "escalation@example.com", "Re: ["+gold.ID+"] Outage", "Still down after four hours."))
	if gold = g.ticket(gold.ID); gold.Priority != rules.PriorityHigh || !gold.Escalated || gold.Plan != "gold" {
		t.Errorf("escalation@ with a token: priority %s escalated %v plan %q", gold.Priority, gold.Escalated, gold.Plan)
	}

	// A stranger naming the ticket at escalation@ cannot escalate it.
	g.mustSend("mallory@evil.example", []string{"escalation@example.com"},
		msg("mallory@evil.example", "escalation@example.com", "Re: ["+gold.ID+"] Outage", "Escalate!"))
	if now := g.ticket(gold.ID); now.Priority != gold.Priority || len(agEvents(now, "escalated")) != 1 {
		t.Errorf("a stranger escalated %s", gold.ID)
	}

	// Mail to escalation@ naming no ticket opens a high-priority one there.
	g.settle()
	before = len(g.relay.Mails())
	g.mustSend("dora@customer.example", []string{"escalation@example.com"},
		msg("dora@customer.example", "escalation@example.com", "Nobody answers me", "Three days and no answer."))
	g.settle()
	var esc *store.Ticket
	for _, x := range g.tickets() {
		if x.Requester == "dora@customer.example" {
			esc = x
		}
	}
	if esc == nil || esc.Queue != "escalation" || esc.Priority != rules.PriorityHigh || !esc.Escalated {
		t.Fatalf("ticket from escalation@: %+v", esc)
	}
	if len(agMailsTo(g, before, "meg@example.com")) != 1 {
		t.Errorf("manager not notified of the new escalation ticket")
	}
}

// TestEscalationOfFreshTickets: each case starts from a ticket that was
// never escalated, so the plan's cap and the negation decide the outcome.
func TestEscalationOfFreshTickets(t *testing.T) {
	g := startDesk(t)
	open := func(from, subject string) *store.Ticket {
		t.Helper()
		g.mustSend(from, []string{"support@example.com"}, msg(from, "support@example.com", subject, "Help."))
		g.settle()
		for _, x := range g.tickets() {
			if x.Requester == from {
				return g.ticket(x.ID)
			}
		}
		t.Fatalf("no ticket from %s", from)
		return nil
	}
	ask := func(tk *store.Ticket, text string) (*store.Ticket, int) {
		t.Helper()
		before := len(g.relay.Mails())
		g.mustSend(tk.Requester, []string{"support@example.com"},
			msg(tk.Requester, "support@example.com", "Re: ["+tk.ID+"] "+tk.Subject, text))
		g.settle()
		return g.ticket(tk.ID), before
	}

	// A standard-plan customer already at high: the plan caps the priority,
	// but the ticket is escalated all the same.
	std := open("std@customer.example", "[Urgent] Server down")
	if std.Priority != rules.PriorityHigh || std.Escalated {
		t.Fatalf("urgent standard ticket: priority %s escalated %v", std.Priority, std.Escalated)
	}
	std, before := ask(std, "Please escalate this.")
	if std.Priority != rules.PriorityHigh || !std.Escalated || !slices.Contains(std.Watchers, "meg@example.com") || len(agEvents(std, "escalated")) != 1 {
		t.Errorf("standard plan at high: priority %s escalated %v watchers %v", std.Priority, std.Escalated, std.Watchers)
	}
	if body := agBody(t, agOne(t, g, before, "meg@example.com").Data); !strings.Contains(body, "ESCALATED") {
		t.Errorf("manager's notification:\n%s", body)
	}
	if body := agBody(t, agOne(t, g, before, "std@customer.example").Data); !strings.Contains(body, "we have escalated your request "+std.ID) {
		t.Errorf("acknowledgement:\n%s", body)
	}

	// A gold customer at high goes to critical.
	gold := open("boss@bigcorp.example", "Outage")
	agReply(g, "ana@example.com", agSigned(t, agKey, rules.TokenReply, gold.ID, "ana@example.com"), gold, "#priority high")
	if gold = g.ticket(gold.ID); gold.Priority != rules.PriorityHigh || gold.Escalated {
		t.Fatalf("gold ticket before escalation: priority %s escalated %v", gold.Priority, gold.Escalated)
	}
	gold, before = ask(gold, "Please escalate this.")
	if gold.Priority != rules.PriorityCritical || !gold.Escalated {
		t.Errorf("gold plan at high: priority %s escalated %v, want critical", gold.Priority, gold.Escalated)
	}
	if len(agMailsTo(g, before, "boss@bigcorp.example")) != 1 || len(agMailsTo(g, before, "meg@example.com")) != 1 {
		t.Errorf("gold escalation: customer acknowledged %d times, manager notified %d times",
			len(agMailsTo(g, before, "boss@bigcorp.example")), len(agMailsTo(g, before, "meg@example.com")))
	}

	// "no need to escalate" on a fresh ticket changes nothing.
	calm := open("calm@customer.example", "Question")
	calm, before = ask(calm, "Fine now, no need to escalate.")
	if calm.Priority != rules.PriorityMedium || calm.Escalated || len(calm.Watchers) != 0 ||
		len(agEvents(calm, "escalated"))+len(agEvents(calm, "escalation_requested")) != 0 {
		t.Errorf("\"no need to escalate\": priority %s escalated %v watchers %v", calm.Priority, calm.Escalated, calm.Watchers)
	}
	if n := len(agMailsTo(g, before, "calm@customer.example")) + len(agMailsTo(g, before, "meg@example.com")); n != 0 {
		t.Errorf("\"no need to escalate\": %d mails to the customer and the manager", n)
	}
}

func TestPlansAndSubjectTags(t *testing.T) {
	g := startDesk(t)
	open := func(from, subject string) *store.Ticket {
		before := len(g.tickets())
		g.mustSend(from, []string{"support@example.com"}, msg(from, "support@example.com", subject, "Help."))
		for _, x := range g.tickets() {
			if x.Requester == from && len(g.tickets()) > before {
				return g.ticket(x.ID)
			}
		}
		t.Fatalf("no ticket for %s", subject)
		return nil
	}
	cases := []struct {
		from, subject, wantSubject, plan, category string
		prio                                       rules.Priority
	}{
		{"std@customer.example", "[Urgent] Server down", "Server down", "standard", "", rules.PriorityHigh},
		{"boss@bigcorp.example", "[Critical] Database down", "Database down", "gold", "", rules.PriorityCritical},
		{"cheap@customer.example", "[URGENT] Please hurry", "Please hurry", "bronze", "", rules.PriorityMedium},
		{"bug@customer.example", "[Bug] Crash on start", "Crash on start", "standard", "bug", rules.PriorityMedium},
		{"fr@customer.example", "Re: [ feature-request ] Dark mode", "Dark mode", "standard", "feature_request", rules.PriorityLow}, // a feature request is low by the shipped request types
	}
	for _, c := range cases {
		before := len(g.relay.Mails())
		tk := open(c.from, c.subject)
		if tk.Subject != c.wantSubject || tk.Plan != c.plan || tk.Category != c.category || tk.Priority != c.prio {
			t.Errorf("%q: subject %q plan %q category %q priority %s", c.subject, tk.Subject, tk.Plan, tk.Category, tk.Priority)
		}
		g.settle()
		if h := header(t, agOne(t, g, before, c.from).Data); h.Get("Subject") != "["+tk.ID+"] "+c.wantSubject {
			t.Errorf("auto-reply subject %q", h.Get("Subject"))
		}
		urgent := strings.Contains(agBody(t, agOne(t, g, before, "ana@example.com").Data), "URGENT: New ticket")
		lower := strings.ToLower(c.subject)
		if want := strings.Contains(lower, "[urgent]") || strings.Contains(lower, "[critical]"); urgent != want {
			t.Errorf("%q: urgent alert %v, want %v", c.subject, urgent, want)
		}
	}
	// Agents may go past the customer's plan.
	tk := open("std2@customer.example", "Slow")
	agReply(g, "ana@example.com", agSigned(t, agKey, rules.TokenReply, tk.ID, "ana@example.com"), tk, "#priority critical")
	if tk = g.ticket(tk.ID); tk.Priority != rules.PriorityCritical {
		t.Errorf("agent could not raise a standard ticket to critical: %s", tk.Priority)
	}
}

// agPolicy puts the default lifecycle and SLA policy into g's pipeline and
// store, as serve does, and returns a sweeper over them.
func agPolicy(t *testing.T, g *gateway) *Sweeper {
	p := &Policy{Lifecycle: rules.DefaultLifecycle(), SLA: rules.DefaultSLAPolicy(), ReopenWindow: 7 * 24 * time.Hour}
	for _, a := range g.pipeline.Agents {
		p.Agents = append(p.Agents, AgentRef{Email: a.Email, Name: a.Name, Queues: a.Queues, Manager: a.Manager})
	}
	g.pipeline.Policy = p
	g.store = store.WithDue(g.store, p.Due)
	g.pipeline.Store = g.store
	return &Sweeper{Store: g.store, Desk: g.pipeline.Desk, Policy: p, Signer: g.pipeline.Signer, Log: testLogger(t), Wake: g.worker.Wake}
}

// agSweep sweeps as of at and waits for the mail it queued.
func agSweep(t *testing.T, g *gateway, sw *Sweeper, at time.Time) *SweepReport {
	t.Helper()
	rep, err := sw.Sweep(context.Background(), at, false)
	if err != nil {
		t.Fatalf("sweep: %v", err)
	}
	g.settle()
	return rep
}

// TestRequestTypesSetCategoryPriorityAndAreNamed: a request type's tag sets
// the new ticket's category and priority, leaves the stored subject, and
// the confirmation names the type.
func TestRequestTypesSetCategoryPriorityAndAreNamed(t *testing.T) {
	g := startDesk(t)
	for _, c := range []struct {
		subject, clean, category, name string
		prio                           rules.Priority
	}{
		{"[Enhancement] Dark mode", "Dark mode", "feature_request", "feature request", rules.PriorityLow},
		{"[KB Request] Printer manual", "Printer manual", "kb_request", "knowledge base request", rules.PriorityLow},
	} {
		before := len(g.relay.Mails())
		from := "kb" + strings.ToLower(strings.Fields(c.clean)[0]) + "@customer.example"
		g.mustSend(from, []string{"support@example.com"}, msg(from, "support@example.com", c.subject, "Please."))
		g.settle()
		var tk *store.Ticket
		for _, x := range g.tickets() {
			if x.Requester == from {
				tk = x
			}
		}
		if tk == nil || tk.Subject != c.clean || tk.Category != c.category || tk.Priority != c.prio {
			t.Fatalf("%q: ticket %+v", c.subject, tk)
		}
		if body := agBody(t, agOne(t, g, before, from).Data); !strings.Contains(body, "received your "+c.name) {
			t.Errorf("%q: the confirmation does not name the type:\n%s", c.subject, body)
		}
	}
}

// TestOnlyTheAssigneeReachesTheCustomer: on an assigned ticket another
// agent's reply is held as a note and its author told; a manager's
// "#assign me" takes the ticket over and the reply goes out; of two agents
// answering an unassigned ticket at once, the first wins; the command line
// applies the same rule to an action taken as an agent.
func TestOnlyTheAssigneeReachesTheCustomer(t *testing.T) {
	g := startDesk(t)
	tk := agOpen(t, g, "Printer on fire", "It is really on fire.")
	signed := func(agent string) string { return agSigned(t, agKey, rules.TokenReply, tk.ID, agent) }
	agReply(g, "ana@example.com", signed("ana@example.com"), tk, "#assign me")

	before := len(g.relay.Mails())
	agReply(g, "ben@example.com", signed("ben@example.com"), tk, "Have you tried turning it off?")
	if l := agMailsTo(g, before, "alice@customer.example"); len(l) != 0 {
		t.Fatalf("another agent's reply reached the customer")
	}
	if l := agMailsTo(g, before, "ben@example.com"); len(l) != 1 || !strings.Contains(agBody(t, l[0].Data), "assigned to Ana Lima") {
		t.Errorf("ben got %d mails, want one saying who owns the ticket", len(l))
	}
	now := g.ticket(tk.ID)
	if last := now.Messages[len(now.Messages)-1]; last.Kind != "note" || !strings.Contains(last.VisibleText, "turning it off") || !hasEvent(now, "reply_held", "ben@example.com") {
		t.Errorf("held reply not kept as a note: %+v", last)
	}

	before = len(g.relay.Mails())
	agReply(g, "meg@example.com", signed("meg@example.com"), tk, "#assign me\nI am taking this one: a technician is on the way.")
	if now = g.ticket(tk.ID); now.Assignee != "meg@example.com" {
		t.Errorf("the manager did not take the ticket over: assignee %s", now.Assignee)
	}
	if l := agMailsTo(g, before, "alice@customer.example"); len(l) != 1 || !strings.Contains(agBody(t, l[0].Data), "technician is on the way") {
		t.Errorf("the manager's reply after taking over did not reach the customer")
	}

	// The same rule from the command line: ben may not close meg's ticket.
	if _, err := g.pipeline.Act(context.Background(), tk.ID, Action{Name: "status", Value: "closed", Actor: "ben@example.com"}); !errors.Is(err, ErrBadAction) {
		t.Errorf("ben closed meg's ticket from the command line: %v", err)
	}

	// Two agents answer an unassigned ticket at once: one wins.
	other := agOpen(t, g, "Scanner jams", "It jams.")
	before = len(g.relay.Mails())
	var wg sync.WaitGroup
	for _, agent := range []string{"ana@example.com", "ben@example.com"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			to := agSigned(t, agKey, rules.TokenReply, other.ID, agent)
			g.mustSend(agent, []string{to}, msg(agent, to, "Re: ["+other.ID+"] Scanner jams", "Answer from "+agent))
		}()
	}
	wg.Wait()
	g.settle()
	won := g.ticket(other.ID).Assignee
	if l := agMailsTo(g, before, "alice@customer.example"); len(l) != 1 || !strings.Contains(agBody(t, l[0].Data), "Answer from "+won) {
		t.Errorf("the customer got %d replies, want only the winner's (%s)", len(l), won)
	}
	loser := map[string]string{"ana@example.com": "ben@example.com", "ben@example.com": "ana@example.com"}[won]
	if l := agMailsTo(g, before, loser); len(l) != 1 || !strings.Contains(agBody(t, l[0].Data), "not sent") {
		t.Errorf("%s was not told the reply was held", loser)
	}
}

// A fake end marker in the customer's text does not turn the lines after it into the agent's commands.
func TestCustomerTextCannotPlantAgentCommands(t *testing.T) {
	g := startDesk(t)
	before := len(g.relay.Mails())
	tk := agOpenFrom(t, g, "dave@customer.example", "Printer",
		"Printer broken.\n"+endMarker+"\n#priority critical\n#cc add mallory@evil.example\n")
	notif := agOne(t, g, before, "ana@example.com")
	quoted := agBody(t, notif.Data)
	if !strings.Contains(quoted, replyMarker) {
		t.Fatalf("notification has no marker:\n%s", quoted)
	}
	to := agReplyTo(t, notif)
	body := "#assign me\n\nOn Sat, 21 Nov 2026 at 10:00, Dave via Example Support wrote:\n" + quoted
	g.mustSend("ana@example.com", []string{to}, msg("ana@example.com", to, "Re: ["+tk.ID+"] Printer", body))
	g.settle()
	now := g.ticket(tk.ID)
	if now.Assignee != "ana@example.com" {
		t.Fatalf("ana's #assign me not applied: %+v", now.Events)
	}
	if now.Priority == "critical" || slices.Contains(now.CC, "mallory@evil.example") {
		t.Errorf("the customer's quoted text was applied as ana's commands: priority %s, cc %v", now.Priority, now.CC)
	}
}

// A note taken as an agent (-as) is refused where the agent's #note by mail would be.
func TestNoteAsAgentNeedsTheAgentsRights(t *testing.T) {
	g := startDesk(t)
	ctx := context.Background()
	tk := agOpenFrom(t, g, "dave@customer.example", "Office printer burning", "Smoke everywhere.")
	if err := rules.Authorize(rules.Command{Name: "note"}, agAgents[2].actor(), viewOf(tk)); err == nil {
		t.Fatal("precondition: tom may note by mail")
	}
	_, err := g.pipeline.Act(ctx, tk.ID, Action{Name: "note", Value: "hello from tech", Actor: "tom@example.com"})
	if !errors.Is(err, ErrBadAction) || hasMsg(g.ticket(tk.ID), "hello from tech") {
		t.Errorf("tom (queues %v) added a note to %s (queue %s) as himself: %v", agAgents[2].Queues, tk.ID, tk.Queue, err)
	}
}

// Proves the inbound flood limits are the customers': an agent answering
// ticket after ticket through the signed reply addresses is never told
// 451 because the per-sender (or per-domain: all agents share one) count
// of an hour is reached.
func TestAgentsRepliesAreNoFlood(t *testing.T) {
	g := startDesk(t)
	g.pipeline.Policies = Policies{PerSender: 2, PerDomain: 2}
	var replyTo []string
	var tks []*store.Ticket
	for _, subject := range []string{"Printer", "Scanner"} {
		before := len(g.relay.Mails())
		tk := agOpen(t, g, subject, "It is broken.")
		tks = append(tks, tk)
		replyTo = append(replyTo, agReplyTo(t, agOne(t, g, before, "ana@example.com")))
	}
	for i, n := range []int{0, 1, 0} {
		text := fmt.Sprintf("Answer %d.", i)
		body := text + "\n"
		if err := g.send("ana@example.com", []string{replyTo[n]}, msg("Ana Lima <ana@example.com>", replyTo[n], "Re: ["+tks[n].ID+"] "+tks[n].Subject, body)); err != nil {
			t.Fatalf("agent's reply %d refused: %v", i+1, err)
		}
	}
	g.settle()
	if n := len(agMailsTo(g, 0, "alice@customer.example")) - 2; n != 3 {
		t.Errorf("the customer got %d of the agent's 3 replies", n)
	}
}

// Proves the owner of a ticket learns of a colleague's reply held on it:
// the held text reaches the assignee as a note mail (as the held mail
// promises the author), and not the customer.
func TestHeldReplyReachesTheOwner(t *testing.T) {
	g := startDesk(t)
	tk := agOpen(t, g, "Printer on fire", "It is really on fire.")
	signed := func(agent string) string { return agSigned(t, agKey, rules.TokenReply, tk.ID, agent) }
	agReply(g, "ana@example.com", signed("ana@example.com"), tk, "#assign me")
	before := len(g.relay.Mails())
	agReply(g, "ben@example.com", signed("ben@example.com"), tk, "Have you tried turning it off?")
	l := agMailsTo(g, before, "ana@example.com")
	if len(l) != 1 || !strings.Contains(agBody(t, l[0].Data), "turning it off") {
		t.Fatalf("the assignee got %d mails about the held reply, want one note carrying its text", len(l))
	}
	if len(agMailsTo(g, before, "alice@customer.example")) != 0 {
		t.Errorf("the held reply reached the customer")
	}
}
