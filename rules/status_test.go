package rules

import (
	"slices"
	"testing"
	"time"
)

// TestMove walks the state machine through the changes every entry point
// asks for and checks the effects decided once, here.
func TestMove(t *testing.T) {
	t0 := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	t1 := t0.Add(48 * time.Hour)
	p := StatusPolicy{Lifecycle: DefaultLifecycle(), SLA: DefaultSLAPolicy()}
	sla := p.SLA.Start(t0, PriorityMedium, "")
	resolved := p.SLA.Resume(sla, t0.Add(time.Hour)).Resolve(t0.Add(time.Hour))
	cases := []struct {
		name     string
		from     StatusState
		change   StatusChange
		status   Status
		notices  []Notice
		reply    Notice
		events   []EventType
		closedAt bool
		check    func(StatusDecision) string
	}{
		{name: "same status changes nothing", from: StatusState{Status: StatusOpen, HasRequester: true},
			change: StatusChange{To: StatusOpen, Cause: CauseCommand, At: t1}, status: StatusOpen},
		{name: "bare resolve tells the customer", from: StatusState{Status: StatusOpen, SLA: &sla, HasRequester: true},
			change: StatusChange{To: StatusResolved, Cause: CauseCommand, At: t1}, status: StatusResolved,
			notices: []Notice{NoticeResolution}, events: []EventType{EventStatus},
			check: func(d StatusDecision) string {
				if d.State.SLA.ResolvedAt.IsZero() || !d.State.Clock.ResolvedAt.Equal(t1) {
					return "resolution not stamped on the SLA and the clock"
				}
				return ""
			}},
		{name: "resolve with a reply: the reply is the notice", from: StatusState{Status: StatusOpen, HasRequester: true},
			change: StatusChange{To: StatusResolved, Cause: CauseCommand, At: t1, WithReply: true}, status: StatusResolved,
			reply: NoticeResolution, events: []EventType{EventStatus}},
		{name: "on hold is quiet and pauses the SLA", from: StatusState{Status: StatusOpen, SLA: &sla, HasRequester: true},
			change: StatusChange{To: StatusOnHold, Cause: CauseOperator, At: t1}, status: StatusOnHold, events: []EventType{EventStatus},
			check: func(d StatusDecision) string {
				if !d.State.SLA.PausedAt.Equal(t1) {
					return "SLA not paused"
				}
				return ""
			}},
		{name: "operator close: notice and survey", from: StatusState{Status: StatusOpen, HasRequester: true},
			change: StatusChange{To: StatusClosed, Cause: CauseOperator, At: t1}, status: StatusClosed,
			notices: []Notice{NoticeResolution, NoticeSurvey}, events: []EventType{EventStatus}, closedAt: true,
			check: func(d StatusDecision) string {
				if !d.State.SurveySent {
					return "survey not marked sent"
				}
				return ""
			}},
		{name: "a merge's close is quiet and asks for no rating", from: StatusState{Status: StatusOpen, HasRequester: true},
			change: StatusChange{To: StatusClosed, Cause: CauseCommand, At: t1, Quiet: true}, status: StatusClosed,
			events: []EventType{EventStatus}, closedAt: true,
			check: func(d StatusDecision) string {
				if d.State.SurveySent {
					return "survey marked sent though none went out"
				}
				return ""
			}},
		{name: "lifecycle close: closing notice and survey", from: StatusState{Status: StatusWaiting, HasRequester: true},
			change: StatusChange{To: StatusClosed, Cause: CauseLifecycle, At: t1}, status: StatusClosed,
			notices: []Notice{NoticeClosed, NoticeSurvey}, events: []EventType{EventStatus}, closedAt: true},
		{name: "lifecycle waiting tells the customer", from: StatusState{Status: StatusOpen, Clock: Clock{Status: StatusOpen, AwaitingSince: t0}, HasRequester: true},
			change: StatusChange{To: StatusWaiting, Cause: CauseLifecycle, At: t1}, status: StatusWaiting,
			notices: []Notice{NoticeWaiting}, events: []EventType{EventStatus},
			check: func(d StatusDecision) string {
				if !d.State.Clock.AwaitingSince.Equal(t0) {
					return "waiting lost the wait's start"
				}
				return ""
			}},
		{name: "customer reopens a closed ticket: no notice, SLA runs again", from: StatusState{Status: StatusClosed, ClosedAt: t0, SurveySent: true, SLA: &resolved, HasRequester: true},
			change: StatusChange{To: StatusOpen, Cause: CauseCustomer, At: t1}, status: StatusOpen,
			events: []EventType{EventReopened, EventStatus},
			check: func(d StatusDecision) string {
				s := d.State.SLA
				if !s.ResolvedAt.IsZero() || !s.PausedAt.IsZero() || s.PausedFor != t1.Sub(t0.Add(time.Hour)) || d.State.SurveySent {
					return "reopening did not restart the SLA (resolved time as a pause) or kept the survey"
				}
				if !s.ResolutionDue.After(sla.ResolutionDue) {
					return "resolution due did not move by the time spent resolved"
				}
				return ""
			}},
		{name: "no requester: nobody to tell", from: StatusState{Status: StatusOpen},
			change: StatusChange{To: StatusClosed, Cause: CauseCommand, At: t1}, status: StatusClosed,
			events: []EventType{EventStatus}, closedAt: true},
		{name: "unknown status refused", from: StatusState{Status: StatusOpen, HasRequester: true},
			change: StatusChange{To: "done", Cause: CauseCommand, At: t1}, status: StatusOpen},
	}
	for _, c := range cases {
		d := p.Move(c.from, c.change)
		var types []EventType
		for _, e := range d.Events {
			types = append(types, e.Type)
		}
		if d.State.Status != c.status || !slices.Equal(d.Notices, c.notices) || d.ReplyNotice != c.reply || !slices.Equal(types, c.events) {
			t.Errorf("%s: status %s notices %v reply %q events %v", c.name, d.State.Status, d.Notices, d.ReplyNotice, types)
		}
		if d.Changed != (c.status != c.from.Status) {
			t.Errorf("%s: changed %v", c.name, d.Changed)
		}
		if (!d.State.ClosedAt.IsZero()) != c.closedAt {
			t.Errorf("%s: closed at %v", c.name, d.State.ClosedAt)
		}
		if c.check != nil {
			if msg := c.check(d); msg != "" {
				t.Errorf("%s: %s", c.name, msg)
			}
		}
	}
}

// TestMoveNotifyPolicy: the statuses a customer hears of are configurable.
func TestMoveNotifyPolicy(t *testing.T) {
	p := StatusPolicy{Notify: map[Status]bool{StatusOnHold: true}}
	at := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	if d := p.Move(StatusState{Status: StatusOpen, HasRequester: true}, StatusChange{To: StatusOnHold, Cause: CauseCommand, At: at}); !slices.Equal(d.Notices, []Notice{NoticeStatus}) {
		t.Errorf("on hold, notified by policy: %v", d.Notices)
	}
	if d := p.Move(StatusState{Status: StatusOpen, HasRequester: true}, StatusChange{To: StatusResolved, Cause: CauseCommand, At: at}); len(d.Notices) != 0 {
		t.Errorf("resolved, not in the policy: %v", d.Notices)
	}
}
