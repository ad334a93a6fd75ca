package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-smtp"
)

// TestMetricsCountMailSentOverSMTP sends mail over SMTP to a running serve
// and reads /metrics: the counters and histograms a dashboard plots moved
// by what was sent, and the JSON log has one line per message without its
// body.
func TestMetricsCountMailSentOverSMTP(t *testing.T) {
	e := newEnv(t, true)
	e.opsConfig("", "[log]\nformat = \"json\"\nlevel = \"info\"\n")
	s := e.serve()
	before := e.scrape()
	for name := range before {
		if !strings.HasPrefix(name, "ticketgate_") {
			t.Errorf("metric family %s is not named ticketgate_…", name)
		}
	}
	if before[`ticketgate_tickets{status="new"}`] != 0 || before["ticketgate_outbox_depth"] != 0 {
		t.Fatalf("fresh database: tickets/outbox gauges %v", before)
	}

	c, err := dialSender(e.smtp)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		from := fmt.Sprintf("mia%d@customer.example", i)
		if err := c.send(from, "support@example.com", message(from, "support@example.com", "Printer", fmt.Sprintf("metrics-%d@customer.example", i), "the secret body text")); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
	}
	if err := c.c.Mail("mia@customer.example", nil); err != nil {
		t.Fatal(err)
	}
	if err := c.c.Rcpt("nobody@example.com", nil); err == nil || !strings.Contains(err.Error(), "550") {
		t.Fatalf("RCPT to an unknown address: %v, want 550", err)
	}
	c.c.Quit()
	e.relay.WaitFor(3, 10*time.Second)

	e.waitMetric(`ticketgate_deliveries_total{outcome="sent"}`, 3)
	after := e.scrape()
	for deadline := time.Now().Add(10 * time.Second); after["ticketgate_outbox_depth"] != 0 && time.Now().Before(deadline); after = e.scrape() {
		time.Sleep(20 * time.Millisecond) // the relay answered; the outbox commit follows
	}
	moved := map[string]float64{
		`ticketgate_messages_received_total{outcome="new",route="support@example.com",source="smtp"}`: 3,
		`ticketgate_smtp_sessions_total{proto="smtp"}`:                                                1,
		`ticketgate_smtp_refusals_total{code="550",proto="smtp",stage="rcpt"}`:                        1,
		`ticketgate_ingest_duration_seconds_count{proto="smtp"}`:                                      3,
	}
	for series, v := range moved {
		if got := after[series] - before[series]; got != v {
			t.Errorf("%s moved by %v, want %v", series, got, v)
		}
	}
	for series, v := range map[string]float64{`ticketgate_tickets{status="new"}`: 3, "ticketgate_outbox_depth": 0} {
		if after[series] != v {
			t.Errorf("%s = %v, want %v", series, after[series], v)
		}
	}
	// Three messages sent one after the other: three commits at least.
	if n := after[`ticketgate_store_commit_duration_seconds_count{kind="batch"}`]; n < 3 {
		t.Errorf("store commit histogram counted %v commits, want at least 3", n)
	}
	if after[`ticketgate_ingest_duration_seconds_sum{proto="smtp"}`] <= 0 {
		t.Error("ingest latency sum is zero")
	}

	if code := s.stop(t); code != 0 {
		t.Fatalf("serve exit %d", code)
	}
	log := s.stderr.String()
	if strings.Contains(log, "secret body text") {
		t.Error("the log holds a message body")
	}
	var lines int
	for _, rec := range jsonLines(t, log) {
		if rec["msg"] != "message" {
			continue
		}
		lines++
		for _, k := range []string{"ticket", "msgid", "route", "outcome", "duration"} {
			if v, ok := rec[k]; !ok || v == "" {
				t.Errorf("message log line without %s: %v", k, rec)
			}
		}
		if rec["route"] != "support@example.com" || rec["outcome"] != "new" {
			t.Errorf("message log line: %v", rec)
		}
	}
	if lines != 3 {
		t.Errorf("%d message log lines for 3 messages:\n%s", lines, log)
	}
}

// TestMetricsCountIMAPPollsAndErrors: a mailbox that answers counts polls
// and its message under source imap; one whose password is wrong counts
// errors.
func TestMetricsCountIMAPPollsAndErrors(t *testing.T) {
	addr, user := startIMAP(t)
	raw := message("alice@customer.example", "support@example.com", "By IMAP", "imap-metrics@customer.example", "Hi.")
	if _, err := user.Append("INBOX", bytes.NewReader(raw), &imap.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, true)
	e.addIMAP("good-box", addr)
	e.addIMAP("bad-box", addr)
	if err := os.WriteFile(filepath.Join(e.dir, "bad-box.password"), []byte("wrong\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e.serve()
	e.waitMetric(`ticketgate_imap_polls_total{mailbox="good-box"}`, 1)
	e.waitMetric(`ticketgate_imap_errors_total{mailbox="bad-box"}`, 1)
	m := e.waitMetric(`ticketgate_messages_received_total{outcome="new",route="support@example.com",source="imap"}`, 1)
	if m[`ticketgate_imap_errors_total{mailbox="good-box"}`] != 0 || m[`ticketgate_imap_polls_total{mailbox="bad-box"}`] != 0 {
		t.Errorf("polls and errors mixed up: %v", m)
	}
}

// TestMetricsOldestDueAgeGrowsWhileTheRelayRefuses: the relay defers every
// mail, retried every 200ms, so each mail is never long from its next
// attempt. The gauge the docs alert on (mail is not leaving) still counts
// from when the waiting mail fell due, not from its latest retry.
func TestMetricsOldestDueAgeGrowsWhileTheRelayRefuses(t *testing.T) {
	e := newEnv(t, true)
	e.rewriteConfig(e.relay.Addr, "tls = \"none\"\nretry_base = \"200ms\"\n", "")
	e.relay.FailData(&smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Try again later"})
	e.serve()
	queued := time.Now()
	e.injectOK(message("alice@customer.example", "support@example.com", "Stuck", "stuck@customer.example", "Hello?"))
	e.waitMetric(`ticketgate_deliveries_total{outcome="temporary_error"}`, 4)
	for deadline := time.Now().Add(10 * time.Second); time.Since(queued) < 3*time.Second; {
		if time.Now().After(deadline) {
			t.Fatal("no time passes")
		}
		time.Sleep(50 * time.Millisecond)
	}
	m := e.scrape()
	if m["ticketgate_outbox_depth"] != 1 {
		t.Fatalf("outbox depth %v, want the auto-reply waiting", m["ticketgate_outbox_depth"])
	}
	if age := m["ticketgate_outbox_oldest_due_age_seconds"]; age < 2 {
		t.Errorf("ticketgate_outbox_oldest_due_age_seconds = %v after the relay deferred the mail for %s, want it to grow with the wait", age, time.Since(queued).Round(time.Second))
	}
}

// TestMetricsCountAMailRefusedForEveryRecipientAsAnError: a relay that
// refuses the one recipient of a mail at RCPT took nothing. The counter
// the dashboard alerts on counts that answer as an error, not as mail
// sent.
func TestMetricsCountAMailRefusedForEveryRecipientAsAnError(t *testing.T) {
	e := newEnv(t, true)
	e.relay.FailRcpt("gone@customer.example", &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "User unknown"})
	e.relay.FailRcpt("full@customer.example", &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 2, 2}, Message: "Mailbox full"})
	e.serve()
	before := e.scrape()
	e.injectOK(message("gone@customer.example", "support@example.com", "Hello", "refused-gone@customer.example", "Hi."))
	e.injectOK(message("full@customer.example", "support@example.com", "Hello", "refused-full@customer.example", "Hi."))
	m := e.waitMetric(`ticketgate_deliveries_total{outcome="permanent_error"}`, before[`ticketgate_deliveries_total{outcome="permanent_error"}`]+1)
	m = e.waitMetric(`ticketgate_deliveries_total{outcome="temporary_error"}`, before[`ticketgate_deliveries_total{outcome="temporary_error"}`]+1)
	if sent, took := m[`ticketgate_deliveries_total{outcome="sent"}`]-before[`ticketgate_deliveries_total{outcome="sent"}`], e.relay.Accepted(); sent != float64(took) {
		t.Errorf("ticketgate_deliveries_total{outcome=\"sent\"} moved by %v; the relay took %d mails", sent, took)
	}
}

// TestMetricsCountInjectRefusals: a message serve refuses for inject
// (exit 67, no such routing address) or POST /api/inject (422, not a
// message) is counted in ticketgate_messages_received_total under its
// outcome and has its message log line at warn, as docs/operations.md
// has every refused message; neither moved nor logged, the refusals were
// invisible to the operator.
func TestMetricsCountInjectRefusals(t *testing.T) {
	e := newEnv(t, true)
	e.opsConfig("", "[log]\nformat = \"json\"\nlevel = \"info\"\n")
	s := e.serve()
	if r := e.run(message("mia@customer.example", "nobody@example.com", "Hi", "inj-unknown@customer.example", "Hi."), "inject", "-to", "nobody@example.com"); r.code != exNoUser {
		t.Fatalf("inject to an unknown address: exit %d, want %d: %s", r.code, exNoUser, r.stderr)
	}
	resp, err := e.apiDo("POST", "/api/inject?to=support@example.com", "message/rfc822", "just some text\n")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 422 {
		t.Fatalf("POST /api/inject of text that is no mail: %s, want 422", resp.Status)
	}
	got := e.scrape()
	for _, series := range []string{
		`ticketgate_messages_received_total{outcome="unknown_recipient",route="none",source="inject"}`,
		`ticketgate_messages_received_total{outcome="not_mail",route="support@example.com",source="inject"}`,
	} {
		if got[series] != 1 {
			t.Errorf("%s = %v, want 1", series, got[series])
		}
	}
	if code := s.stop(t); code != 0 {
		t.Fatalf("serve exit %d", code)
	}
	outcomes := map[string]any{}
	for _, rec := range jsonLines(t, s.stderr.String()) {
		if rec["msg"] == "message" {
			outcomes[fmt.Sprint(rec["outcome"])] = rec["level"]
		}
	}
	for _, o := range []string{"unknown_recipient", "not_mail"} {
		if outcomes[o] != "WARN" {
			t.Errorf("no message log line at WARN for the %s refusal (got %v):\n%s", o, outcomes[o], s.stderr.String())
		}
	}
}
