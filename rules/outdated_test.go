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
		name   string
		kind   string
		queued time.Time
		now    StatusState
		merged string
		stale  bool
	}{
		{"reminder, nothing happened", "reminder", remindAt, open, "", false},
		{"reminder, ticket waiting since", "reminder", remindAt, waiting, "", false},
		{"reminder, customer wrote", "reminder", remindAt, StatusState{Status: StatusOpen, Clock: CustomerReplied(open.Clock, remindAt)}, "", true},
		{"reminder, agent answered again", "reminder", remindAt, StatusState{Status: StatusOpen, Clock: again}, "", true},
		{"reminder, put on hold", "reminder", remindAt, move(open, StatusOnHold, CauseCommand, remindAt), "", true},
		{"reminder, merged", "reminder", remindAt, open, "HS-000002", true},
		{"waiting, nothing happened", "waiting", waitAt, waiting, "", false},
		{"waiting, customer wrote", "waiting", waitAt, move(waiting, StatusOpen, CauseCustomer, waitAt), "", true},
		{"closed, nothing happened", "closed", closeAt, closed, "", false},
		{"survey, nothing happened", "survey", closeAt, closed, "", false},
		{"closed, reopened", "closed", closeAt, reopened, "", true},
		{"survey, reopened", "survey", closeAt, reopened, "", true},
		{"survey, reopened and closed again", "survey", closeAt, move(reopened, StatusClosed, CauseCommand, closeAt.Add(2*oneDay)), "", true},
		{"agent's reply, reopened", "agent", closeAt, reopened, "", false},
		{"resolution with the agent's text, reopened", "resolution", closeAt, reopened, "", false},
		{"auto-reply, merged", "auto", closeAt, open, "HS-000002", false},
		{"critical follow-up, nothing happened", "critical_update", remindAt, critical, "", false},
		{"critical follow-up, agent updated the customer", "critical_update", remindAt, updated, "", true},
		{"critical follow-up, resolved", "critical_update", remindAt, move(critical, StatusResolved, CauseCommand, remindAt), "", true},
		{"SLA alert, agent updated the customer", "alert", remindAt, updated, "", false},
	} {
		why := Outdated(c.kind, c.queued, c.now, c.merged)
		if (why != "") != c.stale {
			t.Errorf("%s: outdated %q, want outdated %v", c.name, why, c.stale)
		}
	}
}
