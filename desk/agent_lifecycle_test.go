package desk

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	_ "github.com/emersion/go-message/charset"

	"ticketgate/mailout"
	"ticketgate/rules"
	"ticketgate/store"
)

// TestAgentReplyKeepsHoldAndResolution: a plain public reply opens a new or
// waiting ticket and starts the wait for the customer, but a ticket on hold
// or resolved keeps its status, whoever replies, and gets no reminder. Only
// the assignee's reply reaches the customer.
func TestAgentReplyKeepsHoldAndResolution(t *testing.T) {
	g := startDesk(t)
	sw := agPolicy(t, g)
	ana := func(tk *store.Ticket) string { return agSigned(t, agKey, rules.TokenReply, tk.ID, "ana@example.com") }
	held := agOpen(t, g, "Printer on fire", "It is really on fire.")
	agReply(g, "ana@example.com", ana(held), held, "#assign me\n#status on_hold")
	fixed := agOpen(t, g, "Scanner jams", "It jams.")
	agReply(g, "ana@example.com", ana(fixed), fixed, "#status resolved\nClean the rollers.")
	open := agOpen(t, g, "Fax is slow", "Very slow.")

	before := len(g.relay.Mails())
	agReply(g, "ana@example.com", ana(held), held, "The spare part arrives next week.")
	agReply(g, "ben@example.com", agSigned(t, agKey, rules.TokenReply, held.ID, "ben@example.com"), held, "Ben here: still waiting for the part.")
	agReply(g, "ana@example.com", ana(fixed), fixed, "One more tip: use the soft brush.")
	agReply(g, "ana@example.com", ana(open), open, "Which model is it?")
	for tk, want := range map[*store.Ticket]rules.Status{held: rules.StatusOnHold, fixed: rules.StatusResolved, open: rules.StatusOpen} {
		now := g.ticket(tk.ID)
		if now.Status != want {
			t.Errorf("%s after a plain agent reply: status %s, want %s", tk.Subject, now.Status, want)
		}
	}
	// Ben's reply on Ana's ticket is held as a note (only the assignee's
	// replies reach the customer), and Ben is told.
	if n := len(agMailsTo(g, before, "alice@customer.example")); n != 3 {
		t.Fatalf("the customer got %d replies, want 3", n)
	}
	if l := agMailsTo(g, before, "ben@example.com"); len(l) != 1 || !strings.Contains(agBody(t, l[0].Data), "assigned to Ana Lima") {
		t.Errorf("ben got %d mails, want one saying who owns the ticket", len(l))
	}
	if body := agBody(t, agMailsTo(g, before, "alice@customer.example")[1].Data); !strings.Contains(body, "use the soft brush") || strings.Contains(body, "We have marked") {
		t.Errorf("follow-up on the resolved ticket:\n%s", body)
	}

	// Four days on, only the open ticket's customer is reminded.
	before = len(g.relay.Mails())
	rep := agSweep(t, g, sw, time.Now().Add(4*24*time.Hour))
	var reminded []string
	for _, a := range rep.Actions {
		if a.Kind == "reminder" {
			reminded = append(reminded, a.Ticket)
		}
	}
	if !slices.Equal(reminded, []string{open.ID}) {
		t.Errorf("reminders for %v, want only the open ticket %s", reminded, open.ID)
	}
	for _, m := range agMailsTo(g, before, "alice@customer.example") {
		if body := agBody(t, m.Data); strings.Contains(body, "we are waiting for your answer") && !strings.Contains(body, open.ID) {
			t.Errorf("reminder about a ticket on hold or resolved:\n%s", body)
		}
	}
	if tk := g.ticket(held.ID); tk.Status != rules.StatusOnHold || len(agEvents(tk, "reminder_sent")) != 0 {
		t.Errorf("on hold after the sweep: status %s, %d reminders", tk.Status, len(agEvents(tk, "reminder_sent")))
	}
}

// TestClosingByAnAgentAsksForRating: #close by mail and "status closed" from
// the command line send the satisfaction survey, once per closing, and
// the customer's number is taken as the rating.
func TestClosingByAnAgentAsksForRating(t *testing.T) {
	g := startDesk(t)
	sw := agPolicy(t, g)
	surveys := func(from int, addr string) int {
		n := 0
		for _, m := range agMailsTo(g, from, addr) {
			if strings.Contains(agBody(t, m.Data), "How satisfied were you") {
				n++
			}
		}
		return n
	}
	tk := agOpen(t, g, "Printer on fire", "It is really on fire.")
	ana := agSigned(t, agKey, rules.TokenReply, tk.ID, "ana@example.com")
	before := len(g.relay.Mails())
	agReply(g, "ana@example.com", ana, tk, "#close\nThe fuse was the culprit.")
	agReply(g, "ana@example.com", ana, tk, "#status closed")
	now := g.ticket(tk.ID)
	if now.Status != rules.StatusClosed || !now.SurveySent || len(agEvents(now, "survey_sent")) != 1 {
		t.Fatalf("after #close: status %s survey sent %v events %+v", now.Status, now.SurveySent, now.Events)
	}
	if n := surveys(before, "alice@customer.example"); n != 1 {
		t.Fatalf("the customer got %d surveys, want 1", n)
	}
	if n := len(agMailsTo(g, before, "alice@customer.example")); n != 2 {
		t.Errorf("the customer got %d mails, want the resolution and the survey", n)
	}
	g.mustSend("alice@customer.example", []string{"support@example.com"},
		msg("alice@customer.example", "support@example.com", "Re: ["+tk.ID+"] How did we do? Printer on fire", "4 - quick"))
	if now = g.ticket(tk.ID); now.Satisfaction == nil || now.Satisfaction.Score != 4 || now.Status != rules.StatusClosed {
		t.Errorf("rating after the agent's close: %+v, status %s", now.Satisfaction, now.Status)
	}

	// Closed from the command line.
	other := agOpen(t, g, "Scanner jams", "It jams.")
	before = len(g.relay.Mails())
	res, err := g.pipeline.Act(context.Background(), other.ID, Action{Name: "status", Value: "closed", Actor: "meg@example.com"})
	if err != nil || res.Ticket.Status != rules.StatusClosed || !res.Ticket.SurveySent {
		t.Fatalf("status closed from the command line: %v, %+v", err, res.Ticket)
	}
	g.settle()
	if n := surveys(before, "alice@customer.example"); n != 1 {
		t.Errorf("closed from the command line: %d surveys, want 1", n)
	}
	// The sweep never asks a second time.
	before = len(g.relay.Mails())
	agSweep(t, g, sw, time.Now().Add(30*24*time.Hour))
	if n := surveys(before, "alice@customer.example"); n != 0 {
		t.Errorf("the sweep sent %d more surveys", n)
	}
}

// TestBrokenTemplateOverrideKeepsMailFlowing: an override that fails when
// it runs falls back to the built-in text; customer mail is still taken.
func TestBrokenTemplateOverrideKeepsMailFlowing(t *testing.T) {
	g := startDesk(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "auto_reply.txt"), []byte("Dear {{.Customer.Name}}, thanks.\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tpl, err := mailout.LoadTemplates(dir)
	if err != nil {
		t.Fatal(err)
	}
	tpl.Log = testLogger(t)
	g.pipeline.Desk.Templates = tpl
	if err := g.send("alice@customer.example", []string{"support@example.com"},
		msg("alice@customer.example", "support@example.com", "Printer on fire", "Help.")); err != nil {
		t.Fatalf("customer mail refused because of a broken override: %v", err)
	}
	g.settle()
	tk := g.onlyTicket()
	if body := agBody(t, agOne(t, g, 0, "alice@customer.example").Data); !strings.Contains(body, "opened\nticket "+tk.ID) {
		t.Errorf("auto-reply is not the built-in text:\n%s", body)
	}
}

// TestReplyLiftingHoldRemindsCustomer: a public reply that sets a ticket
// on hold back to open waits on the customer, who is reminded at 3 days.
func TestReplyLiftingHoldRemindsCustomer(t *testing.T) {
	g := startDesk(t)
	sw := agPolicy(t, g)
	ana := func(tk *store.Ticket) string { return agSigned(t, agKey, rules.TokenReply, tk.ID, "ana@example.com") }
	held := agOpen(t, g, "Printer on fire", "It is really on fire.")
	agReply(g, "ana@example.com", ana(held), held, "#assign me\n#status on_hold")
	agReply(g, "ana@example.com", ana(held), held, "#status open\nThe part is in. Does it print now?")
	if tk := g.ticket(held.ID); tk.Status != rules.StatusOpen {
		t.Fatalf("after the reply lifting the hold: status %s, want open", tk.Status)
	}
	rep := agSweep(t, g, sw, time.Now().Add(4*24*time.Hour))
	if !slices.ContainsFunc(rep.Actions, func(a SweepAction) bool { return a.Kind == "reminder" && a.Ticket == held.ID }) {
		t.Errorf("no reminder 4 days after the reply lifting the hold: %+v", rep.Actions)
	}
}

// TestWaitingSetByAnAgentRemindsCustomer: an agent who asks the customer
// something and sets the ticket waiting ("#status waiting") has the
// customer reminded at 3 days, once; the ticket stays waiting and closes
// at 14 days.
func TestWaitingSetByAnAgentRemindsCustomer(t *testing.T) {
	g := startDesk(t)
	sw := agPolicy(t, g)
	ana := func(tk *store.Ticket) string { return agSigned(t, agKey, rules.TokenReply, tk.ID, "ana@example.com") }
	asked := agOpen(t, g, "Printer on fire", "It is really on fire.")
	agReply(g, "ana@example.com", ana(asked), asked, "#assign me\n#status waiting\nWhich model is it?")
	if tk := g.ticket(asked.ID); tk.Status != rules.StatusWaiting {
		t.Fatalf("after the agent's question: status %s, want waiting", tk.Status)
	}
	start := time.Now()
	reminders := func(rep *SweepReport) int {
		return len(slices.DeleteFunc(slices.Clone(rep.Actions), func(a SweepAction) bool { return a.Kind != "reminder" || a.Ticket != asked.ID }))
	}
	if rep := agSweep(t, g, sw, start.Add(2*24*time.Hour)); reminders(rep) != 0 {
		t.Errorf("reminder 2 days after the question: %+v", rep.Actions)
	}
	if rep := agSweep(t, g, sw, start.Add(4*24*time.Hour)); reminders(rep) != 1 {
		t.Errorf("no reminder 4 days after the agent set the ticket waiting: %+v", rep.Actions)
	}
	if tk := g.ticket(asked.ID); tk.Status != rules.StatusWaiting {
		t.Errorf("after the reminder: status %s, want waiting", tk.Status)
	}
	for _, d := range []float64{5, 8, 10} {
		if rep := agSweep(t, g, sw, start.Add(time.Duration(d*24)*time.Hour)); len(rep.Actions) != 0 {
			t.Errorf("day %v: %+v, want nothing", d, rep.Actions)
		}
	}
	agSweep(t, g, sw, start.Add(15*24*time.Hour))
	if tk := g.ticket(asked.ID); tk.Status != rules.StatusClosed || len(events(tk, "reminder_sent")) != 1 {
		t.Errorf("day 15: status %s, %d reminders; want closed after one", tk.Status, len(events(tk, "reminder_sent")))
	}
}

// TestReminderOfATicketSetWaitingWithoutAReply: a ticket an operator sets
// waiting (the customer asked for time; nothing was mailed to them) is
// reminded at 3 days; the reminder says how long the desk has waited,
// not that it replied, which it did not.
func TestReminderOfATicketSetWaitingWithoutAReply(t *testing.T) {
	g := startDesk(t)
	sw := agPolicy(t, g)
	tk := agOpen(t, g, "Printer on fire", "It is really on fire. I will send the model number on Monday.")
	if _, err := g.pipeline.Act(context.Background(), tk.ID, Action{Name: "status", Value: "waiting", Actor: "meg@example.com"}); err != nil {
		t.Fatal(err)
	}
	g.settle()
	before := len(g.relay.Mails())
	agSweep(t, g, sw, time.Now().Add(4*24*time.Hour))
	var reminders []string
	for _, m := range agMailsTo(g, before, "alice@customer.example") {
		if body := agBody(t, m.Data); strings.Contains(body, "waiting for your answer") {
			reminders = append(reminders, body)
		}
	}
	if len(reminders) != 1 {
		t.Fatalf("%d reminders, want 1", len(reminders))
	}
	if strings.Contains(reminders[0], "We replied") || !strings.Contains(reminders[0], "for 4 days") {
		t.Errorf("reminder of a ticket nobody answered:\n%s", reminders[0])
	}
}
