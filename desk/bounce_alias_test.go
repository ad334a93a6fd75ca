package desk

import (
	"context"
	"strings"
	"testing"
	"time"

	"ticketgate/store"
)

// The customer's domain forwards alice@customer.example to a mailbox of
// another name that no longer exists: Postfix's report names that one as
// the final recipient and the address we mailed as the original one. It
// is alice@customer.example that bounces: the ticket says so, and her
// automatic mail is held.
func TestBounceOfAForwardedAddressHoldsTheAddressMailed(t *testing.T) {
	g := startGateway(t)
	g.pipeline.Desk.VERPKeys = [][]byte{[]byte("0123456789abcdef0123456789abcdef")}
	g.mustSend("alice@customer.example", []string{"support@example.com"}, msg("alice@customer.example", "support@example.com", "question", "x"))
	mails := g.relay.WaitFor(1, 5*time.Second)
	g.settle()
	tk := g.onlyTicket()
	dsn := "From: MAILER-DAEMON@mx.customer.example (Mail Delivery System)\r\nTo: " + mails[0].From + "\r\n" +
		"Subject: Undelivered Mail Returned to Sender\r\nMessage-ID: <dsn-alias@mx.customer.example>\r\nAuto-Submitted: auto-replied\r\n" +
		"MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=RR\r\n\r\n" +
		"--RR\r\nContent-Description: Notification\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n" +
		"This is the mail system at host mx.customer.example.\r\n\r\nI'm sorry to have to inform you that your message could not\r\n" +
		"be delivered to one or more recipients.\r\n\r\n" +
		"<alice.old@mailhost.customer.example> (expanded from <alice@customer.example>): unknown user:\r\n    \"alice.old\"\r\n\r\n" +
		"--RR\r\nContent-Description: Delivery report\r\nContent-Type: message/delivery-status\r\n\r\n" +
		"Reporting-MTA: dns; mx.customer.example\r\nX-Postfix-Queue-ID: 4ABC123\r\nX-Postfix-Sender: rfc822; " + mails[0].From + "\r\n\r\n" +
		"Final-Recipient: rfc822; alice.old@mailhost.customer.example\r\nOriginal-Recipient: rfc822;alice@customer.example\r\n" +
		"Action: failed\r\nStatus: 5.1.1\r\nDiagnostic-Code: X-Postfix; unknown user: \"alice.old\"\r\n" +
		"--RR--\r\n"
	g.mustSend("", []string{mails[0].From}, []byte(dsn))
	e := eventOf(g.ticket(tk.ID), "delivery_failed")
	if e == nil || !strings.Contains(e.Detail, "delivery to alice@customer.example") || strings.Contains(e.Detail, "not held") {
		t.Errorf("the ticket does not say the mail to alice@customer.example bounced: %+v", e)
	}
	if !g.bouncing("alice@customer.example") {
		t.Error("alice@customer.example, whose mail bounced, is not held")
	}
	g.mustSend("alice@customer.example", []string{"support@example.com"}, msg("alice@customer.example", "support@example.com", "another question", "y"))
	g.settle()
	if n := len(agMailsTo(g, 0, "alice@customer.example")); n != 1 {
		t.Errorf("alice@customer.example got %d automatic mails, want 1: the second went to an address that bounces", n)
	}
}

// Automatic mail queued to a customer before a bounce of earlier mail to
// them came back (the relay was down meanwhile) is held when it is about
// to be sent, as mail queued after it is, with a mail_suppressed event on
// its ticket; it went to the address that bounces anyway.
func TestBounceHoldsAutomaticMailQueuedBeforeIt(t *testing.T) {
	g := startGateway(t)
	g.pipeline.Desk.VERPKeys = [][]byte{[]byte("0123456789abcdef0123456789abcdef")}
	g.mustSend("alice@customer.example", []string{"support@example.com"}, msg("alice@customer.example", "support@example.com", "question", "x"))
	mails := g.relay.WaitFor(1, 5*time.Second)
	g.settle()
	g.relay.Down()
	g.mustSend("alice@customer.example", []string{"support@example.com"}, msg("alice@customer.example", "support@example.com", "another question", "y"))
	var second string
	for _, tk := range g.tickets() {
		if tk.Subject == "another question" {
			second = tk.ID
		}
	}
	dsn := "From: MAILER-DAEMON@mx.customer.example (Mail Delivery System)\r\nTo: " + mails[0].From + "\r\n" +
		"Subject: Undelivered Mail Returned to Sender\r\nMessage-ID: <dsn-queued@mx.customer.example>\r\nAuto-Submitted: auto-replied\r\n" +
		"MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=RR\r\n\r\n" +
		"--RR\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nYour message could not be delivered.\r\n\r\n" +
		"--RR\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.customer.example\r\n\r\n" +
		"Final-Recipient: rfc822; alice@customer.example\r\nAction: failed\r\nStatus: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 user unknown\r\n" +
		"--RR--\r\n"
	g.mustSend("", []string{mails[0].From}, []byte(dsn))
	if !g.bouncing("alice@customer.example") {
		t.Fatal("alice@customer.example, whose mail bounced, is not held")
	}
	var queued int
	g.store.View(context.Background(), func(tx store.Tx) error {
		all, err := tx.OutboxList(0, 0)
		queued = len(all)
		return err
	})
	if queued != 1 {
		t.Fatalf("%d mails queued while the relay is down, want the second auto-reply", queued)
	}
	g.relay.Up(t)
	g.settle()
	time.Sleep(200 * time.Millisecond) // a mail sent is recorded by the relay a moment after
	if n := len(agMailsTo(g, 0, "alice@customer.example")); n != 1 {
		t.Errorf("alice@customer.example got %d automatic mails, want 1: the auto-reply queued before the bounce went to an address that bounces", n)
	}
	e := eventOf(g.ticket(second), "mail_suppressed")
	if e == nil || !strings.Contains(e.Detail, "alice@customer.example is bouncing") {
		t.Errorf("%s does not say its auto-reply was held: %+v", second, e)
	}
}
