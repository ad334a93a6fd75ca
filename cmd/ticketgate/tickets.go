package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"text/tabwriter"

	"ticketgate/desk/view"
	"ticketgate/store"
)

// runTickets lists ticket summaries (no messages or events), newest first:
// every matching ticket, or with -limit one page after -cursor. The next
// page's cursor is printed as a last line "next: C", on stdout in the
// table and on stderr with -json, whose stdout stays one JSON array.
func runTickets(ctx context.Context, args []string, _ io.Reader, stdout io.Writer) error {
	fs, cfgPath := flags("tickets")
	status := fs.String("status", "", "only tickets with this status (new, open, waiting, on_hold, resolved, closed)")
	asJSON := fs.Bool("json", false, "print JSON")
	limit := fs.Int("limit", 0, "at most this many tickets, one page (0: all)")
	cursor := fs.String("cursor", "", `start after this cursor (the "next:" of the previous page)`)
	if err := parseFlags(fs, args, 0, 0); err != nil {
		return err
	}
	f, err := ticketFilter(*status, strconv.Itoa(*limit), *cursor)
	if err != nil {
		return &exitError{code: 64, err: err}
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return &exitError{code: exConfig, err: err}
	}
	list := []view.Summary{}
	var next string
	err = withStore(cfg, newLogger(io.Discard), true,
		func(a *app) error {
			list, next, err = listTickets(ctx, a.store, f)
			return err
		},
		func(c *adminClient) error {
			list, next, err = c.tickets(ctx, *status, *limit, *cursor)
			return err
		})
	var ae *apiError
	if errors.Is(err, store.ErrBadCursor) || errors.As(err, &ae) && ae.Status == http.StatusBadRequest {
		return &exitError{code: 64, err: err}
	}
	if err != nil {
		return err
	}
	if *asJSON {
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
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATUS\tPRIORITY\tQUEUE\tREQUESTER\tASSIGNEE\tUPDATED\tSUBJECT")
	for _, t := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.Status, t.Priority, t.Queue, t.Requester,
			dash(t.Assignee), t.UpdatedAt.Local().Format("2006-01-02 15:04"), t.Subject)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if next != "" {
		fmt.Fprintf(stdout, "next: %s\n", next)
	}
	return nil
}

// tickets asks a running serve for a listing, as GET /api/tickets, and
// returns the next page's cursor from its X-Next-Cursor header. It is do
// with the header kept.
func (c *adminClient) tickets(ctx context.Context, status string, limit int, cursor string) ([]view.Summary, string, error) {
	q := url.Values{}
	for k, v := range map[string]string{"status": status, "cursor": cursor} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
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

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
