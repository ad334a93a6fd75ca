package mailout

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"ticketgate/mailout/relaytest"
)

// refusingRelay is a relay that will not serve us: it answers with
// greeting, and when that is a 220, answers EHLO with ehlo. It returns
// how many connections it took.
func refusingRelay(t *testing.T, greeting, ehlo string) (addr string, conns func() int64) {
	t.Helper()
	return scriptedRelay(t, greeting, func() func(net.Conn, *bufio.Reader, string) bool {
		return func(c net.Conn, _ *bufio.Reader, line string) bool {
			switch strings.ToUpper(strings.Fields(line + " x")[0]) {
			case "EHLO", "HELO":
				io.WriteString(c, ehlo+"\r\n")
			default:
				io.WriteString(c, "503 5.5.1 say hello first\r\n")
			}
			return true
		}
	})
}

// TestRelayThatRefusesUsDefersTheMail: a relay that will not talk to the
// gateway (a 5xx greeting or EHLO answer, as a smarthost gives a client
// outside its mynetworks) says nothing about the mail: every mail due
// stays in the outbox for the next attempt, as Postfix defers it, and is
// sent once the relay serves again. It was failed for good, for every
// recipient, in whichever TLS mode did not read the greeting itself.
func TestRelayThatRefusesUsDefersTheMail(t *testing.T) {
	for _, tc := range []struct{ name, tls, greeting, ehlo string }{
		{"554 greeting", "none", "554 5.7.1 relay.example: no SMTP service for you", ""},
		{"550 to EHLO", "none", "220 relay.example ESMTP", "550 5.7.1 client host rejected: access denied"},
		{"554 greeting, starttls", "starttls", "554 5.7.1 relay.example: no SMTP service for you", ""},
		{"550 to EHLO, starttls", "starttls", "220 relay.example ESMTP", "550 5.7.1 client host rejected: access denied"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newOutboxEnv(t)
			addr, conns := refusingRelay(t, tc.greeting, tc.ehlo)
			e.w = NewWorker(e.st, &Relay{Addr: addr, TLS: tc.tls, Hostname: "t.example", Timeout: 5 * time.Second},
				slog.New(slog.NewTextHandler(io.Discard, nil)))
			id := e.queue("HS-000001", []string{"a@x.example", "b@x.example"}, "auto-reply")
			e.w.RunOnce(context.Background())
			if conns() == 0 {
				t.Fatal("the worker never tried the relay")
			}
			left := e.outbox()
			if len(left) != 1 || left[0].ID != id || strings.Join(left[0].Pending(), ",") != "a@x.example,b@x.example" {
				t.Fatalf("outbox after the relay refused us: %+v; want the mail still queued for a and b", left)
			}

			// The relay serves again (its mynetworks fixed): the mail goes.
			e.w = NewWorker(e.st, &Relay{Addr: e.relay.Addr, TLS: "none", Hostname: "t.example", Timeout: 5 * time.Second},
				slog.New(slog.NewTextHandler(io.Discard, nil)))
			e.w.Now = func() time.Time { return time.Now().Add(time.Hour) } // past the retry's backoff
			e.w.RunOnce(context.Background())
			if got := e.relay.Mails(); len(got) != 1 || strings.Join(got[0].To, ",") != "a@x.example,b@x.example" {
				t.Fatalf("relay got %v once it served; want the mail to a and b", got)
			}
		})
	}
}

// TestRelayRequiringTLSDefersTheMail: a relay that takes mail only over
// TLS (Postfix with smtpd_tls_security_level = encrypt) answers MAIL FROM
// on a plain session "530 5.7.0 Must issue a STARTTLS command first". That
// is about the session, not the mail: the mail waits in the outbox as a
// TLS failure (status says "relay: TLS FAILED"), and goes once [outbound]
// tls is set to starttls. It was failed for good, for every recipient,
// with the pipelining relay and without.
func TestRelayRequiringTLSDefersTheMail(t *testing.T) {
	for _, pipelining := range []bool{true, false} {
		t.Run(map[bool]string{true: "pipelining", false: "one command at a time"}[pipelining], func(t *testing.T) {
			e := newOutboxEnv(t)
			relay := relaytest.StartTLS(t)
			relay.RequireTLS()
			if !pipelining {
				relay.WithoutPipelining()
			}
			e.w = NewWorker(e.st, &Relay{Addr: relay.Addr, TLS: "none", Hostname: "t.example", Timeout: 5 * time.Second},
				slog.New(slog.NewTextHandler(io.Discard, nil)))
			id := e.queue("HS-000001", []string{"a@x.example", "b@x.example"}, "auto-reply")
			e.w.RunOnce(context.Background())
			left := e.outbox()
			if len(left) != 1 || left[0].ID != id || strings.Join(left[0].Pending(), ",") != "a@x.example,b@x.example" {
				t.Fatalf("outbox after the relay asked for STARTTLS: %+v; want the mail still queued for a and b", left)
			}
			if !IsTLSErrorText(left[0].LastErr) {
				t.Errorf("last error %q; want it told as a TLS failure", left[0].LastErr)
			}

			// [outbound] tls = "starttls": the mail goes, over TLS.
			e.w = NewWorker(e.st, &Relay{Addr: relay.Addr, TLS: "starttls", Insecure: true, Hostname: "t.example", Timeout: 5 * time.Second},
				slog.New(slog.NewTextHandler(io.Discard, nil)))
			e.w.Now = func() time.Time { return time.Now().Add(time.Hour) } // past the retry's backoff
			e.w.RunOnce(context.Background())
			if got := relay.Mails(); len(got) != 1 || !got[0].TLS || strings.Join(got[0].To, ",") != "a@x.example,b@x.example" {
				t.Fatalf("relay got %+v once TLS was on; want the mail to a and b over TLS", got)
			}
		})
	}
}
