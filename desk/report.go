package desk

import (
	"context"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"ticketgate/rules"
	"ticketgate/store"
)

// ReportQuery selects what a Report counts: the tickets of Queue (all when
// empty) and the instants in [From, To) (From zero: since the first ticket;
// To zero: until Now). Hours is the business calendar business times are
// counted in; Now decides which SLA targets are still running.
type ReportQuery struct {
	From, To time.Time
	Queue    string
	Hours    rules.BusinessHours
	Now      time.Time
}

// Report is the team lead's numbers over a period. Its JSON form is a
// public contract ("ticketgate report -json", GET /api/report).
//
// Opened counts tickets created in the period; Reopened and Resolved count
// the reopenings and resolutions (status moves into resolved, or into
// closed from anything but resolved) that happened in it, each once: the
// copies a merge puts on the target are not counted again. FirstResponse is
// measured on the tickets opened in the period that have had a first
// public reply; Resolution on the resolutions of the period, from the
// ticket's creation. SLA counts the targets of the tickets opened in the
// period, by the priority and escalation level they have now: level 1's
// by priority, and those of the level by level (level 2's own targets,
// counted from the escalation, for an escalated ticket).
// Satisfaction counts the ratings given in the period: the last one
// given to each survey, so a ticket closed twice counts the rating of each
// closing.
//
// A report of one queue counts each of these in the queue the ticket was
// in when it happened: an escalated ticket's opening and level-1 targets
// in the queue it was opened in, its level-2 targets in the queue it
// moved to, its first response, resolutions, reopenings and ratings where
// it was when they came.
type Report struct {
	From          time.Time          `json:"from,omitzero"`
	To            time.Time          `json:"to"`
	Queue         string             `json:"queue,omitempty"`
	Opened        int                `json:"opened"`
	Resolved      int                `json:"resolved"`
	Reopened      int                `json:"reopened"`
	FirstResponse Durations          `json:"first_response"`
	Resolution    Durations          `json:"resolution"`
	SLA           SLAReport          `json:"sla"`
	Satisfaction  SatisfactionReport `json:"satisfaction"`
}

// Durations sums up a set of waiting times, in calendar time and in the
// business time of the report's calendar.
type Durations struct {
	Count    int         `json:"count"`
	Calendar Percentiles `json:"calendar"`
	Business Percentiles `json:"business"`
}

// Percentiles are the median and the 90th percentile (nearest rank), in
// seconds; zero when there is nothing to measure.
type Percentiles struct {
	Median float64 `json:"median_seconds"`
	P90    float64 `json:"p90_seconds"`
}

// SLAReport is SLA compliance by priority ("low" ... "critical") and by
// escalation level ("1", "2").
type SLAReport struct {
	ByPriority map[string]*Compliance `json:"by_priority"`
	ByLevel    map[string]*Compliance `json:"by_level"`
}

// Compliance counts the SLA targets met and missed. A target is met when
// the first reply (or the resolution) came by its due time, missed when it
// came later or is still missing past it; a target still running counts
// in neither, as does a resolution target paused (on hold, waiting) before
// its due time. A ticket resolved without a reply ended its first-response
// target with the resolution. Percent is met / (met + missed) × 100, 100 when none ended.
type Compliance struct {
	Tickets             int     `json:"tickets"`
	FirstResponseMet    int     `json:"first_response_met"`
	FirstResponseMissed int     `json:"first_response_missed"`
	ResolutionMet       int     `json:"resolution_met"`
	ResolutionMissed    int     `json:"resolution_missed"`
	Percent             float64 `json:"percent"`
}

// SatisfactionReport counts the customers' ratings: how many, their mean
// and how many of each score ("1" ... "5").
type SatisfactionReport struct {
	Count        int            `json:"count"`
	Average      float64        `json:"average"`
	Distribution map[string]int `json:"distribution"`
}

// BuildReport reads every ticket with its events through r and counts q's
// numbers. It only reads, so it runs beside serve on a read transaction.
func BuildReport(r store.Reader, q ReportQuery) (*Report, error) {
	if q.Now.IsZero() {
		q.Now = time.Now()
	}
	if q.To.IsZero() {
		q.To = q.Now
	}
	// Every ticket: an escalation may have moved one out of the queue
	// since (its queue is then not the one it was opened in).
	list, _, err := r.Tickets(store.Filter{})
	if err != nil {
		return nil, err
	}
	// Given in the operator's time zone (a day of -from), written in UTC
	// like every time of the JSON.
	rep := &Report{From: q.From.UTC(), To: q.To.UTC(), Queue: q.Queue,
		SLA:          SLAReport{ByPriority: map[string]*Compliance{}, ByLevel: map[string]*Compliance{}},
		Satisfaction: SatisfactionReport{Distribution: map[string]int{}}}
	var firstCal, firstBiz, resCal, resBiz []time.Duration
	scoreSum := 0
	for _, sum := range list {
		if err := r.Context().Err(); err != nil {
			return nil, err
		}
		if q.Queue != "" && !sum.Escalated && !strings.EqualFold(sum.Queue, q.Queue) {
			continue // never in the queue
		}
		t, err := r.TicketFull(sum.ID)
		if err != nil {
			return nil, err
		}
		inQueue := func(at time.Time) bool { return q.Queue == "" || strings.EqualFold(queueAt(t, at), q.Queue) }
		if q.in(t.CreatedAt) {
			if inQueue(t.CreatedAt) {
				rep.Opened++
			}
			if t.SLA != nil && t.SLA.FirstResponseAt != nil && inQueue(*t.SLA.FirstResponseAt) {
				firstCal = append(firstCal, t.SLA.FirstResponseAt.Sub(t.CreatedAt))
				firstBiz = append(firstBiz, q.Hours.Between(t.CreatedAt, *t.SLA.FirstResponseAt))
			}
			if t.SLA != nil {
				level, levelIn := "1", inQueue(t.CreatedAt)
				if t.Escalated {
					// A ticket is escalated once: level 2's queue is the
					// one it is in now.
					level, levelIn = "2", q.Queue == "" || strings.EqualFold(t.Queue, q.Queue)
				}
				rep.SLA.count(string(t.Priority), level, t.SLA, q.Now, inQueue(t.CreatedAt), levelIn)
			}
		}
		for _, e := range t.Events {
			if !q.in(e.At) || MergedCopy(e) || !inQueue(e.At) {
				continue
			}
			switch {
			case e.Type == rules.EventReopened:
				rep.Reopened++
			case e.Type == rules.EventStatus && Resolves(e.Detail):
				rep.Resolved++
				resCal = append(resCal, e.At.Sub(t.CreatedAt))
				resBiz = append(resBiz, q.Hours.Between(t.CreatedAt, e.At))
			}
		}
		for _, s := range ratings(t) {
			if q.in(s.At) && s.Score >= 1 && inQueue(s.At) {
				rep.Satisfaction.Count++
				rep.Satisfaction.Distribution[strconv.Itoa(s.Score)]++
				scoreSum += s.Score
			}
		}
	}
	rep.FirstResponse = durations(firstCal, firstBiz)
	rep.Resolution = durations(resCal, resBiz)
	if n := rep.Satisfaction.Count; n > 0 {
		rep.Satisfaction.Average = math.Round(float64(scoreSum)/float64(n)*100) / 100
	}
	for _, m := range []map[string]*Compliance{rep.SLA.ByPriority, rep.SLA.ByLevel} {
		for _, c := range m {
			c.Percent = 100
			if ended := c.FirstResponseMet + c.FirstResponseMissed + c.ResolutionMet + c.ResolutionMissed; ended > 0 {
				c.Percent = math.Round(float64(c.FirstResponseMet+c.ResolutionMet)/float64(ended)*1000) / 10
			}
		}
	}
	return rep, nil
}

func (q ReportQuery) in(t time.Time) bool {
	return !t.Before(q.From) && t.Before(q.To)
}

// ratings are the ratings of ticket t a report counts: the last one
// given to each survey, one a closing sends (a later rating replaces one
// given since the ticket was last closed, as the desk keeps it), read
// from its satisfaction events; the stored rating alone when they name
// none.
func ratings(t *store.Ticket) []store.Satisfaction {
	var out []store.Satisfaction
	var last *store.Satisfaction
	for _, e := range t.Events {
		if MergedCopy(e) {
			continue
		}
		switch e.Type {
		case rules.EventStatus:
			if _, rest, ok := strings.Cut(e.Detail, " → "); ok && last != nil && strings.HasPrefix(rest, string(rules.StatusClosed)) {
				out, last = append(out, *last), nil
			}
		case rules.EventSatisfaction:
			rest, ok := strings.CutPrefix(e.Detail, "rated ")
			n, _, cut := strings.Cut(rest, "/5")
			if score, err := strconv.Atoi(n); ok && cut && err == nil {
				last = &store.Satisfaction{Score: score, At: e.At}
			}
		}
	}
	if last != nil {
		out = append(out, *last)
	}
	if len(out) == 0 && t.Satisfaction != nil {
		out = append(out, *t.Satisfaction)
	}
	return out
}

// queueAt is the queue ticket t was in at instant at: its queue now,
// unless an escalation at or after at moved it there from another (its
// escalated event says "queue A → B"). What happens together with the
// escalation happens before it: a reply that escalates answers at level 1.
func queueAt(t *store.Ticket, at time.Time) string {
	queue, moved := t.Queue, time.Time{}
	for _, e := range t.Events {
		if e.Type != rules.EventEscalated || e.At.Before(at) || MergedCopy(e) {
			continue
		}
		for _, part := range strings.Split(e.Detail, "; ") {
			rest, ok := strings.CutPrefix(part, "queue ")
			if !ok {
				continue
			}
			if from, _, ok := strings.Cut(rest, " → "); ok && (moved.IsZero() || e.At.Before(moved)) {
				queue, moved = from, e.At
			}
		}
	}
	return queue
}

// Resolves reports whether a status event's detail ("from → to (why)")
// records a resolution: a move into resolved, or into closed from a
// status other than resolved (closing a resolved ticket resolves nothing
// again).
func Resolves(detail string) bool {
	from, rest, ok := strings.Cut(detail, " → ")
	if !ok {
		return false
	}
	to, _, _ := strings.Cut(rest, " ")
	switch rules.Status(to) {
	case rules.StatusResolved:
		return from != string(rules.StatusResolved)
	case rules.StatusClosed:
		return from != string(rules.StatusResolved) && from != string(rules.StatusClosed)
	}
	return false
}

// count counts the targets of a ticket's SLA: its priority's (level 1's)
// by priority when byPriority, and, when byLevel, by level those of the
// level it has now, level 2's own from the escalation on.
func (s SLAReport) count(prio, level string, sla *rules.SLA, now time.Time, byPriority, byLevel bool) {
	var resolved *time.Time
	if !sla.ResolvedAt.IsZero() {
		resolved = &sla.ResolvedAt
	}
	// On hold or waiting on the customer, the resolution clock stands
	// still: its due time moves later by the pause when it runs again,
	// and no breach is raised meanwhile. It ended only if it passed
	// before the pause began.
	resNow := now
	if resolved == nil && !sla.PausedAt.IsZero() && sla.PausedAt.Before(now) {
		resNow = sla.PausedAt
	}
	first, firstDue, resDue := sla.FirstResponseAt, sla.FirstResponseDue, sla.ResolutionDue
	if byPriority {
		countIn(s.ByPriority, prio, first, firstDue, resolved, resDue, now, resNow)
	}
	if e := sla.Escalation; e != nil && level == "2" {
		first, firstDue, resDue = e.FirstResponseAt, e.FirstResponseDue, e.ResolutionDue
	}
	if byLevel {
		countIn(s.ByLevel, level, first, firstDue, resolved, resDue, now, resNow)
	}
}

// countIn counts one ticket's first response and resolution targets
// under key of m, the resolution's as of resNow (when its clock stopped
// for a pause).
func countIn(m map[string]*Compliance, key string, first *time.Time, firstDue time.Time, resolved *time.Time, resDue, now, resNow time.Time) {
	c := m[key]
	if c == nil {
		c = &Compliance{}
		m[key] = c
	}
	c.Tickets++
	if first == nil {
		// Resolved unanswered (a duplicate merged, a request withdrawn):
		// the first-response target ended with the resolution, as its
		// alerts did.
		first = resolved
	}
	switch met, ended := target(first, firstDue, now); {
	case met:
		c.FirstResponseMet++
	case ended:
		c.FirstResponseMissed++
	}
	switch met, ended := target(resolved, resDue, resNow); {
	case met:
		c.ResolutionMet++
	case ended:
		c.ResolutionMissed++
	}
}

// target tells whether a target with due time due was met by done, and
// whether it has ended (done, or due passed at now).
func target(done *time.Time, due, now time.Time) (met, ended bool) {
	if due.IsZero() {
		return false, false
	}
	if done != nil {
		return !done.After(due), true
	}
	return false, now.After(due)
}

func durations(cal, biz []time.Duration) Durations {
	return Durations{Count: len(cal), Calendar: percentiles(cal), Business: percentiles(biz)}
}

func percentiles(ds []time.Duration) Percentiles {
	if len(ds) == 0 {
		return Percentiles{}
	}
	slices.Sort(ds)
	rank := func(p float64) float64 {
		i := int(math.Ceil(p*float64(len(ds)))) - 1
		return ds[max(i, 0)].Seconds()
	}
	return Percentiles{Median: rank(0.5), P90: rank(0.9)}
}

// ReportContext runs BuildReport in a read transaction of s.
func ReportContext(ctx context.Context, s store.Store, q ReportQuery) (*Report, error) {
	var rep *Report
	err := s.View(ctx, func(tx store.Tx) error {
		var err error
		rep, err = BuildReport(tx, q)
		return err
	})
	return rep, err
}
