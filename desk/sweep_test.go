package desk

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/mail"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"ticketgate/mailout"
	"ticketgate/mailout/relaytest"
	"ticketgate/rules"
	"ticketgate/store"
	"ticketgate/store/boltdb"
)

func subject(t testing.TB, m relaytest.Mail) string {
	h, _ := parse(t, m)
	return h.Get("Subject")
}

// kinds returns the kind of each mail sent (the body's tell-tale phrase).
func kinds(t testing.TB, e *env, from int) []string {
	t.Helper()
	var out []string
	for _, m := range e.delivered()[from:] {
		h, body := parse(t, m)
		switch {
		case strings.Contains(body, "we are waiting for your answer"):
			out = append(out, "reminder")
		case strings.Contains(body, `"waiting for your answer"`):
			out = append(out, "waiting")
		case strings.Contains(body, "we have closed ticket"):
			out = append(out, "closed")
		case strings.Contains(body, "How satisfied were you"):
			out = append(out, "survey")
		default:
			out = append(out, "other: "+h.Get("Subject"))
		}
	}
	return out
}

func TestLifecycleRemindWaitClose(t *testing.T) {
	e := newEnv(t)
	e.create("HS-300001", "cy@customer.example", day0, rules.PriorityLow)
	e.agentReply("HS-300001", day0)
	steps := []struct {
		at     float64
		want   string
		status rules.Status
	}{
		{1, "", rules.StatusOpen},
		{2.99, "", rules.StatusOpen},
		{3, "reminder", rules.StatusOpen},
		{3.5, "", rules.StatusOpen},
		{6.9, "", rules.StatusOpen},
		{7, "waiting", rules.StatusWaiting},
		{10, "", rules.StatusWaiting},
		{14, "closed survey", rules.StatusClosed},
		{40, "", rules.StatusClosed},
	}
	sent := 0
	for _, s := range steps {
		e.run(day(s.at))
		got := kinds(t, e, sent)
		sent += len(got)
		if strings.Join(got, " ") != s.want {
			t.Errorf("day %v: sent %v, want %q", s.at, got, s.want)
		}
		if st := e.ticket("HS-300001").Status; st != s.status {
			t.Errorf("day %v: status %s, want %s", s.at, st, s.status)
		}
	}
	tk := e.ticket("HS-300001")
	if len(events(tk, "reminder_sent")) != 1 || len(events(tk, "survey_sent")) != 1 || !tk.SurveySent || tk.ClosedAt == nil || !tk.ClosedAt.Equal(day(14)) {
		t.Errorf("ticket after close: events %+v survey %v closed %v", tk.Events, tk.SurveySent, tk.ClosedAt)
	}
	m := e.delivered()[0]
	h, body := parse(t, m)
	if m.To[0] != "cy@customer.example" || !strings.Contains(h.Get("Subject"), "[HS-300001]") ||
		h.Get("Auto-Submitted") != "auto-generated" || !strings.Contains(body, "we are waiting for your answer on ticket HS-300001") {
		t.Errorf("reminder to %v:\n%v\n%s", m.To, h, body)
	}
	_, closing := parse(t, e.delivered()[2])
	if !strings.Contains(closing, "within 7 days") {
		t.Errorf("closing mail does not say how to reopen:\n%s", closing)
	}
	if tk.Due.IsZero() == false {
		t.Errorf("closed ticket still due at %s", tk.Due)
	}
}

func TestCustomerReplyStopsAgentReplyRestarts(t *testing.T) {
	e := newEnv(t)
	e.create("HS-300002", "cy@customer.example", day0, rules.PriorityLow)
	e.agentReply("HS-300002", day0)
	e.run(day(3))
	e.delivered() // the reminder goes out on day 3, before the customer writes
	e.customerReply("HS-300002", day(5))
	e.run(day(7))
	e.run(day(14))
	if got := kinds(t, e, 0); strings.Join(got, " ") != "reminder" {
		t.Fatalf("after the customer's reply on day 5: sent %v, want only the day-3 reminder", got)
	}
	if st := e.ticket("HS-300002").Status; st != rules.StatusOpen {
		t.Fatalf("status %s, want open", st)
	}
	// The agent answers on day 15: a new wait, a new reminder is owed.
	e.agentReply("HS-300002", day(15))
	e.run(day(17.9))
	e.run(day(18))
	e.run(day(18.5))
	e.run(day(22))
	if got := kinds(t, e, 1); strings.Join(got, " ") != "reminder waiting" {
		t.Fatalf("after the agent's reply on day 15: sent %v, want reminder then waiting", got)
	}
}

func TestOnHoldPausesClockAndSLA(t *testing.T) {
	e := newEnv(t)
	e.policy.Agents = []AgentRef{{Email: "mia@example.com", Manager: true}}
	e.create("HS-300003", "cy@customer.example", day0, rules.PriorityHigh) // resolution 24h
	e.agentReply("HS-300003", day0.Add(time.Hour))
	e.setStatus("HS-300003", rules.StatusOnHold, day0.Add(2*time.Hour))
	e.run(day(20))
	if got := kinds(t, e, 0); len(got) != 0 {
		t.Fatalf("on hold for 20 days: sent %v", got)
	}
	tk := e.ticket("HS-300003")
	if tk.Status != rules.StatusOnHold || tk.SLA.PausedAt.IsZero() || len(tk.SLA.Breached) != 0 {
		t.Fatalf("on hold ticket: status %s sla %+v", tk.Status, tk.SLA)
	}
	// Back to open on day 20: 24h resolution minus the 2h that ran before the pause.
	e.setStatus("HS-300003", rules.StatusOpen, day(20))
	if due := e.ticket("HS-300003").SLA.ResolutionDue; !due.Equal(day(20).Add(22 * time.Hour)) {
		t.Fatalf("resolution due %s, want %s", due, day(20).Add(22*time.Hour))
	}
	e.run(day(20).Add(21 * time.Hour))
	if n := len(e.delivered()); n != 0 {
		t.Fatalf("%d alerts before the moved resolution due time", n)
	}
	e.run(day(20).Add(22 * time.Hour))
	if m := e.delivered(); len(m) != 1 || !strings.Contains(subject(t, m[0]), "SLA breach: resolution overdue") {
		t.Fatalf("want one resolution breach alert, got %d", len(m))
	}
}

func TestResolvedClosesUnlessCustomerReplies(t *testing.T) {
	e := newEnv(t)
	for _, id := range []string{"HS-300004", "HS-300005"} {
		e.create(id, strings.ToLower(id)+"@customer.example", day0, rules.PriorityLow)
		e.agentReply(id, day0)
		e.setStatus(id, rules.StatusResolved, day(1))
	}
	e.customerReply("HS-300005", day(3))
	e.run(day(7.9))
	if n := len(e.delivered()); n != 0 {
		t.Fatalf("%d mails before the resolved ticket's time", n)
	}
	e.run(day(8))
	mails := e.delivered()
	if got := kinds(t, e, 0); strings.Join(got, " ") != "closed survey" || mails[0].To[0] != "hs-300004@customer.example" {
		t.Fatalf("sent %v to %v, want closing notice and survey for HS-300004", got, mails[0].To)
	}
	if st := e.ticket("HS-300005").Status; st != rules.StatusOpen {
		t.Errorf("ticket the customer answered is %s, want open", st)
	}
	if _, body := parse(t, mails[0]); !strings.Contains(body, "marked as resolved") {
		t.Errorf("closing notice does not mention the resolution:\n%s", mails[0].Data)
	}
}

// TestDowntimeClosesOnce: after 20 days without a sweep the ticket is
// closed with the closing notice and survey, without the stale reminder or
// waiting notice.
func TestDowntimeClosesOnce(t *testing.T) {
	e := newEnv(t)
	e.create("HS-300006", "cy@customer.example", day0, rules.PriorityLow)
	e.agentReply("HS-300006", day0)
	e.run(day(20))
	e.run(day(20))
	e.run(day(21))
	if got := kinds(t, e, 0); strings.Join(got, " ") != "closed survey" {
		t.Fatalf("sent %v, want only the closing notice and the survey", got)
	}
	tk := e.ticket("HS-300006")
	if len(events(tk, "reminder_sent")) != 0 || tk.Status != rules.StatusClosed {
		t.Errorf("status %s, reminder events %d", tk.Status, len(events(tk, "reminder_sent")))
	}
}

// TestWaitingTicketsGetNoLateReminder: a waiting ticket is reminded at
// most once, and only before its wait is 7 days old: never after the
// lifecycle's own waiting notice (which asks for the answer already),
// whether the reminder went before it, was passed over after downtime, or
// the ticket was turned waiting by an earlier release; nor a second time
// when an agent sets waiting after the reminder went.
func TestWaitingTicketsGetNoLateReminder(t *testing.T) {
	for _, tc := range []struct {
		name string
		do   func(e *env)
		want string
	}{
		{"turned waiting after downtime", func(e *env) {
			e.run(day(8))
		}, "waiting"},
		{"turned waiting by an earlier release", func(e *env) {
			e.run(day(3))
			e.run(day(7))
			// That release kept no mark of the reminder on a waiting
			// ticket; the restarted gateway gives every ticket its due
			// time again.
			e.change("HS-300040", func(t *store.Ticket) { t.Clock.Reminded = false })
			e.store.Close()
			p := *e.policy
			e.policy = &p
			e.open()
		}, "reminder waiting"},
		{"set waiting after the reminder", func(e *env) {
			e.run(day(3))
			e.setStatus("HS-300040", rules.StatusWaiting, day(5))
		}, "reminder"},
		{"set waiting, gateway down until day 9", func(e *env) {
			e.setStatus("HS-300040", rules.StatusWaiting, day(0.5))
		}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.create("HS-300040", "cy@customer.example", day0, rules.PriorityLow)
			e.agentReply("HS-300040", day0)
			tc.do(e)
			for _, d := range []float64{9, 10, 13} {
				e.run(day(d))
			}
			if got := strings.Join(kinds(t, e, 0), " "); got != tc.want {
				t.Errorf("sent %q by day 13, want %q", got, tc.want)
			}
			if tk := e.ticket("HS-300040"); tk.Status != rules.StatusWaiting || !tk.Due.Equal(day(14)) {
				t.Errorf("on day 13: status %s, due %s; want waiting until day 14", tk.Status, tk.Due)
			}
		})
	}
}

// TestSweepTwiceAndCrashSendOnce: a sweep that fails half-way keeps what
// it committed, and the sweeps after it (in a reopened database) send each
// reminder exactly once.
func TestSweepTwiceAndCrashSendOnce(t *testing.T) {
	e := newEnv(t)
	const n = 250
	e.update(func(tx store.Tx) error {
		for i := range n {
			tk := &store.Ticket{ID: fmt.Sprintf("HS-%06d", i), Subject: "s", Status: rules.StatusOpen, Priority: rules.PriorityLow,
				Queue: "support", Route: "support@example.com", Requester: fmt.Sprintf("c%d@customer.example", i), CreatedAt: day0, UpdatedAt: day0}
			e.policy.Created(tk, day0)
			e.policy.AgentReplied(tk, day0)
			if err := tx.PutTicket(tk); err != nil {
				return err
			}
		}
		return nil
	})
	e.sweep.Batch = 100
	e.sweep.failAfter = 150
	if _, err := e.sweep.Sweep(context.Background(), day(3), false); err == nil {
		t.Fatal("sweep with an injected failure succeeded")
	}
	if got := len(e.delivered()); got != 100 {
		t.Fatalf("after the failed sweep %d reminders went out, want the committed batch of 100", got)
	}
	e.store.Close()
	e.open()
	e.sweep.Batch = 100
	rep := e.run(day(3))
	e.run(day(3))
	e.run(day(4))
	if rep.Tickets != n-100 {
		t.Errorf("second sweep looked at %d tickets, want %d", rep.Tickets, n-100)
	}
	per := map[string]int{}
	for _, m := range e.delivered() {
		per[m.To[0]]++
	}
	for i := range n {
		if c := per[fmt.Sprintf("c%d@customer.example", i)]; c != 1 {
			t.Errorf("customer %d got %d reminders", i, c)
		}
	}
}

func TestDryRunChangesNothing(t *testing.T) {
	e := newEnv(t)
	e.create("HS-300007", "cy@customer.example", day0, rules.PriorityLow)
	e.agentReply("HS-300007", day0)
	rep, err := e.sweep.Sweep(context.Background(), day(14), true)
	if err != nil || len(rep.Actions) != 1 || rep.Actions[0].Kind != "closed" || rep.Mails != 2 {
		t.Fatalf("dry run: %+v %v", rep, err)
	}
	if n := len(e.delivered()); n != 0 || e.ticket("HS-300007").Status != rules.StatusOpen {
		t.Fatalf("dry run sent %d mails, status %s", n, e.ticket("HS-300007").Status)
	}
	if rep := e.run(day(14)); len(rep.Actions) != 1 {
		t.Fatalf("real sweep after the dry run: %+v", rep)
	}
}

// BenchmarkSweep sweeps 1,000 due tickets among 10,000 and among
// 1,000,000, each sweep committing to a database on disk. The sweep reads
// only the due index and writes only what the due tickets change, and the
// project promises that the sweep over 1,000,000 tickets takes at most
// twice as long as the one over 10,000. Each size reports ms/sweep; when
// both run, the larger logs the ratio.
func BenchmarkSweep(b *testing.B) {
	const due = 1000
	dir := b.TempDir()
	perSweep := map[int]float64{}
	for _, total := range []int{10_000, 1_000_000} {
		// Built once per size and kept for every run b.Run makes of it:
		// loading a million tickets takes far longer than the sweeps.
		var sb *sweepBench
		b.Cleanup(func() {
			if sb != nil {
				sb.st.Close()
			}
		})
		b.Run(fmt.Sprintf("tickets=%d", total), func(b *testing.B) {
			if sb == nil {
				sb = newSweepBench(b, filepath.Join(dir, fmt.Sprintf("%d.db", total)), total, due)
			}
			perSweep[total] = sb.run(b)
			if small, large := perSweep[10_000], perSweep[1_000_000]; small > 0 && large > 0 {
				b.Logf("%d sweeps of %d due: %.1f ms among 1,000,000 tickets, %.1f ms among 10,000: %.2fx (promised: at most 2x)",
					b.N, due, large, small, large/small)
			}
		})
	}
}

// sweepBench is a database of total minimal open tickets of which due are
// waiting since day 0 (their reminder is due on day 3) and the others since
// day 10, spread evenly over the ticket ids.
type sweepBench struct {
	st         store.Store
	sw         *Sweeper
	total, due int
}

func newSweepBench(b *testing.B, path string, total, due int) *sweepBench {
	tpl, err := mailout.LoadTemplates("")
	if err != nil {
		b.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	p := &Policy{Lifecycle: rules.DefaultLifecycle(), ReopenWindow: 7 * 24 * time.Hour}
	db, err := boltdb.Open(path, boltdb.Options{}, log)
	if err != nil {
		b.Fatal(err)
	}
	st := store.WithDue(db, p.Due)
	sb := &sweepBench{st: st, total: total, due: due,
		sw: &Sweeper{Store: st, Desk: &mailout.Mailer{Hostname: "tickets.example.com", FromName: "Example Support", Templates: tpl}, Policy: p, Log: log}}
	for start := 0; start < total; start += 50_000 {
		if err := st.UpdateNow(context.Background(), func(tx store.Tx) error {
			for i := start; i < min(start+50_000, total); i++ {
				if err := sb.put(tx, i); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			st.Close()
			b.Fatal(err)
		}
	}
	// One sweep before any is timed, so that neither size is measured
	// straight after its bulk load.
	sb.reset(b)
	sb.sweep(b)
	return sb
}

func (sb *sweepBench) put(tx store.Tx, i int) error {
	since := day(10)
	if i%(sb.total/sb.due) == 0 {
		since = day0
	}
	return tx.PutTicket(&store.Ticket{ID: fmt.Sprintf("HS-%07d", i), Status: rules.StatusOpen, Route: "support@example.com",
		Requester: fmt.Sprintf("c%d@customer.example", i), Clock: rules.Clock{Status: rules.StatusOpen, AwaitingSince: since}})
}

// reset makes the swept tickets due again and empties the outbox.
func (sb *sweepBench) reset(b *testing.B) {
	if err := sb.st.UpdateNow(context.Background(), func(tx store.Tx) error {
		for i := 0; i < sb.total; i += sb.total / sb.due {
			if err := sb.put(tx, i); err != nil {
				return err
			}
		}
		out, err := tx.Outbox(time.Time{}, 0)
		for _, m := range out {
			if err := tx.Dequeue(m.ID); err != nil {
				return err
			}
		}
		return err
	}); err != nil {
		b.Fatal(err)
	}
}

func (sb *sweepBench) sweep(b *testing.B) {
	rep, err := sb.sw.Sweep(context.Background(), day(3), false)
	if err != nil || rep.Tickets != sb.due || rep.Mails != sb.due {
		b.Fatalf("sweep: %d tickets, %d mails, %v", rep.Tickets, rep.Mails, err)
	}
}

// run times b.N sweeps (the resets between them untimed) and returns the
// milliseconds per sweep, which it also reports.
func (sb *sweepBench) run(b *testing.B) float64 {
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		sb.reset(b)
		b.StartTimer()
		sb.sweep(b)
	}
	b.StopTimer()
	ms := float64(b.Elapsed().Microseconds()) / 1000 / float64(b.N)
	b.ReportMetric(ms, "ms/sweep")
	return ms
}

// TestSLAAlertsFollowQueues: alerts on an unassigned ticket go to the
// agents of its queue (matched in any case, as new-ticket notifications
// are) and the managers, one mail each with their signed reply address;
// an agent without queues is in none.
func TestSLAAlertsFollowQueues(t *testing.T) {
	e := newEnv(t)
	e.policy.Agents = []AgentRef{
		{Email: "ana@example.com", Name: "Ana", Queues: []string{"Support"}},
		{Email: "ben@example.com", Name: "Ben"},
		{Email: "tom@example.com", Name: "Tom", Queues: []string{"tech"}},
		{Email: "mia@example.com", Name: "Mia", Manager: true},
	}
	e.create("HS-100003", "c3@customer.example", day0, rules.PriorityCritical) // 1h first response
	e.run(day0.Add(61 * time.Minute))
	mails := e.delivered()
	if len(mails) != 2 {
		t.Fatalf("want one breach alert to each of two people, got %d", len(mails))
	}
	var to []string
	for _, m := range mails {
		to = append(to, strings.Join(m.To, ","))
		h, _ := parse(t, m)
		if r, err := mail.ParseAddress(h.Get("Reply-To")); err != nil || r.Address != agSigned(t, agKey, rules.TokenReply, "HS-100003", strings.Join(m.To, ",")) {
			t.Errorf("alert to %v has Reply-To %q, want their signed reply address", m.To, h.Get("Reply-To"))
		}
	}
	slices.Sort(to)
	if strings.Join(to, " ") != "ana@example.com mia@example.com" {
		t.Errorf("alert went to %v, want the support agent and the manager, one mail each", to)
	}
	if ev := events(e.ticket("HS-100003"), "sla_breach"); len(ev) != 1 || !strings.Contains(ev[0].Detail, "alerted ana@example.com, mia@example.com") {
		t.Errorf("breach events: %+v", ev)
	}
}

// refusedOnce is a store whose UpdateNow has its first attempt refused and
// rolled back, as PostgreSQL refuses a transaction that conflicts with
// another gateway's, and then runs fn again.
type refusedOnce struct{ store.Store }

func (r refusedOnce) UpdateNow(ctx context.Context, fn func(store.Tx) error) error {
	r.Store.DryRun(ctx, fn)
	return r.Store.UpdateNow(ctx, fn)
}

// TestSweepRetriedAfterAConflictSendsTheReminder proves that a sweep whose
// transaction is refused and run again still sends what fell due, once,
// and reports it once.
func TestSweepRetriedAfterAConflictSendsTheReminder(t *testing.T) {
	e := newEnv(t)
	e.create("HS-300020", "cy@customer.example", day0, rules.PriorityLow)
	e.agentReply("HS-300020", day0)
	e.sweep.Store = refusedOnce{e.store}
	rep := e.run(day(3))
	if got := kinds(t, e, 0); strings.Join(got, " ") != "reminder" {
		t.Errorf("sent %v, want one reminder", got)
	}
	if rep.Tickets != 1 || rep.Mails != 1 || len(rep.Actions) != 1 {
		t.Errorf("report: %d tickets, %d mails, actions %+v; want the one reminder", rep.Tickets, rep.Mails, rep.Actions)
	}
}

// TestSLAAlertOfAnAssigneeWhoLeftGoesToTheQueue: a breach on a ticket
// whose assignee is no longer among the agents alerts the agents of its
// queue and the managers, as on an unassigned ticket, not her old address.
func TestSLAAlertOfAnAssigneeWhoLeftGoesToTheQueue(t *testing.T) {
	e := newEnv(t)
	e.policy.Agents = []AgentRef{
		{Email: "ana@example.com", Name: "Ana", Queues: []string{"support"}},
		{Email: "mia@example.com", Name: "Mia", Manager: true},
	}
	e.create("HS-100004", "c4@customer.example", day0, rules.PriorityCritical) // 1h first response
	e.change("HS-100004", func(t *store.Ticket) { t.Assignee = "gone@example.com" })
	e.run(day0.Add(61 * time.Minute))
	var to []string
	for _, m := range e.delivered() {
		to = append(to, strings.Join(m.To, ","))
	}
	slices.Sort(to)
	if strings.Join(to, " ") != "ana@example.com mia@example.com" {
		t.Errorf("alerts went to %q, want one each to the support agent and the manager", to)
	}
}

// TestBreachDueWithTheWaitingStepIsAlerted: a resolution target missed
// while the ticket was open is alerted by the sweep that also marks the
// ticket waiting, though waiting pauses the clock from then on. A
// medium ticket answered within minutes falls due for both at once: 5
// business days after Monday 10:00 is 7 days later.
func TestBreachDueWithTheWaitingStepIsAlerted(t *testing.T) {
	e := newEnv(t)
	e.policy.Agents = []AgentRef{{Email: "mia@example.com", Name: "Mia", Manager: true}}
	e.create("HS-300030", "cy@customer.example", day0, rules.PriorityMedium)
	e.agentReply("HS-300030", day0.Add(time.Minute))
	if due := e.ticket("HS-300030").SLA.ResolutionDue; !due.Equal(day(7)) {
		t.Fatalf("resolution due %s, want %s", due, day(7))
	}
	e.run(day(7).Add(3 * time.Minute))
	tk := e.ticket("HS-300030")
	if tk.Status != rules.StatusWaiting {
		t.Fatalf("status %s, want waiting", tk.Status)
	}
	if ev := events(tk, "sla_breach"); len(ev) != 1 || !strings.Contains(ev[0].Detail, "resolution overdue") {
		t.Errorf("breach events %+v, want the resolution breach", ev)
	}
	var alerts int
	for _, m := range e.delivered() {
		if strings.Contains(subject(t, m), "SLA breach: resolution overdue") {
			alerts++
		}
	}
	if alerts != 1 {
		t.Errorf("%d resolution breach alerts, want 1", alerts)
	}
	// A target not yet missed when the ticket turns waiting is paused:
	// no warning of it goes out.
	e.policy.SLA.WarnBefore = 30 * time.Minute
	e.create("HS-300031", "cy@customer.example", day0, rules.PriorityMedium)
	e.agentReply("HS-300031", day0)
	e.change("HS-300031", func(t *store.Ticket) { t.SLA.ResolutionDue = day(7).Add(10 * time.Minute) })
	e.run(day(7).Add(time.Minute))
	if tk := e.ticket("HS-300031"); tk.Status != rules.StatusWaiting || len(events(tk, "sla_warning"))+len(events(tk, "sla_breach")) != 0 {
		t.Errorf("status %s, events %+v; want waiting and no SLA alert", tk.Status, tk.Events)
	}
}

// TestHeldReminderIsNotLoggedAsSent: a reminder held back because the
// customer's address bounces leaves the event that says so, and why; the
// ticket's history does not also say the customer was reminded, and the
// sweep's report counts no mail and claims none sent.
func TestHeldReminderIsNotLoggedAsSent(t *testing.T) {
	e := newEnv(t)
	e.create("HS-300040", "cy@customer.example", day0, rules.PriorityLow)
	e.agentReply("HS-300040", day0)
	e.update(func(tx store.Tx) error { return tx.MarkBouncing("cy@customer.example", day(30)) })
	rep := e.run(day(3))
	if got := kinds(t, e, 0); len(got) != 0 {
		t.Errorf("sent %v to a bouncing address", got)
	}
	tk := e.ticket("HS-300040")
	held := events(tk, "mail_suppressed")
	if len(held) != 1 || !strings.Contains(held[0].Detail, "reminder") || !strings.Contains(held[0].Detail, "cy@customer.example is bouncing") {
		t.Errorf("mail_suppressed events %+v, want the reminder held back as bouncing", held)
	}
	for _, ev := range tk.Events {
		if strings.Contains(ev.Detail, "sent to") {
			t.Errorf("event %s %q says the held reminder was sent", ev.Type, ev.Detail)
		}
	}
	if rep.Mails != 0 {
		t.Errorf("report counts %d mails, want 0", rep.Mails)
	}
	for _, a := range rep.Actions {
		if strings.Contains(a.Detail, "sent to") {
			t.Errorf("report action %s %q says the held reminder was sent", a.Kind, a.Detail)
		}
	}
}

// TestHeldLifecycleNoticeIsNotLoggedAsTold: the waiting and closing
// notices held back (a bouncing address) leave no event saying the
// customer was told; sent, an event says so.
func TestHeldLifecycleNoticeIsNotLoggedAsTold(t *testing.T) {
	for _, bouncing := range []bool{false, true} {
		e := newEnv(t)
		e.create("HS-300050", "cy@customer.example", day0, rules.PriorityLow)
		e.agentReply("HS-300050", day0)
		if bouncing {
			e.update(func(tx store.Tx) error { return tx.MarkBouncing("cy@customer.example", day(60)) })
		}
		e.run(day(7))
		e.run(day(14))
		tk := e.ticket("HS-300050")
		if tk.Status != rules.StatusClosed {
			t.Fatalf("bouncing %v: status %s, want closed", bouncing, tk.Status)
		}
		var told []string
		for _, ev := range tk.Events {
			if strings.Contains(ev.Detail, "customer told") {
				told = append(told, ev.Detail)
			}
		}
		if want := map[bool]int{false: 2, true: 0}[bouncing]; len(told) != want {
			t.Errorf("bouncing %v: events saying the customer was told: %q, want %d", bouncing, told, want)
		}
	}
}

// TestLifecycleChangedLaterReachesWaitingTickets: a ticket written under
// one policy keeps the due time that policy gave it. Turning the automatic
// close of resolved tickets on, or reminding sooner (a new policy, as a
// restart or reload makes), still reaches the tickets already waiting at
// the next sweep.
func TestLifecycleChangedLaterReachesWaitingTickets(t *testing.T) {
	e := newEnv(t)
	e.policy.Lifecycle.ResolvedCloseAfter = 0 // resolved tickets stay resolved
	e.create("HS-300031", "res@customer.example", day0, rules.PriorityLow)
	e.agentReply("HS-300031", day0)
	e.setStatus("HS-300031", rules.StatusResolved, day(1))
	e.create("HS-300032", "wait@customer.example", day(9), rules.PriorityLow)
	e.agentReply("HS-300032", day(9))
	e.run(day(9.5))
	if n := len(e.delivered()); n != 0 {
		t.Fatalf("%d mails before the policy changed", n)
	}
	e.store.Close()
	p := *e.policy
	p.Lifecycle.ResolvedCloseAfter = 7 * 24 * time.Hour
	p.Lifecycle.RemindAfter = 24 * time.Hour
	e.policy = &p
	e.open()
	e.run(day(10))
	if st := e.ticket("HS-300031").Status; st != rules.StatusClosed {
		t.Errorf("ticket resolved on day 1 is %s on day 10 after resolved tickets were set to close after 7 days, want closed", st)
	}
	if n := len(events(e.ticket("HS-300032"), "reminder_sent")); n != 1 {
		t.Errorf("ticket answered on day 9 got %d reminders on day 10 after reminders were set to come after a day, want 1", n)
	}
	per := map[string]int{}
	for _, m := range e.delivered() {
		per[m.To[0]]++
	}
	if per["res@customer.example"] != 2 || per["wait@customer.example"] != 1 {
		t.Errorf("mails sent per customer %v, want the closing notice and survey to res@, a reminder to wait@", per)
	}
}

// TestWaitingNoticePromisesNoCloseWhenClosingIsOff: with close_after
// "0s" a waiting ticket never closes on its own, and the waiting notice
// does not tell the customer it will be closed in a day.
func TestWaitingNoticePromisesNoCloseWhenClosingIsOff(t *testing.T) {
	e := newEnv(t)
	e.policy.Lifecycle.CloseAfter = 0
	e.create("HS-300033", "cy@customer.example", day0, rules.PriorityLow)
	e.agentReply("HS-300033", day0)
	e.run(day(7))
	e.run(day(30))
	if got := kinds(t, e, 0); strings.Join(got, " ") != "waiting" {
		t.Fatalf("sent %v, want only the waiting notice", got)
	}
	if st := e.ticket("HS-300033").Status; st != rules.StatusWaiting {
		t.Fatalf("status %s on day 30, want waiting", st)
	}
	if _, body := parse(t, e.delivered()[0]); strings.Contains(body, "close the ticket") {
		t.Errorf("waiting notice promises a close that never comes:\n%s", body)
	}
}

// TestLifecycleEventsSayTimesInUTC: a gateway whose clock runs in another
// time zone writes the times in the waiting and closing events in UTC,
// as every other event and the JSON do.
func TestLifecycleEventsSayTimesInUTC(t *testing.T) {
	e := newEnv(t)
	cet := time.FixedZone("CET", 3600)
	e.create("HS-300034", "cy@customer.example", day0.In(cet), rules.PriorityLow)
	e.agentReply("HS-300034", day0.In(cet))
	e.create("HS-300035", "dy@customer.example", day0.In(cet), rules.PriorityLow)
	e.setStatus("HS-300035", rules.StatusResolved, day(1).In(cet))
	e.run(day(7).In(cet))
	e.run(day(14).In(cet))
	for id, want := range map[string][]string{
		"HS-300034": {"no answer from the customer since 2026-11-02T10:00:00Z", "no answer from the customer since 2026-11-02T10:00:00Z"},
		"HS-300035": {"resolved on 2026-11-03T10:00:00Z"},
	} {
		var got []string
		for _, ev := range events(e.ticket(id), "status") {
			if strings.Contains(ev.Detail, "(lifecycle)") || strings.Contains(ev.Detail, "since") || strings.Contains(ev.Detail, "resolved on") {
				_, why, _ := strings.Cut(ev.Detail, "(")
				got = append(got, strings.TrimSuffix(why, ")"))
			}
		}
		if strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("%s: lifecycle status events say %q, want %q", id, got, want)
		}
	}
}

// TestBreachDueBeforeAnEarlierCloseIsAlerted: with close_after shorter
// than waiting_after the wait ends in the close, and a resolution target
// missed before it, while the ticket was open, is alerted by the sweep
// that closes it, however late that sweep comes.
func TestBreachDueBeforeAnEarlierCloseIsAlerted(t *testing.T) {
	e := newEnv(t)
	e.policy.Agents = []AgentRef{{Email: "mia@example.com", Name: "Mia", Manager: true}}
	e.policy.Lifecycle.CloseAfter = 48 * time.Hour
	e.create("HS-300036", "cy@customer.example", day0, rules.PriorityHigh) // resolution due in 24h
	e.agentReply("HS-300036", day0.Add(time.Hour))
	e.run(day(3))
	tk := e.ticket("HS-300036")
	if tk.Status != rules.StatusClosed {
		t.Fatalf("status %s, want closed", tk.Status)
	}
	if ev := events(tk, "sla_breach"); len(ev) != 1 || !strings.Contains(ev[0].Detail, "resolution overdue") {
		t.Errorf("breach events %+v, want the resolution breach missed on day 1", ev)
	}
}

// TestClosingNoticeDoesNotPromiseMoreThanTheReopenWindow: a reopen window
// of a day and a half is "within 1 day" in the closing notice; a reply
// on the second day opens a new ticket, so "2 days" was a promise the
// desk did not keep.
func TestClosingNoticeDoesNotPromiseMoreThanTheReopenWindow(t *testing.T) {
	e := newEnv(t)
	e.policy.ReopenWindow = 36 * time.Hour
	e.create("HS-300037", "cy@customer.example", day0, rules.PriorityLow)
	e.agentReply("HS-300037", day0)
	e.run(day(14))
	var closing string
	for _, m := range e.delivered() {
		if _, body := parse(t, m); strings.Contains(body, "we have closed ticket") {
			closing = body
		}
	}
	if !strings.Contains(closing, "within 1 day ") {
		t.Errorf("closing notice under a 36h reopen window:\n%s\nwant \"within 1 day\"", closing)
	}
}
