package desk

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/mail"
	"slices"
	"strings"
	"time"

	"ticketgate/mailout"
	"ticketgate/rules"
	"ticketgate/store"
)

// Sweeper applies the lifecycle steps and SLA alerts that have fallen due,
// and deletes the rate counters that no longer count for anything
// (rates.go).
// It reads only due tickets (the store's due index), in batches; each batch
// is one transaction holding every due ticket's step, its mail and its new
// due time, so a sweep that runs twice or stops half-way never sends the
// same reminder, notice or alert twice.
type Sweeper struct {
	Store  store.Store
	Desk   *mailout.Mailer
	Policy *Policy
	// Signer signs the reply and note addresses of the people an alert or
	// a critical follow-up goes to (the pipeline's Signer), so that an
	// answer to one lands on the ticket as theirs.
	Signer rules.Signer
	Log    *slog.Logger
	// Batch is the number of tickets per transaction (default 500). Each
	// transaction costs an fsync and a fresh copy of every page it touches,
	// so bigger batches sweep for less; but a batch holds the database's
	// single write lock, and incoming mail waits for it. A batch the store
	// keeps refusing for conflicts with other writers (store.ErrConflict:
	// another gateway's mail, on PostgreSQL) is swept again in batches a
	// tenth as big, down to one ticket, for the rest of the sweep.
	Batch int
	// Wake is called after a commit that queued mail (the outbox worker's Wake).
	Wake func()

	// failAfter, when > 0, makes the sweep fail before its failAfter+1-th
	// ticket, as a crash would (tests).
	failAfter int
}

// SweepAction is one thing a sweep did (or would do) to a ticket.
type SweepAction struct {
	Ticket string `json:"ticket"`
	Kind   string `json:"kind"` // reminder, waiting, closed, sla_breach, sla_warning, escalated, critical_reminder, bodies_deleted, suppressed, damaged
	Detail string `json:"detail"`
}

// SweepReport says what a sweep did.
type SweepReport struct {
	Now     time.Time     `json:"now"`
	DryRun  bool          `json:"dry_run"`
	Tickets int           `json:"tickets"` // due tickets looked at
	Mails   int           `json:"mails"`   // mails queued
	Actions []SweepAction `json:"actions"`
}

// errStop ends a dry run's single transaction early without an error.
var errStop = errors.New("sweep stopped")

func (s *Sweeper) batch() int {
	if s.Batch > 0 {
		return s.Batch
	}
	return 500
}

// Sweep applies everything due at now. With dryRun it works out the same
// changes in a transaction that is rolled back, so nothing changes, no
// mail is queued and no rate counter is deleted. A cancelled ctx stops it
// between batches; what was committed stays committed.
func (s *Sweeper) Sweep(ctx context.Context, now time.Time, dryRun bool) (*SweepReport, error) {
	// now may be given in any zone; the report says it in UTC, like
	// every time of the JSON.
	rep := &SweepReport{Now: now.UTC(), DryRun: dryRun, Actions: []SweepAction{}}
	seen := map[string]bool{}
	if dryRun {
		err := s.Store.DryRun(ctx, func(tx store.Tx) error {
			// A transaction refused for a conflict runs again from the
			// start: its first attempt's report is not the dry run's.
			rep.Tickets, rep.Mails, rep.Actions = 0, 0, []SweepAction{}
			clear(seen)
			if err := s.catchUpDue(ctx, tx); err != nil {
				return err
			}
			for {
				more, err := s.sweepBatch(ctx, tx, now, s.batch(), seen, rep)
				if err != nil || !more {
					return err
				}
			}
		})
		return rep, err
	}
	if err := s.policyDue(ctx); err != nil {
		return rep, err
	}
	size := s.batch()
	for {
		if err := ctx.Err(); err != nil {
			return rep, fmt.Errorf("sweep: %w", err)
		}
		var part *SweepReport
		var more bool
		var done map[string]bool
		err := s.Store.UpdateNow(ctx, func(tx store.Tx) error {
			// A transaction refused for a conflict runs again from the
			// start: what its first attempt did was rolled back.
			part, done = &SweepReport{}, maps.Clone(seen)
			var err error
			more, err = s.sweepBatch(ctx, tx, now, size, done, part)
			return err
		})
		if errors.Is(err, store.ErrConflict) && size > 1 {
			// Other writers commit faster than a batch this big runs.
			size = max(1, size/10)
			s.log().Info("sweep batch kept conflicting with other writes; sweeping in smaller batches", "tickets", size)
			continue
		}
		if err != nil {
			return rep, err
		}
		seen = done
		rep.Tickets += part.Tickets
		rep.Mails += part.Mails
		rep.Actions = append(rep.Actions, part.Actions...)
		if part.Mails > 0 && s.Wake != nil {
			s.Wake()
		}
		if !more {
			break
		}
	}
	n, err := s.expireRates(ctx, now)
	if n > 0 {
		s.log().Info("rate counters that no longer count deleted", "count", n)
	}
	return rep, err
}

// sweepBatch handles up to size due tickets in tx and reports whether
// more may be due.
func (s *Sweeper) sweepBatch(ctx context.Context, tx store.Tx, now time.Time, size int, seen map[string]bool, rep *SweepReport) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, fmt.Errorf("sweep: %w", err)
	}
	// Tickets handled earlier in this sweep normally are no longer due; the
	// limit leaves room for any that are, so they cannot starve the rest.
	// One id more than that tells whether anything is left for another
	// batch, so a sweep does not end with an empty (yet fsynced) commit.
	limit := size + len(seen) + 1
	ids, err := tx.DueTickets(now, limit)
	if err != nil {
		return false, fmt.Errorf("sweep: %w", err)
	}
	fresh := 0
	for _, id := range ids {
		if seen[id] {
			continue
		}
		if fresh == size {
			return true, nil
		}
		if s.failAfter > 0 && len(seen) >= s.failAfter {
			return false, fmt.Errorf("sweep: stopped after %d tickets (test failure)", len(seen))
		}
		seen[id] = true
		fresh++
		rep.Tickets++
		if err := s.sweepTicket(tx, id, now, rep); err != nil {
			return false, err
		}
	}
	if fresh == 0 && len(ids) > 0 {
		// Every ticket still due was handled in this sweep: its due time did
		// not move past now, which the policy should never allow.
		s.log().Error("tickets stay due after the sweep", "count", len(ids), "ticket", ids[0])
	}
	return fresh > 0 && len(ids) == limit, nil
}

func (s *Sweeper) log() *slog.Logger {
	if s.Log != nil {
		return s.Log
	}
	return slog.Default()
}

// sweepTicket applies the lifecycle step and the SLA alerts due for one
// ticket and writes it back, which moves its due time.
func (s *Sweeper) sweepTicket(tx store.Tx, id string, now time.Time, rep *SweepReport) error {
	t, err := tx.Ticket(id)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if errors.Is(err, store.ErrBadRecord) {
		return s.damaged(id, err, rep)
	}
	if err != nil {
		return err
	}
	c, actions := s.decide(t, now)
	if at := s.Policy.Retention.Due(t.Status, t.ClosedAt, t.BodiesDeletedAt); !at.IsZero() && !now.Before(at) {
		full, err := tx.TicketFull(id)
		if errors.Is(err, store.ErrBadRecord) {
			return s.damaged(id, err, rep)
		}
		if err != nil {
			return err
		}
		actions = append(actions, deleteBodies(c, full, now))
	}
	if err := Apply(tx, s.Desk, now, c); err != nil {
		return fmt.Errorf("sweep %s: %w", id, err)
	}
	rep.Mails += c.Queued
	for _, h := range c.Held {
		rep.Actions = append(rep.Actions, SweepAction{Ticket: id, Kind: "suppressed", Detail: h})
	}
	rep.Actions = append(rep.Actions, actions...)
	return nil
}

// damaged reports a due ticket that cannot be read (err wraps
// store.ErrBadRecord) and passes it over: it stays due, and is reported
// again at every sweep until it is repaired or restored, while the
// others are swept.
func (s *Sweeper) damaged(id string, err error, rep *SweepReport) error {
	s.log().Error("ticket passed over by the sweep: it does not decode; run check", "ticket", id, "err", err)
	rep.Actions = append(rep.Actions, SweepAction{Ticket: id, Kind: "damaged", Detail: err.Error()})
	return nil
}

// decide is what the sweep at now does to t: the lifecycle step due (a
// reminder, or a status change through the state machine with the
// notices it decides) and the SLA alerts due. Writing t back moves its
// due time, whether or not anything was due.
func (s *Sweeper) decide(t *store.Ticket, now time.Time) (*Change, []SweepAction) {
	p := s.Policy
	c := &Change{Ticket: t}
	var actions []SweepAction
	if at := p.Lifecycle.Stops(clockOf(t)); t.SLA != nil && !at.IsZero() && !now.Before(at) {
		// The step turns the ticket waiting or closes it, which pauses
		// or stops its resolution clock; a target missed before that,
		// while the ticket was open, is alerted first (the sweep may
		// come minutes or days after both).
		actions = append(actions, s.checkSLA(c, at.Add(-time.Nanosecond), now, true)...)
	}
	switch step, clock := p.Lifecycle.Next(clockOf(t), now); step {
	case rules.StepNone:
	case rules.StepLapse:
		// Nobody is told: the clock only stops owing the reminder.
		t.Clock = clock
	default:
		actions = append(actions, s.step(c, step, clock, now))
	}
	if t.SLA != nil {
		actions = append(actions, s.checkSLA(c, now, now, false)...)
		if ok, sla := p.SLA.FollowUp(*t.SLA, now); ok {
			t.SLA = &sla
			actions = append(actions, s.followUp(c, now))
		}
	}
	return c, actions
}

// checkSLA raises the SLA alerts of c's ticket due at at (each once) at
// now, only its breaches with breachesOnly (a warning of a clock about to
// pause says nothing), and escalates it on a level-1 breach when the
// policy says so.
func (s *Sweeper) checkSLA(c *Change, at, now time.Time, breachesOnly bool) []SweepAction {
	p, t := s.Policy, c.Ticket
	var actions []SweepAction
	pol := p.SLA
	if breachesOnly {
		pol.WarnBefore = 0
	}
	alerts, sla := pol.Check(*t.SLA, at)
	t.SLA = &sla
	for _, a := range alerts {
		actions = append(actions, s.alert(c, a, now))
	}
	if i := slices.IndexFunc(alerts, func(a rules.Alert) bool { return a.Breach && a.Level == 1 }); i >= 0 && p.SLA.Escalation.OnBreach && !t.Escalated {
		actions = append(actions, s.escalate(c, alerts[i], now))
	}
	return actions
}

// escalate moves c's ticket to level 2 on a level-1 breach ([escalation]
// on_breach) and adds the managers as watchers. Its priority stays. Level
// 2's agents are told as of an agent's #escalate (handover); the people
// the breach alerted hear of it there.
func (s *Sweeper) escalate(c *Change, a rules.Alert, now time.Time) SweepAction {
	t := c.Ticket
	before := viewOf(t)
	detail := "SLA breach: " + strings.ReplaceAll(a.Kind, "_", " ") + " overdue"
	if d := s.Policy.Escalate(t, now); d != "" {
		detail += "; " + d
	}
	var added []string
	for _, m := range s.Policy.Agents {
		if addr := strings.ToLower(m.Email); m.Manager && !slices.Contains(t.Watchers, addr) {
			t.Watchers = append(t.Watchers, addr)
			added = append(added, addr)
		}
	}
	if len(added) > 0 {
		detail += "; watchers " + strings.Join(added, ", ")
	}
	c.log(store.Event{At: now, Type: rules.EventEscalated, Detail: detail})
	handover(c, s.Signer, s.Policy.Agents, rules.Handing{Before: before, Escalated: true}, s.Desk.FromName, "", "Escalated to level 2: "+detail, now)
	return SweepAction{Ticket: t.ID, Kind: string(rules.EventEscalated), Detail: detail}
}

// followUp reminds the people of a critical ticket that has gone
// CriticalUpdateEvery without a public update.
func (s *Sweeper) followUp(c *Change, now time.Time) SweepAction {
	t := c.Ticket
	every := s.Policy.SLA.CriticalUpdateEvery
	since := t.CreatedAt
	if t.SLA.PublicAt.After(since) {
		since = t.SLA.PublicAt
	}
	to := s.Policy.followees(t)
	detail := "no public update since " + since.UTC().Format(time.RFC3339)
	if len(to) == 0 {
		detail += "; nobody to remind (no assignee, no agent for queue " + t.Queue + ", no manager)"
		c.log(store.Event{At: now, Type: rules.EventCriticalReminder, Detail: detail})
		return SweepAction{Ticket: t.ID, Kind: string(rules.EventCriticalReminder), Detail: detail}
	}
	detail += "; reminded " + strings.Join(mailout.Addrs(to), ", ")
	c.log(store.Event{At: now, Type: rules.EventCriticalReminder, Detail: detail})
	s.toEach(c, to, mailout.Out{Kind: "critical_update", Template: "critical_update", Auto: "auto-generated", Internal: true,
		Subject: fmt.Sprintf("[%s] Critical ticket without an update since %s – %s", t.ID, since.UTC().Format("2006-01-02 15:04 MST"), t.Subject),
		Data: map[string]any{"Since": since, "Every": rules.Span{Dur: every}.String(), "Now": now, "Escalated": t.Escalated,
			"Assignee": t.Assignee, "Queue": t.Queue, "Priority": t.Priority, "Requester": t.Requester}})
	return SweepAction{Ticket: t.ID, Kind: string(rules.EventCriticalReminder), Detail: detail}
}

// step decides one lifecycle step on c's ticket.
func (s *Sweeper) step(c *Change, step rules.Step, clock rules.Clock, now time.Time) SweepAction {
	t := c.Ticket
	since := clockOf(t).AwaitingSince
	data := map[string]any{"Resolved": t.Status == rules.StatusResolved}
	if step == rules.StepRemind {
		t.Clock = clock
		t.UpdatedAt = now
		o := s.Policy.noticeOut(t, "reminder", now, since, data)
		o.Kind, o.Template = "reminder", "reminder"
		// A reminder held back (a bouncing address, the rate limit) logs
		// only the mail_suppressed event saying so and why: no
		// reminder_sent, and the action does not say it was sent.
		ev := store.Event{At: now, Type: rules.EventReminderSent, Detail: "reminder sent to " + t.Requester}
		c.send(Intent{Out: o, Queued: ev})
		return SweepAction{Ticket: t.ID, Kind: stepKind(step), Detail: "reminder to " + t.Requester}
	}
	// Whether the customer was told is the notice's own event: it may be
	// held back (a bouncing address).
	to, why := rules.StatusWaiting, "no answer from the customer since "+since.UTC().Format(time.RFC3339)
	if step == rules.StepClose {
		to = rules.StatusClosed
		if t.Status == rules.StatusResolved {
			why = "resolved on " + clockOf(t).ResolvedAt.UTC().Format(time.RFC3339)
		}
	}
	mv := s.Policy.changeStatus(t, rules.StatusChange{To: to, Cause: rules.CauseLifecycle, Why: why, At: now}, "")
	if step == rules.StepClose {
		// The sweep's closing always counts as asking for the rating, so a
		// later number in a reply is read as one.
		t.SurveySent = true
	}
	c.log(mv.Events...)
	c.send(s.Policy.noticeIntents(t, mv, data)...)
	detail := ""
	for _, e := range mv.Events {
		if e.Type == rules.EventStatus {
			detail = e.Detail
		}
	}
	return SweepAction{Ticket: t.ID, Kind: stepKind(step), Detail: detail}
}

func stepKind(step rules.Step) string {
	switch step {
	case rules.StepRemind:
		return "reminder"
	case rules.StepClose:
		return "closed"
	}
	return string(step)
}

// days rounds d to whole days, at least 1.
func days(d time.Duration) int {
	return max(1, int((d+12*time.Hour)/(24*time.Hour)))
}

// alert raises one SLA breach or warning: an event, and a mail to each
// of the assignee (or the queue's agents when unassigned) and the managers.
func (s *Sweeper) alert(c *Change, a rules.Alert, now time.Time) SweepAction {
	t := c.Ticket
	kind, what := rules.EventSLAWarning, "due soon"
	if a.Breach {
		kind, what = rules.EventSLABreach, "overdue"
	}
	target := strings.ReplaceAll(a.Kind, "_", " ")
	to := s.Policy.alertees(t)
	if a.Level == 2 {
		target = "level 2 " + target
		to = s.Policy.levelTwo(t)
	}
	detail := fmt.Sprintf("%s %s (due %s)", target, what, a.Due.UTC().Format(time.RFC3339))
	if len(to) > 0 {
		detail += "; alerted " + strings.Join(mailout.Addrs(to), ", ")
		s.toEach(c, to, mailout.Out{Kind: "alert", Template: "sla_alert", Auto: "auto-generated", Internal: true,
			Subject: fmt.Sprintf("[%s] %s – %s", t.ID, a.Title(), t.Subject),
			Data: map[string]any{"Breach": a.Breach, "Target": target, "Due": a.Due, "Now": now,
				"Assignee": t.Assignee, "Queue": t.Queue, "Priority": t.Priority, "Requester": t.Requester, "Level": max(1, a.Level)}})
	} else {
		detail += "; nobody to alert (no assignee, no agent for queue " + t.Queue + ", no manager)"
	}
	c.log(store.Event{At: now, Type: kind, Detail: detail})
	return SweepAction{Ticket: t.ID, Kind: string(kind), Detail: detail}
}

// toEach queues o to each person in to, in a mail of their own whose
// Reply-To is their signed reply address and whose text names their note
// address, as agents' notifications are: the natural "Reply" then answers
// the customer on the ticket as that person. Mail to the plain routing
// address would be taken for a customer's and open a new ticket.
func (s *Sweeper) toEach(c *Change, to []mail.Address, o mailout.Out) {
	t := c.Ticket
	for _, a := range to {
		one := o
		one.To = []mail.Address{a}
		name := a.Name
		if name == "" {
			name = a.Address
		}
		reply := signedAddress(s.Signer, t, rules.TokenReply, a.Address)
		one.Data = markerData(maps.Clone(o.Data))
		one.Data["AgentName"], one.Data["ReplyAddress"] = name, reply
		one.Data["NoteAddress"] = signedAddress(s.Signer, t, rules.TokenNote, a.Address)
		if reply != "" {
			one.ReplyTo = &mail.Address{Address: reply}
		} else {
			// Without a key the mail still goes: a missed SLA matters
			// more than where an answer to it lands.
			s.log().Warn("alert sent without a reply address: no signing key", "ticket", t.ID, "to", a.Address)
		}
		c.send(Intent{Out: one})
	}
}

// alertees are the people an SLA alert on t goes to: the assignee, or the
// agents of the ticket's queue when it is unassigned or its assignee is no
// longer among the agents (the rule of new-ticket notifications: queue
// names match in any case, an agent without queues is in none), and every
// manager.
func (p *Policy) alertees(t *store.Ticket) []mail.Address {
	var out []mail.Address
	add := func(email, name string) {
		if email == "" || slices.ContainsFunc(out, func(a mail.Address) bool { return strings.EqualFold(a.Address, email) }) {
			return
		}
		out = append(out, mail.Address{Name: name, Address: email})
	}
	assigned := false
	for _, a := range p.Agents {
		if t.Assignee != "" && strings.EqualFold(a.Email, t.Assignee) {
			add(t.Assignee, a.Name)
			assigned = true
			break
		}
	}
	if !assigned {
		for _, a := range p.Agents {
			if slices.ContainsFunc(a.Queues, func(q string) bool { return strings.EqualFold(q, t.Queue) }) {
				add(a.Email, a.Name)
			}
		}
	}
	for _, a := range p.Agents {
		if a.Manager {
			add(a.Email, a.Name)
		}
	}
	return out
}

// levelTwo are the people a level-2 SLA alert on t goes to: the agents of
// level 2's queue and every manager.
func (p *Policy) levelTwo(t *store.Ticket) []mail.Address {
	var out []mail.Address
	add := func(a AgentRef) {
		if !slices.ContainsFunc(out, func(o mail.Address) bool { return strings.EqualFold(o.Address, a.Email) }) {
			out = append(out, mail.Address{Name: a.Name, Address: a.Email})
		}
	}
	queue := p.SLA.EscalationQueue(t.Queue)
	for _, a := range p.Agents {
		if slices.ContainsFunc(a.Queues, func(q string) bool { return strings.EqualFold(q, queue) }) {
			add(a)
		}
	}
	for _, a := range p.Agents {
		if a.Manager {
			add(a)
		}
	}
	return out
}

// followees are the people a critical follow-up on t goes to: the
// assignee; when unassigned, or assigned to someone no longer among the
// agents, the agents of its queue; when the queue has none, the managers.
func (p *Policy) followees(t *store.Ticket) []mail.Address {
	var out []mail.Address
	for _, a := range p.Agents {
		if t.Assignee != "" && strings.EqualFold(a.Email, t.Assignee) {
			return []mail.Address{{Name: a.Name, Address: t.Assignee}}
		}
	}
	for _, a := range p.Agents {
		if slices.ContainsFunc(a.Queues, func(q string) bool { return strings.EqualFold(q, t.Queue) }) {
			out = append(out, mail.Address{Name: a.Name, Address: a.Email})
		}
	}
	if len(out) > 0 {
		return out
	}
	for _, a := range p.Agents {
		if a.Manager {
			out = append(out, mail.Address{Name: a.Name, Address: a.Email})
		}
	}
	return out
}
