package desk

import (
	"bytes"
	"context"
	"encoding/base64"
	"strconv"
	"strings"
	"testing"
	"time"

	"ticketgate/rules"
	"ticketgate/store"
)

// notifyText is a customer's text long enough to tell a copy of it apart.
var notifyText = strings.Repeat("The label printer in room 4 prints every label twice since Monday. ", 20)

// notifyMail is a customer's first mail with notifyText and a file.
func notifyMail(from, subject string) []byte {
	return []byte("From: \"Alice Doe\" <" + from + ">\r\nTo: support@example.com\r\nSubject: " + subject + "\r\n" +
		"Message-ID: <" + subject[:4] + ".1@customer.example>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n" +
		"--b\r\nContent-Type: text/plain\r\n\r\n" + notifyText + "\r\n--b\r\nContent-Type: image/png\r\n" +
		"Content-Disposition: attachment; filename=labels.png\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
		base64.StdEncoding.EncodeToString([]byte("twice printed labels, a photo")) + "\r\n--b--\r\n")
}

// queuedNotifications returns the notifications in the outbox with their
// stored bytes.
func queuedNotifications(t *testing.T, g *gateway) (map[*store.OutMail][]byte, error) {
	t.Helper()
	out := map[*store.OutMail][]byte{}
	err := g.store.View(context.Background(), func(tx store.Tx) error {
		list, err := tx.OutboxList(0, 0)
		for _, m := range list {
			if m.Kind == "notify" {
				if out[m], err = tx.OutboxRaw(m.ID); err != nil {
					return err
				}
			}
		}
		return err
	})
	return out, err
}

// A notification keeps no copy of the customer's text or file in the
// outbox, and the agent still gets both, in a mail threaded to the ticket
// and dated when it was queued.
func TestNotificationRefersToTheStoredMessage(t *testing.T) {
	g := startDesk(t)
	g.relay.Down()
	queuedBy := time.Now()
	g.mustSend("alice@customer.example", []string{"support@example.com"}, notifyMail("alice@customer.example", "Label printer"))
	tk := g.onlyTicket()
	queued, err := queuedNotifications(t, g)
	if err != nil || len(queued) != 2 {
		t.Fatalf("notifications queued: %d %v", len(queued), err)
	}
	for m, raw := range queued {
		if m.Carries != "Labe.1@customer.example" {
			t.Errorf("notification to %v carries %q", m.To, m.Carries)
		}
		if bytes.Contains(raw, []byte("label printer in room 4")) || bytes.Contains(raw, []byte("twice printed labels")) ||
			bytes.Contains(raw, []byte(base64.StdEncoding.EncodeToString([]byte("twice printed labels, a photo")))) {
			t.Errorf("the outbox keeps the customer's text or file for %v:\n%s", m.To, raw)
		}
	}
	g.relay.Up(t)
	g.settle()
	for _, agent := range []string{"ana@example.com", "ben@example.com"} {
		m := agOne(t, g, 0, agent)
		body := agBody(t, m.Data)
		if !strings.Contains(strings.Join(strings.Fields(body), " "), strings.TrimSpace(notifyText)) || !strings.Contains(body, "Requester: Alice Doe <alice@customer.example>") {
			t.Errorf("%s: notification text:\n%s", agent, body)
		}
		if !bytes.Contains(m.Data, []byte("filename=labels.png")) || !bytes.Contains(m.Data, []byte(base64.StdEncoding.EncodeToString([]byte("twice printed labels, a photo")))) {
			t.Errorf("%s: the customer's file is not attached", agent)
		}
		h := header(t, m.Data)
		var threaded string
		g.store.View(context.Background(), func(tx store.Tx) error {
			threaded, err = tx.TicketByMessageID(h.Get("Message-Id"))
			return err
		})
		if threaded != tk.ID {
			t.Errorf("%s: Message-ID %s threads to %q, want %s (set when queued)", agent, h.Get("Message-Id"), threaded, tk.ID)
		}
		if date, err := h.Date(); err != nil || date.After(queuedBy.Add(2*time.Second)) || !strings.Contains(h.Get("In-Reply-To"), "Labe.1@customer.example") {
			t.Errorf("%s: Date %v (%v), In-Reply-To %q", agent, date, err, h.Get("In-Reply-To"))
		}
	}
}

// A customer erased before the notifications about their mail go out:
// the erasure drops them with the auto-reply, the agents get no mail
// naming the customer, and the ticket says why.
func TestNotificationOfErasedMessageIsDropped(t *testing.T) {
	g := startDesk(t)
	g.relay.Down()
	g.mustSend("alice@customer.example", []string{"support@example.com"}, notifyMail("alice@customer.example", "Label printer"))
	tk := g.onlyTicket()
	res, err := g.pipeline.Forget(context.Background(), Forget{Addr: "alice@customer.example", Pseudonym: Pseudonym([]byte("k"), "alice@customer.example")})
	if err != nil || res.Outbox != 3 {
		t.Fatalf("forget: %+v %v; want the auto-reply and both notifications dropped", res, err)
	}
	if queued, err := queuedNotifications(t, g); err != nil || len(queued) != 0 {
		t.Errorf("notifications still queued after the erasure: %d %v", len(queued), err)
	}
	g.relay.Up(t)
	g.settle()
	if n := len(g.relay.Mails()); n != 0 {
		t.Errorf("relay got %d mails after the erasure; first:\n%s", n, g.relay.Mails()[0].Data)
	}
	tk = g.ticket(tk.ID)
	dropped := 0
	for _, e := range agEvents(tk, "mail_suppressed") {
		if strings.HasPrefix(e.Detail, "notify mail to ") && strings.HasSuffix(e.Detail, "not sent: the message it carries is gone or was erased") {
			dropped++
		}
	}
	if dropped != 2 {
		t.Errorf("events: %+v", tk.Events)
	}
}

// A ticket merged into another before its notifications go out: they
// still carry the customer's text and file, about the ticket they were
// queued for.
func TestNotificationOfMergedTicketCarriesTheText(t *testing.T) {
	g := startDesk(t)
	dst := agOpenFrom(t, g, "bob@customer.example", "Printer on fire", "It is really on fire.")
	before := len(g.relay.Mails())
	g.relay.Down()
	g.mustSend("alice@customer.example", []string{"support@example.com"}, notifyMail("alice@customer.example", "Label printer"))
	var src *store.Ticket
	for _, x := range g.tickets() {
		if x.ID != dst.ID {
			src = x
		}
	}
	reply := agSigned(t, agKey, rules.TokenReply, src.ID, "ana@example.com")
	g.mustSend("ana@example.com", []string{reply}, msg("ana@example.com", reply, "Re: ["+src.ID+"] Label printer", "#merge "+dst.ID))
	if s := g.ticket(src.ID); s.MergedInto != dst.ID {
		t.Fatalf("not merged: %+v", s)
	}
	g.relay.Up(t)
	g.settle()
	for _, agent := range []string{"ana@example.com", "ben@example.com"} {
		m := agOne(t, g, before, agent)
		body := strings.Join(strings.Fields(agBody(t, m.Data)), " ")
		if !strings.Contains(body, strings.TrimSpace(notifyText)) || !strings.Contains(body, "New ticket "+src.ID) ||
			!bytes.Contains(m.Data, []byte("filename=labels.png")) {
			t.Errorf("%s: notification after the merge:\n%s", agent, m.Data)
		}
	}
}

// A customer's mail in short plain ASCII lines reaches the agents as it
// is (7bit), line for line, with the writer and the note address on lines
// of their own: no line of the built-in notification is too long to go
// unencoded, a long address without a name included.
func TestPlainNotificationIsSentAsItIs(t *testing.T) {
	g := startDesk(t)
	text := "Hello,\r\n\r\nthe label printer in room 4 prints every label twice.\r\nIt started on Monday.\r\n\r\nAlice"
	for i, c := range []struct{ from, writer string }{
		{"\"Alice Doe\" <alice@customer.example>", "From:      Alice Doe <alice@customer.example>\r\n"},
		{"user.18ee9ff47e083b22.4@customer946.example", "From:      user.18ee9ff47e083b22.4@customer946.example\r\n"},
	} {
		before := len(g.relay.Mails())
		g.mustSend("x@customer.example", []string{"support@example.com"}, []byte("From: "+c.from+"\r\n"+
			"To: support@example.com\r\nSubject: Labels twice\r\nMessage-ID: <plain."+strconv.Itoa(i)+"@customer.example>\r\n\r\n"+text+"\r\n"))
		g.settle()
		for _, agent := range []string{"ana@example.com", "ben@example.com"} {
			m := agOne(t, g, before, agent)
			h := header(t, m.Data)
			if cte := h.Get("Content-Transfer-Encoding"); cte != "7bit" {
				t.Errorf("%s, to %s: the notification is sent %s", c.from, agent, cte)
			}
			if !bytes.Contains(m.Data, []byte(text)) || !bytes.Contains(m.Data, []byte("\r\n"+c.writer)) {
				t.Errorf("%s, to %s: the customer's lines or the writer are not in the mail as written:\n%s", c.from, agent, m.Data)
			}
			if !bytes.Contains(m.Data, []byte("\r\nsupport+")) || !bytes.Contains(m.Data, []byte("@example.com\r\nfor an internal note")) {
				t.Errorf("%s, to %s: no note address on a line of its own:\n%s", c.from, agent, m.Data)
			}
		}
	}
}

// TestNotificationOfATicketOnHoldSaysItsResolutionClockStands: the
// customer of a ticket on hold writes weeks later; the assignee's
// notification does not give the resolution due time the pause has long
// overtaken, as if the ticket were overdue.
func TestNotificationOfATicketOnHoldSaysItsResolutionClockStands(t *testing.T) {
	g := startDesk(t)
	agPolicy(t, g)
	now := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC) // a Monday
	g.pipeline.Now = func() time.Time { return now }
	tk := agOpen(t, g, "Printer on fire", "It is really on fire.")
	now = now.Add(time.Hour)
	agReply(g, "ana@example.com", agSigned(t, agKey, rules.TokenReply, tk.ID, "ana@example.com"), tk,
		"#status on_hold\nThe spare part is ordered; we write again when it is here.")
	now = now.Add(21 * 24 * time.Hour)
	before := len(g.relay.Mails())
	g.mustSend("alice@customer.example", []string{"support@example.com"},
		msg("alice@customer.example", "support@example.com", "Re: ["+tk.ID+"] Printer on fire", "Any news on the part?"))
	g.settle()
	if st := g.ticket(tk.ID).Status; st != rules.StatusOnHold {
		t.Fatalf("status %s, want on_hold", st)
	}
	body := agBody(t, agOne(t, g, before, "ana@example.com").Data)
	line := ""
	for _, l := range strings.Split(body, "\n") {
		if strings.HasPrefix(l, "SLA due:") {
			line = l
		}
	}
	if !strings.Contains(line, "paused") || strings.Contains(line, "2026-11-09") {
		t.Errorf("the notification says %q, want the resolution clock paused, not a due time weeks past", line)
	}
}
