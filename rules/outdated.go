package rules

import "time"

// Outdated says why a mail of kind about a ticket, queued at queued and
// about to be sent, says what is no longer so of the ticket, which is now
// in state s and merged into mergedInto ("" for none); "" when it may go.
// automatic is false for mail a person wrote, which always goes.
// The mail may have waited in the outbox for days (a relay down), and
// meanwhile the customer may have written, or the ticket been reopened
// or merged. Only the automatic mails telling the customer where the
// ticket stands, and the agents that it lacks an update, are asked about
// (OutdatedKind):
//   - a reminder, while the wait it reminds of runs: no mail from the
//     customer since, no other status than open or waiting, no newer
//     wait (an agent's later reply) in its place;
//   - the waiting notice, while the ticket waits, on that wait;
//   - the closing notice and the survey, while the ticket is closed, by
//     the closing they were queued for (not reopened since);
//   - the notice of a ticket resolved or closed by a person, while it is
//     (not reopened since);
//   - a critical ticket's follow-up to its agents ("no public update
//     since ..."), while no public reply came since and it is not
//     resolved or closed.
//
// Mail a person wrote (an agent's reply, with or without a notice) and
// notices of other statuses a person set go out as they are.
func Outdated(kind string, queued time.Time, automatic bool, s StatusState, mergedInto string) string {
	if !OutdatedKind(kind) || !automatic {
		return ""
	}
	if mergedInto != "" {
		return "the ticket was merged into " + mergedInto
	}
	now := " (it is " + string(s.Status) + " now)"
	switch kind {
	case "reminder", string(NoticeWaiting):
		since := s.Clock.AwaitingSince
		switch {
		case since.IsZero() || s.Status != StatusOpen && s.Status != StatusWaiting:
			return "the ticket no longer waits for the customer's answer" + now
		case since.After(queued):
			return "a later reply started another wait for the customer's answer"
		case kind == string(NoticeWaiting) && s.Status != StatusWaiting:
			return "the ticket no longer waits for the customer's answer" + now
		}
	case "critical_update":
		switch {
		case isDone(s.Status):
			return "the ticket is " + string(s.Status) + " now"
		case s.SLA != nil && s.SLA.PublicAt.After(queued):
			return "the customer was given an update since"
		}
	case string(NoticeResolution):
		switch {
		case !isDone(s.Status):
			return "the ticket was reopened" + now
		case s.Status == StatusResolved && s.Clock.ResolvedAt.After(queued):
			return "the ticket was reopened and resolved again"
		}
	default: // closed, survey
		switch {
		case s.Status != StatusClosed:
			return "the ticket was reopened" + now
		case s.ClosedAt.After(queued):
			return "the ticket was reopened and closed again"
		}
	}
	return ""
}

// OutdatedAlert says why an SLA alert to the agents (a warning or a
// breach, a as ParseAlertTitle reads it), about to be sent, is about a
// target no longer pending on the ticket, which is now in state s and
// merged into mergedInto ("" for none); "" when it may go. The alert may
// have waited in the outbox (a relay down) while the target was met: the
// ticket was resolved, closed or merged, or its level's first response
// given. Check raises no alert for such a target.
func OutdatedAlert(a Alert, s StatusState, mergedInto string) string {
	switch {
	case mergedInto != "":
		return "the ticket was merged into " + mergedInto
	case isDone(s.Status) || s.SLA != nil && !s.SLA.ResolvedAt.IsZero():
		return "the ticket is " + string(s.Status) + " now"
	case s.SLA == nil || a.Kind != KindFirstResponse:
		return ""
	}
	at := s.SLA.FirstResponseAt
	if a.Level == 2 {
		at = nil
		if e := s.SLA.Escalation; e != nil {
			at = e.FirstResponseAt
		}
	}
	if at != nil {
		return "an agent answered the customer at " + at.UTC().Format(time.RFC3339)
	}
	return ""
}

// OutdatedKind reports whether Outdated asks about mail of kind: the
// reminder, the waiting, closing and resolution notices, the survey and
// the critical follow-up.
func OutdatedKind(kind string) bool {
	switch kind {
	case "reminder", string(NoticeWaiting), string(NoticeClosed), string(NoticeSurvey), string(NoticeResolution), "critical_update":
		return true
	}
	return false
}
