package desk

import (
	"errors"
	"fmt"
	"net"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"ticketgate/mailout"
	"ticketgate/mailout/relaytest"
)

// The outbox's relay client against a real Postfix as the smarthost
// (Postfix offers PIPELINING, so each transaction goes out pipelined):
// over one session, a mail reaches its recipients once, whole; a
// recipient Postfix refuses is refused alone, with Postfix's code; a
// mail whose every recipient is refused (Postfix then answers DATA with
// 554 and keeps the transaction open) is not handed over, and the next
// mail still goes. Postfix passes what it took to a recording server.
func TestRelayThroughPostfix(t *testing.T) {
	dest := relaytest.Start(t)
	_, port, _ := net.SplitHostPort(dest.Addr)
	pf := startPostfixConf(t, postfixConf{
		Transport:        "smtp:[127.0.0.1]:" + port,
		RcptRestrictions: "check_recipient_access inline:{ gone@example.com=REJECT, { full@example.com = 452 4.2.2 mailbox full } }",
	})
	r := &mailout.Relay{Addr: pf.SMTPAddr, TLS: "none", Hostname: "gateway.test", Timeout: 10 * time.Second}
	defer r.Close()

	var got []string
	for _, subject := range []string{"a@example.com", "gone@example.com+b@example.com", "gone@example.com+full@example.com", "c@example.com+d@example.com"} {
		handed := "no"
		raw := "From: desk@gateway.test\r\nTo: customer@example.com\r\nSubject: " + subject + "\r\n\r\nHello.\r\n.dotted line\r\n"
		refused, err := r.Send("desk@gateway.test", strings.Split(subject, "+"), []byte(raw), func(refused []mailout.RcptError) {
			handed = fmt.Sprintf("yes, %d refused", len(refused))
		})
		var names []string
		for _, re := range refused {
			var se *smtp.SMTPError
			if !errors.As(re.Err, &se) {
				t.Fatalf("refusal of %s is %v, not an SMTP reply", re.Rcpt, re.Err)
			}
			names = append(names, fmt.Sprintf("%s %d", re.Rcpt, se.Code))
		}
		got = append(got, fmt.Sprintf("%s: refused %v, err %v, handed over %s", subject, names, err, handed))
	}
	want := []string{
		"a@example.com: refused [], err <nil>, handed over yes, 0 refused",
		"gone@example.com+b@example.com: refused [gone@example.com 554], err <nil>, handed over yes, 1 refused",
		"gone@example.com+full@example.com: refused [gone@example.com 554 full@example.com 452], err <nil>, handed over no",
		"c@example.com+d@example.com: refused [], err <nil>, handed over yes, 0 refused",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("sent through Postfix:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	mails := dest.WaitFor(3, 30*time.Second)
	var to []string
	for _, m := range mails {
		rcpts := append([]string(nil), m.To...)
		sort.Strings(rcpts)
		to = append(to, strings.Join(rcpts, "+"))
		if !strings.Contains(string(m.Data), "\r\n.dotted line\r\n") {
			t.Errorf("mail to %v arrived as %q", m.To, m.Data)
		}
	}
	sort.Strings(to)
	if strings.Join(to, ",") != "a@example.com,b@example.com,c@example.com+d@example.com" {
		t.Errorf("Postfix passed on mails to %v; want a, b, c+d\nqueue:\n%s", to, pf.Queue(t))
	}
	// Postfix's account of the sessions: the harness's readiness check,
	// then one session with four mails (seven recipients, four taken,
	// four DATA, three taken), one RSET (after the mail every recipient
	// was refused) and the one EHLO.
	r.Close() // QUIT
	var sessions []string
	for deadline := time.Now().Add(10 * time.Second); len(sessions) < 2 && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		sessions = nil
		for _, line := range strings.Split(pf.Log(t), "\n") {
			if _, counts, ok := strings.Cut(line, "]: disconnect from localhost[127.0.0.1] "); ok {
				sessions = append(sessions, counts)
			}
		}
	}
	wantSessions := []string{"ehlo=1 quit=1 commands=2", "ehlo=1 mail=4 rcpt=4/7 data=3/4 rset=1 quit=1 commands=14/18"}
	if strings.Join(sessions, "\n") != strings.Join(wantSessions, "\n") {
		t.Errorf("Postfix's sessions:\n%s\nwant:\n%s", strings.Join(sessions, "\n"), strings.Join(wantSessions, "\n"))
	}
	if log := pf.Log(t); strings.Contains(log, "improper command pipelining") {
		t.Errorf("Postfix logged improper command pipelining:\n%s", log)
	}
}
