package desk

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"mime/quotedprintable"
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

// env is a desk for policy tests: a real store on disk, the policy in its
// due index, a sweeper, and an outbox worker sending to a recording relay.
type env struct {
	t      testing.TB
	path   string
	store  store.Store
	desk   *mailout.Mailer
	policy *Policy
	sweep  *Sweeper
	relay  *relaytest.Relay
	worker *mailout.Worker
}

// day0 is a Monday, 10:00 UTC.
var day0 = time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)

func day(n float64) time.Time { return day0.Add(time.Duration(n * 24 * float64(time.Hour))) }

func newEnv(t testing.TB) *env {
	t.Helper()
	tpl, err := mailout.LoadTemplates("")
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, path: filepath.Join(t.TempDir(), "tickets.db"), relay: relaytest.Start(t),
		desk:   &mailout.Mailer{Hostname: "tickets.example.com", FromName: "Example Support", Templates: tpl},
		policy: &Policy{Lifecycle: rules.DefaultLifecycle(), SLA: rules.DefaultSLAPolicy(), ReopenWindow: 7 * 24 * time.Hour}}
	e.open()
	t.Cleanup(func() { e.store.Close() })
	return e
}

// open (re)opens the database, as a restarted process would.
func (e *env) open() {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	db, err := boltdb.Open(e.path, boltdb.Options{}, log)
	if err != nil {
		e.t.Fatal(err)
	}
	st := store.WithDue(db, e.policy.Due)
	e.store = st
	e.sweep = &Sweeper{Store: st, Desk: e.desk, Policy: e.policy, Signer: rules.Signer{Keys: [][]byte{agKey}}, Log: log}
	e.worker = mailout.NewWorker(st, &mailout.Relay{Addr: e.relay.Addr, TLS: "none", Hostname: "tickets.example.com", Timeout: 5 * time.Second}, log)
	// Mail is queued at the swept instant, which tests put in the future.
	e.worker.Now = func() time.Time { return day(1000) }
}

// create writes a new ticket as the pipeline does.
func (e *env) create(id, requester string, at time.Time, prio rules.Priority) {
	e.t.Helper()
	e.update(func(tx store.Tx) error {
		t := &store.Ticket{ID: id, Subject: "Printer on fire", Status: rules.StatusNew, Priority: prio, Queue: "support",
			Route: "support@example.com", Requester: requester, RequesterName: "Cy Customer", CC: []string{}, CreatedAt: at, UpdatedAt: at}
		e.policy.Created(t, at)
		return tx.PutTicket(t)
	})
}

func (e *env) update(fn func(tx store.Tx) error) {
	e.t.Helper()
	if err := e.store.UpdateNow(context.Background(), fn); err != nil {
		e.t.Fatal(err)
	}
}

// change loads ticket id, lets fn change it and writes it back.
func (e *env) change(id string, fn func(t *store.Ticket)) {
	e.t.Helper()
	e.update(func(tx store.Tx) error {
		t, err := tx.Ticket(id)
		if err != nil {
			return err
		}
		fn(t)
		return tx.PutTicket(t)
	})
}

// setStatus changes the status the way agent commands do.
func (e *env) setStatus(id string, s rules.Status, at time.Time) {
	e.change(id, func(t *store.Ticket) {
		e.policy.changeStatus(t, rules.StatusChange{To: s, Cause: rules.CauseCommand, At: at}, "")
	})
}

// agentReply is an agent's public reply: the ticket opens and the wait starts.
func (e *env) agentReply(id string, at time.Time) {
	e.change(id, func(t *store.Ticket) {
		if t.Status == rules.StatusNew {
			e.policy.changeStatus(t, rules.StatusChange{To: rules.StatusOpen, Cause: rules.CauseAgent, At: at}, "")
		}
		e.policy.AgentReplied(t, at)
	})
}

// customerReply is what the pipeline does when the customer writes.
func (e *env) customerReply(id string, at time.Time) {
	e.change(id, func(t *store.Ticket) {
		if next := rules.StatusOnCustomerReply(t.Status); next != t.Status {
			e.policy.changeStatus(t, rules.StatusChange{To: next, Cause: rules.CauseCustomer, At: at}, "")
		}
		e.policy.CustomerReplied(t, at)
	})
}

func (e *env) run(at time.Time) *SweepReport {
	e.t.Helper()
	rep, err := e.sweep.Sweep(context.Background(), at, false)
	if err != nil {
		e.t.Fatalf("sweep at %s: %v", at, err)
	}
	return rep
}

// delivered empties the outbox through the relay and returns every mail
// the relay accepted so far.
func (e *env) delivered() []relaytest.Mail {
	e.t.Helper()
	for range 100 {
		e.worker.RunOnce(context.Background())
		var left []*store.OutMail
		e.store.View(context.Background(), func(tx store.Tx) error {
			var err error
			left, err = tx.Outbox(time.Time{}, 0)
			return err
		})
		if len(left) == 0 {
			return e.relay.Mails()
		}
	}
	e.t.Fatal("the outbox does not drain")
	return nil
}

func (e *env) ticket(id string) *store.Ticket {
	e.t.Helper()
	var t *store.Ticket
	if err := e.store.View(context.Background(), func(tx store.Tx) error {
		var err error
		t, err = tx.TicketFull(id)
		return err
	}); err != nil {
		e.t.Fatal(err)
	}
	return t
}

func events(t *store.Ticket, typ string) []store.Event {
	var out []store.Event
	for _, ev := range t.Events {
		if string(ev.Type) == typ {
			out = append(out, ev)
		}
	}
	return out
}

// parse returns a sent mail's header, decoded subject and decoded body.
func parse(t testing.TB, m relaytest.Mail) (mail.Header, string) {
	t.Helper()
	msg, err := mail.ReadMessage(bytes.NewReader(m.Data))
	if err != nil {
		t.Fatalf("sent mail does not parse: %v", err)
	}
	var r io.Reader = msg.Body
	if strings.EqualFold(msg.Header.Get("Content-Transfer-Encoding"), "quoted-printable") {
		r = quotedprintable.NewReader(r)
	}
	body, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("sent mail body: %v", err)
	}
	subject, err := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	if err != nil {
		t.Fatalf("sent mail subject: %v", err)
	}
	msg.Header["Subject"] = []string{subject}
	return msg.Header, strings.ReplaceAll(string(body), "\r\n", "\n")
}

// TestSurveyReplies: a rating is stored and thanked once and the ticket
// stays closed; anything else is left to the reopen policy.
func TestSurveyReplies(t *testing.T) {
	e := newEnv(t)
	cases := []struct {
		text    string
		handled bool
		score   int
		comment string
	}{
		{"5", true, 5, ""},
		{"4 - thanks", true, 4, "thanks"},
		{"five", true, 5, ""},
		{"Is the printer fixed now? It still smokes.", false, 0, ""},
	}
	for i, c := range cases {
		id := fmt.Sprintf("HS-00000%d", i)
		e.create(id, fmt.Sprintf("c%d@customer.example", i), day0, rules.PriorityMedium)
		e.agentReply(id, day0)
		e.run(day(15))
		before := len(e.delivered())
		var handled bool
		e.update(func(tx store.Tx) error {
			tk, err := tx.Ticket(id)
			if err != nil {
				return err
			}
			if !tk.SurveySent || tk.Status != rules.StatusClosed {
				t.Fatalf("%s: not closed with survey: %s %v", id, tk.Status, tk.SurveySent)
			}
			ch := &Change{Ticket: tk}
			handled = e.policy.surveyReply(ch, c.text, day(16))
			return Apply(tx, e.desk, day(16), ch)
		})
		got := e.ticket(id)
		mails := e.delivered()[before:]
		if handled != c.handled {
			t.Fatalf("%q: handled %v, want %v", c.text, handled, c.handled)
		}
		if !c.handled {
			if got.Satisfaction != nil || len(mails) != 0 {
				t.Errorf("%q: stored %+v and sent %d mails", c.text, got.Satisfaction, len(mails))
			}
			continue
		}
		if got.Satisfaction == nil || got.Satisfaction.Score != c.score || got.Satisfaction.Comment != c.comment || !got.Satisfaction.At.Equal(day(16)) {
			t.Errorf("%q: satisfaction %+v", c.text, got.Satisfaction)
		}
		if got.Status != rules.StatusClosed {
			t.Errorf("%q: status %s, want closed", c.text, got.Status)
		}
		if len(mails) != 1 || mails[0].To[0] != fmt.Sprintf("c%d@customer.example", i) {
			t.Fatalf("%q: want one thanks mail to the customer, got %d", c.text, len(mails))
		}
		if _, body := parse(t, mails[0]); !strings.Contains(body, fmt.Sprintf("with %d of 5", c.score)) {
			t.Errorf("%q: thanks reads:\n%s", c.text, body)
		}
	}
	// A second rating replaces the first without a second thanks.
	before := len(e.delivered())
	e.update(func(tx store.Tx) error {
		tk, _ := tx.Ticket("HS-000000")
		ch := &Change{Ticket: tk}
		if ok := e.policy.surveyReply(ch, "3", day(17)); !ok {
			t.Fatalf("second rating not taken")
		}
		return Apply(tx, e.desk, day(17), ch)
	})
	if n := len(e.delivered()) - before; n != 0 {
		t.Errorf("second rating sent %d mails, want none", n)
	}
	if s := e.ticket("HS-000000").Satisfaction; s.Score != 3 {
		t.Errorf("second rating not stored: %+v", s)
	}
	b, _ := json.Marshal(e.ticket("HS-000001"))
	if !strings.Contains(string(b), `"satisfaction":{"score":4,"comment":"thanks","at":"2026-11-18T10:00:00Z"}`) {
		t.Errorf("ticket JSON lacks the satisfaction: %s", b)
	}
}

// TestSLAAlertsOncePerBreach: the assignee, or the queue's agents, and the
// managers are alerted once per breach, each in a mail of their own with
// their signed reply address; warnings come ahead of it.
func TestSLAAlertsOncePerBreach(t *testing.T) {
	e := newEnv(t)
	e.policy.SLA.WarnBefore = 30 * time.Minute
	e.policy.Agents = []AgentRef{
		{Email: "ana@example.com", Name: "Ana", Queues: []string{"support"}},
		{Email: "ben@example.com", Name: "Ben", Queues: []string{"tech"}},
		{Email: "mia@example.com", Name: "Mia", Manager: true},
	}
	created := day0
	e.create("HS-100001", "c1@customer.example", created, rules.PriorityCritical) // 1h first response, 4h resolution
	e.create("HS-100002", "c2@customer.example", created, rules.PriorityCritical)
	e.change("HS-100002", func(t *store.Ticket) { t.Assignee = "ben@example.com" })

	e.run(created.Add(20 * time.Minute))
	if n := len(e.delivered()); n != 0 {
		t.Fatalf("%d alerts before any warning was due", n)
	}
	e.run(created.Add(40 * time.Minute))
	warn := e.delivered()
	if len(warn) != 4 {
		t.Fatalf("want one warning per ticket to each of its two people, got %d", len(warn))
	}
	e.run(created.Add(61 * time.Minute))
	e.run(created.Add(62 * time.Minute))
	mails := e.delivered()[4:]
	if len(mails) != 4 {
		t.Fatalf("want one breach alert per ticket to each of its two people after two sweeps, got %d", len(mails))
	}
	alerted := map[string][]string{}
	for _, m := range mails {
		h, body := parse(t, m)
		id, _ := rules.TicketToken(h.Get("Subject"), "HS")
		if len(m.To) != 1 {
			t.Fatalf("%s alert went to %v in one mail, want one mail each", id, m.To)
		}
		alerted[id] = append(alerted[id], m.To[0])
		if r, err := mail.ParseAddress(h.Get("Reply-To")); err != nil || r.Address != agSigned(t, agKey, rules.TokenReply, id, m.To[0]) {
			t.Errorf("%s alert to %s has Reply-To %q, want their signed reply address", id, m.To[0], h.Get("Reply-To"))
		}
		if !strings.Contains(h.Get("Subject"), "SLA breach: first response overdue") || !strings.Contains(body, "2026-11-02 11:00 UTC") {
			t.Errorf("alert reads:\n%s\n%s", h.Get("Subject"), body)
		}
		if h.Get("Auto-Submitted") != "auto-generated" {
			t.Errorf("alert Auto-Submitted %q", h.Get("Auto-Submitted"))
		}
	}
	for id, want := range map[string]string{
		"HS-100001": "ana@example.com mia@example.com", // unassigned: the support agent and the manager
		"HS-100002": "ben@example.com mia@example.com", // assigned: the assignee and the manager
	} {
		slices.Sort(alerted[id])
		if got := strings.Join(alerted[id], " "); got != want {
			t.Errorf("%s alerted %s, want %s", id, got, want)
		}
	}
	tk := e.ticket("HS-100001")
	if len(events(tk, "sla_breach")) != 1 || len(events(tk, "sla_warning")) != 1 {
		t.Errorf("events: %d breach, %d warning", len(events(tk, "sla_breach")), len(events(tk, "sla_warning")))
	}
	if fmt.Sprint(tk.SLA.Breached) != "[first_response]" {
		t.Errorf("breached %v", tk.SLA.Breached)
	}
}

// TestSLADueTimesInTicketJSON: business-hour targets skip the weekend and
// the night, and the ticket JSON shows the due times.
func TestSLADueTimesInTicketJSON(t *testing.T) {
	e := newEnv(t)
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Skip("no time zone data:", err)
	}
	e.policy.SLA.Hours.Loc = berlin
	e.policy.SLA.Targets[rules.PriorityMedium] = rules.Target{FirstResponse: rules.Span{Dur: 8 * time.Hour, Business: true}, Resolution: rules.Span{BusinessDays: 2, Business: true}}
	// Friday 15:00 Berlin (14:00 UTC): 2h of Friday, 6h of Monday to 15:00.
	fri := time.Date(2026, 11, 6, 14, 0, 0, 0, time.UTC)
	e.create("HS-200001", "c@customer.example", fri, rules.PriorityMedium)
	// Saturday 23:30 UTC: counting starts Monday 09:00 Berlin.
	e.create("HS-200002", "d@customer.example", time.Date(2026, 11, 7, 23, 30, 0, 0, time.UTC), rules.PriorityMedium)
	for id, want := range map[string][2]string{
		"HS-200001": {"2026-11-09T15:00:00+01:00", "2026-11-10T15:00:00+01:00"},
		"HS-200002": {"2026-11-09T17:00:00+01:00", "2026-11-11T09:00:00+01:00"},
	} {
		b, _ := json.Marshal(e.ticket(id))
		var got struct {
			SLA map[string]any `json:"sla"`
		}
		json.Unmarshal(b, &got)
		if got.SLA["first_response_due"] != want[0] || got.SLA["resolution_due"] != want[1] ||
			got.SLA["first_response_at"] != nil || fmt.Sprint(got.SLA["breached"]) != "[]" {
			t.Errorf("%s sla = %v, want due %v", id, got.SLA, want)
		}
	}
	// The breach alert comes Monday 15:00 Berlin, not on Saturday.
	e.policy.Agents = []AgentRef{{Email: "mia@example.com", Manager: true}}
	e.run(time.Date(2026, 11, 8, 12, 0, 0, 0, time.UTC))
	if n := len(e.delivered()); n != 0 {
		t.Fatalf("%d alerts over the weekend", n)
	}
	e.run(time.Date(2026, 11, 9, 13, 59, 0, 0, time.UTC))
	if n := len(e.delivered()); n != 0 {
		t.Fatalf("%d alerts before Monday 15:00 Berlin", n)
	}
	e.run(time.Date(2026, 11, 9, 14, 0, 0, 0, time.UTC))
	if m := e.delivered(); len(m) != 1 || !strings.Contains(string(m[0].Data), "HS-200001") {
		t.Fatalf("want one alert for HS-200001 on Monday, got %d", len(m))
	}
}
