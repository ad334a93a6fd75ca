package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"ticketgate/desk"
	"ticketgate/desk/view"
	"ticketgate/rules"
)

// runReport is "ticketgate report -config F [-from D] [-to D] [-queue Q]
// [-json]": the team lead's numbers, read beside a running serve (handed
// over to GET /api/report when serve holds the database).
func runReport(ctx context.Context, args []string, _ io.Reader, stdout io.Writer) error {
	fs, cfgPath := flags("report")
	from := fs.String("from", "", "count from this day or instant (2026-11-01 or RFC 3339), inclusive; default: since the first ticket")
	to := fs.String("to", "", "count until this day or instant, exclusive (a day: up to its start); default: now")
	queue := fs.String("queue", "", "only the tickets of this queue")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseFlags(fs, args, 0, 0); err != nil {
		return err
	}
	q := url.Values{}
	for _, f := range []struct{ name, v string }{{"from", *from}, {"to", *to}, {"queue", *queue}} {
		if f.v != "" {
			q.Set(f.name, f.v)
		}
	}
	// Checked before anything is opened: a day that is not one is a
	// usage error whether the report is made here or by a running serve.
	rq, err := reportQuery(q, rules.BusinessHours{})
	if err != nil {
		return &exitError{code: 64, err: err}
	}
	// A day starts at midnight where the command runs: sent as that
	// instant, not read again in a running serve's time zone.
	for name, at := range map[string]time.Time{"from": rq.From, "to": rq.To} {
		if !at.IsZero() {
			q.Set(name, at.Format(time.RFC3339Nano))
		}
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return &exitError{code: exConfig, err: err}
	}
	var rep *desk.Report
	err = withStore(cfg, newLogger(io.Discard), reads,
		func(a *app) error {
			rq, err := reportQuery(q, a.pipeline.Policy.SLA.Hours)
			if err != nil {
				return &exitError{code: 64, err: err}
			}
			rep, err = desk.ReportContext(ctx, a.store, rq)
			return err
		},
		func(c *adminClient) error {
			return c.do(ctx, "GET", "/api/report", q, nil, &rep)
		})
	if err != nil {
		return err
	}
	if *asJSON {
		return view.Encode(stdout, rep)
	}
	printReport(stdout, rep)
	return nil
}

// reportQuery reads from, to and queue; any other parameter, or one
// given twice, is an error.
func reportQuery(q url.Values, hours rules.BusinessHours) (desk.ReportQuery, error) {
	rq := desk.ReportQuery{Queue: q.Get("queue"), Hours: hours}
	if err := onlyOnce(q, "from", "to", "queue"); err != nil {
		return rq, err
	}
	var err error
	if rq.From, err = reportTime("from", q.Get("from")); err != nil {
		return rq, err
	}
	if rq.To, err = reportTime("to", q.Get("to")); err != nil {
		return rq, err
	}
	if !rq.To.IsZero() && rq.To.Before(rq.From) {
		return rq, fmt.Errorf("-to %s is before -from %s", q.Get("to"), q.Get("from"))
	}
	return rq, nil
}

// reportTime parses a day (local midnight) or an RFC 3339 instant.
func reportTime(name, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.ParseInLocation(time.DateOnly, s, time.Local); err == nil {
		if t.Format(time.DateOnly) != s {
			// Midnight falls in a DST gap (Chile, Cuba): the day
			// begins when the clocks go forward, not an hour into
			// the day before, where time.Date puts it.
			_, t = t.ZoneBounds()
		}
		return t, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("-%s %q is not a day like 2026-11-01 or an RFC 3339 time like 2026-11-01T09:00:00Z", name, s)
	}
	return t, nil
}

// handleReport is GET /api/report?from=&to=&queue=, over one read
// transaction while serve writes.
func (a *app) handleReport(w http.ResponseWriter, r *http.Request) {
	rq, err := reportQuery(r.URL.Query(), a.pipeline.Policy.SLA.Hours)
	if err != nil {
		httpError(w, http.StatusBadRequest, err.Error())
		return
	}
	rep, err := desk.ReportContext(r.Context(), a.store, rq)
	if err != nil {
		httpError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, rep)
}

func printReport(w io.Writer, r *desk.Report) {
	period := "until " + r.To.Local().Format("2006-01-02 15:04")
	if !r.From.IsZero() {
		period = "from " + r.From.Local().Format("2006-01-02 15:04") + " " + period
	}
	if r.Queue != "" {
		period += " · queue " + r.Queue
	}
	fmt.Fprintln(w, period)
	fmt.Fprintf(w, "opened %d · resolved %d · reopened %d\n", r.Opened, r.Resolved, r.Reopened)
	for _, d := range []struct {
		name string
		d    desk.Durations
	}{{"first response", r.FirstResponse}, {"resolution", r.Resolution}} {
		fmt.Fprintf(w, "%-15s %d tickets · median %s (business %s) · p90 %s (business %s)\n", d.name, d.d.Count,
			secs(d.d.Calendar.Median), secs(d.d.Business.Median), secs(d.d.Calendar.P90), secs(d.d.Business.P90))
	}
	fmt.Fprintln(w, "SLA compliance:")
	for _, g := range []struct {
		name string
		m    map[string]*desk.Compliance
	}{{"priority", r.SLA.ByPriority}, {"level", r.SLA.ByLevel}} {
		keys := make([]string, 0, len(g.m))
		for k := range g.m {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			c := g.m[k]
			fmt.Fprintf(w, "  %-8s %-8s %5.1f%%  %d tickets · first response %d met %d missed · resolution %d met %d missed\n",
				g.name, k, c.Percent, c.Tickets, c.FirstResponseMet, c.FirstResponseMissed, c.ResolutionMet, c.ResolutionMissed)
		}
	}
	s := r.Satisfaction
	var dist []string
	for score := 1; score <= 5; score++ {
		dist = append(dist, fmt.Sprintf("%d:%d", score, s.Distribution[fmt.Sprint(score)]))
	}
	fmt.Fprintf(w, "satisfaction %d ratings · average %.2f · %s\n", s.Count, s.Average, strings.Join(dist, " "))
}

func secs(s float64) string {
	return (time.Duration(s) * time.Second).String()
}
