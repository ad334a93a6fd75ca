package desk

import (
	"context"
	"mime"
	"strings"
	"testing"
	"time"

	"ticketgate/rules"
)

// TestReopenRestartsTheSLA: a ticket resolved and then reopened by the
// customer's reply is under its SLA again: sweeping past the resolution
// target raises the breach (it used to stay silent, the resolution kept).
func TestReopenRestartsTheSLA(t *testing.T) {
	g := startDesk(t)
	sw := agPolicy(t, g)
	tk := agOpen(t, g, "Printer on fire", "It is really on fire.")
	agReply(g, "ana@example.com", agSigned(t, agKey, rules.TokenReply, tk.ID, "ana@example.com"), tk, "#status resolved\nReplace the fuse.")
	if now := g.ticket(tk.ID); now.Status != rules.StatusResolved || now.SLA == nil || now.SLA.ResolvedAt.IsZero() {
		t.Fatalf("after #status resolved: status %s sla %+v", now.Status, now.SLA)
	}
	g.mustSend("alice@customer.example", []string{"support@example.com"},
		msg("alice@customer.example", "support@example.com", "Re: ["+tk.ID+"] Printer on fire", "Still broken, sorry."))
	now := g.ticket(tk.ID)
	if now.Status != rules.StatusOpen || !now.SLA.ResolvedAt.IsZero() {
		t.Fatalf("after the customer's reply: status %s, SLA resolved at %v", now.Status, now.SLA.ResolvedAt)
	}
	g.settle()
	before := len(g.relay.Mails())
	agSweep(t, g, sw, now.SLA.ResolutionDue.Add(time.Hour))
	now = g.ticket(tk.ID)
	if ev := agEvents(now, "sla_breach"); len(ev) != 1 || !strings.Contains(ev[0].Detail, "resolution") {
		t.Fatalf("no resolution breach after reopening: %+v", agEvents(now, "sla_breach"))
	}
	if l := agMailsTo(g, before, "ana@example.com"); len(l) != 1 || !strings.Contains(decodedSubject(t, l[0].Data), "SLA breach") {
		t.Errorf("the assignee got %d mails, want the SLA breach alert", len(l))
	}
}

// TestRatingAfterTheReopenWindowLandsOnItsTicket: a rating that answers the
// survey, by the survey's Message-ID alone or by the ticket token, lands on
// the closed ticket however long ago it closed: no new ticket, no reopening.
func TestRatingAfterTheReopenWindowLandsOnItsTicket(t *testing.T) {
	for _, by := range []string{"token", "in-reply-to"} {
		t.Run(by, func(t *testing.T) {
			g := startDesk(t)
			agPolicy(t, g)
			tk := agOpen(t, g, "Printer on fire", "It is really on fire.")
			before := len(g.relay.Mails())
			agReply(g, "ana@example.com", agSigned(t, agKey, rules.TokenReply, tk.ID, "ana@example.com"), tk, "#close\nThe fuse was the culprit.")
			var surveyID string
			for _, m := range agMailsTo(g, before, "alice@customer.example") {
				if strings.Contains(agBody(t, m.Data), "How satisfied") {
					surveyID = header(t, m.Data).Get("Message-Id")
				}
			}
			if surveyID == "" {
				t.Fatal("no survey was sent")
			}
			later := time.Now().Add(30 * 24 * time.Hour)
			g.pipeline.Now = func() time.Time { return later }
			subject, extra := "Re: ["+tk.ID+"] How did we do? Printer on fire", []string{}
			if by == "in-reply-to" {
				subject, extra = "Re: How did we do?", []string{"In-Reply-To: " + surveyID}
			}
			g.mustSend("alice@customer.example", []string{"support@example.com"},
				msg("alice@customer.example", "support@example.com", subject, "5 - great help", extra...))
			if n := len(g.tickets()); n != 1 {
				t.Fatalf("%d tickets after the rating, want 1: the rating opened a new ticket", n)
			}
			now := g.ticket(tk.ID)
			if now.Satisfaction == nil || now.Satisfaction.Score != 5 || now.Status != rules.StatusClosed {
				t.Errorf("rating %+v, status %s; want 5 on the closed ticket", now.Satisfaction, now.Status)
			}
		})
	}
}

// TestBareStatusChangesTellTheCustomer: a status the policy marks
// customer-visible mails the customer once, whether an agent sets it with
// text, without text, or an operator sets it; on hold (not marked) mails
// nothing. The resolution with text is one mail with one greeting.
func TestBareStatusChangesTellTheCustomer(t *testing.T) {
	g := startDesk(t)
	agPolicy(t, g)
	cases := []struct {
		name, text string // agent mail; "" for an operator's status action
		status     rules.Status
		mails      int
		body       string
	}{
		{"bare #status resolved", "#status resolved", rules.StatusResolved, 1, "as resolved"},
		{"#status resolved with text", "#status resolved\nReplace the fuse.", rules.StatusResolved, 1, "Replace the fuse."},
		{"bare #status on_hold", "#status on_hold", rules.StatusOnHold, 0, ""},
		{"operator resolves", "", rules.StatusResolved, 1, "as resolved"},
	}
	for _, c := range cases {
		tk := agOpen(t, g, "Printer on fire "+c.name, "It is really on fire.")
		before := len(g.relay.Mails())
		if c.text != "" {
			agReply(g, "ana@example.com", agSigned(t, agKey, rules.TokenReply, tk.ID, "ana@example.com"), tk, c.text)
		} else {
			if _, err := g.pipeline.Act(context.Background(), tk.ID, Action{Name: "status", Value: string(c.status), Actor: "meg@example.com"}); err != nil {
				t.Fatal(err)
			}
			g.settle()
		}
		got := agMailsTo(g, before, "alice@customer.example")
		if now := g.ticket(tk.ID); now.Status != c.status {
			t.Errorf("%s: status %s", c.name, now.Status)
		}
		if len(got) != c.mails {
			t.Errorf("%s: the customer got %d mails, want %d", c.name, len(got), c.mails)
			continue
		}
		if c.mails == 0 {
			continue
		}
		body := agBody(t, got[0].Data)
		if !strings.Contains(body, c.body) || strings.Count(body, "Hello") != 1 || strings.Count(body, "Example Support") != 1 {
			t.Errorf("%s: notice is not one mail with one greeting and one sign-off:\n%s", c.name, body)
		}
	}
}

// TestReplyThatOpensATicketIsTheNoticeOfIt: with open among the statuses
// the customer is told of, an agent's plain reply to a new ticket (which
// opens it) reaches the customer as one mail, the notice with the agent's
// text, not as the reply and a second mail saying the ticket is open.
func TestReplyThatOpensATicketIsTheNoticeOfIt(t *testing.T) {
	g := startDesk(t)
	sw := agPolicy(t, g)
	sw.Policy.Notify = map[rules.Status]bool{rules.StatusOpen: true, rules.StatusResolved: true, rules.StatusClosed: true}
	tk := agOpen(t, g, "Printer on fire", "It is really on fire.")
	before := len(g.relay.Mails())
	agReply(g, "ana@example.com", agSigned(t, agKey, rules.TokenReply, tk.ID, "ana@example.com"), tk, "Unplug it first.")
	if now := g.ticket(tk.ID); now.Status != rules.StatusOpen {
		t.Fatalf("status %s, want open", now.Status)
	}
	got := agMailsTo(g, before, "alice@customer.example")
	if len(got) != 1 {
		t.Fatalf("the customer got %d mails for one reply, want 1", len(got))
	}
	if body := agBody(t, got[0].Data); !strings.Contains(body, "Unplug it first.") || !strings.Contains(body, "is now open") || strings.Count(body, "Hello") != 1 {
		t.Errorf("the reply is not the notice of the open ticket:\n%s", body)
	}
}

// TestCriticalMailAlertsTheManagers: a [Critical] mail to tech@ reaches the
// managers at once, not only tech's agents.
func TestCriticalMailAlertsTheManagers(t *testing.T) {
	g := startDesk(t)
	before := len(g.relay.Mails())
	g.mustSend("boss@bigcorp.example", []string{"tech@example.com"},
		msg("boss@bigcorp.example", "tech@example.com", "[Critical] Database down", "All of it."))
	g.settle()
	tk := g.onlyTicket()
	if tk.Priority != rules.PriorityCritical || tk.Queue != "tech" {
		t.Fatalf("priority %s queue %s", tk.Priority, tk.Queue)
	}
	for _, agent := range []string{"tom@example.com", "ben@example.com", "meg@example.com"} {
		if n := len(agMailsTo(g, before, agent)); n != 1 {
			t.Errorf("%s got %d notifications, want 1", agent, n)
		}
	}
	if n := len(agMailsTo(g, before, "ana@example.com")); n != 0 {
		t.Errorf("ana (support only, no manager) got %d notifications", n)
	}
}

func decodedSubject(t *testing.T, raw []byte) string {
	t.Helper()
	s, err := new(mime.WordDecoder).DecodeHeader(header(t, raw).Get("Subject"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestWaitingNoticeAsksForTheAnswer: with waiting among the statuses the
// customer is told of, the notice of a ticket set waiting asks for their
// answer; it said "waiting for your answer" and then "You do not need to
// do anything". On hold still tells them they need do nothing.
func TestWaitingNoticeAsksForTheAnswer(t *testing.T) {
	g := startDesk(t)
	sw := agPolicy(t, g)
	sw.Policy.Notify = map[rules.Status]bool{rules.StatusWaiting: true, rules.StatusOnHold: true}
	for _, c := range []struct {
		text      string
		want, not string
	}{
		{"#status waiting", "please reply to this mail", "You do not need to do anything"},
		{"#status waiting\nWhich model is it?", "please reply to this mail", "You do not need to do anything"},
		{"#status on_hold", "You do not need to do anything", "please reply to this mail"},
	} {
		tk := agOpen(t, g, "Printer on fire", "It is really on fire.")
		before := len(g.relay.Mails())
		agReply(g, "ana@example.com", agSigned(t, agKey, rules.TokenReply, tk.ID, "ana@example.com"), tk, c.text)
		got := agMailsTo(g, before, "alice@customer.example")
		if len(got) != 1 {
			t.Fatalf("%q: the customer got %d mails, want 1", c.text, len(got))
		}
		body := agBody(t, got[0].Data)
		if !strings.Contains(body, c.want) || strings.Contains(body, c.not) {
			t.Errorf("%q: the notice does not say %q, or says %q:\n%s", c.text, c.want, c.not, body)
		}
	}
}
