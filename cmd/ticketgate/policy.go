package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/robfig/cron/v3"

	"ticketgate/desk"
	"ticketgate/rules"
	"ticketgate/store"
)

// defaultSchedule is how often serve sweeps when [lifecycle] schedule is unset.
const defaultSchedule = "@every 5m"

// policyFromConfig builds the lifecycle and SLA policy from the [lifecycle]
// and [sla] sections. Every bad value is reported with its key.
func policyFromConfig(cfg *Config) (*desk.Policy, error) {
	var errs []string
	bad := func(f string, a ...any) { errs = append(errs, fmt.Sprintf(f, a...)) }
	lc := rules.DefaultLifecycle()
	for _, k := range []struct {
		name string
		v    string
		dst  *time.Duration
	}{{"lifecycle.remind_after", cfg.Lifecycle.RemindAfter, &lc.RemindAfter},
		{"lifecycle.waiting_after", cfg.Lifecycle.WaitingAfter, &lc.WaitingAfter},
		{"lifecycle.close_after", cfg.Lifecycle.CloseAfter, &lc.CloseAfter},
		{"lifecycle.resolved_close_after", cfg.Lifecycle.ResolvedCloseAfter, &lc.ResolvedCloseAfter}} {
		if k.v == "" {
			continue
		}
		d, err := time.ParseDuration(k.v)
		if err != nil || d < 0 {
			bad("%s %q is not a duration like \"72h\" (\"0s\" turns the step off)", k.name, k.v)
			continue
		}
		*k.dst = d
	}
	if _, err := cron.ParseStandard(schedule(cfg)); err != nil {
		bad("lifecycle.schedule %q is not a cron schedule like \"@every 5m\" or \"*/5 * * * *\": %v", cfg.Lifecycle.Schedule, err)
	}
	sla, slaErrs := slaFromConfig(cfg.SLA)
	errs = append(errs, slaErrs...)
	for name := range cfg.SLA.Plans {
		// A ticket's plan is the [[plan]]'s name as written.
		i := slices.IndexFunc(cfg.Plans, func(p PlanConfig) bool { return strings.EqualFold(p.Name, name) })
		if i >= 0 && !slices.ContainsFunc(cfg.Plans, func(p PlanConfig) bool { return p.Name == name }) {
			bad("sla.plans.%s: the [[plan]] is named %q; write [sla.plans.%s], as plan names are matched exactly", name, cfg.Plans[i].Name, cfg.Plans[i].Name)
		}
	}
	errs = append(errs, levelsFromConfig(cfg, &sla)...)
	notify := map[rules.Status]bool{}
	for _, name := range cfg.Tickets.NotifyStatus {
		st, ok := rules.ParseStatus(name)
		if !ok {
			bad("tickets.notify_status: %q is not a status (new, open, waiting, on_hold, resolved, closed)", name)
		}
		notify[st] = true
	}
	retention, err := retentionFromConfig(cfg)
	if err != nil {
		bad("%v", err)
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("config: %s", strings.Join(errs, "; "))
	}
	p := &desk.Policy{Lifecycle: lc, SLA: sla, ReopenWindow: dur(cfg.Tickets.ReopenWindow, 168*time.Hour), Notify: notify, Retention: retention}
	if cfg.Tickets.NotifyStatus == nil {
		p.Notify = nil // the rules' default
	}
	for _, a := range cfg.Agents {
		p.Agents = append(p.Agents, desk.AgentRef{Email: strings.ToLower(a.Email), Name: a.Name, Queues: a.Queues, Manager: a.Manager})
	}
	return p, nil
}

// retentionFromConfig reads [retention] closed_after: off when empty or
// "0s"; else a duration no shorter than [tickets] reopen_window, so a
// ticket its customer may still reopen keeps its messages.
func retentionFromConfig(cfg *Config) (rules.Retention, error) {
	v := strings.TrimSpace(cfg.Retention.ClosedAfter)
	if v == "" {
		return rules.Retention{}, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return rules.Retention{}, fmt.Errorf("retention.closed_after %q is not a duration like \"2160h\" (\"\" or \"0s\" keeps bodies for ever)", v)
	}
	if reopen := dur(cfg.Tickets.ReopenWindow, 168*time.Hour); d > 0 && d < reopen {
		return rules.Retention{}, fmt.Errorf("retention.closed_after %q is shorter than tickets.reopen_window (%s): a ticket its customer may still reopen would lose its messages", v, reopen)
	}
	return rules.Retention{After: d}, nil
}

func schedule(cfg *Config) string {
	if cfg.Lifecycle.Schedule == "" {
		return defaultSchedule
	}
	return cfg.Lifecycle.Schedule
}

// slaFromConfig reads [sla] over rules.DefaultSLAPolicy: a target given for
// a priority replaces the default one field by field, and a plan's target
// falls back to the priority's target for a field it leaves out.
func slaFromConfig(c SLAConfig) (rules.SLAPolicy, []string) {
	var errs []string
	p := rules.DefaultSLAPolicy()
	if c.WarnBefore != "" {
		d, err := time.ParseDuration(c.WarnBefore)
		if err != nil || d < 0 {
			errs = append(errs, fmt.Sprintf("sla.warn_before %q is not a duration like \"30m\"", c.WarnBefore))
		}
		p.WarnBefore = d
	}
	if c.CriticalUpdateEvery != "" {
		d, err := time.ParseDuration(c.CriticalUpdateEvery)
		if err != nil || d < 0 {
			errs = append(errs, fmt.Sprintf("sla.critical_update_every %q is not a duration like \"3h\" (\"0s\" turns reminders off)", c.CriticalUpdateEvery))
		}
		p.CriticalUpdateEvery = d
	} else {
		p.CriticalUpdateEvery = 3 * time.Hour
	}
	h, err := hoursFromConfig("sla.business_hours", c.Hours, p.Hours)
	if err != nil {
		errs = append(errs, err.Error())
	}
	p.Hours = h
	for prio, tc := range c.Targets {
		pr, ok := rules.ParsePriority(prio)
		if !ok {
			errs = append(errs, fmt.Sprintf("sla.targets.%s: unknown priority (want low, medium, high or critical)", prio))
			continue
		}
		p.Targets[pr] = target(&errs, "sla.targets."+prio, tc, p.Targets[pr])
	}
	for plan, byPrio := range c.Plans {
		if p.Plans[plan] == nil {
			p.Plans[plan] = map[rules.Priority]rules.Target{}
		}
		for prio, tc := range byPrio {
			pr, ok := rules.ParsePriority(prio)
			if !ok {
				errs = append(errs, fmt.Sprintf("sla.plans.%s.%s: unknown priority (want low, medium, high or critical)", plan, prio))
				continue
			}
			base, ok := p.Plans[plan][pr]
			if !ok {
				base = p.Targets[pr]
			}
			p.Plans[plan][pr] = target(&errs, "sla.plans."+plan+"."+prio, tc, base)
		}
	}
	return p, errs
}

// target reads one {first_response, resolution} pair over base.
func target(errs *[]string, key string, c SLATargetConfig, base rules.Target) rules.Target {
	for _, f := range []struct {
		name, v string
		dst     *rules.Span
	}{{"first_response", c.FirstResponse, &base.FirstResponse}, {"resolution", c.Resolution, &base.Resolution}} {
		if f.v == "" {
			continue
		}
		s, err := rules.ParseSpan(f.v)
		if err != nil {
			*errs = append(*errs, fmt.Sprintf("%s.%s: %v", key, f.name, err))
			continue
		}
		*f.dst = s
	}
	return base
}

var weekdays = map[string]time.Weekday{
	"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday,
	"thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday,
}

// levelsFromConfig reads the named calendars, the calendar each queue
// names and the escalation level into p.
func levelsFromConfig(cfg *Config, p *rules.SLAPolicy) []string {
	var errs []string
	p.Calendars = map[string]rules.BusinessHours{}
	for name, c := range cfg.Calendars {
		h, err := hoursFromConfig("calendars."+name, c, rules.DefaultBusinessHours())
		if err != nil {
			errs = append(errs, err.Error())
		}
		p.Calendars[name] = h
	}
	known := func(key, name string) {
		if _, ok := cfg.Calendars[name]; name != "" && !ok {
			errs = append(errs, fmt.Sprintf("%s.calendar %q: no [calendars.%s] is configured", key, name, name))
		}
	}
	routed := func(key, q string) {
		if !slices.ContainsFunc(cfg.Routes, func(r rules.Route) bool { return strings.EqualFold(r.Queue, q) }) {
			errs = append(errs, fmt.Sprintf("%s %q: no [[route]] has this queue, so no agent can work it", key, q))
		}
	}
	p.QueueCalendars = map[string]string{}
	for q, qc := range cfg.Queues {
		routed("queues", q)
		known("queues."+q, qc.Calendar)
		p.QueueCalendars[strings.ToLower(q)] = qc.Calendar
	}
	e := cfg.Escalation
	if e.Queue != "" {
		routed("escalation.queue", e.Queue)
	}
	known("escalation", e.Calendar)
	p.Escalation.Queue, p.Escalation.Calendar, p.Escalation.OnBreach = e.Queue, e.Calendar, e.OnBreach
	p.Escalation.Target = target(&errs, "escalation", SLATargetConfig{FirstResponse: e.FirstResponse, Resolution: e.Resolution}, p.Escalation.Target)
	return errs
}

// hoursFromConfig reads a calendar (key: its section's name, for errors)
// over def.
func hoursFromConfig(key string, c BusinessHoursConfig, def rules.BusinessHours) (rules.BusinessHours, error) {
	h := def
	var errs []string
	if len(c.Days) > 0 {
		h.Days = nil
		for _, d := range c.Days {
			name := strings.ToLower(strings.TrimSpace(d))
			wd, ok := weekdays[name[:min(3, len(name))]]
			ok = ok && (len(name) == 3 || name == strings.ToLower(wd.String()))
			if !ok {
				errs = append(errs, fmt.Sprintf("%s.days: %q is not a weekday like \"mon\"", key, d))
				continue
			}
			h.Days = append(h.Days, wd)
		}
	}
	for _, f := range []struct {
		name, v string
		dst     *time.Duration
	}{{"start", c.Start, &h.Start}, {"end", c.End, &h.End}} {
		if f.v == "" {
			continue
		}
		d, ok := clockTime(f.v)
		if !ok {
			errs = append(errs, fmt.Sprintf("%s.%s %q is not a time like \"09:00\"", key, f.name, f.v))
			continue
		}
		*f.dst = d
	}
	if c.TimeZone != "" {
		loc, err := time.LoadLocation(c.TimeZone)
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s.timezone %q is not a time zone like \"Europe/Berlin\"", key, c.TimeZone))
		} else {
			h.Loc = loc
		}
	}
	for _, d := range c.Holidays {
		day, err := time.Parse(time.DateOnly, strings.TrimSpace(d))
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s.holidays: %q is not a date like \"2026-12-25\"", key, d))
			continue
		}
		h.Holidays = append(h.Holidays, day)
	}
	if len(errs) == 0 {
		if err := h.Validate(); err != nil {
			errs = append(errs, key+": "+err.Error())
		}
	}
	if len(errs) > 0 {
		return def, errors.New(strings.Join(errs, "; "))
	}
	return h, nil
}

// clockTime reads "HH:MM" (00:00 to 24:00) as an offset from midnight.
func clockTime(s string) (time.Duration, bool) {
	hh, mm, ok := strings.Cut(strings.TrimSpace(s), ":")
	h, err1 := strconv.Atoi(hh)
	m, err2 := strconv.Atoi(mm)
	if !ok || err1 != nil || err2 != nil || h < 0 || m < 0 || m > 59 || h > 24 || (h == 24 && m > 0) {
		return 0, false
	}
	return time.Duration(h)*time.Hour + time.Duration(m)*time.Minute, true
}

// policySetup builds the lifecycle and SLA policy from the configuration and
// installs it in the pipeline and the store's due index.
func (a *app) policySetup() error {
	p, err := policyFromConfig(a.cfg)
	if err != nil {
		return err
	}
	a.pipeline.Policy = p
	// Every ticket write sets its due time from the policy, so the due
	// index changes in the same transaction as the ticket.
	a.store = store.WithDue(a.store, p.Due)
	a.pipeline.Store = a.store
	// A template override that fails is logged and the built-in text sent.
	if t := a.pipeline.Desk.Templates; t != nil {
		t.Log = a.log.With("part", "templates")
	}
	return nil
}

// sweeper returns a sweeper over the app's store; wake is called after a
// commit that queued mail.
func (a *app) sweeper(wake func()) *desk.Sweeper {
	return &desk.Sweeper{Store: a.store, Desk: a.pipeline.Desk, Policy: a.pipeline.Policy, Signer: a.pipeline.Signer,
		Log: a.log.With("part", "sweep"), Wake: wake}
}

// cronLogger passes robfig/cron's log lines to slog.
type cronLogger struct{ l *slog.Logger }

func (c cronLogger) Info(msg string, kv ...any) { c.l.Debug(msg, kv...) }
func (c cronLogger) Error(err error, msg string, kv ...any) {
	c.l.Error(msg, append([]any{"err", err}, kv...)...)
}

// startScheduler starts the cron scheduler that runs the sweep; stop waits
// for a running sweep to finish. A panicking sweep is logged and the next
// run goes ahead; a run that is due while the last one still runs is
// skipped.
func (a *app) startScheduler(ctx context.Context) (stop func(), err error) {
	log := cronLogger{a.log.With("part", "scheduler")}
	c := cron.New(cron.WithLogger(log), cron.WithChain(cron.Recover(log), cron.SkipIfStillRunning(log)))
	sctx, cancel := context.WithCancel(ctx)
	_, err = c.AddFunc(schedule(a.cfg), func() {
		if gw := a.gw; gw != nil {
			// Every gateway says it still serves, with the keys in
			// force: check compares those that reported lately.
			if err := a.current().reportInstance(sctx, gw.cfgPath); err != nil {
				a.log.Warn("instance not recorded; check cannot compare its keys", "err", err)
			}
		}
		// The policy and templates in force now: a reload applies to
		// the next run.
		if gw := a.gw; gw != nil && gw.sweep != nil && !gw.sweep.Held() {
			a.log.Debug("sweep left to the instance holding its lease")
			return
		}
		cur := a.current()
		start := time.Now()
		rep, err := cur.sweeper(cur.pipeline.OnCommit).Sweep(sctx, start, false)
		a.metrics().Sweep(time.Since(start), err)
		if err != nil {
			a.log.Error("sweep failed", "err", err, "tickets", rep.Tickets)
			return
		}
		if rep.Tickets > 0 {
			a.log.Info("sweep done", "tickets", rep.Tickets, "actions", len(rep.Actions), "mails", rep.Mails)
		}
	})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("lifecycle.schedule %q: %w", schedule(a.cfg), err)
	}
	c.Start()
	return func() {
		cancel()
		<-c.Stop().Done()
	}, nil
}

// runSweep is "ticketgate sweep -config F [-now T] [-dry-run]".
func runSweep(ctx context.Context, args []string, _ io.Reader, stdout io.Writer) error {
	fs, cfgPath := flags("sweep")
	nowFlag := fs.String("now", "", "sweep as of this instant (RFC 3339, e.g. 2026-12-01T09:00:00Z); default: now")
	dry := fs.Bool("dry-run", false, "show what would be done without changing anything")
	if err := parseFlags(fs, args, 0, 0); err != nil {
		return err
	}
	now := time.Now()
	if *nowFlag != "" {
		t, err := time.Parse(time.RFC3339, *nowFlag)
		if err != nil {
			return &exitError{code: 64, err: fmt.Errorf("-now %q is not an RFC 3339 time like 2026-12-01T09:00:00Z", *nowFlag)}
		}
		now = t
	}
	cfg, err := loadConfig(*cfgPath)
	if err == nil {
		_, err = policyFromConfig(cfg)
	}
	if err != nil {
		return &exitError{code: exConfig, err: err}
	}
	acc := writes
	if *dry {
		acc = dryRun
	}
	var rep *desk.SweepReport
	err = withStore(cfg, newLogger(os.Stderr), acc,
		func(a *app) error {
			rep, err = a.sweeper(nil).Sweep(ctx, now, *dry)
			return err
		},
		func(c *adminClient) error {
			q := url.Values{"now": {now.Format(time.RFC3339Nano)}}
			if *dry {
				q.Set("dry_run", "1")
			}
			return c.do(ctx, "POST", "/api/sweep", q, nil, &rep)
		})
	if err != nil {
		return err
	}
	printSweep(stdout, rep)
	return nil
}

func printSweep(w io.Writer, rep *desk.SweepReport) {
	for _, act := range rep.Actions {
		fmt.Fprintf(w, "%s %s: %s\n", act.Ticket, act.Kind, safeText(act.Detail))
	}
	verb := "queued"
	if rep.DryRun {
		verb = "would queue"
	}
	fmt.Fprintf(w, "swept %d due tickets as of %s: %d actions, %s %d mails", rep.Tickets, rep.Now.UTC().Format(time.RFC3339), len(rep.Actions), verb, rep.Mails)
	if rep.DryRun {
		fmt.Fprint(w, " (dry run: nothing changed)")
	}
	fmt.Fprintln(w)
}

// handleSweep is POST /api/sweep, the handover for runSweep: ?now= (RFC
// 3339, default the server's clock) and ?dry_run=1. Any other parameter,
// one given twice, or a dry_run that is not a boolean is a 400: a sweep
// meant as a dry run must never run for real.
func (a *app) handleSweep(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if err := onlyOnce(q, "now", "dry_run"); err != nil {
		httpError(w, http.StatusBadRequest, err.Error())
		return
	}
	dry := false
	if v := q.Get("dry_run"); v != "" {
		var err error
		if dry, err = strconv.ParseBool(v); err != nil {
			httpError(w, http.StatusBadRequest, fmt.Sprintf("dry_run %q is not 1, 0, true or false", v))
			return
		}
	}
	now := time.Now()
	if v := q.Get("now"); v != "" {
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			httpError(w, http.StatusBadRequest, "now: "+err.Error())
			return
		}
		now = t
	}
	rep, err := a.sweeper(a.pipeline.OnCommit).Sweep(r.Context(), now, dry)
	if err != nil {
		httpError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, rep)
}
