package desk

import (
	"net/mail"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"ticketgate/mailout/relaytest"
	"ticketgate/rules"
)

// answer has from answer the relayed mail m as a mail client does: to
// its Reply-To (else its From), "Re: " and its subject, In-Reply-To its
// Message-ID, text above the quoted original. It returns the address the
// answer went to.
func answer(t *testing.T, g *gateway, m relaytest.Mail, from, text string) string {
	t.Helper()
	h := header(t, m.Data)
	to := h.Get("Reply-To")
	if to == "" {
		to = h.Get("From")
	}
	a, err := mail.ParseAddress(to)
	if err != nil {
		t.Fatalf("answer to %q: %v", to, err)
	}
	quoted := "> " + strings.ReplaceAll(strings.TrimSpace(agBody(t, m.Data)), "\n", "\n> ")
	body := text + "\n\nOn Wed, 4 Nov 2026 at 10:00, Example Support wrote:\n" + quoted + "\n"
	id := h.Get("Message-ID")
	g.mustSend(from, []string{a.Address}, msg(from, a.Address, "Re: "+decodedSubject(t, m.Data), body,
		"In-Reply-To: "+id, "References: "+id))
	g.settle()
	return a.Address
}

// alertsTo returns the one mail whose subject holds what that each of
// addrs got since from, failing when anyone got none or more than one,
// or one addressed to anyone else too, or one whose Reply-To is not the
// reply address signed for its reader on the ticket it names.
func alertsTo(t *testing.T, g *gateway, from int, what string, addrs ...string) map[string]relaytest.Mail {
	t.Helper()
	out := map[string]relaytest.Mail{}
	for _, m := range g.relay.Mails()[from:] {
		subject := decodedSubject(t, m.Data)
		if !strings.Contains(subject, what) {
			continue
		}
		if len(m.To) != 1 {
			t.Errorf("%q went to %v in one mail, want one mail each", what, m.To)
		}
		id, _ := rules.TicketToken(subject, "HS")
		for _, to := range m.To {
			if got, want := agReplyTo(t, m), agSigned(t, agKey, rules.TokenReply, id, to); got != want {
				t.Errorf("%q to %s has Reply-To %s, want their reply address %s", what, to, got, want)
			}
			if _, dup := out[to]; dup {
				t.Errorf("%s got %q twice", to, what)
			}
			out[to] = m
		}
	}
	var got []string
	for to := range out {
		got = append(got, to)
	}
	slices.Sort(got)
	if want := slices.Sorted(slices.Values(addrs)); !slices.Equal(got, want) {
		t.Fatalf("%q went to %v, want %v", what, got, want)
	}
	return out
}

// noteAddress is the note address the text of m names for its reader,
// or "" (an error) when it names none.
func noteAddress(t *testing.T, m relaytest.Mail) string {
	t.Helper()
	a := regexp.MustCompile(`support\+[^@\s]+@example\.com`).FindAllString(agBody(t, m.Data), -1)
	if len(a) != 1 {
		t.Errorf("the mail names %d signed addresses, want the note address:\n%s", len(a), agBody(t, m.Data))
		return ""
	}
	return a[0]
}

// TestAnswerToSLAAlertReachesTheCustomer: each person alerted of a breach
// gets a mail of their own whose Reply-To is their signed reply address
// and whose text names their note address. An agent who answers it
// answers the customer on the ticket, and the alert's text stays out of
// the customer's mail; one who writes to the note address adds a note. No
// new ticket is opened, and a second sweep alerts nobody again.
func TestAnswerToSLAAlertReachesTheCustomer(t *testing.T) {
	g := startDesk(t)
	sw := agPolicy(t, g)
	now := time.Date(2026, 11, 3, 10, 0, 0, 0, time.UTC)
	g.pipeline.Now = func() time.Time { return now }
	tk := agOpen(t, g, "Printer on fire", "It is really on fire.")
	opened := len(g.tickets())

	mark := len(g.relay.Mails())
	now = now.Add(24 * time.Hour) // medium: first response due in 24h
	agSweep(t, g, sw, now)
	agSweep(t, g, sw, now)
	alerts := alertsTo(t, g, mark, "SLA breach: first response overdue", "ana@example.com", "ben@example.com", "meg@example.com")
	for addr, m := range alerts {
		if got, want := noteAddress(t, m), agSigned(t, agKey, rules.TokenNote, tk.ID, addr); got != want {
			t.Errorf("%s's alert names the note address %s, want %s", addr, got, want)
		}
	}
	if ev := agEvents(g.ticket(tk.ID), "sla_breach"); len(ev) != 1 || !strings.Contains(ev[0].Detail, "alerted ana@example.com, ben@example.com, meg@example.com") {
		t.Errorf("sla_breach events %+v", ev)
	}

	mark = len(g.relay.Mails())
	answer(t, g, alerts["ana@example.com"], "ana@example.com", "We are sending a technician today.")
	if n := len(g.tickets()); n != opened {
		t.Fatalf("answering the alert opened %d new tickets", n-opened)
	}
	got := agOne(t, g, mark, "alice@customer.example")
	if body := agBody(t, got.Data); !strings.Contains(body, "We are sending a technician today.") || strings.Contains(body, "SLA") {
		t.Errorf("the customer was sent:\n%s", body)
	}
	if tk = g.ticket(tk.ID); tk.Assignee != "ana@example.com" || tk.SLA.FirstResponseAt == nil {
		t.Errorf("after Ana's answer: assignee %q, first response at %v", tk.Assignee, tk.SLA.FirstResponseAt)
	}

	mark = len(g.relay.Mails())
	note := noteAddress(t, alerts["ben@example.com"])
	if note == "" {
		t.FailNow()
	}
	g.mustSend("ben@example.com", []string{note}, msg("ben@example.com", note, "Re: ["+tk.ID+"] alert", "Ana, the spare part is in the basement."))
	g.settle()
	if n := len(agMailsTo(g, mark, "alice@customer.example")); n != 0 {
		t.Errorf("the note sent the customer %d mails", n)
	}
	if n := len(g.tickets()); n != opened {
		t.Fatalf("the note opened %d new tickets", n-opened)
	}
	notes := 0
	for _, m := range g.ticket(tk.ID).Messages {
		if m.Kind == "note" && strings.Contains(m.VisibleText, "spare part") {
			notes++
		}
	}
	if notes != 1 {
		t.Errorf("%d notes with Ben's text, want 1", notes)
	}
}

// TestAnswerToCriticalFollowUpReachesTheCustomer: a critical ticket's
// follow-up goes to each of the queue's agents in a mail of their own;
// the agent who answers it updates the customer, and no new ticket is
// opened.
func TestAnswerToCriticalFollowUpReachesTheCustomer(t *testing.T) {
	g, sw, _ := l2Desk(t)
	sw.Policy.SLA.CriticalUpdateEvery = 3 * time.Hour
	sw.Policy.SLA.Targets = map[rules.Priority]rules.Target{} // no SLA alerts in the way
	now := time.Date(2026, 11, 3, 10, 0, 0, 0, time.UTC)
	g.pipeline.Now = func() time.Time { return now }
	tk := openWith(t, g, sw, now, "Outage", rules.PriorityCritical, nil)
	opened := len(g.tickets())

	mark := len(g.relay.Mails())
	now = now.Add(3 * time.Hour)
	agSweep(t, g, sw, now)
	agSweep(t, g, sw, now)
	ups := alertsTo(t, g, mark, "Critical ticket without an update", "ana@example.com", "ben@example.com")
	if ev := agEvents(g.ticket(tk.ID), "critical_reminder"); len(ev) != 1 || !strings.Contains(ev[0].Detail, "reminded ana@example.com, ben@example.com") {
		t.Errorf("critical_reminder events %+v", ev)
	}

	mark = len(g.relay.Mails())
	answer(t, g, ups["ben@example.com"], "ben@example.com", "Power is back in the east wing.")
	if n := len(g.tickets()); n != opened {
		t.Fatalf("answering the follow-up opened %d new tickets", n-opened)
	}
	if body := agBody(t, agOne(t, g, mark, "alice@customer.example").Data); !strings.Contains(body, "Power is back in the east wing.") || strings.Contains(body, "Critical ticket") {
		t.Errorf("the customer was sent:\n%s", body)
	}
}

// TestAnswerToSLAAlertFromANonAgent: an agent alerted with an address
// signed for her, who has left the desk by the time she answers, is not
// taken for an agent: her answer reaches no customer, opens no ticket, is
// kept as a note, and she is told it was not applied.
func TestAnswerToSLAAlertFromANonAgent(t *testing.T) {
	g := startDesk(t)
	sw := agPolicy(t, g)
	now := time.Date(2026, 11, 3, 10, 0, 0, 0, time.UTC)
	g.pipeline.Now = func() time.Time { return now }
	tk := openWith(t, g, sw, now, "Printer on fire", rules.PriorityMedium, nil)
	opened := len(g.tickets())

	mark := len(g.relay.Mails())
	now = now.Add(24 * time.Hour)
	agSweep(t, g, sw, now)
	alerts := alertsTo(t, g, mark, "SLA breach", "ana@example.com", "ben@example.com", "meg@example.com")
	g.pipeline.Agents = agAgents[1:] // ana has left

	mark = len(g.relay.Mails())
	answer(t, g, alerts["ana@example.com"], "ana@example.com", "I left the company in October.")
	if n := len(g.tickets()); n != opened {
		t.Errorf("the non-agent's answer opened %d new tickets", n-opened)
	}
	if n := len(agMailsTo(g, mark, "alice@customer.example")); n != 0 {
		t.Errorf("the non-agent's answer sent the customer %d mails", n)
	}
	if ev := agEvents(g.ticket(tk.ID), "security"); len(ev) != 1 || !strings.Contains(ev[0].Detail, "ana@example.com is not an agent") {
		t.Errorf("security events %+v", ev)
	}
	if l := agMailsTo(g, mark, "ana@example.com"); len(l) != 1 || !strings.Contains(decodedSubject(t, l[0].Data), "Not applied") ||
		!strings.Contains(agBody(t, l[0].Data), "not one of the desk's agents") {
		t.Errorf("the non-agent got %d mails, want one saying their mail was not applied", len(l))
	}
	notes := 0
	for _, m := range g.ticket(tk.ID).Messages {
		if m.Kind == "note" && m.VisibleText == "I left the company in October." {
			notes++
		}
	}
	if notes != 1 {
		t.Errorf("%d notes with the non-agent's text, want 1", notes)
	}
}
