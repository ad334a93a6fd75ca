package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"ticketgate/desk/view"
	"ticketgate/rules"
	"ticketgate/store"
)

// listParams are the parameters of a listing, the same names as flags of
// "tickets" and as query parameters of GET /api/tickets. "as" names the
// operator the view "mine" lists the tickets of.
var listParams = []string{"view", "as", "requester", "assignee", "queue", "status", "q", "sort", "limit", "cursor"}

// runTickets lists ticket summaries (no messages or events) a view and
// filters select, oldest first unless -sort says otherwise: every
// matching ticket, or with -limit one page after -cursor. The next page's
// cursor is printed as a last line "next: C", on stdout in the table and
// on stderr with -json, whose stdout stays one JSON array.
func runTickets(ctx context.Context, args []string, _ io.Reader, stdout io.Writer) error {
	fs, cfgPath := flags("tickets")
	p := map[string]*string{
		"view":      fs.String("view", "", "only the tickets of a view: new (open, unassigned), active (open, assigned), completed (resolved or closed), mine (open, assigned to -as)"),
		"as":        fs.String("as", "", "the operator's address, whose tickets -view mine lists"),
		"requester": fs.String("requester", "", "only tickets from this requester address"),
		"assignee":  fs.String("assignee", "", `only tickets assigned to this address ("none": to nobody)`),
		"queue":     fs.String("queue", "", "only tickets in this queue"),
		"status":    fs.String("status", "", "only tickets with this status (new, open, waiting, on_hold, resolved, closed)"),
		"q":         fs.String("q", "", "only tickets with every one of these words in the subject, the requester or a message"),
		"sort":      fs.String("sort", "", "order: created (oldest first, the default), updated (least recently first), priority (most urgent first), due (SLA due soonest first); -NAME reverses"),
		"cursor":    fs.String("cursor", "", `start after this cursor (the "next:" of the previous page)`),
	}
	limit := fs.Int("limit", 0, "at most this many tickets, one page (0: all)")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseOnce(fs, args, listParams); err != nil {
		return err
	}
	q := url.Values{}
	for k, v := range p {
		if *v != "" {
			q.Set(k, *v)
		}
	}
	if *limit != 0 {
		q.Set("limit", strconv.Itoa(*limit))
	}
	f, err := listFilter(q, *p["as"])
	if err != nil {
		return &exitError{code: 64, err: err}
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return &exitError{code: exConfig, err: err}
	}
	list := []view.Summary{}
	var next string
	err = withStore(cfg, newLogger(io.Discard), reads,
		func(a *app) error {
			list, next, err = listTickets(ctx, a.store, f)
			return err
		},
		func(c *adminClient) error {
			list, next, err = c.tickets(ctx, q)
			return err
		})
	var ae *apiError
	if errors.Is(err, store.ErrBadCursor) || errors.Is(err, store.ErrBadFilter) || errors.As(err, &ae) && ae.Status == http.StatusBadRequest {
		return &exitError{code: 64, err: err}
	}
	if err != nil {
		return err
	}
	if *asJSON {
		return printTicketsJSON(stdout, list, next)
	}
	return printTickets(stdout, list, next)
}

// printTicketsJSON writes list as one JSON array, and the next page's
// cursor, if any, to stderr.
func printTicketsJSON(stdout io.Writer, list []view.Summary, next string) error {
	if list == nil {
		list = []view.Summary{}
	}
	if err := view.Encode(stdout, list); err != nil {
		return err
	}
	if next != "" {
		fmt.Fprintf(os.Stderr, "next: %s\n", next)
	}
	return nil
}

// printTickets writes list as a table, and the next page's cursor, if
// any, as a last line "next: C".
func printTickets(stdout io.Writer, list []view.Summary, next string) error {
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATUS\tPRIORITY\tQUEUE\tREQUESTER\tASSIGNEE\tUPDATED\tSUBJECT")
	for _, t := range list {
		// The subject is the customer's: printed as show prints it.
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.Status, t.Priority, t.Queue, safeText(t.Requester),
			dash(t.Assignee), t.UpdatedAt.Local().Format("2006-01-02 15:04"), safeText(t.Subject))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if next != "" {
		fmt.Fprintf(stdout, "next: %s\n", next)
	}
	return nil
}

// handleTickets lists ticket summaries as "tickets" does, with its flags
// as query parameters (listParams); any other parameter, or one given
// twice, is a 400. The body stays a JSON array; the next page's cursor is
// in the X-Next-Cursor header (absent on the last page).
func (a *app) handleTickets(w http.ResponseWriter, r *http.Request) {
	f, err := listFilter(r.URL.Query(), listActor(r))
	if err != nil {
		httpError(w, http.StatusBadRequest, err.Error())
		return
	}
	list, next, err := listTickets(r.Context(), a.store, f)
	if errors.Is(err, store.ErrBadCursor) || errors.Is(err, store.ErrBadFilter) {
		httpError(w, http.StatusBadRequest, err.Error())
		return
	}
	if err != nil {
		httpError(w, http.StatusInternalServerError, err.Error())
		return
	}
	if next != "" {
		w.Header().Set(headerNextCursor, next)
	}
	writeJSON(w, list)
}

// listActor is the operator asking for a listing over the admin API:
// whose tickets view=mine lists. The admin API does not authenticate
// callers yet, so it is the "as" query parameter. Once it does, this is
// the hook: return the authenticated actor here (and refuse an "as" that
// names someone else).
func listActor(r *http.Request) string {
	return r.URL.Query().Get("as")
}

// headerNextCursor carries the cursor of the next page of a listing.
const headerNextCursor = "X-Next-Cursor"

// onlyOnce checks that q has no parameter but those in known, each at
// most once: a parameter misspelled or given twice is refused, never
// passed over (an API caller would act on an answer to another question).
func onlyOnce(q url.Values, known ...string) error {
	for k, vs := range q {
		if !slices.Contains(known, k) {
			want := "want " + strings.Join(known, ", ")
			if len(known) == 0 {
				want = "this call takes none"
			}
			return fmt.Errorf("unknown parameter %q (%s)", k, want)
		}
		if len(vs) > 1 {
			return fmt.Errorf("parameter %q given %d times", k, len(vs))
		}
	}
	return nil
}

// listFilter checks a listing's parameters (listParams; an empty value is
// no parameter) and returns the store filter they ask for; operator is
// whose tickets the view "mine" lists. The default order is by creation,
// oldest first.
func listFilter(q url.Values, operator string) (store.Filter, error) {
	f := store.Filter{Sort: store.SortCreated, Operator: strings.TrimSpace(operator)}
	if err := onlyOnce(q, listParams...); err != nil {
		return f, err
	}
	get := func(k string) string { return strings.TrimSpace(q.Get(k)) }
	v, ok := store.ParseView(get("view"))
	if !ok {
		return f, fmt.Errorf("unknown view %q (want new, active, completed or mine)", get("view"))
	}
	if v == store.ViewMine && f.Operator == "" {
		return f, errors.New(`the view "mine" needs the operator: -as EMAIL (as=EMAIL in the API)`)
	}
	f.View = v
	if s := get("status"); s != "" {
		st, ok := rules.ParseStatus(s)
		if !ok {
			return f, fmt.Errorf("unknown status %q (want new, open, waiting, on_hold, resolved or closed)", s)
		}
		f.Status = st
	}
	f.Requester, f.Queue, f.Text, f.After = get("requester"), get("queue"), q.Get("q"), get("cursor")
	if f.Assignee = get("assignee"); strings.EqualFold(f.Assignee, "none") {
		f.Assignee, f.Unassigned = "", true
	}
	if s := get("sort"); s != "" {
		name, reverse := strings.CutPrefix(s, "-")
		o, ok := store.ParseSort(name)
		if !ok {
			return f, fmt.Errorf("unknown sort %q (want created, updated, priority or due, with - before it to reverse)", s)
		}
		f.Sort, f.Reverse = o, reverse
	}
	if s := get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return f, fmt.Errorf("bad limit %q (want a number of tickets, 0 for all)", s)
		}
		f.Limit = n
	}
	return f, nil
}

// listTickets returns one page of ticket summaries in f's order and the
// cursor of the next page ("" after the last). The records are read
// without their messages and events.
func listTickets(ctx context.Context, s store.Store, f store.Filter) ([]view.Summary, string, error) {
	list := []view.Summary{}
	var next string
	err := s.View(ctx, func(tx store.Tx) error {
		ts, n, err := tx.Tickets(f)
		for _, t := range ts {
			list = append(list, view.NewSummary(t))
		}
		next = n
		return err
	})
	return list, next, err
}

// tickets asks a running serve for a listing, as GET /api/tickets with
// the same parameters, and returns the next page's cursor from its
// X-Next-Cursor header. It is do with the header kept.
func (c *adminClient) tickets(ctx context.Context, q url.Values) ([]view.Summary, string, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", c.base+"/api/tickets?"+q.Encode(), nil)
	if err != nil {
		return nil, "", err
	}
	resp, err := c.send(req)
	if err != nil {
		return nil, "", fmt.Errorf("database is in use, and the admin API at %s: %w (%v)", c.base, errAdminDown, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, "", &exitError{code: exTempFail, err: err}
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(b, &e) != nil || e.Error == "" {
			e.Error = resp.Status
		}
		return nil, "", &apiError{Status: resp.StatusCode, Msg: e.Error}
	}
	var list []view.Summary
	if err := json.Unmarshal(b, &list); err != nil {
		return nil, "", fmt.Errorf("GET /api/tickets: %w", err)
	}
	return list, resp.Header.Get(headerNextCursor), nil
}

// parseOnce is parseFlags for a command without arguments whose flags
// named in once may each be given once: a second -NAME is a usage error,
// as the API refuses a parameter given twice, never settled by the last
// one.
func parseOnce(fs *flag.FlagSet, args []string, once []string) error {
	plain := map[string]flag.Value{}
	fs.VisitAll(func(f *flag.Flag) {
		if slices.Contains(once, f.Name) {
			plain[f.Name], f.Value = f.Value, &onceValue{Value: f.Value}
		}
	})
	err := parseFlags(fs, args, 0, 0)
	// The usage names each flag's type from its own value.
	fs.VisitAll(func(f *flag.Flag) {
		if v, ok := plain[f.Name]; ok {
			f.Value = v
		}
	})
	return err
}

// onceValue is a flag value that may be set once.
type onceValue struct {
	flag.Value
	set bool
}

func (v *onceValue) Set(s string) error {
	if v.set {
		return errors.New("given twice")
	}
	v.set = true
	return v.Value.Set(s)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
