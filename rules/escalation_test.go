package rules

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"
)

// berlinDesk is a Berlin office calendar, Monday to Friday 09:00 to 17:00,
// closed on Easter Monday 2026 (6 April) and on Monday 30 March 2026, the
// day after the clocks go forward.
func berlinDesk(t testing.TB) BusinessHours {
	loc := berlin(t)
	return BusinessHours{
		Days:     []time.Weekday{time.Monday, time.Tuesday, time.Wednesday, time.Thursday, time.Friday},
		Start:    9 * time.Hour,
		End:      17 * time.Hour,
		Loc:      loc,
		Holidays: []time.Time{hoursAt(t, "2026-03-30 00:00", time.UTC), hoursAt(t, "2026-04-06 00:00", loc)},
	}
}

func TestHolidayCalendarAcrossDST(t *testing.T) {
	h := berlinDesk(t)
	loc := h.Loc
	// Friday 27 March 16:00 CET: one hour left that day; the weekend and
	// the holiday Monday (summer time from Sunday) do not count; seven
	// hours on Tuesday end at 16:00 CEST, which is 14:00 UTC.
	from := hoursAt(t, "2026-03-27 16:00", loc)
	got := h.Add(from, 8*time.Hour)
	if want := hoursAt(t, "2026-03-31 14:00", time.UTC); !got.Equal(want) {
		t.Fatalf("8 business hours from %v = %v, want %v (Tuesday 16:00 CEST)", from, got.UTC(), want)
	}
	if b := h.Between(from, got); b != 8*time.Hour {
		t.Errorf("Between(from, due) = %v, want 8h", b)
	}
	// A holiday between two working weeks is skipped by business days too,
	// and long spans (which skip whole weeks) still see it.
	if got, want := h.AddDays(from, 1), hoursAt(t, "2026-03-31 16:00", loc); !got.Equal(want) {
		t.Errorf("1 business day from Friday = %v, want %v", got, want)
	}
	if got, want := h.AddDays(from, 5), hoursAt(t, "2026-04-07 16:00", loc); !got.Equal(want) {
		t.Errorf("5 business days from Friday = %v, want %v (both holidays skipped)", got, want)
	}
	long := h.Add(hoursAt(t, "2026-03-02 09:00", loc), 200*time.Hour)
	if got := h.Between(hoursAt(t, "2026-03-02 09:00", loc), long); got != 200*time.Hour {
		t.Errorf("Between over 200 business hours = %v, want 200h", got)
	}
	if noHol := (BusinessHours{Days: h.Days, Start: h.Start, End: h.End, Loc: loc}); !noHol.Add(hoursAt(t, "2026-03-02 09:00", loc), 200*time.Hour).Before(long) {
		t.Errorf("200 business hours end no later with two holidays than without")
	}
}

func escalationPolicy(t testing.TB) SLAPolicy {
	p := DefaultSLAPolicy()
	p.Calendars = map[string]BusinessHours{"berlin": berlinDesk(t), "always": AroundTheClock()}
	p.QueueCalendars = map[string]string{"support": "always"}
	p.Escalation = EscalationPolicy{Queue: "level2", Calendar: "berlin",
		Target: Target{FirstResponse: Span{Dur: 2 * time.Hour, Business: true}, Resolution: Span{Dur: 8 * time.Hour, Business: true}}}
	p.WarnBefore = 30 * time.Minute
	return p
}

func TestEscalationOwnClock(t *testing.T) {
	p := escalationPolicy(t)
	loc := berlin(t)
	created := hoursAt(t, "2026-03-27 10:00", loc)
	s := p.StartIn(created, PriorityHigh, "", "Support")
	if s.Calendar != "always" {
		t.Fatalf("queue support's SLA counts in %q, want the calendar the queue names", s.Calendar)
	}
	s = s.Responded(created.Add(time.Hour))
	at := hoursAt(t, "2026-03-27 16:00", loc)
	s = p.Escalate(s, at)
	e := s.Escalation
	if e == nil || e.Level != 2 || !e.At.Equal(at) || e.FirstResponseAt != nil {
		t.Fatalf("escalation = %+v, want level 2 at %v without a level-2 response", e, at)
	}
	// 2 business hours in Berlin from Friday 16:00: 1h Friday, then
	// Tuesday (Monday is a holiday, and summer time) 09:00-10:00 CEST.
	if want := hoursAt(t, "2026-03-31 08:00", time.UTC); !e.FirstResponseDue.Equal(want) {
		t.Errorf("level-2 first response due %v, want %v", e.FirstResponseDue.UTC(), want)
	}
	if want := hoursAt(t, "2026-03-31 14:00", time.UTC); !e.ResolutionDue.Equal(want) {
		t.Errorf("level-2 resolution due %v, want %v", e.ResolutionDue.UTC(), want)
	}
	if again := p.Escalate(s, at.Add(time.Hour)); again.Escalation.At != at {
		t.Errorf("a second escalation restarted level 2's clock")
	}
	// Level 1's resolution (24h, around the clock) passes on Saturday:
	// no level-1 alert any more, level 2's clock rules.
	alerts, s2 := p.Check(s, hoursAt(t, "2026-03-29 12:00", loc))
	if len(alerts) != 0 {
		t.Errorf("alerts on Sunday = %+v, want none: level 1's targets no longer apply", alerts)
	}
	// Tuesday 09:40 CEST: the first response warning (30m ahead).
	alerts, s2 = p.Check(s2, hoursAt(t, "2026-03-31 07:40", time.UTC))
	if len(alerts) != 1 || alerts[0].Level != 2 || alerts[0].Breach || alerts[0].Kind != KindFirstResponse {
		t.Fatalf("alerts Tuesday 09:40 = %+v, want the level-2 first response warning", alerts)
	}
	alerts, s2 = p.Check(s2, hoursAt(t, "2026-03-31 08:00", time.UTC))
	if len(alerts) != 1 || !alerts[0].Breach || alerts[0].Level != 2 {
		t.Fatalf("alerts at the due time = %+v, want the level-2 first response breach", alerts)
	}
	if again, _ := p.Check(s2, hoursAt(t, "2026-03-31 08:05", time.UTC)); len(again) != 0 {
		t.Errorf("alerts raised again: %+v", again)
	}
	if !slices.Equal(s2.Escalation.Breached, []string{KindFirstResponse}) || len(s.Escalation.Breached) != 0 {
		t.Errorf("breached = %v (input %v), want [first_response] on the result only", s2.Escalation.Breached, s.Escalation.Breached)
	}
	// A public reply after the escalation is level 2's first response.
	reply := hoursAt(t, "2026-03-31 08:30", time.UTC)
	s3 := s2.Responded(reply)
	if s3.Escalation.FirstResponseAt == nil || !s3.Escalation.FirstResponseAt.Equal(reply) || !s3.FirstResponseAt.Equal(created.Add(time.Hour)) {
		t.Errorf("after the reply: level 2 responded %v, level 1 %v", s3.Escalation.FirstResponseAt, s3.FirstResponseAt)
	}
	b, err := json.Marshal(s3)
	if err != nil || !strings.Contains(string(b), `"escalation":{"level":2,`) {
		t.Errorf("JSON %s (%v) has no escalation", b, err)
	}
}

func TestEscalationPauseMovesLevel2(t *testing.T) {
	p := escalationPolicy(t)
	loc := berlin(t)
	at := hoursAt(t, "2026-03-24 09:00", loc) // a Tuesday
	s := p.Escalate(p.StartIn(at.Add(-time.Hour), PriorityHigh, "", "support"), at)
	// Waiting on the customer from Tuesday 10:00 to Wednesday 12:00: 10
	// business hours of pause in Berlin (7 + 3).
	s = s.Pause(hoursAt(t, "2026-03-24 10:00", loc))
	s = p.Resume(s, hoursAt(t, "2026-03-25 12:00", loc))
	// 8bh from Tuesday 09:00 was Tuesday 17:00; 10bh later is Thursday 11:00.
	if want := hoursAt(t, "2026-03-26 11:00", loc); !s.Escalation.ResolutionDue.Equal(want) {
		t.Errorf("level-2 resolution due after the pause = %v, want %v", s.Escalation.ResolutionDue, want)
	}
}

func TestCriticalFollowUp(t *testing.T) {
	p := escalationPolicy(t)
	p.CriticalUpdateEvery = 3 * time.Hour
	loc := berlin(t)
	created := hoursAt(t, "2026-03-27 08:00", time.UTC)
	// Queue support counts around the clock.
	s := p.StartIn(created, PriorityCritical, "", "support")
	if due := p.FollowUpDue(s); !due.Equal(created.Add(3 * time.Hour)) {
		t.Fatalf("first follow-up due %v, want 3h after creation", due)
	}
	if ok, _ := p.FollowUp(s, created.Add(179*time.Minute)); ok {
		t.Errorf("follow-up before the interval passed")
	}
	ok, s1 := p.FollowUp(s, created.Add(4*time.Hour))
	if !ok {
		t.Fatalf("no follow-up 4h after creation")
	}
	if again, _ := p.FollowUp(s1, created.Add(5*time.Hour)); again {
		t.Errorf("second follow-up within one interval")
	}
	if ok, _ := p.FollowUp(s1, created.Add(7*time.Hour)); !ok {
		t.Errorf("no follow-up one interval after the first")
	}
	// A public update starts the interval again.
	s2 := s1.Responded(created.Add(6 * time.Hour))
	if due := p.FollowUpDue(s2); !due.Equal(created.Add(9 * time.Hour)) {
		t.Errorf("follow-up due %v after a public update at +6h, want +9h", due)
	}
	if p.NextCheck(s2).After(created.Add(9 * time.Hour)) {
		t.Errorf("NextCheck %v is after the follow-up", p.NextCheck(s2))
	}
	// Escalated to level 2, reminders keep Berlin office hours: Friday
	// 16:00 CET plus 3h is Tuesday 11:00 CEST (holiday Monday).
	s3 := p.Escalate(s, hoursAt(t, "2026-03-27 15:00", loc))
	s3.CreatedAt, s3.FollowedAt = hoursAt(t, "2026-03-27 16:00", loc), time.Time{}
	if due, want := p.FollowUpDue(s3), hoursAt(t, "2026-03-31 09:00", time.UTC); !due.Equal(want) {
		t.Errorf("level-2 follow-up due %v, want %v", due.UTC(), want)
	}
	// Resolved, or not critical: none.
	if due := p.FollowUpDue(s.Resolve(created)); !due.IsZero() {
		t.Errorf("follow-up due on a resolved ticket: %v", due)
	}
	if due := p.FollowUpDue(p.Reprioritise(s, PriorityHigh)); !due.IsZero() {
		t.Errorf("follow-up due on a high ticket: %v", due)
	}
}

// BenchmarkHolidayCalendarAdd computes a 5-business-day due time (40
// business hours) in a Berlin calendar with three years of holidays,
// across a DST change, as the sweep does for each escalated ticket.
func BenchmarkHolidayCalendarAdd(b *testing.B) {
	h := berlinDesk(b)
	for y := 2026; y <= 2028; y++ {
		for _, md := range [][2]int{{1, 1}, {5, 1}, {10, 3}, {12, 24}, {12, 25}, {12, 26}, {12, 31}} {
			h.Holidays = append(h.Holidays, time.Date(y, time.Month(md[0]), md[1], 0, 0, 0, 0, time.UTC))
		}
	}
	from := hoursAt(b, "2026-03-20 16:00", h.Loc)
	b.ReportAllocs()
	for b.Loop() {
		if h.Add(from, 40*time.Hour).IsZero() {
			b.Fatal("zero due time")
		}
	}
}

// TestKeepsAssignee: an escalated ticket stays with its assignee only
// when they work the queue it moves to, or manage the desk.
func TestKeepsAssignee(t *testing.T) {
	for _, tt := range []struct {
		who  Actor
		keep bool
	}{
		{Actor{Email: "ana@example.com", Queues: []string{"support"}}, false},
		{Actor{Email: "lev@example.com", Queues: []string{"Level2"}}, true},
		{Actor{Email: "meg@example.com", Manager: true}, true},
		{Actor{Email: "gone@example.com"}, false},
	} {
		if got := KeepsAssignee(tt.who, "level2"); got != tt.keep {
			t.Errorf("KeepsAssignee(%s, level2) = %v, want %v", tt.who.Email, got, tt.keep)
		}
	}
}

// TestTakeEscalation: a ticket merged into one not escalated hands it its
// level-2 clock, the time it waited on the customer counted as paused; a
// target escalated already keeps its own.
func TestTakeEscalation(t *testing.T) {
	p := DefaultSLAPolicy()
	t0 := time.Date(2026, 11, 3, 10, 0, 0, 0, time.UTC)
	src := p.Escalate(p.Start(t0, PriorityHigh, ""), t0).Pause(t0.Add(time.Hour))
	dst := p.Start(t0.Add(-time.Hour), PriorityMedium, "")
	got := p.TakeEscalation(dst, src, t0.Add(3*time.Hour))
	if e := got.Escalation; e == nil || !e.At.Equal(t0) || !e.FirstResponseDue.Equal(t0.Add(2*time.Hour)) ||
		!e.ResolutionDue.Equal(t0.Add(26*time.Hour)) || got.ResolutionDue != dst.ResolutionDue {
		t.Errorf("target's level 2 %+v, want escalated at %v, first response due %v, resolution due %v (2h paused)",
			e, t0, t0.Add(2*time.Hour), t0.Add(26*time.Hour))
	}
	own := p.Escalate(dst, t0.Add(2*time.Hour))
	if got := p.TakeEscalation(own, src, t0.Add(3*time.Hour)); got.Escalation != own.Escalation {
		t.Errorf("an escalated target took the source's clock: %+v", got.Escalation)
	}
}
