package desk

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"ticketgate/rules"
	"ticketgate/store"
)

// TestReportCountsWhatTheDeskDid builds a week of a desk by mail on a
// controlled clock (business hours Monday to Friday 09-17 UTC) and reads
// the team lead's numbers back.
func TestReportCountsWhatTheDeskDid(t *testing.T) {
	g := startDesk(t)
	agPolicy(t, g)
	now := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC) // a Monday
	g.pipeline.Now = func() time.Time { return now }
	ana := func(tk *store.Ticket, text string) {
		agReply(g, "ana@example.com", agSigned(t, agKey, rules.TokenReply, tk.ID, "ana@example.com"), tk, text)
	}
	customer := func(tk *store.Ticket, text string) {
		g.mustSend("alice@customer.example", []string{"support@example.com"},
			msg("alice@customer.example", "support@example.com", "Re: ["+tk.ID+"] "+tk.Subject, text))
		g.settle()
	}

	// A: answered in 1h, closed after 2h, rated 5.
	a := agOpen(t, g, "Printer on fire", "It is on fire.")
	now = now.Add(time.Hour)
	ana(a, "Unplug it, please.")
	now = now.Add(time.Hour)
	ana(a, "#status closed\nIt is out now.")
	now = now.Add(time.Hour)
	customer(a, "5")
	if s := g.ticket(a.ID).Satisfaction; s == nil || s.Score != 5 {
		t.Fatalf("the rating was not kept: %+v", s)
	}

	// B: opened Friday 16:00, answered Monday 10:00 (66h, 2 business
	// hours, past the 24h first-response target), resolved at 11:00.
	now = time.Date(2026, 11, 6, 16, 0, 0, 0, time.UTC)
	b := agOpen(t, g, "Scanner jammed", "Paper everywhere.")
	now = time.Date(2026, 11, 9, 10, 0, 0, 0, time.UTC)
	ana(b, "Open the lid.")
	now = now.Add(time.Hour)
	ana(b, "#status resolved\nFixed.")

	// C: opened Monday 13:00, answered and closed at 14:00, reopened by
	// the customer at 15:00.
	now = time.Date(2026, 11, 9, 13, 0, 0, 0, time.UTC)
	c := agOpen(t, g, "Fax is silent", "No tone.")
	now = now.Add(time.Hour)
	ana(c, "#status closed\nPlug the line in.")
	now = now.Add(time.Hour)
	customer(c, "The line is in and it is still silent.")
	if st := g.ticket(c.ID).Status; st != rules.StatusOpen {
		t.Fatalf("C is %s after the customer's reply, want open", st)
	}

	report := func(q ReportQuery) *Report {
		t.Helper()
		q.Hours, q.Now = rules.DefaultBusinessHours(), time.Date(2026, 11, 9, 16, 0, 0, 0, time.UTC)
		rep, err := ReportContext(context.Background(), g.store, q)
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}
	rep := report(ReportQuery{})
	if rep.Opened != 3 || rep.Resolved != 3 || rep.Reopened != 1 {
		t.Errorf("opened %d resolved %d reopened %d, want 3 3 1", rep.Opened, rep.Resolved, rep.Reopened)
	}
	h := time.Hour.Seconds()
	wantDur := func(name string, d Durations, n int, med, p90, bmed, bp90 float64) {
		t.Helper()
		got := []float64{d.Calendar.Median, d.Calendar.P90, d.Business.Median, d.Business.P90}
		want := []float64{med * h, p90 * h, bmed * h, bp90 * h}
		if d.Count != n || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] || got[3] != want[3] {
			t.Errorf("%s: count %d %v, want %d %v", name, d.Count, got, n, want)
		}
	}
	wantDur("first response", rep.FirstResponse, 3, 1, 66, 1, 2)
	wantDur("resolution", rep.Resolution, 3, 2, 67, 2, 3)
	// Medium: first response met on A and C, missed on B; resolution met
	// on A and B, C's running again.
	want := Compliance{Tickets: 3, FirstResponseMet: 2, FirstResponseMissed: 1, ResolutionMet: 2, Percent: 80}
	if got := rep.SLA.ByPriority["medium"]; got == nil || *got != want {
		t.Errorf("SLA medium %+v, want %+v", got, want)
	}
	if got := rep.SLA.ByLevel["1"]; got == nil || *got != want {
		t.Errorf("SLA level 1 %+v, want %+v", got, want)
	}
	if s := rep.Satisfaction; s.Count != 1 || s.Average != 5 || s.Distribution["5"] != 1 {
		t.Errorf("satisfaction %+v", s)
	}

	// The second week only: B and C.
	week := report(ReportQuery{From: time.Date(2026, 11, 6, 0, 0, 0, 0, time.UTC), To: time.Date(2026, 11, 10, 0, 0, 0, 0, time.UTC)})
	if week.Opened != 2 || week.Resolved != 2 || week.Reopened != 1 || week.Satisfaction.Count != 0 || week.FirstResponse.Count != 2 {
		t.Errorf("second week: %+v", week)
	}
	if other := report(ReportQuery{Queue: "tech"}); other.Opened != 0 || other.Resolved != 0 || len(other.SLA.ByPriority) != 0 {
		t.Errorf("queue tech: %+v", other)
	}
}

// TestReportTimesAreUTC: a report asked for days in another time zone
// gives its period in UTC in its JSON, like every other time.
func TestReportTimesAreUTC(t *testing.T) {
	g := startDesk(t)
	berlin := time.FixedZone("CET", 3600)
	rep, err := ReportContext(context.Background(), g.store, ReportQuery{
		From: time.Date(2026, 11, 2, 0, 0, 0, 0, berlin), To: time.Date(2026, 11, 9, 0, 0, 0, 0, berlin)})
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"from":"2026-11-01T23:00:00Z"`) || !strings.Contains(string(b), `"to":"2026-11-08T23:00:00Z"`) {
		t.Errorf("report JSON %.200s; want from and to in UTC", b)
	}
}

// TestReportCountsAMergedTicketsChangesOnce: a merge copies the source's
// events onto the target, and the report counts the source's resolution
// and reopening once, not once more for the copy.
func TestReportCountsAMergedTicketsChangesOnce(t *testing.T) {
	g := startDesk(t)
	agPolicy(t, g)
	ctx := context.Background()
	dst := agOpenFrom(t, g, "alice@customer.example", "Printer on fire", "It is really on fire.")
	src := agOpenFrom(t, g, "dave@customer.example", "Office printer burning", "Smoke everywhere.")
	if _, err := g.pipeline.Act(ctx, src.ID, Action{Name: "status", Value: "resolved"}); err != nil {
		t.Fatal(err)
	}
	if _, err := g.pipeline.Act(ctx, src.ID, Action{Name: "status", Value: "closed"}); err != nil {
		t.Fatal(err)
	}
	if _, err := g.pipeline.Act(ctx, src.ID, Action{Name: "status", Value: "open"}); err != nil {
		t.Fatal(err)
	}
	if _, err := g.pipeline.Act(ctx, src.ID, Action{Name: "merge", Value: dst.ID}); err != nil {
		t.Fatal(err)
	}
	rep, err := ReportContext(ctx, g.store, ReportQuery{Hours: rules.DefaultBusinessHours()})
	if err != nil {
		t.Fatal(err)
	}
	// The source was resolved once and reopened once; the merge closed it.
	if rep.Opened != 2 || rep.Resolved != 2 || rep.Reopened != 1 || rep.Resolution.Count != 2 {
		t.Errorf("opened %d resolved %d (%d resolution times) reopened %d, want 2 2 (2) 1",
			rep.Opened, rep.Resolved, rep.Resolution.Count, rep.Reopened)
	}
}

// TestReportLevelTwoCountsLevelTwoTargets: an escalated ticket counts in
// the report's level 2 by level 2's targets, counted from the escalation:
// level 2's first answer in time is met there, though level 1's first
// response came too late.
func TestReportLevelTwoCountsLevelTwoTargets(t *testing.T) {
	g := startDesk(t)
	agPolicy(t, g)
	now := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	g.pipeline.Now = func() time.Time { return now }
	tk := agOpen(t, g, "Printer on fire", "It is on fire.") // medium: first response due in 24h
	now = now.Add(30 * time.Hour)
	agReply(g, "ana@example.com", agSigned(t, agKey, rules.TokenNote, tk.ID, "ana@example.com"), tk, "#escalate")
	if !g.ticket(tk.ID).Escalated {
		t.Fatal("#escalate did not escalate the ticket")
	}
	now = now.Add(time.Hour) // level 2's first response, due 2h after the escalation
	agReply(g, "ana@example.com", agSigned(t, agKey, rules.TokenReply, tk.ID, "ana@example.com"), tk, "Unplug it, please.")
	rep, err := ReportContext(context.Background(), g.store, ReportQuery{Hours: rules.DefaultBusinessHours(), Now: now.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	want := Compliance{Tickets: 1, FirstResponseMet: 1, Percent: 100}
	if got := rep.SLA.ByLevel["2"]; got == nil || *got != want {
		t.Errorf("SLA level 2 %+v, want %+v", got, want)
	}
}

// TestReportQueueCountsWhereEachThingHappened: a ticket opened and first
// answered in support, then escalated to level2 and resolved there,
// counts its opening, first response and level-1 targets in support's
// report, and its level-2 target and resolution in level2's.
func TestReportQueueCountsWhereEachThingHappened(t *testing.T) {
	g, _, _ := l2Desk(t)
	now := time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC) // a Monday
	g.pipeline.Now = func() time.Time { return now }
	tk := agOpen(t, g, "Printer on fire", "It is on fire.")
	now = now.Add(time.Hour)
	agReply(g, "ana@example.com", agSigned(t, agKey, rules.TokenReply, tk.ID, "ana@example.com"), tk, "Unplug it, please.")
	now = now.Add(time.Hour)
	agReply(g, "ana@example.com", agSigned(t, agKey, rules.TokenNote, tk.ID, "ana@example.com"), tk, "#escalate")
	if tk = g.ticket(tk.ID); tk.Queue != "level2" {
		t.Fatalf("after #escalate the ticket is in %q, want level2", tk.Queue)
	}
	now = now.Add(30 * time.Minute)
	if _, err := g.pipeline.Act(context.Background(), tk.ID, Action{Name: "assign", Value: "lev@example.com"}); err != nil {
		t.Fatal(err)
	}
	agReply(g, "lev@example.com", agSigned(t, agKey, rules.TokenReply, tk.ID, "lev@example.com"), tk, "#status resolved\nNew firmware, fixed.")
	if tk = g.ticket(tk.ID); tk.Status != rules.StatusResolved {
		t.Fatalf("lev's reply left the ticket %s", tk.Status)
	}
	report := func(queue string) *Report {
		t.Helper()
		rep, err := ReportContext(context.Background(), g.store, ReportQuery{Queue: queue, Hours: rules.DefaultBusinessHours(), Now: now.Add(time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}
	sup := report("support")
	if sup.Opened != 1 || sup.FirstResponse.Count != 1 || sup.FirstResponse.Calendar.Median != time.Hour.Seconds() || sup.Resolved != 0 {
		t.Errorf("support: opened %d, first responses %d (median %vs), resolved %d; want 1, 1 (3600s), 0",
			sup.Opened, sup.FirstResponse.Count, sup.FirstResponse.Calendar.Median, sup.Resolved)
	}
	if med := sup.SLA.ByPriority["medium"]; med == nil || med.FirstResponseMet != 1 || len(sup.SLA.ByLevel) != 0 {
		t.Errorf("support's SLA: by priority %+v, by level %+v; want level 1's first response met and no level 2", sup.SLA.ByPriority, sup.SLA.ByLevel)
	}
	l2 := report("level2")
	if l2.Opened != 0 || l2.FirstResponse.Count != 0 || l2.Resolved != 1 {
		t.Errorf("level2: opened %d, first responses %d, resolved %d; want 0, 0, 1", l2.Opened, l2.FirstResponse.Count, l2.Resolved)
	}
	if lv := l2.SLA.ByLevel["2"]; lv == nil || lv.FirstResponseMet != 1 || lv.ResolutionMet != 1 || l2.SLA.ByLevel["1"] != nil || len(l2.SLA.ByPriority) != 0 {
		t.Errorf("level2's SLA: by level %+v, by priority %+v; want level 2's targets met and nothing of level 1", l2.SLA.ByLevel, l2.SLA.ByPriority)
	}
}

// TestReportKeepsARatingOfAnEarlierClosing: a ticket rated 2 when it was
// closed in November, reopened and closed again in December and rated 5
// then, keeps November's rating in November's report: each survey's
// answer counts where it was given.
func TestReportKeepsARatingOfAnEarlierClosing(t *testing.T) {
	g := startDesk(t)
	agPolicy(t, g)
	ctx := context.Background()
	now := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	g.pipeline.Now = func() time.Time { return now }
	customer := func(tk *store.Ticket, text string) {
		g.mustSend("alice@customer.example", []string{"support@example.com"},
			msg("alice@customer.example", "support@example.com", "Re: ["+tk.ID+"] "+tk.Subject, text))
		g.settle()
	}
	tk := agOpen(t, g, "Printer on fire", "It is on fire.")
	closeIt := func() {
		t.Helper()
		if _, err := g.pipeline.Act(ctx, tk.ID, Action{Name: "status", Value: "closed"}); err != nil {
			t.Fatal(err)
		}
		g.settle()
	}
	closeIt()
	now = now.Add(24 * time.Hour)
	customer(tk, "2")
	now = now.Add(time.Hour)
	customer(tk, "It is on fire again.")
	if st := g.ticket(tk.ID).Status; st != rules.StatusOpen {
		t.Fatalf("the customer's reply left the ticket %s, want open", st)
	}
	now = time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)
	closeIt()
	now = now.Add(24 * time.Hour)
	customer(tk, "5")
	if s := g.ticket(tk.ID).Satisfaction; s == nil || s.Score != 5 {
		t.Fatalf("the second rating was not kept: %+v", s)
	}
	report := func(from, to time.Time) SatisfactionReport {
		t.Helper()
		rep, err := ReportContext(ctx, g.store, ReportQuery{From: from, To: to, Hours: rules.DefaultBusinessHours(), Now: now.Add(time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		return rep.Satisfaction
	}
	nov := report(time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))
	if nov.Count != 1 || nov.Distribution["2"] != 1 {
		t.Errorf("November: %+v, want the rating 2", nov)
	}
	dec := report(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC))
	if dec.Count != 1 || dec.Distribution["5"] != 1 {
		t.Errorf("December: %+v, want the rating 5", dec)
	}
	if all := report(time.Time{}, time.Time{}); all.Count != 2 || all.Average != 3.5 {
		t.Errorf("all time: %+v, want 2 ratings averaging 3.5", all)
	}
}

// TestReportTicketResolvedBeforeItsFirstResponseWasDue: a duplicate merged
// into its twin minutes after it came in, never answered on its own,
// raised no first-response breach; the report does not count it a miss
// once the due time passes.
func TestReportTicketResolvedBeforeItsFirstResponseWasDue(t *testing.T) {
	g := startDesk(t)
	sw := agPolicy(t, g)
	ctx := context.Background()
	now := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	g.pipeline.Now = func() time.Time { return now }
	dst := agOpenFrom(t, g, "alice@customer.example", "Printer on fire", "It is really on fire.")
	src := agOpenFrom(t, g, "alice@customer.example", "Printer on fire!!", "Did you get my mail?")
	now = now.Add(10 * time.Minute)
	if _, err := g.pipeline.Act(ctx, src.ID, Action{Name: "merge", Value: dst.ID}); err != nil {
		t.Fatal(err)
	}
	now = now.Add(time.Hour)
	agReply(g, "ana@example.com", agSigned(t, agKey, rules.TokenReply, dst.ID, "ana@example.com"), dst, "Unplug it, please.")
	now = now.Add(3 * 24 * time.Hour) // every first response is long due
	if rep := agSweep(t, g, sw, now); slices.ContainsFunc(rep.Actions, func(a SweepAction) bool { return a.Kind == "sla_breach" }) {
		t.Fatalf("the sweep raised a breach: %+v", rep.Actions)
	}
	rep, err := ReportContext(ctx, g.store, ReportQuery{Hours: rules.DefaultBusinessHours(), Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if c := rep.SLA.ByPriority["medium"]; c == nil || c.Tickets != 2 || c.FirstResponseMissed != 0 || c.FirstResponseMet != 2 {
		t.Errorf("SLA medium %+v, want 2 tickets, both first responses met (one answered, one merged before it was due)", c)
	}
}

// TestReportQueueCountsTheReplyThatEscalates: a level-1 agent's reply
// that escalates the ticket ("#escalate" above the text) answers at level
// 1, before the ticket moves on: its first response counts in the queue
// it was opened in.
func TestReportQueueCountsTheReplyThatEscalates(t *testing.T) {
	g, _, _ := l2Desk(t)
	now := time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)
	g.pipeline.Now = func() time.Time { return now }
	tk := agOpen(t, g, "Scanner jammed", "Paper stuck.")
	now = now.Add(time.Hour)
	agReply(g, "ana@example.com", agSigned(t, agKey, rules.TokenReply, tk.ID, "ana@example.com"), tk, "#escalate\nOur specialists take it from here.")
	if tk = g.ticket(tk.ID); tk.Queue != "level2" || tk.SLA.FirstResponseAt == nil {
		t.Fatalf("after ana's reply: queue %q, first response %v", tk.Queue, tk.SLA.FirstResponseAt)
	}
	for queue, want := range map[string]int{"support": 1, "level2": 0} {
		rep, err := ReportContext(context.Background(), g.store, ReportQuery{Queue: queue, Hours: rules.DefaultBusinessHours(), Now: now.Add(time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		if rep.FirstResponse.Count != want {
			t.Errorf("queue %s: %d first responses, want %d", queue, rep.FirstResponse.Count, want)
		}
	}
}

// TestReportTicketOnHoldBeforeItsResolutionWasDue: a ticket an agent put
// on hold a day into its five business days stops its resolution clock;
// the sweep raises no breach weeks later, and the report does not count
// its resolution as missed. One put on hold only once its target was
// missed (and its breach raised) stays a miss.
func TestReportTicketOnHoldBeforeItsResolutionWasDue(t *testing.T) {
	g := startDesk(t)
	sw := agPolicy(t, g)
	ctx := context.Background()
	now := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC) // a Monday
	g.pipeline.Now = func() time.Time { return now }
	held := agOpen(t, g, "Printer on fire", "It is really on fire.")
	now = now.Add(time.Minute)
	late := agOpen(t, g, "Scanner jammed", "Paper everywhere.")
	now = now.Add(time.Hour)
	ana := func(tk *store.Ticket, text string) {
		agReply(g, "ana@example.com", agSigned(t, agKey, rules.TokenReply, tk.ID, "ana@example.com"), tk, text)
	}
	ana(held, "#status on_hold\nThe spare part is ordered; we write again when it is here.")
	ana(late, "Open the lid, please.")
	if st := g.ticket(held.ID).Status; st != rules.StatusOnHold {
		t.Fatalf("status %s, want on_hold", st)
	}
	breaches := func(rep *SweepReport) []string {
		var ids []string
		for _, a := range rep.Actions {
			if a.Kind == "sla_breach" {
				ids = append(ids, a.Ticket)
			}
		}
		return ids
	}
	now = time.Date(2026, 11, 9, 9, 30, 0, 0, time.UTC) // past both resolutions (5 business days)
	if got := breaches(agSweep(t, g, sw, now)); !slices.Equal(got, []string{late.ID}) {
		t.Fatalf("the sweep raised breaches on %v, want %s only", got, late.ID)
	}
	ana(g.ticket(late.ID), "#status on_hold\nWe wait for the vendor.")
	now = now.Add(21 * 24 * time.Hour)
	if got := breaches(agSweep(t, g, sw, now)); len(got) > 0 {
		t.Fatalf("the sweep raised breaches on %v", got)
	}
	rep, err := ReportContext(ctx, g.store, ReportQuery{Hours: rules.DefaultBusinessHours(), Now: now})
	if err != nil {
		t.Fatal(err)
	}
	want := Compliance{Tickets: 2, FirstResponseMet: 2, ResolutionMissed: 1, Percent: 66.7}
	if c := rep.SLA.ByPriority["medium"]; c == nil || *c != want {
		t.Errorf("SLA medium %+v, want %+v (the resolution clock stands still on hold: only the one missed before its pause is missed)", c, want)
	}
}
