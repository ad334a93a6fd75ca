package rules

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ErrSpan is wrapped by every error from ParseSpan.
var ErrSpan = errors.New("invalid SLA span")

// Span is an SLA target: calendar time ("4h", "90m"), business days
// ("5bd") or business hours ("8bh", "7.5bh"). BusinessDays > 0 means
// business days; otherwise Business says whether Dur counts business time.
// The zero Span means no target.
type Span struct {
	Dur          time.Duration
	BusinessDays int
	Business     bool
}

// ParseSpan parses a Go duration ("4h", "1h30m") as calendar time, "<n>bd"
// as n business days, and "<hours>bh" ("8bh", "7.5bh") or "<duration>bh"
// ("7h20mbh") as business time. The span must be positive.
func ParseSpan(s string) (Span, error) {
	v := strings.TrimSpace(s)
	switch {
	case strings.HasSuffix(v, "bd"):
		n, err := strconv.Atoi(strings.TrimSuffix(v, "bd"))
		if err != nil || n <= 0 {
			return Span{}, fmt.Errorf("%w %q: business days must be a positive whole number", ErrSpan, s)
		}
		return Span{BusinessDays: n, Business: true}, nil
	case strings.HasSuffix(v, "bh"):
		num := strings.TrimSuffix(v, "bh")
		if _, err := strconv.ParseFloat(num, 64); err == nil {
			num += "h"
		}
		d, err := time.ParseDuration(num)
		if err != nil || d <= 0 {
			return Span{}, fmt.Errorf("%w %q: business hours must be a positive number of hours", ErrSpan, s)
		}
		return Span{Dur: d, Business: true}, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return Span{}, fmt.Errorf("%w %q: want a duration like 4h, or 5bd, or 8bh: %v", ErrSpan, s, err)
	}
	if d <= 0 {
		return Span{}, fmt.Errorf("%w %q: must be positive", ErrSpan, s)
	}
	return Span{Dur: d}, nil
}

// String formats the span the way ParseSpan reads it ("4h", "5bd", "8bh");
// the zero Span is "".
func (s Span) String() string {
	switch {
	case s.BusinessDays > 0:
		return strconv.Itoa(s.BusinessDays) + "bd"
	case s.Dur <= 0:
		return ""
	case s.Business && s.Dur%(36*time.Second) == 0:
		// Hundredths of an hour print and parse back exactly.
		return strconv.FormatFloat(s.Dur.Hours(), 'f', -1, 64) + "bh"
	case s.Business:
		return compact(s.Dur) + "bh"
	}
	return compact(s.Dur)
}

// compact formats d like Duration.String without trailing zero units:
// "4h", "1h30m", "30s".
func compact(d time.Duration) string {
	v := d.String()
	if strings.HasSuffix(v, "m0s") {
		v = strings.TrimSuffix(v, "0s")
	}
	if strings.HasSuffix(v, "h0m") {
		v = strings.TrimSuffix(v, "0m")
	}
	return v
}

// business reports whether the span counts business time.
func (s Span) business() bool { return s.BusinessDays > 0 || s.Business }

// From returns when the span started at t ends, using h for business
// units, or the zero time for the zero Span (no target).
func (s Span) From(h BusinessHours, t time.Time) time.Time {
	switch {
	case s.BusinessDays > 0:
		return h.AddDays(t, s.BusinessDays)
	case s.Dur <= 0:
		return time.Time{}
	case s.Business:
		return h.Add(t, s.Dur)
	}
	return t.Add(s.Dur)
}

// Target is the pair of SLA targets for one priority.
type Target struct {
	FirstResponse, Resolution Span
}

// SLAPolicy maps priorities, and per-plan overrides, to targets. A plan's
// entry for a priority replaces the default target for that priority.
// Warnings come WarnBefore (calendar time) ahead of a due time; 0 means no
// warnings.
//
// Hours is the calendar of queues that name none in QueueCalendars (the
// legacy [sla.business_hours]); Calendars are the named calendars. The
// Escalation level has its own targets in its own calendar, and
// CriticalUpdateEvery (0: off) is how long a critical ticket may go without
// a public update before its people are reminded.
type SLAPolicy struct {
	Targets    map[Priority]Target
	Plans      map[string]map[Priority]Target
	Hours      BusinessHours
	WarnBefore time.Duration

	Calendars           map[string]BusinessHours
	QueueCalendars      map[string]string // lower-case queue name → calendar name
	Escalation          EscalationPolicy
	CriticalUpdateEvery time.Duration
}

// DefaultSLAPolicy returns the support policy: critical 1h first response
// and 4h resolution; high 4h (2h on the premium plan) and 24h; medium 24h
// and 5 business days; low 48h and 10 business days. Hours are calendar
// hours; business days follow DefaultBusinessHours. Level 2 (escalation):
// 2h first response and 24h resolution. No warnings, no critical follow-ups
// (the configuration's default turns them on every 3h).
func DefaultSLAPolicy() SLAPolicy {
	h := func(n int) Span { return Span{Dur: time.Duration(n) * time.Hour} }
	bd := func(n int) Span { return Span{BusinessDays: n, Business: true} }
	return SLAPolicy{
		Targets: map[Priority]Target{
			PriorityCritical: {FirstResponse: h(1), Resolution: h(4)},
			PriorityHigh:     {FirstResponse: h(4), Resolution: h(24)},
			PriorityMedium:   {FirstResponse: h(24), Resolution: bd(5)},
			PriorityLow:      {FirstResponse: h(48), Resolution: bd(10)},
		},
		Plans: map[string]map[Priority]Target{
			"premium": {PriorityHigh: {FirstResponse: h(2), Resolution: h(24)}},
		},
		Hours:      DefaultBusinessHours(),
		Escalation: EscalationPolicy{Target: Target{FirstResponse: h(2), Resolution: h(24)}},
	}
}

// The SLA alert kinds, as recorded in SLA.Breached and SLA.Warned.
const (
	KindFirstResponse = "first_response"
	KindResolution    = "resolution"
)

// SLA is the SLA state stored on a ticket. Its JSON field names are a
// public contract; "breached" is always a list, never null.
type SLA struct {
	FirstResponseDue time.Time  `json:"first_response_due"`
	ResolutionDue    time.Time  `json:"resolution_due"`
	FirstResponseAt  *time.Time `json:"first_response_at"` // null until the first agent public reply
	Breached         []string   `json:"breached"`          // kinds whose breach alert was raised
	Warned           []string   `json:"warned,omitempty"`  // kinds whose warning was raised

	CreatedAt      time.Time     `json:"created_at,omitzero"`       // due times count from here
	Priority       Priority      `json:"priority,omitempty"`        // the priority the due times were computed for
	Plan           string        `json:"plan,omitempty"`            // the customer's plan, for overrides
	PausedAt       time.Time     `json:"paused_at,omitzero"`        // start of the running pause; zero when running
	PausedFor      time.Duration `json:"paused_for,omitempty"`      // calendar time of finished pauses
	PausedBusiness time.Duration `json:"paused_business,omitempty"` // business time of finished pauses
	ResolvedAt     time.Time     `json:"resolved_at,omitzero"`      // when resolved; no alerts after

	Calendar   string      `json:"calendar,omitempty"`   // the named calendar level 1 counts in; "" = Hours
	Escalation *Escalation `json:"escalation,omitempty"` // level 2's clock, once escalated
	PublicAt   time.Time   `json:"public_at,omitzero"`   // the latest public agent reply
	FollowedAt time.Time   `json:"followed_at,omitzero"` // the latest critical follow-up reminder
}

// MarshalJSON encodes the SLA with "breached" as [] rather than null.
func (s SLA) MarshalJSON() ([]byte, error) {
	type plain SLA
	if s.Breached == nil {
		s.Breached = []string{}
	}
	return json.Marshal(plain(s))
}

// Alert is one SLA alert due now.
type Alert struct {
	Kind   string    // KindFirstResponse or KindResolution
	Breach bool      // false means a warning ahead of Due
	Due    time.Time // the due time concerned
	Level  int       // 1, or 2 for the escalation level's targets
}

// Title is what the alert's mail says of it, after the ticket's id in its
// subject: "SLA warning: first response due soon", "SLA breach: level 2
// resolution overdue". ParseAlertTitle reads it back.
func (a Alert) Title() string {
	what, word := "warning", "due soon"
	if a.Breach {
		what, word = "breach", "overdue"
	}
	target := strings.ReplaceAll(a.Kind, "_", " ")
	if a.Level == 2 {
		target = "level 2 " + target
	}
	return "SLA " + what + ": " + target + " " + word
}

// ParseAlertTitle returns the alert (its Kind, Breach and Level; no Due)
// whose Title begins s, or false.
func ParseAlertTitle(s string) (Alert, bool) {
	for _, breach := range []bool{false, true} {
		for _, level := range []int{1, 2} {
			for _, kind := range []string{KindFirstResponse, KindResolution} {
				if a := (Alert{Kind: kind, Breach: breach, Level: level}); strings.HasPrefix(s, a.Title()) {
					return a, true
				}
			}
		}
	}
	return Alert{}, false
}

// Start computes the SLA for a ticket created at at with priority prio and
// the customer's plan. An unknown priority counts as medium.
func (p SLAPolicy) Start(at time.Time, prio Priority, plan string) SLA {
	return p.StartIn(at, prio, plan, "")
}

// StartIn is Start for a ticket of queue: its business units count in the
// calendar the queue names, or in Hours.
func (p SLAPolicy) StartIn(at time.Time, prio Priority, plan, queue string) SLA {
	if _, ok := ParsePriority(string(prio)); !ok {
		prio = PriorityMedium
	}
	s := SLA{CreatedAt: at, Priority: prio, Plan: plan, Breached: []string{}}
	if name := p.QueueCalendars[strings.ToLower(queue)]; name != "" {
		if _, ok := p.Calendars[name]; ok {
			s.Calendar = name
		}
	}
	s.FirstResponseDue = p.target(prio, plan).FirstResponse.From(p.hours(s), at)
	s.ResolutionDue = p.resolutionDue(s)
	return s
}

// hours is the calendar s's level-1 business units count in.
func (p SLAPolicy) hours(s SLA) BusinessHours {
	if h, ok := p.Calendars[s.Calendar]; ok && s.Calendar != "" {
		return h
	}
	return p.Hours
}

func (p SLAPolicy) target(prio Priority, plan string) Target {
	if t, ok := p.Plans[plan][prio]; ok {
		return t
	}
	return p.Targets[prio]
}

// resolutionDue is the resolution target from creation, moved later by
// the finished pauses in the target's own units.
func (p SLAPolicy) resolutionDue(s SLA) time.Time {
	span := p.target(s.Priority, s.Plan).Resolution
	due := span.From(p.hours(s), s.CreatedAt)
	switch {
	case due.IsZero():
		return due
	case span.business():
		return p.hours(s).Add(due, s.PausedBusiness)
	}
	return due.Add(s.PausedFor)
}

// Reprioritise returns the SLA with due times recomputed for prio from the
// ticket's creation, keeping the finished pauses. A warning already raised
// for a due time that moved is forgotten, so the new due time gets its own;
// breaches already raised stay raised.
func (p SLAPolicy) Reprioritise(s SLA, prio Priority) SLA {
	if _, ok := ParsePriority(string(prio)); !ok {
		return s
	}
	s.Priority = prio
	s = redue(s, KindFirstResponse, p.target(prio, s.Plan).FirstResponse.From(p.hours(s), s.CreatedAt))
	return redue(s, KindResolution, p.resolutionDue(s))
}

// redue sets the due time of kind, forgetting its warning when it moved.
func redue(s SLA, kind string, due time.Time) SLA {
	old := &s.FirstResponseDue
	if kind == KindResolution {
		old = &s.ResolutionDue
	}
	if !old.Equal(due) {
		s.Warned = slices.DeleteFunc(slices.Clone(s.Warned), func(k string) bool { return k == kind })
		if len(s.Warned) == 0 {
			s.Warned = nil
		}
	}
	*old = due
	return s
}

// Responded returns the SLA with a public agent reply recorded at at: the
// first one is the first response, the first one at or after an
// escalation is level 2's first response, and every one is the latest
// public update (critical follow-ups count from it).
func (s SLA) Responded(at time.Time) SLA {
	if s.FirstResponseAt == nil {
		s.FirstResponseAt = &at
	}
	if e := s.Escalation; e != nil && e.FirstResponseAt == nil && !at.Before(e.At) {
		c := *e
		c.FirstResponseAt = &at
		s.Escalation = &c
	}
	if at.After(s.PublicAt) {
		s.PublicAt = at
	}
	return s
}

// Pause returns the SLA with the resolution clock stopped at at, for a
// ticket on hold or waiting on the customer. Pausing a paused or resolved
// SLA changes nothing.
func (s SLA) Pause(at time.Time) SLA {
	if s.PausedAt.IsZero() && s.ResolvedAt.IsZero() {
		s.PausedAt = at
	}
	return s
}

// Resume returns the SLA with the resolution clock running again at at.
// The resolution due time moves later by the paused time, counted in
// business time when the target is in business units. Resuming a running
// SLA changes nothing.
func (p SLAPolicy) Resume(s SLA, at time.Time) SLA {
	if s.PausedAt.IsZero() {
		return s
	}
	if at.After(s.PausedAt) {
		s.PausedFor += at.Sub(s.PausedAt)
		s.PausedBusiness += p.hours(s).Between(s.PausedAt, at)
		s = p.resumeEscalation(s, at)
	}
	s.PausedAt = time.Time{}
	return redue(s, KindResolution, p.resolutionDue(s))
}

// Resolve returns the SLA with the ticket resolved at at: from then on
// Check raises no alert for it. Only the first call counts.
func (s SLA) Resolve(at time.Time) SLA {
	if s.ResolvedAt.IsZero() {
		s.ResolvedAt = at
	}
	return s
}

// Reopen returns the SLA of a ticket that leaves resolved or closed at at:
// the resolution clock runs again, the time it stood resolved counting as
// a pause, so the due time moves later by that time and alerts are raised
// again when it passes. Reopening an unresolved SLA changes nothing.
func (p SLAPolicy) Reopen(s SLA, at time.Time) SLA {
	if s.ResolvedAt.IsZero() {
		return s
	}
	if s.PausedAt.IsZero() {
		s.PausedAt = s.ResolvedAt
	}
	s.ResolvedAt = time.Time{}
	return p.Resume(s, at)
}

// Check returns the alerts due at now that have not been raised yet, first
// response first, and the SLA with them recorded: each breach and each
// warning is raised once, so Check on the returned SLA at the same or a
// later now does not repeat them. A warning whose due time has already
// passed is skipped in favour of the breach. There is no first-response
// alert after the first response, no resolution alert while paused, and no
// alert at all after resolution.
func (p SLAPolicy) Check(s SLA, now time.Time) ([]Alert, SLA) {
	if s.Breached == nil {
		s.Breached = []string{}
	}
	if !s.ResolvedAt.IsZero() {
		return nil, s
	}
	if s.Escalation != nil {
		// Level 2's clock replaces level 1's.
		e := *s.Escalation
		if e.Breached == nil {
			e.Breached = []string{}
		}
		var alerts []Alert
		if e.FirstResponseAt == nil {
			alerts = p.check(alerts, &e.Breached, &e.Warned, KindFirstResponse, e.FirstResponseDue, now, 2)
		}
		if s.PausedAt.IsZero() {
			alerts = p.check(alerts, &e.Breached, &e.Warned, KindResolution, e.ResolutionDue, now, 2)
		}
		s.Escalation = &e
		return alerts, s
	}
	var alerts []Alert
	if s.FirstResponseAt == nil {
		alerts = p.check(alerts, &s.Breached, &s.Warned, KindFirstResponse, s.FirstResponseDue, now, 1)
	}
	if s.PausedAt.IsZero() {
		alerts = p.check(alerts, &s.Breached, &s.Warned, KindResolution, s.ResolutionDue, now, 1)
	}
	return alerts, s
}

func (p SLAPolicy) check(alerts []Alert, breached, warned *[]string, kind string, due, now time.Time, level int) []Alert {
	if due.IsZero() || slices.Contains(*breached, kind) {
		return alerts
	}
	if !now.Before(due) {
		// Clip so that appending never writes into the caller's array.
		*breached = append(slices.Clip(*breached), kind)
		return append(alerts, Alert{Kind: kind, Breach: true, Due: due, Level: level})
	}
	if p.WarnBefore > 0 && !now.Before(due.Add(-p.WarnBefore)) && !slices.Contains(*warned, kind) {
		*warned = append(slices.Clip(*warned), kind)
		return append(alerts, Alert{Kind: kind, Due: due, Level: level})
	}
	return alerts
}

// NextCheck returns the earliest instant at which Check will have an alert
// for s, or the zero time when it never will (for the due-time index).
// It includes the next critical follow-up (see FollowUp).
func (p SLAPolicy) NextCheck(s SLA) time.Time {
	if !s.ResolvedAt.IsZero() {
		return time.Time{}
	}
	next := p.followDue(s)
	soonest := func(at time.Time) {
		if !at.IsZero() && (next.IsZero() || at.Before(next)) {
			next = at
		}
	}
	firstAt, firstDue, resDue, breached, warned := s.FirstResponseAt, s.FirstResponseDue, s.ResolutionDue, s.Breached, s.Warned
	if e := s.Escalation; e != nil {
		firstAt, firstDue, resDue, breached, warned = e.FirstResponseAt, e.FirstResponseDue, e.ResolutionDue, e.Breached, e.Warned
	}
	if firstAt == nil {
		soonest(p.nextFor(breached, warned, KindFirstResponse, firstDue))
	}
	if s.PausedAt.IsZero() {
		soonest(p.nextFor(breached, warned, KindResolution, resDue))
	}
	return next
}

func (p SLAPolicy) nextFor(breached, warned []string, kind string, due time.Time) time.Time {
	if due.IsZero() || slices.Contains(breached, kind) {
		return time.Time{}
	}
	if p.WarnBefore > 0 && !slices.Contains(warned, kind) {
		return due.Add(-p.WarnBefore)
	}
	return due
}
