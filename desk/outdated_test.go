package desk

import (
	"context"
	"strings"
	"testing"
	"time"

	"ticketgate/rules"
	"ticketgate/store"
)

// TestLifecycleMailOutdatedWhileTheRelayWasDownIsNotSent: a reminder,
// waiting notice or closing notice and survey the sweep queued while the
// relay was down is not sent once the customer has written meanwhile (or
// the ticket was merged into another): it leaves the outbox with a
// mail_suppressed event saying why. The customer's mail still reaches the
// agents.
func TestLifecycleMailOutdatedWhileTheRelayWasDownIsNotSent(t *testing.T) {
	for _, c := range []struct {
		name    string
		after   time.Duration // the sweep, after the agent's reply
		phrases []string      // what the customer must not get
		merge   bool          // meanwhile the ticket is merged, not answered
	}{
		{"reminder", 4 * 24 * time.Hour, []string{"we are waiting for your answer"}, false},
		{"waiting", 8 * 24 * time.Hour, []string{`set the ticket to "waiting for your answer"`}, false},
		{"closed", 15 * 24 * time.Hour, []string{"we have closed ticket", "How satisfied were you"}, false},
		{"reminder of a merged ticket", 4 * 24 * time.Hour, []string{"we are waiting for your answer"}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			g := startDesk(t)
			sw := agPolicy(t, g)
			tk := agOpen(t, g, "Printer on fire", "It is really on fire.")
			ana := agSigned(t, agKey, rules.TokenReply, tk.ID, "ana@example.com")
			agReply(g, "ana@example.com", ana, tk, "#assign me\nWhich model is it?")
			var other *store.Ticket
			if c.merge {
				other = agOpen(t, g, "Printer still on fire", "Any news?")
			}
			before := len(g.relay.Mails())

			g.relay.Down()
			rep, err := sw.Sweep(context.Background(), time.Now().Add(c.after), false)
			if err != nil || rep.Mails == 0 {
				t.Fatalf("sweep: %v, %d mails queued", err, rep.Mails)
			}
			if c.merge {
				if _, err := g.pipeline.Act(context.Background(), tk.ID, Action{Name: "merge", Value: other.ID, Actor: "meg@example.com"}); err != nil {
					t.Fatalf("merge: %v", err)
				}
			} else {
				g.mustSend("alice@customer.example", []string{"support@example.com"},
					msg("alice@customer.example", "support@example.com", "Re: ["+tk.ID+"] Printer on fire", "It is a LaserJet 4."))
				if st := g.ticket(tk.ID).Status; st != rules.StatusOpen {
					t.Fatalf("after the customer's answer the ticket is %s, want open", st)
				}
			}
			g.relay.Up(t)
			g.settle()

			for _, m := range agMailsTo(g, before, "alice@customer.example") {
				body := agBody(t, m.Data)
				for _, p := range c.phrases {
					if strings.Contains(body, p) {
						t.Errorf("the customer got mail saying %q after the ticket changed:\n%s", p, body)
					}
				}
			}
			now := g.ticket(tk.ID)
			held := agEvents(now, string(rules.EventMailSuppressed))
			if len(held) != len(c.phrases) {
				t.Errorf("%d mail_suppressed events, want %d: %+v", len(held), len(c.phrases), now.Events)
			}
			for _, e := range held {
				if !strings.Contains(e.Detail, " mail to alice@customer.example not sent: ") {
					t.Errorf("mail_suppressed event: %s", e.Detail)
				}
			}
			if !c.merge {
				if l := agMailsTo(g, before, "ana@example.com"); len(l) == 0 || !strings.Contains(agBody(t, l[len(l)-1].Data), "LaserJet 4") {
					t.Errorf("the assignee was not told of the customer's answer")
				}
			}
			var queued []*store.OutMail
			g.store.View(context.Background(), func(tx store.Tx) error {
				queued, _, err = tx.TicketMail(tk.ID)
				return err
			})
			if len(queued) != 0 {
				t.Errorf("%d mails left in the outbox", len(queued))
			}
		})
	}
}

// TestCriticalFollowUpOutdatedWhileTheRelayWasDownIsNotSent: the
// follow-up of a critical ticket ("no public update since ...") that
// waited in the outbox while the relay was down is not sent once the
// assignee has updated the customer meanwhile; the update reaches the
// customer.
func TestCriticalFollowUpOutdatedWhileTheRelayWasDownIsNotSent(t *testing.T) {
	g, sw, _ := l2Desk(t)
	sw.Policy.SLA.CriticalUpdateEvery = 3 * time.Hour
	sw.Policy.SLA.Targets = map[rules.Priority]rules.Target{} // no SLA alerts in the way
	now := time.Date(2026, 11, 3, 10, 0, 0, 0, time.UTC)
	g.pipeline.Now = func() time.Time { return now }
	tk := openWith(t, g, sw, now, "Outage", rules.PriorityCritical, nil)
	ana := agSigned(t, agKey, rules.TokenReply, tk.ID, "ana@example.com")
	agReply(g, "ana@example.com", ana, tk, "#assign me\nWe are on it.")
	mark := len(g.relay.Mails())

	g.relay.Down()
	now = now.Add(3 * time.Hour)
	if rep, err := sw.Sweep(context.Background(), now, false); err != nil || rep.Mails != 1 {
		t.Fatalf("sweep: %v, %d mails queued, want the follow-up", err, rep.Mails)
	}
	now = now.Add(10 * time.Minute)
	g.mustSend("ana@example.com", []string{ana}, msg("ana@example.com", ana, "Re: ["+tk.ID+"] Outage", "Power is back in the east wing."))
	g.relay.Up(t)
	g.settle()

	for _, m := range agMailsTo(g, mark, "ana@example.com") {
		if strings.Contains(decodedSubject(t, m.Data), "Critical ticket without an update") {
			t.Errorf("the assignee was told of no update after hers:\n%s", agBody(t, m.Data))
		}
	}
	if l := agMailsTo(g, mark, "alice@customer.example"); len(l) != 1 || !strings.Contains(agBody(t, l[0].Data), "Power is back") {
		t.Errorf("the customer got %d mails, want the update", len(l))
	}
	if ev := agEvents(g.ticket(tk.ID), string(rules.EventMailSuppressed)); len(ev) != 1 || !strings.Contains(ev[0].Detail, "critical_update mail to ana@example.com not sent") {
		t.Errorf("mail_suppressed events %+v", ev)
	}
}

// TestResolutionNoticeOutdatedWhileTheRelayWasDownIsNotSent: the notice
// of a ticket resolved from the command line that waited in the outbox
// while the relay was down is not sent once the customer has reopened the
// ticket by writing; an agent's reply that resolved another ticket goes
// out with its text all the same (a person wrote it).
func TestResolutionNoticeOutdatedWhileTheRelayWasDownIsNotSent(t *testing.T) {
	g := startDesk(t)
	agPolicy(t, g)
	byCLI := agOpen(t, g, "Printer on fire", "It is really on fire.")
	byMail := agOpen(t, g, "Scanner jams", "It jams.")
	for _, tk := range []*store.Ticket{byCLI, byMail} {
		agReply(g, "ana@example.com", agSigned(t, agKey, rules.TokenReply, tk.ID, "ana@example.com"), tk, "#assign me\nWhich model is it?")
	}
	mark := len(g.relay.Mails())

	g.relay.Down()
	if _, err := g.pipeline.Act(context.Background(), byCLI.ID, Action{Name: "status", Value: "resolved"}); err != nil {
		t.Fatal(err)
	}
	ana := agSigned(t, agKey, rules.TokenReply, byMail.ID, "ana@example.com")
	g.mustSend("ana@example.com", []string{ana}, msg("ana@example.com", ana, "Re: ["+byMail.ID+"] Scanner jams", "#status resolved\nClean the rollers."))
	for _, tk := range []*store.Ticket{byCLI, byMail} {
		if st := g.ticket(tk.ID).Status; st != rules.StatusResolved {
			t.Fatalf("%s is %s, want resolved", tk.ID, st)
		}
		g.mustSend("alice@customer.example", []string{"support@example.com"},
			msg("alice@customer.example", "support@example.com", "Re: ["+tk.ID+"] "+tk.Subject, "It is not solved."))
		if st := g.ticket(tk.ID).Status; st != rules.StatusOpen {
			t.Fatalf("after the customer's answer %s is %s, want open", tk.ID, st)
		}
	}
	g.relay.Up(t)
	g.settle()

	var fromAna int
	for _, m := range agMailsTo(g, mark, "alice@customer.example") {
		body := agBody(t, m.Data)
		if strings.Contains(body, "We have marked your request "+byCLI.ID) {
			t.Errorf("the customer was told %s is resolved after reopening it:\n%s", byCLI.ID, body)
		}
		if strings.Contains(body, "Clean the rollers.") {
			fromAna++
		}
	}
	if fromAna != 1 {
		t.Errorf("the agent's reply reached the customer %d times, want once", fromAna)
	}
	if ev := agEvents(g.ticket(byCLI.ID), string(rules.EventMailSuppressed)); len(ev) != 1 || !strings.Contains(ev[0].Detail, "resolution mail to alice@customer.example not sent") {
		t.Errorf("mail_suppressed events of %s: %+v", byCLI.ID, ev)
	}
	if ev := agEvents(g.ticket(byMail.ID), string(rules.EventMailSuppressed)); len(ev) != 0 {
		t.Errorf("mail_suppressed events of %s: %+v", byMail.ID, ev)
	}
}

// TestSLAAlertOfAMetTargetIsNotSent: an SLA warning (or breach alert)
// that waited in the outbox while the relay was down is not sent once its
// target is met: the first response was given, the ticket resolved, or
// merged into another. The warning of a target still pending goes out.
func TestSLAAlertOfAMetTargetIsNotSent(t *testing.T) {
	g, sw, _ := l2Desk(t) // warnings 30 minutes ahead
	// The outbox gives up mail queued more than 5 days before its clock.
	now := time.Now().UTC()
	g.pipeline.Now = func() time.Time { return now }
	open := func(subject string) *store.Ticket {
		return openWith(t, g, sw, now, subject, rules.PriorityCritical, nil)
	}
	answered, resolved, merged, pending := open("Answered"), open("Resolved"), open("Merged"), open("Pending")
	alerts := func(from int, tk *store.Ticket) []string {
		var out []string
		for _, m := range g.relay.Mails()[from:] {
			if s := decodedSubject(t, m.Data); strings.Contains(s, "["+tk.ID+"] SLA ") {
				out = append(out, s)
			}
		}
		return out
	}
	mark := len(g.relay.Mails())

	g.relay.Down()
	now = now.Add(31 * time.Minute)
	if rep, err := sw.Sweep(context.Background(), now, false); err != nil || rep.Mails == 0 {
		t.Fatalf("sweep: %v, %d mails queued, want the first response warnings", err, rep.Mails)
	}
	now = now.Add(5 * time.Minute)
	answer := func(tk *store.Ticket, text string) { // as agReply, without waiting for the outbox
		ana := agSigned(t, agKey, rules.TokenReply, tk.ID, "ana@example.com")
		g.mustSend("ana@example.com", []string{ana}, msg("ana@example.com", ana, "Re: ["+tk.ID+"] "+tk.Subject, text))
	}
	answer(answered, "We are on it.")
	if _, err := g.pipeline.Act(context.Background(), resolved.ID, Action{Name: "status", Value: "resolved", Actor: "meg@example.com"}); err != nil {
		t.Fatal(err)
	}
	if _, err := g.pipeline.Act(context.Background(), merged.ID, Action{Name: "merge", Value: pending.ID, Actor: "meg@example.com"}); err != nil {
		t.Fatal(err)
	}
	g.relay.Up(t)
	g.settle()
	for _, tk := range []*store.Ticket{answered, resolved, merged} {
		if got := alerts(mark, tk); len(got) != 0 {
			t.Errorf("%s: alerts sent after the target was met: %q", tk.Subject, got)
		}
		if ev := agEvents(g.ticket(tk.ID), string(rules.EventMailSuppressed)); len(ev) == 0 || !strings.Contains(ev[0].Detail, "alert mail to") {
			t.Errorf("%s: mail_suppressed events %+v", tk.Subject, ev)
		}
	}
	if got := alerts(mark, pending); len(got) != 3 || !strings.Contains(got[0], "SLA warning: first response due soon") {
		t.Errorf("the pending ticket's warning to ana, ben and meg: %q", got)
	}

	// The breach of the pending ticket's first response, queued while
	// the relay is down, is not sent once an agent answered.
	mark = len(g.relay.Mails())
	g.relay.Down()
	now = now.Add(30 * time.Minute)
	if rep, err := sw.Sweep(context.Background(), now, false); err != nil || rep.Mails == 0 {
		t.Fatalf("sweep: %v, %d mails queued, want the breach alerts", err, rep.Mails)
	}
	now = now.Add(5 * time.Minute)
	answer(pending, "Sorry for the wait, we are on it.")
	g.relay.Up(t)
	g.settle()
	if got := alerts(mark, pending); len(got) != 0 {
		t.Errorf("breach alerts sent after the first response: %q", got)
	}
}
