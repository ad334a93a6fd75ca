package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/mail"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"ticketgate/desk"
	"ticketgate/mailout"
	"ticketgate/mailout/relaytest"
	"ticketgate/rules"
	"ticketgate/store"
	"ticketgate/store/boltdb"
)

// policyEnv is a config file on disk, its database and a recording relay.
type policyEnv struct {
	t      *testing.T
	cfg    string
	relay  *relaytest.Relay
	sentTo int
}

func newPolicyEnv(t *testing.T, extra string) *policyEnv {
	t.Helper()
	dir := t.TempDir()
	relay := relaytest.Start(t)
	cfg := filepath.Join(dir, "ticketgate.toml")
	body := fmt.Sprintf(`[store]
path = %q
[outbound]
relay = %q
tls = "none"
[admin]
listen = ""
%s
`, filepath.Join(dir, "data", "tickets.db"), relay.Addr, extra)
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return &policyEnv{t: t, cfg: cfg, relay: relay}
}

func (e *policyEnv) run(args ...string) (string, error) {
	var out bytes.Buffer
	err := run(context.Background(), append([]string{args[0], "-config", e.cfg}, args[1:]...), strings.NewReader(""), &out)
	return out.String(), err
}

func (e *policyEnv) mustRun(args ...string) string {
	e.t.Helper()
	out, err := e.run(args...)
	if err != nil {
		e.t.Fatalf("%v: %v\n%s", args, err, out)
	}
	return out
}

func (e *policyEnv) inject(raw string) string {
	e.t.Helper()
	var out bytes.Buffer
	err := run(context.Background(), []string{"inject", "-config", e.cfg, "-from", "cy@customer.example"}, strings.NewReader(raw), &out)
	if err != nil {
		e.t.Fatalf("inject: %v", err)
	}
	return strings.Fields(out.String())[0]
}

// withApp opens the gateway's database as the running program would.
func (e *policyEnv) withApp(fn func(a *app)) {
	e.t.Helper()
	cfg, err := loadConfig(e.cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	a, err := openApp(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), boltdb.Options{})
	if err != nil {
		e.t.Fatal(err)
	}
	defer a.close()
	fn(a)
}

// agentReply records an agent's public reply at at, as agent handling does.
func (e *policyEnv) agentReply(id string, at time.Time) {
	e.withApp(func(a *app) {
		a.pipeline.Now = func() time.Time { return at }
		if _, err := a.pipeline.Act(context.Background(), id, desk.Action{Name: "status", Value: "open"}); err != nil {
			e.t.Fatal(err)
		}
		err := a.store.UpdateNow(context.Background(), func(tx store.Tx) error {
			t, err := tx.Ticket(id)
			if err != nil {
				return err
			}
			a.pipeline.Policy.AgentReplied(t, at)
			return tx.PutTicket(t)
		})
		if err != nil {
			e.t.Fatal(err)
		}
	})
}

func (e *policyEnv) ticket(id string) *store.Ticket {
	e.t.Helper()
	var t *store.Ticket
	e.withApp(func(a *app) {
		var err error
		if t, err = showTicket(context.Background(), a.store, id); err != nil {
			e.t.Fatal(err)
		}
	})
	return t
}

// deliver sends what the outbox holds to the relay and returns the
// subjects of the mails that arrived since the last call.
func (e *policyEnv) deliver() []string {
	e.t.Helper()
	e.withApp(func(a *app) {
		w := mailout.NewWorker(a.store, &mailout.Relay{Addr: e.relay.Addr, TLS: "none", Hostname: "tickets.example.com", Timeout: 5 * time.Second}, a.log)
		w.Now = func() time.Time { return time.Now().Add(365 * 24 * time.Hour) }
		w.RunOnce(context.Background())
	})
	var subjects []string
	mails := e.relay.Mails()
	for _, m := range mails[e.sentTo:] {
		subjects = append(subjects, strings.SplitN(strings.SplitN(string(m.Data), "Subject: ", 2)[1], "\r\n", 2)[0])
	}
	e.sentTo = len(mails)
	return subjects
}

func TestSweepCommandLifecycleAndSurvey(t *testing.T) {
	e := newPolicyEnv(t, "")
	id := e.inject("From: Cy <cy@customer.example>\r\nTo: support@example.com\r\nSubject: Printer on fire\r\nMessage-ID: <p1@customer.example>\r\n\r\nHelp!\r\n")
	e.deliver() // the auto-reply
	// The agent answered 15 days ago, so that the closing falls within
	// the reopen window of the customer's replies sent now.
	start := time.Now().UTC().Add(-15 * 24 * time.Hour).Truncate(time.Second)
	e.agentReply(id, start)
	at := func(days int) string { return start.Add(time.Duration(days) * 24 * time.Hour).Format(time.RFC3339) }

	out := e.mustRun("sweep", "-now", at(3))
	if !strings.Contains(out, id+" reminder:") || !strings.Contains(out, "queued 1 mails") {
		t.Fatalf("sweep on day 3 printed:\n%s", out)
	}
	if s := e.deliver(); len(s) != 1 || !strings.Contains(s[0], "["+id+"]") {
		t.Fatalf("day 3 sent %v", s)
	}
	if out := e.mustRun("sweep", "-now", at(3)); !strings.Contains(out, "swept 0 due tickets") {
		t.Fatalf("second sweep on day 3 printed:\n%s", out)
	}
	out = e.mustRun("sweep", "-now", at(14), "-dry-run")
	if !strings.Contains(out, id+" closed:") || !strings.Contains(out, "would queue 2 mails (dry run: nothing changed)") {
		t.Fatalf("dry run printed:\n%s", out)
	}
	if st := e.ticket(id).Status; st != rules.StatusOpen || len(e.deliver()) != 0 {
		t.Fatalf("dry run changed the ticket to %s or sent mail", st)
	}
	e.mustRun("sweep", "-now", at(14))
	if s := e.deliver(); len(s) != 2 || !strings.Contains(s[1], "How did we do?") {
		t.Fatalf("day 14 sent %v, want the closing notice and the survey", s)
	}

	// A rating keeps the ticket closed and is thanked once.
	e.inject("From: Cy <cy@customer.example>\r\nTo: support@example.com\r\nSubject: Re: [" + id + "] How did we do?\r\nMessage-ID: <p2@customer.example>\r\n\r\n4 - thanks\r\n")
	tk := e.ticket(id)
	if tk.Status != rules.StatusClosed || tk.Satisfaction == nil || tk.Satisfaction.Score != 4 || tk.Satisfaction.Comment != "thanks" {
		t.Fatalf("after the rating: status %s satisfaction %+v", tk.Status, tk.Satisfaction)
	}
	if s := e.deliver(); len(s) != 1 {
		t.Fatalf("rating answered with %v, want one thanks", s)
	}
	// A question reopens it.
	e.inject("From: Cy <cy@customer.example>\r\nTo: support@example.com\r\nSubject: Re: [" + id + "] How did we do?\r\nMessage-ID: <p3@customer.example>\r\n\r\nWhy does it still smoke?\r\n")
	if st := e.ticket(id).Status; st != rules.StatusOpen {
		t.Fatalf("after a question the ticket is %s, want open", st)
	}
}

func TestPolicyConfigRefusedWithKey(t *testing.T) {
	for key, extra := range map[string]string{
		"lifecycle.remind_after":      "[lifecycle]\nremind_after = \"3 days\"",
		"lifecycle.schedule":          "[lifecycle]\nschedule = \"every five minutes\"",
		"sla.targets.high.resolution": "[sla.targets.high]\nresolution = \"4x\"",
		"sla.plans.gold.urgent":       "[sla.plans.gold.urgent]\nresolution = \"4h\"",
		"sla.business_hours.timezone": "[sla.business_hours]\ntimezone = \"Mars/Olympus\"",
		"sla.business_hours.start":    "[sla.business_hours]\nstart = \"9am\"",
		"sla.business_hours.days":     "[sla.business_hours]\ndays = [\"mon\", \"funday\"]",
		"sla.warn_before":             "[sla]\nwarn_before = \"soon\"",
		"sla.business_hours: invalid": "[sla.business_hours]\nstart = \"18:00\"\nend = \"09:00\"",
		"sla.critical_update_every":   "[sla]\ncritical_update_every = \"often\"",
		"calendars.berlin.holidays":   "[calendars.berlin]\nholidays = [\"25.12.2026\"]",
		"calendars.berlin.timezone":   "[calendars.berlin]\ntimezone = \"Berlin\"",
		"queues.support.calendar":     "[queues.support]\ncalendar = \"nowhere\"",
		"escalation.calendar":         "[escalation]\ncalendar = \"nowhere\"",
		"escalation.first_response":   "[escalation]\nfirst_response = \"soon\"",
		"escalation.queue \"level3\"": "[escalation]\nqueue = \"level3\"",
		"queues \"sales\"":            "[queues.sales]\ncalendar = \"\"",
	} {
		e := newPolicyEnv(t, extra)
		_, err := e.run("sweep")
		var ee *exitError
		if !errors.As(err, &ee) || ee.code != exConfig || !strings.Contains(err.Error(), key) {
			t.Errorf("%s: got %v, want a config error naming the key", key, err)
		}
	}
	e := newPolicyEnv(t, "[lifecycle]\nschedule = \"*/10 * * * *\"\nremind_after = \"48h\"\n[sla]\nwarn_before = \"30m\"\n[sla.business_hours]\ndays = [\"mon\", \"Tuesday\"]\nstart = \"08:00\"\nend = \"24:00\"\ntimezone = \"UTC\"\n[sla.targets.high]\nfirst_response = \"2bh\"\n[sla.plans.gold.low]\nresolution = \"1bd\"")
	cfg, err := loadConfig(e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	p, err := policyFromConfig(cfg)
	if err != nil {
		t.Fatalf("good config refused: %v", err)
	}
	if p.Lifecycle.RemindAfter != 48*time.Hour || p.SLA.Targets[rules.PriorityHigh].FirstResponse.String() != "2bh" ||
		p.SLA.Targets[rules.PriorityHigh].Resolution.String() != "24h" || p.SLA.Plans["gold"][rules.PriorityLow].FirstResponse.String() != "48h" ||
		len(p.SLA.Hours.Days) != 2 || p.SLA.Hours.End != 24*time.Hour {
		t.Errorf("policy from config: %+v", p)
	}
	// The one calendar of old configurations is still every queue's, and
	// critical tickets are followed every 3h by default.
	if s := p.SLA.StartIn(time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC), rules.PriorityHigh, "", "support"); s.Calendar != "" ||
		!s.FirstResponseDue.Equal(time.Date(2026, 12, 7, 14, 0, 0, 0, time.UTC)) || p.SLA.CriticalUpdateEvery != 3*time.Hour {
		t.Errorf("old single calendar: %+v, follow-ups every %v", s, p.SLA.CriticalUpdateEvery)
	}

	e = newPolicyEnv(t, `[sla]
critical_update_every = "2h"
[calendars.berlin]
days = ["mon", "tue", "wed", "thu", "fri"]
start = "09:00"
end = "17:00"
timezone = "Europe/Berlin"
holidays = ["2026-12-24", "2026-12-25"]
[queues.Support]
calendar = "berlin"
[escalation]
queue = "escalation"
calendar = "berlin"
first_response = "1bh"
resolution = "4bh"
on_breach = true`)
	if cfg, err = loadConfig(e.cfg); err != nil {
		t.Fatal(err)
	}
	if p, err = policyFromConfig(cfg); err != nil {
		t.Fatalf("calendars refused: %v", err)
	}
	esc := p.SLA.Escalation
	if p.SLA.CriticalUpdateEvery != 2*time.Hour || p.SLA.QueueCalendars["support"] != "berlin" || len(p.SLA.Calendars["berlin"].Holidays) != 2 ||
		esc.Queue != "escalation" || esc.Calendar != "berlin" || esc.Target.FirstResponse.String() != "1bh" || esc.Target.Resolution.String() != "4bh" || !esc.OnBreach {
		t.Errorf("policy from calendars: %+v", p.SLA)
	}
	// Wednesday 23 December 17:30 CET plus 1 business hour in Berlin:
	// Christmas Eve and Day are holidays, so Monday 28th 10:00 CET.
	at := time.Date(2026, 12, 23, 16, 30, 0, 0, time.UTC)
	s := p.SLA.Escalate(p.SLA.StartIn(at, rules.PriorityHigh, "", "support"), at)
	if want := time.Date(2026, 12, 28, 9, 0, 0, 0, time.UTC); s.Calendar != "berlin" || !s.Escalation.FirstResponseDue.Equal(want) {
		t.Errorf("level 2 due %v in calendar %q, want %v in berlin", s.Escalation.FirstResponseDue.UTC(), s.Calendar, want)
	}
}

// [sla.plans.NAME] whose NAME is a [[plan]]'s in another case would
// never apply (a ticket's plan is the [[plan]]'s name as written): it is
// refused naming the key and the plan, not passed over.
func TestSLAPlanNamedInAnotherCaseIsRefused(t *testing.T) {
	e := newPolicyEnv(t, "[[plan]]\nname = \"Premium\"\nmatch = [\"@bigcorp.example\"]\n[sla.plans.premium.high]\nfirst_response = \"1h\"")
	_, err := e.run("sweep")
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != exConfig || !strings.Contains(err.Error(), "sla.plans.premium") || !strings.Contains(err.Error(), `"Premium"`) {
		t.Errorf("got %v, want a config error naming sla.plans.premium and the plan \"Premium\"", err)
	}
}

// TestSweepHandsOverToServe: while serve holds the database, the sweep
// command runs inside it through the admin API, and serve's outbox
// delivers the reminder.
func TestSweepHandsOverToServe(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	admin := ln.Addr().String()
	ln.Close()
	e := newPolicyEnv(t, "")
	b, _ := os.ReadFile(e.cfg)
	os.WriteFile(e.cfg, bytes.Replace(b, []byte(`listen = ""`), []byte(fmt.Sprintf("listen = %q\n[inbound]\nsmtp_listen = \"127.0.0.1:0\"", admin)), 1), 0o600)
	id := e.inject("From: Cy <cy@customer.example>\r\nTo: support@example.com\r\nSubject: Printer on fire\r\nMessage-ID: <h1@customer.example>\r\n\r\nHelp!\r\n")
	start := time.Now().UTC().Add(-4 * 24 * time.Hour).Truncate(time.Second)
	e.agentReply(id, start)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"serve", "-config", e.cfg}, strings.NewReader(""), io.Discard) }()
	defer func() { cancel(); <-done }()
	for i := 0; ; i++ {
		if resp, err := http.Get("http://" + admin + "/healthz"); err == nil {
			resp.Body.Close()
			break
		}
		if i == 200 {
			t.Fatal("serve did not start")
		}
		time.Sleep(25 * time.Millisecond)
	}
	out := e.mustRun("sweep", "-now", start.Add(3*24*time.Hour).Format(time.RFC3339))
	if !strings.Contains(out, id+" reminder:") {
		t.Fatalf("handed-over sweep printed:\n%s", out)
	}
	mails := e.relay.WaitFor(2, 10*time.Second) // auto-reply and reminder
	if len(mails) != 2 || !strings.Contains(string(mails[1].Data), "["+id+"]") {
		t.Fatalf("serve delivered %d mails, want the auto-reply and the reminder", len(mails))
	}
}

// TestLevel2FromConfig: with [escalation] and a named calendar configured,
// a customer's "please escalate" moves the ticket to level 2's queue and
// clock (shown as sla.escalation by show -json), and the sweep command's
// level-2 breach alert reaches level 2's agent and the manager, once each,
// in a mail of their own whose Reply-To is their signed reply address.
func TestLevel2FromConfig(t *testing.T) {
	e := newPolicyEnv(t, `[calendars.always]
days = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
start = "00:00"
end = "24:00"
timezone = "Europe/Berlin"
[escalation]
queue = "escalation"
calendar = "always"
first_response = "1bh"
resolution = "6bh"
[[agent]]
email = "ana@example.com"
queues = ["support"]
[[agent]]
email = "lev@example.com"
queues = ["escalation"]
[[agent]]
email = "meg@example.com"
manager = true`)
	id := e.inject("From: Cy <cy@customer.example>\r\nTo: support@example.com\r\nSubject: Printer on fire\r\nMessage-ID: <l2@customer.example>\r\n\r\nNobody answers. Please escalate this.\r\n")
	e.deliver()
	out := e.mustRun("show", "-json", id)
	var v struct {
		Queue string `json:"queue"`
		SLA   struct {
			Escalation *struct {
				Level            int        `json:"level"`
				At               time.Time  `json:"at"`
				FirstResponseDue time.Time  `json:"first_response_due"`
				FirstResponseAt  *time.Time `json:"first_response_at"`
				ResolutionDue    time.Time  `json:"resolution_due"`
				Breached         []string   `json:"breached"`
			} `json:"escalation"`
		} `json:"sla"`
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("show -json: %v\n%s", err, out)
	}
	es := v.SLA.Escalation
	if v.Queue != "escalation" || es == nil || es.Level != 2 || !es.FirstResponseDue.Equal(es.At.Add(time.Hour)) ||
		!es.ResolutionDue.Equal(es.At.Add(6*time.Hour)) || es.FirstResponseAt != nil || es.Breached == nil {
		t.Fatalf("escalated ticket: queue %q sla.escalation %+v\n%s", v.Queue, es, out)
	}
	// -now reads whole seconds.
	at := es.FirstResponseDue.Add(time.Second).Format(time.RFC3339)
	e.mustRun("sweep", "-now", at)
	e.mustRun("sweep", "-now", at)
	before := e.sentTo
	subjects := e.deliver()
	var alerts []string
	replies := map[string]bool{}
	for i, s := range subjects {
		dec, err := new(mime.WordDecoder).DecodeHeader(s)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(dec, "SLA breach: level 2 first response overdue") {
			m := e.relay.Mails()[before+i]
			to := slices.Clone(m.To)
			slices.Sort(to)
			alerts = append(alerts, strings.Join(to, ","))
			msg, err := mail.ReadMessage(bytes.NewReader(m.Data))
			if err != nil {
				t.Fatal(err)
			}
			reply, err := mail.ParseAddress(msg.Header.Get("Reply-To"))
			if err != nil || !signedReply.MatchString(reply.Address) || !strings.HasPrefix(reply.Address, "support+"+strings.ToLower(id)+"-r-") || replies[reply.Address] {
				t.Errorf("alert to %v has Reply-To %q (%v), want a reply address signed for them", to, msg.Header.Get("Reply-To"), err)
			}
			replies[reply.Address] = true
		}
	}
	slices.Sort(alerts)
	if want := []string{"lev@example.com", "meg@example.com"}; !slices.Equal(alerts, want) {
		t.Fatalf("level-2 breach alerts went to %v, want %v, one mail each (subjects %v)", alerts, want, subjects)
	}
}

// signedReply is the form of a signed reply address on support@example.com.
var signedReply = regexp.MustCompile(`^support\+[a-z]+-[0-9]{6}-r-[a-z0-9]+@example\.com$`)

// showTicket reads ticket id's record with its messages and events.
func showTicket(ctx context.Context, s store.Store, id string) (*store.Ticket, error) {
	var t *store.Ticket
	err := s.View(ctx, func(tx store.Tx) error {
		var err error
		t, err = tx.TicketFull(strings.ToUpper(strings.TrimSpace(id)))
		return err
	})
	return t, err
}

// A sweep asked for with a parameter it does not take (the command
// line's -dry-run spelled as in the flag) is refused, not run for real.
func TestSweepAPIRefusesAParameterItDoesNotTake(t *testing.T) {
	e := newEnv(t, true)
	id := e.injectOK(message("cy@customer.example", "support@example.com", "Printer on fire", "sw1@customer.example", "Help!"),
		"-to", "support@example.com", "-from", "cy@customer.example")
	e.serve()
	events := func() int {
		t.Helper()
		var tk struct{ Events []any }
		if err := json.Unmarshal(e.get("/api/tickets/"+id), &tk); err != nil {
			t.Fatal(err)
		}
		return len(tk.Events)
	}
	before := events()
	for _, q := range []string{"dry-run=1", "dry_run=yes", "dry_run=1&dry_run=0"} {
		resp, err := e.apiDo("POST", "/api/sweep?now=2030-01-01T00:00:00Z&"+q, "", "")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), `"error"`) {
			t.Errorf("POST /api/sweep?%s: %s %s, want 400 with an error", q, resp.Status, b)
		}
	}
	if after := events(); after != before {
		t.Errorf("a refused sweep changed the ticket: %d events, was %d", after, before)
	}
}
