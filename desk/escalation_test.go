package desk

import (
	"context"
	"encoding/json"
	"mime"
	"slices"
	"strings"
	"testing"
	"time"

	"ticketgate/desk/view"
	"ticketgate/rules"
	"ticketgate/store"
)

// l2Desk is a desk with a level-2 team (lev and lou work queue level2)
// whose clock counts Berlin office hours, closed on Monday 30 March 2026,
// the day after the clocks go forward.
func l2Desk(t *testing.T) (*gateway, *Sweeper, *time.Location) {
	t.Helper()
	g := startDesk(t)
	g.pipeline.Agents = append(slices.Clone(agAgents),
		Agent{Email: "lev@example.com", Name: "Lev Two", Queues: []string{"level2"}},
		Agent{Email: "lou@example.com", Name: "Lou Two", Queues: []string{"level2"}})
	sw := agPolicy(t, g)
	loc, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	p := &sw.Policy.SLA
	p.WarnBefore = 30 * time.Minute
	p.Calendars = map[string]rules.BusinessHours{"berlin": {
		Days:  []time.Weekday{time.Monday, time.Tuesday, time.Wednesday, time.Thursday, time.Friday},
		Start: 9 * time.Hour, End: 17 * time.Hour, Loc: loc,
		Holidays: []time.Time{time.Date(2026, 3, 30, 0, 0, 0, 0, time.UTC)},
	}}
	p.Escalation = rules.EscalationPolicy{Queue: "level2", Calendar: "berlin", Target: rules.Target{
		FirstResponse: rules.Span{Dur: 2 * time.Hour, Business: true}, Resolution: rules.Span{Dur: 8 * time.Hour, Business: true}}}
	return g, sw, loc
}

// recipients lists who got each relayed mail since from whose subject
// or text contains what, one entry per mail, sorted.
func recipients(t *testing.T, g *gateway, from int, what string) []string {
	t.Helper()
	var out []string
	for _, m := range g.relay.Mails()[from:] {
		subj, err := new(mime.WordDecoder).DecodeHeader(header(t, m.Data).Get("Subject"))
		if err != nil {
			t.Fatalf("subject: %v", err)
		}
		if strings.Contains(subj, what) || strings.Contains(agBody(t, m.Data), what) {
			to := slices.Clone(m.To)
			slices.Sort(to)
			out = append(out, strings.Join(to, ","))
		}
	}
	slices.Sort(out)
	return out
}

// bySubject is the ticket with subject (agOpen's pick among tickets
// opened at the same instant may be another).
func bySubject(t *testing.T, g *gateway, _ *store.Ticket, subject string) *store.Ticket {
	t.Helper()
	for _, x := range g.tickets() {
		if x.Subject == subject {
			return x
		}
	}
	t.Fatalf("no ticket %q", subject)
	return nil
}

// TestLevel2ClockOnHolidayCalendarAcrossDST: a customer escalates on
// Friday 16:00 CET; level 2's first response target (2 business hours in
// Berlin) skips the weekend, the switch to summer time and the holiday
// Monday, so it falls due on Tuesday 10:00 CEST. Its warning and breach go
// to level 2's queue and the manager, once each, not to level 1's agents;
// level 1's own targets raise nothing any more.
func TestLevel2ClockOnHolidayCalendarAcrossDST(t *testing.T) {
	g, sw, loc := l2Desk(t)
	now := time.Date(2026, 3, 27, 10, 0, 0, 0, loc)
	g.pipeline.Now = func() time.Time { return now }
	tk := agOpen(t, g, "Printer on fire", "It is really on fire.")

	now = time.Date(2026, 3, 27, 16, 0, 0, 0, loc)
	g.mustSend("alice@customer.example", []string{"support@example.com"},
		msg("alice@customer.example", "support@example.com", "Re: ["+tk.ID+"] Printer on fire", "Nobody helps. Please escalate this."))
	g.settle()
	tk = g.ticket(tk.ID)
	e := tk.SLA.Escalation
	if !tk.Escalated || tk.Queue != "level2" || e == nil || e.Level != 2 || !e.At.Equal(now) {
		t.Fatalf("after escalation: escalated %v queue %q level-2 clock %+v", tk.Escalated, tk.Queue, e)
	}
	wantFirst := time.Date(2026, 3, 31, 8, 0, 0, 0, time.UTC)  // Tuesday 10:00 CEST
	wantResol := time.Date(2026, 3, 31, 14, 0, 0, 0, time.UTC) // Tuesday 16:00 CEST
	if !e.FirstResponseDue.Equal(wantFirst) || !e.ResolutionDue.Equal(wantResol) {
		t.Fatalf("level-2 due times %v / %v, want %v / %v", e.FirstResponseDue.UTC(), e.ResolutionDue.UTC(), wantFirst, wantResol)
	}
	b, err := json.Marshal(view.NewTicket(tk))
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		SLA struct {
			Escalation map[string]any `json:"escalation"`
		} `json:"sla"`
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	es := got.SLA.Escalation
	if es["level"] != 2.0 || es["at"] != "2026-03-27T15:00:00Z" || es["first_response_due"] != "2026-03-31T08:00:00Z" ||
		es["resolution_due"] != "2026-03-31T14:00:00Z" || es["first_response_at"] != nil || es["breached"] == nil {
		t.Errorf("ticket JSON sla.escalation = %v", es)
	}

	level2 := []string{"lev@example.com", "lou@example.com", "meg@example.com"}
	before := len(g.relay.Mails())
	// Level 1's targets (high: 24h resolution) pass over the weekend, and
	// the holiday Monday holds no business time: nothing is alerted.
	for _, at := range []time.Time{
		time.Date(2026, 3, 28, 12, 0, 0, 0, loc), time.Date(2026, 3, 30, 12, 0, 0, 0, loc),
		time.Date(2026, 3, 31, 9, 29, 0, 0, loc),
	} {
		agSweep(t, g, sw, at)
	}
	if n := len(g.relay.Mails()) - before; n != 0 {
		t.Fatalf("%d mails before level 2's warning time: %v", n, recipients(t, g, before, "SLA"))
	}
	agSweep(t, g, sw, time.Date(2026, 3, 31, 9, 30, 0, 0, loc))
	alertsTo(t, g, before, "SLA warning: level 2 first response", level2...)
	for _, at := range []time.Time{wantFirst, wantFirst, wantFirst.Add(time.Hour)} {
		agSweep(t, g, sw, at)
	}
	alertsTo(t, g, before, "SLA breach: level 2 first response", level2...)
	if r := recipients(t, g, before, "ana@example.com"); len(r) != 0 {
		t.Errorf("level 1's agent got %d level-2 alerts", len(r))
	}
	if r := recipients(t, g, before, "SLA "); len(r) != 2*len(level2) {
		t.Errorf("%d SLA alerts in all, want the warning and the breach to each of %v: %v", len(r), level2, r)
	}
	tk = g.ticket(tk.ID)
	if b := tk.SLA.Escalation.Breached; !slices.Equal(b, []string{rules.KindFirstResponse}) || len(tk.SLA.Breached) != 0 {
		t.Errorf("breached: level 2 %v, level 1 %v", b, tk.SLA.Breached)
	}
}

// TestEscalateCommandAndBreach: an agent's #escalate moves the ticket to
// level 2 with its clock, and with [escalation] on_breach a level-1 breach
// does the same from the sweep.
func TestEscalateCommandAndBreach(t *testing.T) {
	g, sw, _ := l2Desk(t)
	now := time.Date(2026, 11, 3, 10, 0, 0, 0, time.UTC)
	g.pipeline.Now = func() time.Time { return now }
	tk := agOpen(t, g, "Printer on fire", "It is really on fire.")
	agReply(g, "ana@example.com", agSigned(t, agKey, rules.TokenReply, tk.ID, "ana@example.com"), tk, "#note\n#escalate\nNeeds the firmware team.")
	tk = g.ticket(tk.ID)
	if !tk.Escalated || tk.Queue != "level2" || tk.SLA.Escalation == nil || !slices.Contains(tk.Watchers, "meg@example.com") {
		t.Fatalf("after #escalate: escalated %v queue %q clock %+v watchers %v", tk.Escalated, tk.Queue, tk.SLA.Escalation, tk.Watchers)
	}
	if ev := agEvents(tk, "escalated"); len(ev) != 1 || ev[0].Actor != "ana@example.com" || !strings.Contains(ev[0].Detail, "queue support → level2") {
		t.Errorf("escalated events %+v", ev)
	}

	sw.Policy.SLA.Escalation.OnBreach = true
	now = now.Add(-time.Hour)
	other := bySubject(t, g, agOpen(t, g, "Scanner jammed", "Paper stuck."), "Scanner jammed")
	now = now.Add(time.Hour)
	// Sorted by due time, the escalated ticket (level 2's first response
	// due today at 13:00 Berlin time) comes before the other (level 1's,
	// tomorrow), though its level-1 target would be an hour later.
	var order []string
	err := g.store.View(context.Background(), func(tx store.Tx) error {
		list, _, err := tx.Tickets(store.Filter{Sort: store.SortDue})
		for _, x := range list {
			order = append(order, x.ID)
		}
		return err
	})
	if err != nil || !slices.Equal(order, []string{tk.ID, other.ID}) {
		t.Errorf("tickets by due time: %v (%v), want %v", order, err, []string{tk.ID, other.ID})
	}
	before := len(g.relay.Mails())
	// Medium: first response due in 24h.
	agSweep(t, g, sw, now.Add(24*time.Hour))
	agSweep(t, g, sw, now.Add(25*time.Hour))
	other = g.ticket(other.ID)
	if !other.Escalated || other.Queue != "level2" || other.SLA.Escalation == nil || !other.SLA.Escalation.At.Equal(now.Add(24*time.Hour)) {
		t.Fatalf("after the level-1 breach: escalated %v queue %q clock %+v", other.Escalated, other.Queue, other.SLA.Escalation)
	}
	// Level 1's breach goes to level 1's people; the ticket escalated by
	// #escalate is on level 2's clock and raises no level-1 alert.
	// One to each of the support queue's agents and the manager.
	alertsTo(t, g, before, "SLA breach: first response overdue", "ana@example.com", "ben@example.com", "meg@example.com")
	if n := len(agEvents(other, "escalated")); n != 1 {
		t.Errorf("%d escalated events, want 1", n)
	}
}

// TestCriticalTicketsAreFollowedUp: a critical ticket without a public
// update for critical_update_every reminds its assignee, once per
// interval; unassigned, the queue's agents; with nobody in the queue, the
// managers. A public reply starts the interval again; resolved tickets and
// other priorities are not followed.
func TestCriticalTicketsAreFollowedUp(t *testing.T) {
	g, sw, _ := l2Desk(t)
	sw.Policy.SLA.CriticalUpdateEvery = 3 * time.Hour
	sw.Policy.SLA.Targets = map[rules.Priority]rules.Target{} // no SLA alerts in the way
	now := time.Date(2026, 11, 3, 10, 0, 0, 0, time.UTC)
	g.pipeline.Now = func() time.Time { return now }
	open := func(subject string, prio rules.Priority, fn func(*store.Ticket)) *store.Ticket {
		return openWith(t, g, sw, now, subject, prio, fn)
	}
	mine := open("Outage one", rules.PriorityCritical, func(x *store.Ticket) { x.Assignee = "ana@example.com" })
	queue := open("Outage two", rules.PriorityCritical, nil)
	lonely := open("Outage three", rules.PriorityCritical, func(x *store.Ticket) { x.Queue = "nobody" })
	open("Outage four", rules.PriorityHigh, nil)
	done := open("Outage five", rules.PriorityCritical, func(x *store.Ticket) { x.Status = rules.StatusResolved; sw.Policy.followSLA(x, now) })

	// Ana answers her ticket publicly an hour in.
	created := now
	now = created.Add(time.Hour)
	agReply(g, "ana@example.com", agSigned(t, agKey, rules.TokenReply, mine.ID, "ana@example.com"), mine, "We are on it.")
	before := len(g.relay.Mails())
	agSweep(t, g, sw, created.Add(3*time.Hour-time.Minute))
	if r := recipients(t, g, before, "Critical ticket"); len(r) != 0 {
		t.Fatalf("reminders before the interval: %v", r)
	}
	agSweep(t, g, sw, created.Add(3*time.Hour))
	want := []string{"ana@example.com", "ben@example.com", "meg@example.com"}
	if r := recipients(t, g, before, "Critical ticket"); !slices.Equal(r, want) {
		t.Fatalf("reminders 3h after creation went to %v, want %v, one mail each (queue, then managers)", r, want)
	}
	alertsTo(t, g, before, "["+queue.ID+"] Critical", "ana@example.com", "ben@example.com")
	// A ticket whose queue has nobody: the manager.
	alertsTo(t, g, before, "["+lonely.ID+"] Critical", "meg@example.com")
	if r := recipients(t, g, before, "["+done.ID+"]"); len(r) != 0 {
		t.Errorf("resolved ticket reminded: %v", r)
	}
	// 3h after Ana's update: her reminder, once; the others are not due again yet.
	mark := len(g.relay.Mails())
	agSweep(t, g, sw, created.Add(4*time.Hour))
	agSweep(t, g, sw, created.Add(4*time.Hour+30*time.Minute))
	if r := recipients(t, g, mark, "Critical ticket"); !slices.Equal(r, []string{"ana@example.com"}) {
		t.Fatalf("reminders 3h after the public update: %v, want Ana's alone, once", r)
	}
	alertsTo(t, g, mark, "["+mine.ID+"] Critical", "ana@example.com")
	// One interval later each is reminded again, once.
	mark = len(g.relay.Mails())
	for _, h := range []time.Duration{6, 7, 7} {
		agSweep(t, g, sw, created.Add(h*time.Hour))
	}
	// One per person of each critical unresolved ticket.
	alertsTo(t, g, mark, "["+mine.ID+"] Critical", "ana@example.com")
	alertsTo(t, g, mark, "["+queue.ID+"] Critical", "ana@example.com", "ben@example.com")
	alertsTo(t, g, mark, "["+lonely.ID+"] Critical", "meg@example.com")
	if r := recipients(t, g, mark, "Critical ticket"); len(r) != 4 {
		t.Errorf("second round of reminders: %v, want one to each person of each critical unresolved ticket", r)
	}
	if ev := agEvents(g.ticket(mine.ID), "critical_reminder"); len(ev) != 2 || !strings.Contains(ev[0].Detail, "reminded ana@example.com") {
		t.Errorf("critical_reminder events on Ana's ticket: %+v", ev)
	}
}

// openWith opens a ticket by mail with subject, sets its priority at now
// and applies fn to it.
func openWith(t *testing.T, g *gateway, sw *Sweeper, now time.Time, subject string, prio rules.Priority, fn func(*store.Ticket)) *store.Ticket {
	t.Helper()
	tk := bySubject(t, g, agOpen(t, g, subject, "Everything is down."), subject)
	err := g.store.UpdateNow(context.Background(), func(tx store.Tx) error {
		x, err := tx.Ticket(tk.ID)
		if err != nil {
			return err
		}
		x.Priority = prio
		sw.Policy.PriorityChanged(x, now)
		if fn != nil {
			fn(x)
		}
		return tx.PutTicket(x)
	})
	if err != nil {
		t.Fatal(err)
	}
	return g.ticket(tk.ID)
}

// TestCriticalFollowUpOfAnAssigneeWhoLeftGoesToTheQueue: the follow-up
// of a critical ticket whose assignee is no longer among the agents goes
// to its queue's agents, as for an unassigned ticket, not to her.
func TestCriticalFollowUpOfAnAssigneeWhoLeftGoesToTheQueue(t *testing.T) {
	g, sw, _ := l2Desk(t)
	sw.Policy.SLA.CriticalUpdateEvery = 3 * time.Hour
	sw.Policy.SLA.Targets = map[rules.Priority]rules.Target{}
	now := time.Date(2026, 11, 3, 10, 0, 0, 0, time.UTC)
	g.pipeline.Now = func() time.Time { return now }
	left := openWith(t, g, sw, now, "Outage", rules.PriorityCritical, func(x *store.Ticket) { x.Assignee = "gone@example.com" })
	before := len(g.relay.Mails())
	agSweep(t, g, sw, now.Add(3*time.Hour))
	// The queue's agents, one mail each.
	alertsTo(t, g, before, "["+left.ID+"] Critical", "ana@example.com", "ben@example.com")
}

// TestCriticalFollowUpKeepsLevel2Hours: an escalated critical ticket is
// followed in level 2's calendar: opened and escalated on Friday 15:00
// CET, its 3 hours without an update run out on Tuesday 10:00 CEST (two
// on Friday, none over the weekend, the switch to summer time and the
// holiday Monday), and the reminder goes to level 2's queue.
func TestCriticalFollowUpKeepsLevel2Hours(t *testing.T) {
	g, sw, loc := l2Desk(t)
	sw.Policy.SLA.CriticalUpdateEvery = 3 * time.Hour
	sw.Policy.SLA.Targets = map[rules.Priority]rules.Target{}
	sw.Policy.SLA.Escalation.Target = rules.Target{}
	now := time.Date(2026, 3, 27, 15, 0, 0, 0, loc)
	g.pipeline.Now = func() time.Time { return now }
	tk := agOpen(t, g, "Outage", "Everything is down. Please escalate this.")
	err := g.store.UpdateNow(context.Background(), func(tx store.Tx) error {
		x, err := tx.Ticket(tk.ID)
		if err != nil {
			return err
		}
		x.Priority = rules.PriorityCritical
		sw.Policy.PriorityChanged(x, now)
		return tx.PutTicket(x)
	})
	if err != nil {
		t.Fatal(err)
	}
	if tk = g.ticket(tk.ID); tk.Queue != "level2" || tk.SLA.Escalation == nil {
		t.Fatalf("new ticket not escalated: queue %q clock %+v", tk.Queue, tk.SLA.Escalation)
	}
	before := len(g.relay.Mails())
	due := time.Date(2026, 3, 31, 8, 0, 0, 0, time.UTC)
	for _, at := range []time.Time{
		time.Date(2026, 3, 27, 18, 0, 0, 0, loc), time.Date(2026, 3, 28, 12, 0, 0, 0, loc),
		time.Date(2026, 3, 30, 12, 0, 0, 0, loc), due.Add(-time.Minute),
	} {
		agSweep(t, g, sw, at)
	}
	if r := recipients(t, g, before, "Critical ticket"); len(r) != 0 {
		t.Fatalf("reminders outside level 2's hours: %v", r)
	}
	agSweep(t, g, sw, due)
	agSweep(t, g, sw, due.Add(time.Hour))
	// By Tuesday 11:00 CEST: one to each of level 2's queue.
	alertsTo(t, g, before, "Critical ticket", "lev@example.com", "lou@example.com")
}

// TestEscalatedAtOnceKeepsLevel1InRouteCalendar: a new ticket escalated by
// its first mail counts level 1 in its own queue's calendar, not level 2's.
func TestEscalatedAtOnceKeepsLevel1InRouteCalendar(t *testing.T) {
	g, sw, loc := l2Desk(t)
	p := &sw.Policy.SLA
	p.QueueCalendars = map[string]string{"level2": "berlin"}
	fourBH := rules.Target{FirstResponse: rules.Span{Dur: 4 * time.Hour, Business: true}}
	p.Targets = map[rules.Priority]rules.Target{rules.PriorityMedium: fourBH, rules.PriorityHigh: fourBH, rules.PriorityCritical: fourBH}
	now := time.Date(2026, 3, 27, 16, 0, 0, 0, loc) // Friday 15:00 UTC
	g.pipeline.Now = func() time.Time { return now }
	tk := agOpen(t, g, "Printer on fire", "It is really on fire. Please escalate this.")
	if !tk.Escalated || tk.Queue != "level2" {
		t.Fatalf("new ticket: escalated %v queue %q", tk.Escalated, tk.Queue)
	}
	// Support's calendar (09:00-17:00 UTC): 2h on Friday, 2h on Monday.
	want := time.Date(2026, 3, 30, 11, 0, 0, 0, time.UTC)
	if got := tk.SLA.FirstResponseDue; !got.Equal(want) {
		t.Errorf("level-1 first response due %v, want %v (the support queue's hours)", got.UTC(), want)
	}
}

// TestLevelOneAgentDoesNotTakeAnEscalatedTicket: a customer escalates a
// ticket nobody has answered yet; it moves to level 2's queue. A level-1
// agent answering her old notification does not reach the customer, nor
// take the ticket, nor stop level 2's first-response clock: her text is a
// note for level 2, and she is told why. Level 2's agent then answers
// the customer and takes the ticket.
func TestLevelOneAgentDoesNotTakeAnEscalatedTicket(t *testing.T) {
	g, _, _ := l2Desk(t)
	now := time.Date(2026, 11, 3, 10, 0, 0, 0, time.UTC)
	g.pipeline.Now = func() time.Time { return now }
	tk := agOpen(t, g, "Printer on fire", "It is really on fire.")
	g.mustSend("alice@customer.example", []string{"support@example.com"},
		msg("alice@customer.example", "support@example.com", "Re: ["+tk.ID+"] "+tk.Subject, "Nobody answers. Please escalate."))
	g.settle()
	if tk = g.ticket(tk.ID); !tk.Escalated || tk.Queue != "level2" || tk.Assignee != "" {
		t.Fatalf("after the customer's escalation: escalated %v queue %q assignee %q", tk.Escalated, tk.Queue, tk.Assignee)
	}

	now = now.Add(10 * time.Minute)
	before := len(g.relay.Mails())
	agReply(g, "ana@example.com", agSigned(t, agKey, rules.TokenReply, tk.ID, "ana@example.com"), tk, "I am on it, Alice.")
	tk = g.ticket(tk.ID)
	if n := len(agMailsTo(g, before, "alice@customer.example")); n != 0 || tk.Assignee != "" || tk.SLA.Escalation.FirstResponseAt != nil {
		t.Errorf("support's ana answered the level-2 ticket: alice got %d mails, assignee %q, level 2 first response %v",
			n, tk.Assignee, tk.SLA.Escalation.FirstResponseAt)
	}
	if held := agEvents(tk, "reply_held"); len(held) != 1 || !strings.Contains(held[0].Detail, "queue level2") {
		t.Errorf("reply_held events %+v", held)
	}
	if body := agBody(t, agOne(t, g, before, "ana@example.com").Data); !strings.Contains(body, "in the queue level2") {
		t.Errorf("ana was not told why her reply was not sent:\n%s", body)
	}
	if got := recipients(t, g, before, "I am on it, Alice."); !slices.Equal(got, []string{"lev@example.com", "lou@example.com", "meg@example.com"}) {
		t.Errorf("ana's text reached %v, want level 2's agents and the manager as a note", got)
	}

	now = now.Add(10 * time.Minute)
	before = len(g.relay.Mails())
	agReply(g, "lev@example.com", agSigned(t, agKey, rules.TokenReply, tk.ID, "lev@example.com"), tk, "Level two here, Alice.")
	tk = g.ticket(tk.ID)
	if n := len(agMailsTo(g, before, "alice@customer.example")); n != 1 || tk.Assignee != "lev@example.com" ||
		tk.SLA.Escalation.FirstResponseAt == nil || !tk.SLA.Escalation.FirstResponseAt.Equal(now) {
		t.Errorf("level 2's lev answered: alice got %d mails, assignee %q, level 2 first response %v", n, tk.Assignee, tk.SLA.Escalation.FirstResponseAt)
	}

	// A level-1 agent escalating a ticket of her queue tells the customer
	// so in the same mail: that reply is written at level 1 and goes out.
	other := bySubject(t, g, agOpen(t, g, "Scanner jammed", "Paper stuck."), "Scanner jammed")
	before = len(g.relay.Mails())
	agReply(g, "ana@example.com", agSigned(t, agKey, rules.TokenReply, other.ID, "ana@example.com"), other, "#escalate\nOur specialists take it from here.")
	if other = g.ticket(other.ID); !other.Escalated || len(agMailsTo(g, before, "alice@customer.example")) != 1 {
		t.Errorf("ana's reply with #escalate: escalated %v, alice got %d mails, want 1", other.Escalated, len(agMailsTo(g, before, "alice@customer.example")))
	}
}

// TestEscalationHandsAnAssignedTicketToLevelTwo: ana answered a ticket
// and owns it; the customer then asks to escalate, and the ticket moves
// to level 2's queue. Level 2's lev answers: his reply reaches the
// customer, he takes the ticket and level 2's first response is his. He
// was not told the ticket is ana's, his text held as a note. An agent's
// own #escalate hands her ticket on the same way.
func TestEscalationHandsAnAssignedTicketToLevelTwo(t *testing.T) {
	g, _, _ := l2Desk(t)
	now := time.Date(2026, 11, 3, 10, 0, 0, 0, time.UTC)
	g.pipeline.Now = func() time.Time { return now }
	tk := agOpen(t, g, "Printer on fire", "It is really on fire.")
	agReply(g, "ana@example.com", agSigned(t, agKey, rules.TokenReply, tk.ID, "ana@example.com"), tk, "Have you tried turning it off?")
	if tk = g.ticket(tk.ID); tk.Assignee != "ana@example.com" {
		t.Fatalf("after ana's reply: assignee %q", tk.Assignee)
	}
	now = now.Add(time.Hour)
	g.mustSend("alice@customer.example", []string{"support@example.com"},
		msg("alice@customer.example", "support@example.com", "Re: ["+tk.ID+"] "+tk.Subject, "Still burning. Please escalate."))
	g.settle()
	if tk = g.ticket(tk.ID); !tk.Escalated || tk.Queue != "level2" || tk.Assignee != "" {
		t.Errorf("after the customer's escalation: escalated %v queue %q assignee %q, want level2 and nobody", tk.Escalated, tk.Queue, tk.Assignee)
	}

	now = now.Add(10 * time.Minute)
	before := len(g.relay.Mails())
	agReply(g, "lev@example.com", agSigned(t, agKey, rules.TokenReply, tk.ID, "lev@example.com"), tk, "Level two here, Alice.")
	tk = g.ticket(tk.ID)
	if n := len(agMailsTo(g, before, "alice@customer.example")); n != 1 || tk.Assignee != "lev@example.com" ||
		tk.SLA.Escalation.FirstResponseAt == nil || !tk.SLA.Escalation.FirstResponseAt.Equal(now) {
		t.Errorf("level 2's lev answered: alice got %d mails, assignee %q, level 2 first response %v, held %v",
			n, tk.Assignee, tk.SLA.Escalation.FirstResponseAt, agEvents(tk, "reply_held"))
	}

	other := bySubject(t, g, agOpen(t, g, "Scanner jammed", "Paper stuck."), "Scanner jammed")
	agReply(g, "ana@example.com", agSigned(t, agKey, rules.TokenReply, other.ID, "ana@example.com"), other, "Which model is it?")
	before = len(g.relay.Mails())
	agReply(g, "ana@example.com", agSigned(t, agKey, rules.TokenReply, other.ID, "ana@example.com"), other, "#escalate\nOur specialists take it from here.")
	other = g.ticket(other.ID)
	if !other.Escalated || other.Assignee != "" || len(agMailsTo(g, before, "alice@customer.example")) != 1 {
		t.Errorf("ana's reply with #escalate: escalated %v, assignee %q, alice got %d mails, want 1",
			other.Escalated, other.Assignee, len(agMailsTo(g, before, "alice@customer.example")))
	}
	if ev := agEvents(other, "escalated"); len(ev) != 1 || !strings.Contains(ev[0].Detail, "ana@example.com") {
		t.Errorf("escalated events %+v, want one naming ana, no longer assigned", ev)
	}
}

// TestEscalateNoteReachesLevelTwo: ana escalates a ticket with a note for
// level 2 ("#note", "#escalate" and what she found). The note goes to the
// people of the ticket as it is after her commands: level 2's agents and
// the manager now watching it, not level 1's queue she handed it from.
func TestEscalateNoteReachesLevelTwo(t *testing.T) {
	g, _, _ := l2Desk(t)
	tk := agOpen(t, g, "Printer on fire", "It is really on fire.")
	before := len(g.relay.Mails())
	agReply(g, "ana@example.com", agSigned(t, agKey, rules.TokenReply, tk.ID, "ana@example.com"), tk, "#note\n#escalate\nNeeds the firmware team.")
	if tk = g.ticket(tk.ID); !tk.Escalated || tk.Queue != "level2" {
		t.Fatalf("after #escalate: escalated %v queue %q", tk.Escalated, tk.Queue)
	}
	if got := recipients(t, g, before, "Needs the firmware team."); !slices.Equal(got, []string{"lev@example.com", "lou@example.com", "meg@example.com"}) {
		t.Errorf("ana's note for level 2 reached %v, want level 2's agents and the manager", got)
	}
}

// TestBareEscalateReachesLevelTwo: an agent's mail of only "#escalate"
// moves the ticket to level 2's queue; level 2's agents and the managers
// now watching hear of it by mail, as of a note, instead of finding it
// at their first SLA warning.
func TestBareEscalateReachesLevelTwo(t *testing.T) {
	g, _, _ := l2Desk(t)
	tk := agOpen(t, g, "Printer on fire", "It is really on fire.")
	before := len(g.relay.Mails())
	agReply(g, "ana@example.com", agSigned(t, agKey, rules.TokenReply, tk.ID, "ana@example.com"), tk, "#escalate")
	if tk = g.ticket(tk.ID); !tk.Escalated || tk.Queue != "level2" {
		t.Fatalf("after #escalate: escalated %v queue %q", tk.Escalated, tk.Queue)
	}
	if got := recipients(t, g, before, "#escalate"); !slices.Equal(got, []string{"lev@example.com", "lou@example.com", "meg@example.com"}) {
		t.Errorf("ana's #escalate reached %v, want level 2's agents and the manager", got)
	}
	if n := len(agMailsTo(g, before, "alice@customer.example")); n != 0 {
		t.Errorf("the customer got %d mails for an agent's bare #escalate", n)
	}
}

// TestBreachEscalationReachesLevelTwo: with [escalation] on_breach, a
// level-1 breach moves the unassigned ticket to level 2's queue. Level
// 2's agents hear of it at once, by a note as of an agent's bare
// #escalate, not first at their own SLA warning; the manager, alerted of
// the breach in the same sweep, gets no second mail, nor the customer any.
func TestBreachEscalationReachesLevelTwo(t *testing.T) {
	g, sw, _ := l2Desk(t)
	sw.Policy.SLA.Escalation.OnBreach = true
	now := time.Date(2026, 11, 3, 10, 0, 0, 0, time.UTC)
	g.pipeline.Now = func() time.Time { return now }
	tk := agOpen(t, g, "Printer on fire", "It is really on fire.")
	before := len(g.relay.Mails())
	// Medium: first response due in 24h.
	agSweep(t, g, sw, now.Add(25*time.Hour))
	if tk = g.ticket(tk.ID); !tk.Escalated || tk.Queue != "level2" {
		t.Fatalf("after the level-1 breach: escalated %v queue %q", tk.Escalated, tk.Queue)
	}
	for _, addr := range []string{"lev@example.com", "lou@example.com"} {
		l := agMailsTo(g, before, addr)
		if len(l) != 1 {
			t.Errorf("%s (level 2) got %d mails of the escalation, want 1", addr, len(l))
			continue
		}
		if body := agBody(t, l[0].Data); !strings.Contains(body, tk.ID) || !strings.Contains(body, "level 2") || !strings.Contains(body, "first response overdue") {
			t.Errorf("%s's mail of the escalation:\n%s", addr, body)
		}
		if got, want := agReplyTo(t, l[0]), agSigned(t, agKey, rules.TokenNote, tk.ID, addr); got != want {
			t.Errorf("%s's mail of the escalation answers to %s, want their note address %s", addr, got, want)
		}
	}
	alertsTo(t, g, before, "SLA breach: first response overdue", "ana@example.com", "ben@example.com", "meg@example.com")
	if n := len(agMailsTo(g, before, "meg@example.com")); n != 1 {
		t.Errorf("the manager got %d mails, want the breach alert alone", n)
	}
	if n := len(agMailsTo(g, before, "alice@customer.example")); n != 0 {
		t.Errorf("the customer got %d mails for the breach escalation", n)
	}
	// The next sweep tells nobody again.
	before = len(g.relay.Mails())
	agSweep(t, g, sw, now.Add(26*time.Hour))
	if n := len(agMailsTo(g, before, "lev@example.com")); n != 0 {
		t.Errorf("lev got %d more mails at the next sweep", n)
	}
}

// TestEscalatingReplyReachesLevelTwo: ana answers the customer and
// escalates in the same mail ("#escalate" above her text). Her reply
// reaches the customer; level 2's agents and the manager now watching
// hear of the ticket at once, as of a bare #escalate, not first at their
// SLA warning.
func TestEscalatingReplyReachesLevelTwo(t *testing.T) {
	g, _, _ := l2Desk(t)
	tk := agOpen(t, g, "Printer on fire", "It is really on fire.")
	before := len(g.relay.Mails())
	agReply(g, "ana@example.com", agSigned(t, agKey, rules.TokenReply, tk.ID, "ana@example.com"), tk, "#escalate\nOur specialists take it from here.")
	if tk = g.ticket(tk.ID); !tk.Escalated || tk.Queue != "level2" {
		t.Fatalf("after #escalate: escalated %v queue %q", tk.Escalated, tk.Queue)
	}
	if n := len(agMailsTo(g, before, "alice@customer.example")); n != 1 {
		t.Errorf("the customer got %d mails, want ana's reply", n)
	}
	for _, addr := range []string{"lev@example.com", "lou@example.com", "meg@example.com"} {
		l := agMailsTo(g, before, addr)
		if len(l) != 1 {
			t.Errorf("%s got %d mails of ana's escalation, want 1", addr, len(l))
			continue
		}
		if body := agBody(t, l[0].Data); !strings.Contains(body, tk.ID) || !strings.Contains(body, "#escalate") {
			t.Errorf("%s's mail of the escalation:\n%s", addr, body)
		}
		if got, want := agReplyTo(t, l[0]), agSigned(t, agKey, rules.TokenNote, tk.ID, addr); got != want {
			t.Errorf("%s's mail answers to %s, want their note address %s", addr, got, want)
		}
	}
	if n := len(agMailsTo(g, before, "ana@example.com")) + len(agMailsTo(g, before, "ben@example.com")); n != 0 {
		t.Errorf("level 1 got %d mails of ana's escalation", n)
	}
}
