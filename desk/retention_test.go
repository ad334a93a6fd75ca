package desk

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"ticketgate/rules"
	"ticketgate/store"
)

// addMail stores a customer's message on ticket id with a raw copy and
// one attachment, as the pipeline keeps them, and returns the blobs'
// hashes.
func (e *env) addMail(id, text string, at time.Time) (raw, file string) {
	e.t.Helper()
	e.update(func(tx store.Tx) error {
		s := Stored{Message: &store.Message{MessageID: fmt.Sprintf("<%s-%d@customer.example>", id, at.Unix()), Direction: "in", Kind: "customer",
			From: "cy@customer.example", To: []string{"support@example.com"}, Subject: "Printer on fire", Text: text, VisibleText: text, CreatedAt: at,
			Attachments: []store.Attachment{{Filename: "photo-" + id + ".jpg", ContentType: "image/jpeg", Size: 9}}},
			Raw: []byte("Subject: Printer on fire\r\n\r\n" + text + "\r\n"), Files: [][]byte{[]byte("jpeg " + id)}}
		if err := storeMessage(tx, id, s); err != nil {
			return err
		}
		raw, file = s.Message.Raw, s.Message.Attachments[0].SHA256
		return nil
	})
	return raw, file
}

// kept reports whether blob h is still stored.
func (e *env) kept(h string) bool {
	e.t.Helper()
	var err error
	e.store.View(context.Background(), func(tx store.Tx) error { _, err = tx.Blob(h); return nil })
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		e.t.Fatal(err)
	}
	return err == nil
}

// found reports how many tickets a search for text lists.
func (e *env) found(text string) int {
	e.t.Helper()
	var n int
	e.update(func(tx store.Tx) error {
		l, _, err := tx.Tickets(store.Filter{Text: text})
		n = len(l)
		return err
	})
	return n
}

// TestRetentionDeletesBodiesOfLongClosedTickets: with closed_after 30
// days, the sweep deletes the text, raw copy and files of a ticket closed
// 31 days ago, once, with an event; a ticket closed 10 days ago keeps
// them; both keep their number, subject, status and SLA figures, and the
// deletion holds after a restart.
func TestRetentionDeletesBodiesOfLongClosedTickets(t *testing.T) {
	e := newEnv(t)
	e.policy.Retention = rules.Retention{After: 30 * 24 * time.Hour}
	e.create("HS-400001", "cy@customer.example", day0, rules.PriorityLow)
	e.create("HS-400002", "cy@customer.example", day0, rules.PriorityLow)
	oldRaw, oldFile := e.addMail("HS-400001", "serial number quokka-17", day0)
	newRaw, newFile := e.addMail("HS-400002", "serial number wombat-23", day0)
	e.agentReply("HS-400001", day(1))
	e.agentReply("HS-400002", day(1))
	e.setStatus("HS-400001", rules.StatusClosed, day(2))
	e.setStatus("HS-400002", rules.StatusClosed, day(23))
	slaBefore := e.ticket("HS-400001").SLA
	report := func() string {
		t.Helper()
		var rep *Report
		err := e.store.View(context.Background(), func(tx store.Tx) error {
			var err error
			rep, err = BuildReport(tx, ReportQuery{From: day0, To: day(60), Now: day(60)})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(rep)
		return string(b)
	}
	reportBefore := report()
	if got := e.retentionProblems(day(33.5)); len(got) != 1 || !strings.Contains(got[0], "ticket HS-400001: closed at") {
		t.Errorf("check before the sweep, a day after the bodies fell due: %q", got)
	}

	rep := e.run(day(33)) // 31 days after the first closing, 10 after the second
	var acts []string
	for _, a := range rep.Actions {
		acts = append(acts, a.Ticket+" "+a.Kind)
	}
	if strings.Join(acts, ", ") != "HS-400001 bodies_deleted" {
		t.Errorf("sweep actions %v, want only the old ticket's bodies deleted", acts)
	}
	check := func() {
		t.Helper()
		old, recent := e.ticket("HS-400001"), e.ticket("HS-400002")
		m := old.Messages[0]
		if m.Text != "" || m.VisibleText != "" || m.Raw != "" || len(m.Attachments) != 0 || m.From != "cy@customer.example" || m.Subject != "Printer on fire" {
			t.Errorf("old ticket's message after retention: %+v", m)
		}
		if e.kept(oldRaw) || e.kept(oldFile) {
			t.Error("the old ticket's raw copy or attachment is still stored")
		}
		if old.Status != rules.StatusClosed || old.Subject != "Printer on fire" || old.SLA == nil || old.SLA.FirstResponseAt == nil || !old.SLA.FirstResponseAt.Equal(*slaBefore.FirstResponseAt) {
			t.Errorf("old ticket lost its record: status %s subject %q sla %+v", old.Status, old.Subject, old.SLA)
		}
		if n := len(events(old, string(rules.EventBodiesDeleted))); n != 1 {
			t.Errorf("old ticket has %d bodies_deleted events, want 1", n)
		}
		if r := recent.Messages[0]; r.Text != "serial number wombat-23" || r.Raw != newRaw || len(r.Attachments) != 1 || !e.kept(newRaw) || !e.kept(newFile) {
			t.Errorf("recently closed ticket lost its message: %+v", r)
		}
		if e.found("quokka") != 0 || e.found("wombat") != 1 {
			t.Errorf("search after retention: quokka %d tickets, wombat %d; want 0 and 1", e.found("quokka"), e.found("wombat"))
		}
	}
	check()
	if after := report(); after != reportBefore {
		t.Errorf("report numbers changed by retention:\nbefore %s\nafter  %s", reportBefore, after)
	}
	if got := e.retentionProblems(day(33.5)); len(got) != 0 {
		t.Errorf("check after the sweep: %q", got)
	}
	e.run(day(40)) // nothing more for the old ticket
	e.store.Close()
	e.open()
	check()

	// The second ticket's turn comes 30 days after its closing.
	e.run(day(54))
	if r := e.ticket("HS-400002").Messages[0]; r.Text != "" || e.kept(newRaw) {
		t.Errorf("second ticket's message 31 days after closing: %+v", r)
	}
}

func (e *env) retentionProblems(now time.Time) []string {
	e.t.Helper()
	got, err := e.policy.RetentionProblems(context.Background(), e.store, now)
	if err != nil {
		e.t.Fatal(err)
	}
	return got
}

// TestRetentionCheckFindsABodyLeftBehind: a message older than the
// ticket's deletion that still holds its text is reported by check's
// rule, a message that came later is not.
func TestRetentionCheckFindsABodyLeftBehind(t *testing.T) {
	e := newEnv(t)
	e.policy.Retention = rules.Retention{After: 30 * 24 * time.Hour}
	e.create("HS-400005", "cy@customer.example", day0, rules.PriorityLow)
	e.addMail("HS-400005", "first", day0)
	e.setStatus("HS-400005", rules.StatusClosed, day(1))
	e.run(day(32))
	e.addMail("HS-400005", "written after the deletion", day(33))
	if got := e.retentionProblems(day(34)); len(got) != 0 {
		t.Errorf("a message after the deletion is reported: %q", got)
	}
	// A message stored as if before the deletion, bypassing it.
	e.addMail("HS-400005", "left behind", day(20))
	if got := e.retentionProblems(day(34)); len(got) != 1 || !strings.Contains(got[0], "still holds its body") {
		t.Errorf("check with a body left behind: %q", got)
	}
}

// TestRetentionOffKeepsEverything: by default nothing is deleted, however
// long ago a ticket closed.
func TestRetentionOffKeepsEverything(t *testing.T) {
	e := newEnv(t)
	e.create("HS-400003", "cy@customer.example", day0, rules.PriorityLow)
	raw, file := e.addMail("HS-400003", "serial number quokka-17", day0)
	e.setStatus("HS-400003", rules.StatusClosed, day(1))
	e.run(day(1000))
	tk := e.ticket("HS-400003")
	if m := tk.Messages[0]; m.Text != "serial number quokka-17" || !e.kept(raw) || !e.kept(file) || len(events(tk, "bodies_deleted")) != 0 {
		t.Errorf("message with retention off: %+v events %+v", m, tk.Events)
	}
}

// TestRetentionTurnedOnLaterReachesOldTickets: a ticket closed while
// retention was off has nothing due; turning retention on (a new policy,
// as a restart or reload makes) still deletes its bodies at the next
// sweep.
func TestRetentionTurnedOnLaterReachesOldTickets(t *testing.T) {
	e := newEnv(t)
	e.create("HS-400004", "cy@customer.example", day0, rules.PriorityLow)
	raw, _ := e.addMail("HS-400004", "serial number quokka-17", day0)
	e.setStatus("HS-400004", rules.StatusClosed, day(1))
	e.run(day(100))
	if e.ticket("HS-400004").Messages[0].Text == "" {
		t.Fatal("bodies deleted with retention off")
	}
	e.store.Close()
	p := *e.policy
	p.Retention = rules.Retention{After: 60 * 24 * time.Hour}
	e.policy = &p
	e.open()
	rep, err := e.sweep.Sweep(context.Background(), day(101), true)
	if err != nil || len(rep.Actions) != 1 || rep.Actions[0].Kind != "bodies_deleted" {
		t.Fatalf("dry run after turning retention on: %v %+v", err, rep)
	}
	if e.ticket("HS-400004").Messages[0].Text == "" {
		t.Fatal("a dry run deleted bodies")
	}
	e.run(day(101))
	if m := e.ticket("HS-400004").Messages[0]; m.Text != "" || e.kept(raw) {
		t.Errorf("ticket closed before retention was on keeps its body: %+v", m)
	}
}

// TestRetentionTurnedOnLaterSurvivesAConflict proves that when the first
// sweep's catch-up transaction is refused and run again, the tickets
// closed before retention was on still lose their bodies.
func TestRetentionTurnedOnLaterSurvivesAConflict(t *testing.T) {
	e := newEnv(t)
	ids := []string{"HS-400005", "HS-400006"}
	for i, id := range ids {
		e.create(id, "cy@customer.example", day(float64(i)/10), rules.PriorityLow)
		e.addMail(id, "serial number quokka-18", day0)
		e.setStatus(id, rules.StatusClosed, day(1))
	}
	e.store.Close()
	p := *e.policy
	p.Retention = rules.Retention{After: 60 * 24 * time.Hour}
	e.policy = &p
	e.open()
	e.sweep.Batch = 1
	e.sweep.Store = refusedOnce{e.store}
	e.run(day(101))
	e.sweep.Store = e.store
	e.run(day(102))
	for _, id := range ids {
		if m := e.ticket(id).Messages[0]; m.Text != "" {
			t.Errorf("%s, closed before retention was on, keeps its body", id)
		}
	}
}

// TestRetentionDeletesARatingThatCameAfterTheBodies: a customer's answer
// to the survey lands on its ticket however long ago it closed; on a
// ticket whose bodies retention deleted already, its text and raw copy
// go the same way at the next sweep, and the score stays.
func TestRetentionDeletesARatingThatCameAfterTheBodies(t *testing.T) {
	g := startDesk(t)
	sw := agPolicy(t, g)
	sw.Policy.Retention = rules.Retention{After: 30 * 24 * time.Hour}
	ctx := context.Background()
	now := time.Date(2026, 9, 1, 9, 0, 0, 0, time.UTC)
	g.pipeline.Now = func() time.Time { return now }
	tk := agOpenFrom(t, g, "alice@customer.example", "Printer on fire", "It is really on fire.")
	if _, err := g.pipeline.Act(ctx, tk.ID, Action{Name: "status", Value: "closed"}); err != nil {
		t.Fatal(err)
	}
	g.settle()
	now = now.Add(40 * 24 * time.Hour)
	agSweep(t, g, sw, now)
	if d := g.ticket(tk.ID); d.BodiesDeletedAt == nil || hasMsg(d, "really on fire") {
		t.Fatalf("the bodies were not deleted 40 days after the closing: %+v", d.Messages)
	}

	now = now.Add(24 * time.Hour)
	g.mustSend("alice@customer.example", []string{"support@example.com"}, msg("alice@customer.example", "support@example.com",
		"Re: ["+tk.ID+"] Printer on fire", "2 - slow, and call me on my private line 030 5550 1234"))
	g.settle()
	if d := g.ticket(tk.ID); d.Satisfaction == nil || d.Satisfaction.Score != 2 || !hasMsg(d, "private line") {
		t.Fatalf("the late rating did not land on the ticket: %+v", d.Satisfaction)
	}
	now = now.Add(time.Hour)
	agSweep(t, g, sw, now)
	d := g.ticket(tk.ID)
	for _, m := range d.Messages {
		if m.Text != "" || m.VisibleText != "" || m.Raw != "" {
			t.Errorf("%s, closed 41 days ago, still holds a body after the sweep: %s message %q", tk.ID, m.Kind, m.Text)
		}
	}
	if d.Satisfaction == nil || d.Satisfaction.Score != 2 {
		t.Errorf("the score went with the body: %+v", d.Satisfaction)
	}
	problems, err := sw.Policy.RetentionProblems(ctx, g.store, now.Add(48*time.Hour))
	if err != nil || len(problems) != 0 {
		t.Errorf("check after the rating and a sweep: %v %q", err, problems)
	}
}
