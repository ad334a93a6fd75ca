package desk

import (
	"fmt"
	"time"

	"ticketgate/mailout"
	"ticketgate/rules"
	"ticketgate/store"
)

// statusMove is a status change decided on a ticket, and what applying it
// did.
type statusMove struct {
	rules.StatusDecision
	// Events are the ones to record, attributed to the actor.
	Events []store.Event
	actor  string
	at     time.Time
	since  time.Time // when the customer's silence began, for notices
}

// statusPolicy is the state machine's policy.
func (p *Policy) statusPolicy() rules.StatusPolicy {
	if p == nil {
		return rules.StatusPolicy{SLA: rules.DefaultSLAPolicy()}
	}
	return rules.StatusPolicy{Lifecycle: p.Lifecycle, SLA: p.SLA, Notify: p.Notify}
}

// stateOf is the part of t the state machine works on.
func stateOf(t *store.Ticket) rules.StatusState {
	s := rules.StatusState{Status: t.Status, Clock: clockOf(t), SLA: t.SLA, SurveySent: t.SurveySent, HasRequester: t.Requester != ""}
	if t.ClosedAt != nil {
		s.ClosedAt = *t.ClosedAt
	}
	return s
}

// setState writes the state machine's result back to t.
func setState(t *store.Ticket, s rules.StatusState) {
	t.Status, t.Clock, t.SLA, t.SurveySent = s.Status, s.Clock, s.SLA, s.SurveySent
	t.ClosedAt = nil
	if !s.ClosedAt.IsZero() {
		at := s.ClosedAt
		t.ClosedAt = &at
	}
}

// changeStatus runs the state machine on t and writes its new state to t;
// nothing else is touched, so a dry run on a copy is the same call. The
// notices it decides become mails through noticeIntents.
func (p *Policy) changeStatus(t *store.Ticket, c rules.StatusChange, actor string) statusMove {
	mv := statusMove{actor: actor, at: c.At, since: clockOf(t).AwaitingSince}
	mv.StatusDecision = p.statusPolicy().Move(stateOf(t), c)
	if !mv.Changed {
		return mv
	}
	setState(t, mv.State)
	t.UpdatedAt = c.At
	for _, e := range mv.StatusDecision.Events {
		mv.Events = append(mv.Events, store.Event{At: c.At, Type: e.Type, Detail: e.Detail, Actor: actor})
	}
	return mv
}

// noticeIntents are the mails to the customer that mv decided, for the
// change that carries it: the survey and the notices of a person's change
// log that they went out. data adds to every notice's template data.
func (p *Policy) noticeIntents(t *store.Ticket, mv statusMove, data map[string]any) []Intent {
	var out []Intent
	for _, n := range mv.Notices {
		in := Intent{Out: p.noticeOut(t, n, mv.at, mv.since, data)}
		switch n {
		case rules.NoticeSurvey:
			in.Queued = store.Event{At: mv.at, Type: rules.EventSurveySent, Detail: "satisfaction survey sent to " + t.Requester}
		case rules.NoticeResolution, rules.NoticeStatus, rules.NoticeWaiting:
			in.Queued = store.Event{At: mv.at, Type: rules.EventNotice, Actor: mv.actor,
				Detail: fmt.Sprintf("customer told the ticket is %s (%s mail to %s)", t.Status, n, t.Requester)}
		case rules.NoticeClosed:
			in.Queued = store.Event{At: mv.at, Type: rules.EventNotice, Actor: mv.actor,
				Detail: fmt.Sprintf("customer told the ticket is %s and how to reopen it (%s mail to %s)", t.Status, n, t.Requester)}
		}
		out = append(out, in)
	}
	return out
}

// reopenDays is the reopen window as the notices name it: its whole
// days, never rounded up, as it is a promise (1 at least).
func (p *Policy) reopenDays() int {
	var reopen time.Duration
	if p != nil {
		reopen = p.ReopenWindow
	}
	return max(1, int(reopen/(24*time.Hour)))
}

// noticeOut is the mail for notice n on t, which has just changed status
// at now; since is when the customer's silence began (lifecycle notices).
func (p *Policy) noticeOut(t *store.Ticket, n rules.Notice, now, since time.Time, extra map[string]any) mailout.Out {
	var lc rules.Lifecycle
	if p != nil {
		lc = p.Lifecycle
	}
	data := map[string]any{"Name": t.RequesterName, "Status": string(t.Status), "Text": "", "AgentName": "", "ReopenDays": p.reopenDays()}
	if !since.IsZero() {
		data["Since"], data["Days"] = since, days(now.Sub(since))
		// 0 when the lifecycle closes nothing (close_after "0s").
		data["CloseDays"] = 0
		if lc.CloseAfter > 0 {
			data["CloseDays"] = days(lc.CloseAfter - now.Sub(since))
		}
	}
	for k, v := range extra {
		data[k] = v
	}
	o := mailout.Out{Kind: string(n), Template: string(n), To: requester(t), Auto: "auto-generated", Record: true, Data: data}
	if n == rules.NoticeSurvey {
		o.Subject = fmt.Sprintf("[%s] How did we do? %s", t.ID, t.Subject)
	}
	return o
}
