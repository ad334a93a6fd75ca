package desk

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"ticketgate/rules"
	"ticketgate/store"
)

// agOpenFrom has from open a ticket and returns it, settled.
func agOpenFrom(t *testing.T, g *gateway, from, subject, body string) *store.Ticket {
	t.Helper()
	known := map[string]bool{}
	for _, x := range g.tickets() {
		known[x.ID] = true
	}
	g.mustSend(from, []string{"support@example.com"}, msg(from, "support@example.com", subject, body))
	g.settle()
	for _, x := range g.tickets() {
		if !known[x.ID] {
			return g.ticket(x.ID)
		}
	}
	t.Fatalf("%s's mail opened no ticket", from)
	return nil
}

// TestMergeByMailThenReplyToOldToken: "#merge HS-…" by the assignee moves
// the ticket's messages and requester into the target and closes it; the
// old requester's answer to the old token, and a reply by References to
// mail of the old ticket, land on the target, and no ticket is opened.
func TestMergeByMailThenReplyToOldToken(t *testing.T) {
	g := startDesk(t)
	dst := agOpenFrom(t, g, "alice@customer.example", "Printer on fire", "It is really on fire.")
	before := len(g.relay.Mails())
	src := agOpenFrom(t, g, "dave@customer.example", "Office printer burning", "Smoke everywhere.")
	autoReply := agOne(t, g, before, "dave@customer.example")
	notif := agOne(t, g, before, "ana@example.com")

	agReply(g, "Ana Lima <ana@example.com>", agReplyTo(t, notif), src, "#merge "+dst.ID)

	s, d := g.ticket(src.ID), g.ticket(dst.ID)
	if s.Status != rules.StatusClosed || s.MergedInto != dst.ID || !slices.Contains(s.Linked, dst.ID) {
		t.Fatalf("source after merge: status %s merged_into %q links %v", s.Status, s.MergedInto, s.Linked)
	}
	if !slices.Contains(d.Linked, src.ID) || !slices.Contains(d.CC, "dave@customer.example") {
		t.Fatalf("target after merge: links %v cc %v", d.Linked, d.CC)
	}
	if !slices.ContainsFunc(d.Messages, func(m store.Message) bool { return strings.Contains(m.VisibleText, "Smoke everywhere.") }) {
		t.Errorf("the source's message is not on the target: %+v", d.Messages)
	}
	if len(agEvents(d, "merged")) != 1 || len(agEvents(s, "merged")) != 1 {
		t.Errorf("merge events: target %+v source %+v", d.Events, s.Events)
	}
	n, kept := len(d.Messages), len(s.Messages)

	g.mustSend("dave@customer.example", []string{"support@example.com"},
		msg("dave@customer.example", "support@example.com", "Re: ["+src.ID+"] Office printer burning", "Still smoking."))
	g.mustSend("dave@customer.example", []string{"support@example.com"},
		msg("dave@customer.example", "support@example.com", "Re: printer", "And now it beeps.",
			"In-Reply-To: "+header(t, autoReply.Data).Get("Message-Id")))
	g.settle()
	if got := len(g.tickets()); got != 2 {
		t.Errorf("%d tickets after replies to the merged ticket, want 2", got)
	}
	d = g.ticket(dst.ID)
	texts := ""
	for _, m := range d.Messages[n:] {
		texts += m.VisibleText + "\n"
	}
	if !strings.Contains(texts, "Still smoking.") || !strings.Contains(texts, "And now it beeps.") {
		t.Errorf("replies to the old token and references did not land on %s: %q", dst.ID, texts)
	}
	if s = g.ticket(src.ID); s.Status != rules.StatusClosed || len(s.Messages) != kept {
		t.Errorf("merged ticket took mail: status %s, %d messages", s.Status, len(s.Messages))
	}
}

// TestMergeRefusals: an unknown target or another agent's ticket refuses
// the whole mail, tells the agent and changes nothing.
func TestMergeRefusals(t *testing.T) {
	g := startDesk(t)
	dst := agOpenFrom(t, g, "alice@customer.example", "Printer on fire", "It is really on fire.")
	before := len(g.relay.Mails())
	src := agOpenFrom(t, g, "dave@customer.example", "Office printer burning", "Smoke everywhere.")
	notif := agOne(t, g, before, "ana@example.com")
	before = len(g.relay.Mails())
	agReply(g, "Ana Lima <ana@example.com>", agReplyTo(t, notif), src, "#merge HS-000000")
	if body := agBody(t, agOne(t, g, before, "ana@example.com").Data); !strings.Contains(body, "there is no ticket HS-000000") {
		t.Errorf("agent not told of the unknown target:\n%s", body)
	}
	if s := g.ticket(src.ID); s.MergedInto != "" || s.Status == rules.StatusClosed {
		t.Errorf("refused merge changed the ticket: %+v", s)
	}

	// Ben owns the source; Ana may not merge it.
	if _, err := g.pipeline.Act(context.Background(), src.ID, Action{Name: "assign", Value: "ben@example.com"}); err != nil {
		t.Fatal(err)
	}
	_, err := g.pipeline.Act(context.Background(), src.ID, Action{Name: "merge", Value: dst.ID, Actor: "ana@example.com"})
	if !errors.Is(err, ErrBadAction) || !strings.Contains(err.Error(), "only the assignee ben@example.com") {
		t.Errorf("merge of ben's ticket by ana: %v", err)
	}
	if s := g.ticket(src.ID); s.MergedInto != "" {
		t.Errorf("refused merge changed the ticket: merged into %s", s.MergedInto)
	}
}

// TestLinkByAction links two tickets both ways without moving anything.
func TestLinkByAction(t *testing.T) {
	g := startDesk(t)
	a := agOpenFrom(t, g, "alice@customer.example", "Printer on fire", "It is really on fire.")
	b := agOpenFrom(t, g, "dave@customer.example", "Office printer burning", "Smoke everywhere.")
	if _, err := g.pipeline.Act(context.Background(), a.ID, Action{Name: "link", Value: b.ID}); err != nil {
		t.Fatal(err)
	}
	a2, b2 := g.ticket(a.ID), g.ticket(b.ID)
	if !slices.Equal(a2.Linked, []string{b.ID}) || !slices.Equal(b2.Linked, []string{a.ID}) {
		t.Errorf("links: %s %v, %s %v", a.ID, a2.Linked, b.ID, b2.Linked)
	}
	if a2.Status == rules.StatusClosed || len(b2.Messages) != len(b.Messages) || a2.MergedInto != "" {
		t.Errorf("link did more than link: %+v", a2)
	}
}

// TestMergedMessageKeepsItsRawCopy: the copy a merge puts on the target
// keeps the mail as it came, counted for its own use: the database checks
// whole, and deleting the source's bodies (as retention does) leaves the
// target's copy readable.
func TestMergedMessageKeepsItsRawCopy(t *testing.T) {
	g := startDesk(t)
	ctx := context.Background()
	dst := agOpenFrom(t, g, "alice@customer.example", "Printer on fire", "It is really on fire.")
	src := agOpenFrom(t, g, "dave@customer.example", "Office printer burning", "Smoke everywhere.")
	if _, err := g.pipeline.Act(ctx, src.ID, Action{Name: "merge", Value: dst.ID}); err != nil {
		t.Fatal(err)
	}
	checked := func(when string) {
		t.Helper()
		problems, err := g.store.(store.Inspector).Check(ctx)
		if err != nil || len(problems) != 0 {
			t.Errorf("check %s: %v %s", when, err, strings.Join(problems, "; "))
		}
	}
	copyRaw := func() string {
		t.Helper()
		var raw []byte
		err := g.store.View(ctx, func(tx store.Tx) error {
			d, err := tx.TicketFull(dst.ID)
			if err != nil {
				return err
			}
			for _, m := range d.Messages {
				if strings.Contains(m.VisibleText, "Smoke everywhere.") {
					raw, err = tx.Blob(m.Raw)
					return err
				}
			}
			return errors.New("no copy of the source's message on the target")
		})
		if err != nil {
			t.Fatal(err)
		}
		return string(raw)
	}
	checked("after the merge")
	if raw := copyRaw(); !strings.Contains(raw, "Smoke everywhere.") || !strings.Contains(raw, "dave@customer.example") {
		t.Fatalf("the copy's raw mail after the merge:\n%s", raw)
	}

	err := g.store.Update(ctx, func(tx store.Tx) error {
		s, err := tx.TicketFull(src.ID)
		if err != nil {
			return err
		}
		for i := range s.Messages {
			s.Messages[i].Raw = ""
		}
		return tx.ReplaceMessages(src.ID, s.Messages)
	})
	if err != nil {
		t.Fatal(err)
	}
	checked("after the source's raw copies were deleted")
	if raw := copyRaw(); !strings.Contains(raw, "Smoke everywhere.") {
		t.Errorf("the copy's raw mail after the source's was deleted:\n%s", raw)
	}
}

// An answer to a merged ticket's old notification lands on the target; the merged one stays closed.
func TestAgentAnswerToMergedTicketLandsOnTarget(t *testing.T) {
	g := startDesk(t)
	dst := agOpenFrom(t, g, "alice@customer.example", "Printer on fire", "It is really on fire.")
	before := len(g.relay.Mails())
	src := agOpenFrom(t, g, "dave@customer.example", "Office printer burning", "Smoke everywhere.")
	notif := agOne(t, g, before, "ana@example.com")
	agReply(g, "Ana Lima <ana@example.com>", agReplyTo(t, notif), src, "#merge "+dst.ID)
	if s := g.ticket(src.ID); s.MergedInto != dst.ID || s.Status != rules.StatusClosed {
		t.Fatalf("not merged: %+v", s)
	}
	sent := len(g.relay.Mails())
	agReply(g, "Ana Lima <ana@example.com>", agReplyTo(t, notif), src, "#status open\nAny news, Dave?")
	for _, m := range agMailsTo(g, sent, "dave@customer.example") {
		if subj := header(t, m.Data).Get("Subject"); strings.Contains(subj, src.ID) {
			t.Errorf("dave mailed from the merged ticket: %s", subj)
		}
	}
	s := g.ticket(src.ID)
	if s.Status != rules.StatusClosed {
		t.Errorf("merged ticket %s reopened by agent mail: status %s, merged_into %s", src.ID, s.Status, s.MergedInto)
	}
	d := g.ticket(dst.ID)
	if !hasMsg(d, "Any news, Dave?") {
		t.Errorf("agent's reply to the merged ticket is not on the target (on source: %v)", hasMsg(s, "Any news, Dave?"))
	}
}

// Actions on a merged ticket other than note or link are refused, naming the target.
func TestActionOnMergedTicketIsRefused(t *testing.T) {
	g := startDesk(t)
	ctx := context.Background()
	dst := agOpenFrom(t, g, "alice@customer.example", "Printer on fire", "It is really on fire.")
	src := agOpenFrom(t, g, "dave@customer.example", "Office printer burning", "Smoke everywhere.")
	if _, err := g.pipeline.Act(ctx, src.ID, Action{Name: "merge", Value: dst.ID}); err != nil {
		t.Fatal(err)
	}
	_, err := g.pipeline.Act(ctx, src.ID, Action{Name: "status", Value: "open"})
	if !errors.Is(err, ErrBadAction) || !strings.Contains(err.Error(), dst.ID) {
		t.Errorf("status open on the merged ticket: %v; want a refusal naming %s", err, dst.ID)
	}
	if s := g.ticket(src.ID); s.Status != rules.StatusClosed {
		t.Errorf("merged ticket reopened: status %s merged_into %s", s.Status, s.MergedInto)
	}
}

// hasMsg reports whether a message on tk shows text.
func hasMsg(tk *store.Ticket, text string) bool {
	for _, m := range tk.Messages {
		if strings.Contains(m.VisibleText, text) {
			return true
		}
	}
	return false
}

// An agent may not merge a ticket into one she could not add participants to.
func TestMergeIntoAnotherAgentsTicketIsRefused(t *testing.T) {
	g := startDesk(t)
	ctx := context.Background()
	g.mustSend("alice@customer.example", []string{"tech@example.com"}, msg("alice@customer.example", "tech@example.com", "Router down", "No internet."))
	g.settle()
	dst := g.onlyTicket()
	if _, err := g.pipeline.Act(ctx, dst.ID, Action{Name: "assign", Value: "tom@example.com"}); err != nil {
		t.Fatal(err)
	}
	src := agOpenFrom(t, g, "dave@customer.example", "Office printer burning", "Smoke everywhere.")
	if _, err := g.pipeline.Act(ctx, src.ID, Action{Name: "assign", Value: "me", Actor: "ana@example.com"}); err != nil {
		t.Fatal(err)
	}
	// The direct way is refused ...
	if _, err := g.pipeline.Act(ctx, dst.ID, Action{Name: "assign", Value: "me", Actor: "ana@example.com"}); err == nil {
		t.Fatal("ana took tom's ticket")
	}
	// ... and so is the merge into tom's ticket.
	_, err := g.pipeline.Act(ctx, src.ID, Action{Name: "merge", Value: dst.ID, Actor: "ana@example.com"})
	d := g.ticket(dst.ID)
	if !errors.Is(err, ErrBadAction) || slices.Contains(d.CC, "dave@customer.example") {
		t.Errorf("ana (support only) merged her ticket into %s (queue %s, assignee %s): %v; its participants are now %v", dst.ID, d.Queue, d.Assignee, err, d.CC)
	}
	if s := g.ticket(src.ID); s.MergedInto != "" || s.Status == rules.StatusClosed {
		t.Errorf("refused merge changed the source: status %s merged_into %q", s.Status, s.MergedInto)
	}
}

// The reply written in the mail that merges a ticket is on the target, where the conversation goes on.
func TestReplySentWithMergeIsOnTarget(t *testing.T) {
	g := startDesk(t)
	dst := agOpenFrom(t, g, "alice@customer.example", "Printer on fire", "It is really on fire.")
	before := len(g.relay.Mails())
	src := agOpenFrom(t, g, "dave@customer.example", "Office printer burning", "Smoke everywhere.")
	notif := agOne(t, g, before, "ana@example.com")
	before = len(g.relay.Mails())
	agReply(g, "Ana Lima <ana@example.com>", agReplyTo(t, notif), src, "#merge "+dst.ID+"\nWe track this in "+dst.ID+" from now on.")
	if l := agMailsTo(g, before, "dave@customer.example"); len(l) != 1 {
		t.Fatalf("dave got %d mails", len(l))
	}
	s, d := g.ticket(src.ID), g.ticket(dst.ID)
	if s.MergedInto != dst.ID {
		t.Fatalf("not merged: %+v", s)
	}
	if !hasMsg(d, "We track this") {
		t.Errorf("the reply sent with the merge is not on the target %s (on source: %v); target messages: %d",
			dst.ID, hasMsg(s, "We track this"), len(d.Messages))
	}
}

// TestMergeIntoATicketWhoseBodiesWereDeleted: a ticket closed longer than
// [retention] closed_after has lost its bodies; a ticket merged into it
// later brings copies of its messages, and these go the same way at the
// next sweep, so the target holds no body past the policy and check finds
// nothing wrong. The source, closed by the merge, keeps its own until its
// own time comes.
func TestMergeIntoATicketWhoseBodiesWereDeleted(t *testing.T) {
	g := startDesk(t)
	sw := agPolicy(t, g)
	sw.Policy.Retention = rules.Retention{After: 30 * 24 * time.Hour}
	ctx := context.Background()
	now := time.Date(2026, 9, 1, 9, 0, 0, 0, time.UTC)
	g.pipeline.Now = func() time.Time { return now }
	dst := agOpenFrom(t, g, "alice@customer.example", "Printer on fire", "It is really on fire.")
	if _, err := g.pipeline.Act(ctx, dst.ID, Action{Name: "status", Value: "closed"}); err != nil {
		t.Fatal(err)
	}
	now = now.Add(20 * 24 * time.Hour)
	src := agOpenFrom(t, g, "dave@customer.example", "Office printer burning", "Smoke everywhere, serial quokka-17.")
	now = now.Add(20 * 24 * time.Hour)
	agSweep(t, g, sw, now)
	if d := g.ticket(dst.ID); d.BodiesDeletedAt == nil || hasMsg(d, "really on fire") {
		t.Fatalf("the target's bodies were not deleted 40 days after its closing: %+v", d.Messages)
	}

	now = now.Add(24 * time.Hour)
	if _, err := g.pipeline.Act(ctx, src.ID, Action{Name: "merge", Value: dst.ID}); err != nil {
		t.Fatal(err)
	}
	now = now.Add(time.Hour)
	agSweep(t, g, sw, now)
	if d := g.ticket(dst.ID); hasMsg(d, "quokka-17") {
		t.Errorf("%s, closed 40 days ago, still holds the merged message's body after the sweep", dst.ID)
	}
	if !hasMsg(g.ticket(src.ID), "quokka-17") {
		t.Errorf("the source %s, merged an hour ago, lost its own message", src.ID)
	}
	problems, err := sw.Policy.RetentionProblems(ctx, g.store, now.Add(48*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(problems) != 0 {
		t.Errorf("check after the merge and a sweep: %q", problems)
	}
}

// TestRatingOfAClosedTicketMergedLaterLandsOnIt: a ticket closed (its
// survey sent) and merged afterwards into one still being worked on keeps
// its customer's rating: the answer to its survey is a rating of it, as
// the survey promises, not a customer's mail that reopens the target.
func TestRatingOfAClosedTicketMergedLaterLandsOnIt(t *testing.T) {
	g := startDesk(t)
	agPolicy(t, g)
	ctx := context.Background()
	dst := agOpenFrom(t, g, "alice@customer.example", "Printer on fire", "It is really on fire.")
	src := agOpenFrom(t, g, "dave@customer.example", "Office printer burning", "Smoke everywhere.")
	before := len(g.relay.Mails())
	if _, err := g.pipeline.Act(ctx, src.ID, Action{Name: "status", Value: "closed"}); err != nil {
		t.Fatal(err)
	}
	g.settle()
	var surveyID string
	for _, m := range agMailsTo(g, before, "dave@customer.example") {
		if strings.Contains(agBody(t, m.Data), "How satisfied") {
			surveyID = header(t, m.Data).Get("Message-Id")
		}
	}
	if surveyID == "" {
		t.Fatal("no survey was sent")
	}
	if _, err := g.pipeline.Act(ctx, dst.ID, Action{Name: "status", Value: "resolved"}); err != nil {
		t.Fatal(err)
	}
	if _, err := g.pipeline.Act(ctx, src.ID, Action{Name: "merge", Value: dst.ID}); err != nil {
		t.Fatal(err)
	}
	n := len(g.ticket(dst.ID).Messages)
	g.mustSend("dave@customer.example", []string{"support@example.com"},
		msg("dave@customer.example", "support@example.com", "Re: ["+src.ID+"] How did we do? Office printer burning",
			"5 - quick and friendly", "In-Reply-To: "+surveyID))
	g.settle()
	s, d := g.ticket(src.ID), g.ticket(dst.ID)
	if s.Satisfaction == nil || s.Satisfaction.Score != 5 {
		t.Errorf("%s's rating: %+v, want 5", src.ID, s.Satisfaction)
	}
	if d.Status != rules.StatusResolved || len(d.Messages) != n {
		t.Errorf("the rating of %s went to %s: status %s (want resolved), %d messages (want %d)",
			src.ID, dst.ID, d.Status, len(d.Messages), n)
	}

	// A ticket merged while open was closed quietly, without a survey:
	// a number its customer writes is no rating of it, and goes on to
	// the target with the rest of the conversation.
	open := agOpenFrom(t, g, "erin@customer.example", "Copier smoking", "Smoke again.")
	if _, err := g.pipeline.Act(ctx, open.ID, Action{Name: "merge", Value: dst.ID}); err != nil {
		t.Fatal(err)
	}
	g.mustSend("erin@customer.example", []string{"support@example.com"},
		msg("erin@customer.example", "support@example.com", "Re: ["+open.ID+"] Copier smoking", "3 copiers are smoking now."))
	g.settle()
	if o := g.ticket(open.ID); o.Satisfaction != nil || o.SurveySent {
		t.Errorf("%s, merged while open, took a rating: %+v (survey sent %v)", open.ID, o.Satisfaction, o.SurveySent)
	}
	if !hasMsg(g.ticket(dst.ID), "3 copiers are smoking now.") {
		t.Errorf("the mail to %s, merged while open, is not on %s", open.ID, dst.ID)
	}
}

// TestMergeKeepsTheSourcesWatchers: a customer escalates a ticket (the
// manager watches it), which is then merged into an older one about the
// same thing. The customer's next mail, to the merged ticket's number,
// goes on on the target, and the manager watching hears of it there.
func TestMergeKeepsTheSourcesWatchers(t *testing.T) {
	g := startDesk(t)
	agPolicy(t, g)
	ctx := context.Background()
	dst := agOpenFrom(t, g, "alice@customer.example", "Printer on fire", "It is really on fire.")
	src := agOpenFrom(t, g, "dave@customer.example", "Office printer burning", "Smoke everywhere. Please escalate.")
	if s := g.ticket(src.ID); !slices.Equal(s.Watchers, []string{"meg@example.com"}) {
		t.Fatalf("the escalated ticket's watchers: %v", s.Watchers)
	}
	if _, err := g.pipeline.Act(ctx, src.ID, Action{Name: "merge", Value: dst.ID}); err != nil {
		t.Fatal(err)
	}
	// The merge's own mail (the note of the target's escalation) goes
	// out before the follow-up's are counted.
	g.settle()
	if d := g.ticket(dst.ID); !slices.Equal(d.Watchers, []string{"meg@example.com"}) {
		t.Errorf("%s's watchers after the merge: %v, want the source's", dst.ID, d.Watchers)
	}
	before := len(g.relay.Mails())
	g.mustSend("dave@customer.example", []string{"support@example.com"},
		msg("dave@customer.example", "support@example.com", "Re: ["+src.ID+"] Office printer burning", "Still smoking, anyone?"))
	g.settle()
	if !hasMsg(g.ticket(dst.ID), "Still smoking, anyone?") {
		t.Fatalf("dave's mail is not on %s", dst.ID)
	}
	if n := len(agMailsTo(g, before, "meg@example.com")); n != 1 {
		t.Errorf("the manager watching the escalated ticket got %d mails of its customer's follow-up on %s, want 1", n, dst.ID)
	}
}

// TestMergeKeepsTheSourcesEscalation: dave asks to escalate his ticket,
// which moves to level 2 with level 2's clock; it is then merged into
// alice's older ticket about the same printer. The conversation goes on
// at level 2: the target is escalated, in level 2's queue, on the
// source's level-2 clock, whose breach alerts level 2; and level 2's lev
// answers the customers on it.
func TestMergeKeepsTheSourcesEscalation(t *testing.T) {
	g, sw, _ := l2Desk(t)
	now := time.Date(2026, 11, 3, 10, 0, 0, 0, time.UTC)
	g.pipeline.Now = func() time.Time { return now }
	dst := agOpenFrom(t, g, "alice@customer.example", "Printer on fire", "It is really on fire.")
	now = now.Add(5 * time.Minute)
	src := agOpenFrom(t, g, "dave@customer.example", "Office printer burning", "Smoke everywhere. Please escalate.")
	if !src.Escalated || src.Queue != "level2" || src.SLA.Escalation == nil {
		t.Fatalf("dave's ticket: escalated %v queue %q level 2 %+v", src.Escalated, src.Queue, src.SLA.Escalation)
	}
	due := src.SLA.Escalation.FirstResponseDue
	now = now.Add(25 * time.Minute)
	if _, err := g.pipeline.Act(context.Background(), src.ID, Action{Name: "merge", Value: dst.ID}); err != nil {
		t.Fatal(err)
	}
	d := g.ticket(dst.ID)
	if !d.Escalated || d.Queue != "level2" || d.SLA.Escalation == nil || !d.SLA.Escalation.FirstResponseDue.Equal(due) {
		t.Fatalf("%s after the merge: escalated %v queue %q level 2 %+v, want level 2's first response due %v",
			dst.ID, d.Escalated, d.Queue, d.SLA.Escalation, due)
	}
	before := len(g.relay.Mails())
	agSweep(t, g, sw, due.Add(time.Minute))
	alertsTo(t, g, before, "SLA breach: level 2 first response", "lev@example.com", "lou@example.com", "meg@example.com")

	now = due.Add(2 * time.Minute)
	before = len(g.relay.Mails())
	agReply(g, "lev@example.com", agSigned(t, agKey, rules.TokenReply, dst.ID, "lev@example.com"), d, "Level two here.")
	if n, m := len(agMailsTo(g, before, "alice@customer.example")), len(agMailsTo(g, before, "dave@customer.example")); n != 1 || m != 1 {
		t.Errorf("lev's answer on %s: alice got %d mails, dave %d, want 1 each; held %v", dst.ID, n, m, agEvents(g.ticket(dst.ID), "reply_held"))
	}
}

// TestMergeThatEscalatesTellsLevelTwo: dave's escalated ticket is merged
// into alice's, which ana (level 1) answered. Alice's ticket moves to
// level 2's queue, unassigned, on dave's level-2 clock; level 2's agents
// hear of it at once by a note, as of an agent's #escalate, instead of
// finding it at their SLA warning. The customers hear of nothing.
func TestMergeThatEscalatesTellsLevelTwo(t *testing.T) {
	g, _, _ := l2Desk(t)
	now := time.Date(2026, 11, 3, 10, 0, 0, 0, time.UTC)
	g.pipeline.Now = func() time.Time { return now }
	dst := agOpenFrom(t, g, "alice@customer.example", "Printer on fire", "It is really on fire.")
	agReply(g, "ana@example.com", agSigned(t, agKey, rules.TokenReply, dst.ID, "ana@example.com"), dst, "Which model is it?")
	now = now.Add(5 * time.Minute)
	src := agOpenFrom(t, g, "dave@customer.example", "Office printer burning", "Smoke everywhere. Please escalate.")
	if !src.Escalated || src.Queue != "level2" {
		t.Fatalf("dave's ticket: escalated %v queue %q", src.Escalated, src.Queue)
	}
	now = now.Add(25 * time.Minute)
	before := len(g.relay.Mails())
	if _, err := g.pipeline.Act(context.Background(), src.ID, Action{Name: "merge", Value: dst.ID}); err != nil {
		t.Fatal(err)
	}
	g.settle()
	if d := g.ticket(dst.ID); !d.Escalated || d.Queue != "level2" || d.Assignee != "" {
		t.Fatalf("%s after the merge: escalated %v queue %q assignee %q", dst.ID, d.Escalated, d.Queue, d.Assignee)
	}
	for _, addr := range []string{"lev@example.com", "lou@example.com"} {
		l := agMailsTo(g, before, addr)
		if len(l) != 1 {
			t.Errorf("%s (level 2) got %d mails of %s escalated by the merge, want 1", addr, len(l), dst.ID)
			continue
		}
		if got, want := agReplyTo(t, l[0]), agSigned(t, agKey, rules.TokenNote, dst.ID, addr); got != want {
			t.Errorf("%s's mail answers to %s, want their note address on %s, %s", addr, got, dst.ID, want)
		}
		if body := agBody(t, l[0].Data); !strings.Contains(body, src.ID) || !strings.Contains(body, "level2") {
			t.Errorf("%s's mail of the merge:\n%s", addr, body)
		}
	}
	if n := len(agMailsTo(g, before, "alice@customer.example")) + len(agMailsTo(g, before, "dave@customer.example")); n != 0 {
		t.Errorf("the customers got %d mails of the merge", n)
	}
}

// TestMergeIntoAnAssignedTicketTellsItsAssignee: ben merges dave's new
// ticket into alice's, which ana owns ("#merge" by mail). Ana hears of it
// at once by a note on her ticket: dave is one of its participants now,
// and her next reply goes to him too. Ben, who merged, and the customers
// get nothing of it.
func TestMergeIntoAnAssignedTicketTellsItsAssignee(t *testing.T) {
	g := startDesk(t)
	dst := agOpenFrom(t, g, "alice@customer.example", "Printer on fire", "It is really on fire.")
	agReply(g, "ana@example.com", agSigned(t, agKey, rules.TokenReply, dst.ID, "ana@example.com"), dst, "Which model is it?")
	src := agOpenFrom(t, g, "dave@customer.example", "Office printer burning", "Smoke everywhere.")
	before := len(g.relay.Mails())
	agReply(g, "ben@example.com", agSigned(t, agKey, rules.TokenReply, src.ID, "ben@example.com"), src, "#merge "+dst.ID)
	if s := g.ticket(src.ID); s.MergedInto != dst.ID {
		t.Fatalf("%s not merged into %s: %+v", src.ID, dst.ID, agEvents(s, "commands_refused"))
	}
	l := agMailsTo(g, before, "ana@example.com")
	if len(l) != 1 {
		t.Fatalf("ana, whose ticket %s took %s, got %d mails, want 1", dst.ID, src.ID, len(l))
	}
	if got, want := agReplyTo(t, l[0]), agSigned(t, agKey, rules.TokenNote, dst.ID, "ana@example.com"); got != want {
		t.Errorf("ana's mail answers to %s, want her note address on %s, %s", got, dst.ID, want)
	}
	if body := agBody(t, l[0].Data); !strings.Contains(body, src.ID+" merged into this ticket") || !strings.Contains(body, "Ben Ode") {
		t.Errorf("ana's mail of the merge:\n%s", body)
	}
	for _, addr := range []string{"ben@example.com", "alice@customer.example", "dave@customer.example"} {
		if n := len(agMailsTo(g, before, addr)); n != 0 {
			t.Errorf("%s got %d mails of the merge", addr, n)
		}
	}
}
