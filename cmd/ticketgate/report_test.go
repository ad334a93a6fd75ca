package main

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestReportBesideServeAndItsCounters: report reads the database alone
// and, while serve holds it, through serve's admin API; the ticket
// counters on /metrics move with what serve commits.
func TestReportBesideServeAndItsCounters(t *testing.T) {
	e := newEnv(t, true)
	e.opsConfig("", "")
	id := e.injectOK(message("rae@customer.example", "support@example.com", "Router down", "report-1@customer.example", "No lights."),
		"-to", "support@example.com", "-from", "rae@customer.example")
	report := func(args ...string) map[string]json.RawMessage {
		t.Helper()
		r := e.run(nil, "report", append([]string{"-json"}, args...)...)
		var m map[string]json.RawMessage
		if r.code != 0 || json.Unmarshal([]byte(r.stdout), &m) != nil {
			t.Fatalf("report -json: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
		}
		for _, k := range []string{"opened", "resolved", "reopened", "first_response", "resolution", "sla", "satisfaction"} {
			if _, ok := m[k]; !ok {
				t.Errorf("report -json has no %q: %s", k, r.stdout)
			}
		}
		return m
	}
	if m := report(); string(m["opened"]) != "1" || string(m["resolved"]) != "0" {
		t.Fatalf("report without serve: opened %s resolved %s", m["opened"], m["resolved"])
	}
	if r := e.run(nil, "report", "-from", "last week"); r.code != 64 || !strings.Contains(r.stderr, "-from") {
		t.Errorf("report -from 'last week': exit %d, stderr %q; want 64 naming -from", r.code, r.stderr)
	}

	s := e.serve()
	c, err := dialSender(e.smtp)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.send("sid@customer.example", "support@example.com",
		message("sid@customer.example", "support@example.com", "Modem down", "report-2@customer.example", "No sync.")); err != nil {
		t.Fatal(err)
	}
	c.c.Quit()
	e.waitMetric("ticketgate_tickets_opened_total", 1)
	if r := e.run(nil, "status", id, "resolved"); r.code != 0 {
		t.Fatalf("status resolved: exit %d, stderr %q", r.code, r.stderr)
	}
	m := e.waitMetric("ticketgate_tickets_resolved_total", 1)
	if m["ticketgate_tickets_reopened_total"] != 0 {
		t.Errorf("reopened counter %v, want 0", m["ticketgate_tickets_reopened_total"])
	}
	got := report()
	if string(got["opened"]) != "2" || string(got["resolved"]) != "1" || string(got["reopened"]) != "0" {
		t.Errorf("report via serve: opened %s resolved %s reopened %s, want 2 1 0", got["opened"], got["resolved"], got["reopened"])
	}
	tomorrow := time.Now().Add(24 * time.Hour).Format(time.DateOnly)
	if later := report("-from", tomorrow); string(later["opened"]) != "0" {
		t.Errorf("report -from %s counted %s opened", tomorrow, later["opened"])
	}
	if other := report("-queue", "tech"); string(other["opened"]) != "0" {
		t.Errorf("report -queue tech counted %s opened", other["opened"])
	}
	text := e.run(nil, "report")
	if text.code != 0 || !strings.Contains(text.stdout, "opened 2 · resolved 1 · reopened 0") {
		t.Errorf("report: exit %d\n%s%s", text.code, text.stdout, text.stderr)
	}
	if code := s.stop(t); code != 0 {
		t.Fatalf("serve exit %d", code)
	}
}

// A day report cannot read is a usage error (64) whether or not serve
// holds the database, not a failure (1) once the command is handed over.
func TestReportRefusesABadDayWithUsageExitWhileServeRuns(t *testing.T) {
	e := newEnv(t, true)
	e.opsConfig("", "")
	e.injectOK(message("rae@customer.example", "support@example.com", "Router down", "report-bad@customer.example", "No lights."))
	s := e.serve()
	for _, args := range [][]string{{"-from", "last week"}, {"-to", "2026-13-01"}, {"-from", "2026-12-01", "-to", "2026-11-01"}} {
		if r := e.run(nil, "report", args...); r.code != 64 || !strings.Contains(r.stderr, args[0]) {
			t.Errorf("report %v while serve runs: exit %d, stderr %q; want 64 naming %s", args, r.code, r.stderr, args[0])
		}
	}
	if code := s.stop(t); code != 0 {
		t.Fatalf("serve exit %d", code)
	}
}

// A report parameter given twice is refused, not read as its first value.
func TestReportAPIRefusesAParameterGivenTwice(t *testing.T) {
	e := newEnv(t, true)
	e.serve()
	for _, q := range []string{"queue=billing&queue=support", "from=2026-11-01&from=2020-01-01"} {
		resp, err := e.apiGet("/api/report?" + q)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), "given 2 times") {
			t.Errorf("GET /api/report?%s: %s %s, want 400 naming the repeated parameter", q, resp.Status, b)
		}
	}
}

// TestMergeMovesNoTicketCounter: a merge copies the source's history onto
// the target; the counters on /metrics count what happened once, so the
// copies of its creation and resolution add nothing.
func TestMergeMovesNoTicketCounter(t *testing.T) {
	e := newEnv(t, true)
	e.opsConfig("", "")
	dst := e.injectOK(message("rae@customer.example", "support@example.com", "Router down", "merge-1@customer.example", "No lights."),
		"-to", "support@example.com", "-from", "rae@customer.example")
	src := e.injectOK(message("sid@customer.example", "support@example.com", "Modem down", "merge-2@customer.example", "No sync."),
		"-to", "support@example.com", "-from", "sid@customer.example")
	if r := e.run(nil, "status", src, "resolved"); r.code != 0 {
		t.Fatalf("status resolved: exit %d, stderr %q", r.code, r.stderr)
	}

	s := e.serve()
	if r := e.run(nil, "merge", src, dst); r.code != 0 {
		t.Fatalf("merge: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	m := e.scrape()
	for _, series := range []string{"ticketgate_tickets_opened_total", "ticketgate_tickets_resolved_total", "ticketgate_tickets_reopened_total"} {
		if m[series] != 0 {
			t.Errorf("%s = %v after a merge of a resolved ticket, want 0", series, m[series])
		}
	}
	if code := s.stop(t); code != 0 {
		t.Fatalf("serve exit %d", code)
	}
}

// report -from DAY counts from the day's start where the command runs
// (its TZ), as it does without serve: handed over, the day was read in
// serve's zone instead, and the same command covered another period
// while serve ran.
func TestReportDayIsTheCommandsDayThroughServe(t *testing.T) {
	e := newEnv(t, true)
	e.injectOK(message("rae@customer.example", "support@example.com", "Router down", "tz-1@customer.example", "No lights."),
		"-to", "support@example.com", "-from", "rae@customer.example")
	from := func() string {
		t.Helper()
		r := e.run(nil, "report", "-json", "-from", "2026-11-01", "-to", "2026-11-02")
		var rep struct {
			From time.Time `json:"from"`
			To   time.Time `json:"to"`
		}
		if r.code != 0 || json.Unmarshal([]byte(r.stdout), &rep) != nil {
			t.Fatalf("report: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
		}
		return rep.From.UTC().Format(time.RFC3339) + " " + rep.To.UTC().Format(time.RFC3339)
	}
	t.Setenv("TZ", "Asia/Tokyo")
	alone := from()
	t.Setenv("TZ", "UTC")
	e.serve()
	t.Setenv("TZ", "Asia/Tokyo")
	if through := from(); through != alone || alone != "2026-10-31T15:00:00Z 2026-11-01T15:00:00Z" {
		t.Errorf("report -from 2026-11-01 -to 2026-11-02 in Tokyo: %s alone, %s through serve (in UTC); want Tokyo's day both times", alone, through)
	}
}

// report -from DAY starts at the day's first instant where the day's
// midnight does not exist: in Chile the clocks go from 00:00 to 01:00 on
// the first Sunday of September, and the day began at 23:00 of the
// Saturday before, taking an hour of it into the report.
func TestReportDayOfAMidnightDSTChangeStartsThatDay(t *testing.T) {
	e := newEnv(t, true)
	e.injectOK(message("rae@customer.example", "support@example.com", "Router down", "cl-1@customer.example", "No lights."),
		"-to", "support@example.com", "-from", "rae@customer.example")
	t.Setenv("TZ", "America/Santiago")
	r := e.run(nil, "report", "-json", "-from", "2026-09-06", "-to", "2026-09-07")
	var rep struct {
		From time.Time `json:"from"`
		To   time.Time `json:"to"`
	}
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &rep) != nil {
		t.Fatalf("report: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	// 2026-09-06 01:00 -03 (the day's first instant) to 2026-09-07 00:00 -03.
	if got := rep.From.UTC().Format(time.RFC3339) + " " + rep.To.UTC().Format(time.RFC3339); got != "2026-09-06T04:00:00Z 2026-09-07T03:00:00Z" {
		t.Errorf("report -from 2026-09-06 -to 2026-09-07 in Santiago covers %s, want 2026-09-06T04:00:00Z 2026-09-07T03:00:00Z", got)
	}
	if r := e.run(nil, "report", "-from", "2026-09-06", "-to", "2026-09-07"); !strings.HasPrefix(r.stdout, "from 2026-09-06 01:00 until 2026-09-07 00:00") {
		t.Errorf("report prints its period as %q, want it from 2026-09-06 01:00", strings.SplitN(r.stdout, "\n", 2)[0])
	}
}
