package rules

import (
	"testing"
	"time"
)

// TestOutdated: a reminder or notice the lifecycle queued is outdated once
// the ticket moved on (the customer wrote, an agent answered again, the
// ticket was reopened or merged), and only then, and so is a critical
// follow-up once an agent updated the customer; mail a person wrote never
// is.
func TestOutdated(t *testing.T) {
	l := DefaultLifecycle()
	p := StatusPolicy{Lifecycle: l, SLA: DefaultSLAPolicy()}
	open := StatusState{Status: StatusOpen, Clock: AgentReplied(Clock{Status: StatusNew}, replyAt), HasRequester: true}
	move := func(s StatusState, to Status, cause Cause, at time.Time) StatusState {
		return p.Move(s, StatusChange{To: to, Cause: cause, At: at}).State
	}
	remindAt, waitAt, closeAt := replyAt.Add(3*oneDay), replyAt.Add(7*oneDay), replyAt.Add(14*oneDay)
	waiting := move(open, StatusWaiting, CauseLifecycle, waitAt)
	closed := move(open, StatusClosed, CauseLifecycle, closeAt)
	reopened := move(closed, StatusOpen, CauseCustomer, closeAt.Add(oneDay))
	again := AgentReplied(Clock{Status: StatusOpen}, remindAt.Add(oneDay))
	sla := DefaultSLAPolicy().Start(replyAt, PriorityCritical, "").Responded(replyAt)
	critical := open
	critical.SLA = &sla
	later := sla.Responded(remindAt.Add(time.Hour))
	updated := critical
	updated.SLA = &later
	for _, c := range []struct {
		name    string
		kind    string
		queued  time.Time
		now     StatusState
		merged  string
		stale   bool
		written bool // by a person: no Auto-Submitted
	}{
		{"reminder, nothing happened", "reminder", remindAt, open, "", false, false},
		{"reminder, ticket waiting since", "reminder", remindAt, waiting, "", false, false},
		{"reminder, customer wrote", "reminder", remindAt, StatusState{Status: StatusOpen, Clock: CustomerReplied(open.Clock, remindAt)}, "", true, false},
		{"reminder, agent answered again", "reminder", remindAt, StatusState{Status: StatusOpen, Clock: again}, "", true, false},
		{"reminder, put on hold", "reminder", remindAt, move(open, StatusOnHold, CauseCommand, remindAt), "", true, false},
		{"reminder, merged", "reminder", remindAt, open, "HS-000002", true, false},
		{"waiting, nothing happened", "waiting", waitAt, waiting, "", false, false},
		{"waiting, customer wrote", "waiting", waitAt, move(waiting, StatusOpen, CauseCustomer, waitAt), "", true, false},
		{"closed, nothing happened", "closed", closeAt, closed, "", false, false},
		{"survey, nothing happened", "survey", closeAt, closed, "", false, false},
		{"closed, reopened", "closed", closeAt, reopened, "", true, false},
		{"survey, reopened", "survey", closeAt, reopened, "", true, false},
		{"survey, reopened and closed again", "survey", closeAt, move(reopened, StatusClosed, CauseCommand, closeAt.Add(2*oneDay)), "", true, false},
		{"agent's reply, reopened", "agent", closeAt, reopened, "", false, false},
		{"resolution with the agent's text, reopened", "resolution", closeAt, reopened, "", false, true},
		{"resolution notice, reopened", "resolution", closeAt, reopened, "", true, false},
		{"resolution notice, nothing happened", "resolution", remindAt, move(open, StatusResolved, CauseCommand, remindAt), "", false, false},
		{"resolution notice, closed by the lifecycle since", "resolution", remindAt, closed, "", false, false},
		{"resolution notice, reopened and resolved again", "resolution", remindAt, move(move(move(open, StatusResolved, CauseCommand, remindAt), StatusOpen, CauseCustomer, remindAt.Add(oneDay)), StatusResolved, CauseCommand, waitAt), "", true, false},
		{"auto-reply, merged", "auto", closeAt, open, "HS-000002", false, false},
		{"critical follow-up, nothing happened", "critical_update", remindAt, critical, "", false, false},
		{"critical follow-up, agent updated the customer", "critical_update", remindAt, updated, "", true, false},
		{"critical follow-up, resolved", "critical_update", remindAt, move(critical, StatusResolved, CauseCommand, remindAt), "", true, false},
		{"SLA alert, agent updated the customer", "alert", remindAt, updated, "", false, false},
	} {
		why := Outdated(c.kind, c.queued, c.kind != "agent" && !c.written, c.now, c.merged)
		if (why != "") != c.stale {
			t.Errorf("%s: outdated %q, want outdated %v", c.name, why, c.stale)
		}
	}
}

// TestOutdatedAlert: an SLA alert is outdated once its target is no
// longer pending: the ticket resolved, closed or merged, or its level's
// first response given; a resolution alert stands while the ticket is
// open, answered or not.
func TestOutdatedAlert(t *testing.T) {
	p := DefaultSLAPolicy()
	fresh := p.Start(replyAt, PriorityCritical, "")
	answered := fresh.Responded(replyAt.Add(time.Minute))
	escalated := p.Escalate(answered, replyAt.Add(time.Hour))
	escalatedAnswered := escalated.Responded(replyAt.Add(2 * time.Hour))
	state := func(st Status, s SLA) StatusState { return StatusState{Status: st, SLA: &s} }
	first := Alert{Kind: KindFirstResponse, Level: 1}
	resolution := Alert{Kind: KindResolution, Breach: true, Level: 1}
	for _, c := range []struct {
		name   string
		a      Alert
		now    StatusState
		merged string
		stale  bool
	}{
		{"first response warning, unanswered", first, state(StatusNew, fresh), "", false},
		{"first response warning, answered", first, state(StatusOpen, answered), "", true},
		{"first response breach, answered", Alert{Kind: KindFirstResponse, Breach: true, Level: 1}, state(StatusOpen, answered), "", true},
		{"first response warning, resolved", first, state(StatusResolved, fresh.Resolve(replyAt)), "", true},
		{"first response warning, merged", first, state(StatusClosed, fresh.Resolve(replyAt)), "HS-000002", true},
		{"resolution breach, answered", resolution, state(StatusOpen, answered), "", false},
		{"resolution breach, closed", resolution, state(StatusClosed, answered.Resolve(replyAt)), "", true},
		{"level 2 first response, answered before the escalation", Alert{Kind: KindFirstResponse, Level: 2}, state(StatusOpen, escalated), "", false},
		{"level 2 first response, answered since", Alert{Kind: KindFirstResponse, Level: 2}, state(StatusOpen, escalatedAnswered), "", true},
	} {
		if why := OutdatedAlert(c.a, c.now, c.merged); (why != "") != c.stale {
			t.Errorf("%s: outdated %q, want outdated %v", c.name, why, c.stale)
		}
	}
}

// TestAlertTitle: every alert's title reads back as that alert, with the
// ticket's subject after it.
func TestAlertTitle(t *testing.T) {
	for _, breach := range []bool{false, true} {
		for _, level := range []int{1, 2} {
			for _, kind := range []string{KindFirstResponse, KindResolution} {
				a := Alert{Kind: kind, Breach: breach, Level: level}
				if got, ok := ParseAlertTitle(a.Title() + " – SLA breach: resolution overdue"); !ok || got != a {
					t.Errorf("%q read back as %+v %v", a.Title(), got, ok)
				}
			}
		}
	}
	if got := (Alert{Kind: KindResolution, Breach: true, Level: 2}).Title(); got != "SLA breach: level 2 resolution overdue" {
		t.Errorf("title %q", got)
	}
	if _, ok := ParseAlertTitle("Re: SLA warning"); ok {
		t.Error("a subject that is no alert's read as one")
	}
}
