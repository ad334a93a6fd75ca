package main

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"text/tabwriter"

	"ticketgate/desk/view"
	"ticketgate/rules"
)

func runTickets(ctx context.Context, args []string, _ io.Reader, stdout io.Writer) error {
	fs, cfgPath := flags("tickets")
	status := fs.String("status", "", "only tickets with this status (new, open, waiting, on_hold, resolved, closed)")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := fs.Parse(args); err != nil {
		return &exitError{code: 64, err: err}
	}
	if *status != "" {
		if _, ok := rules.ParseStatus(*status); !ok {
			return &exitError{code: 64, err: fmt.Errorf("unknown status %q (want new, open, waiting, on_hold, resolved or closed)", *status)}
		}
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return &exitError{code: exConfig, err: err}
	}
	list := []*view.Ticket{}
	err = withStore(cfg, newLogger(io.Discard), true,
		func(a *app) error {
			recs, err := listTickets(ctx, a.store, rules.Status(*status))
			list = view.NewTickets(recs)
			return err
		},
		func(c *adminClient) error {
			q := url.Values{}
			if *status != "" {
				q.Set("status", *status)
			}
			return c.do(ctx, "GET", "/api/tickets", q, nil, &list)
		})
	if err != nil {
		return err
	}
	if *asJSON {
		if list == nil {
			list = []*view.Ticket{}
		}
		return view.Encode(stdout, list)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATUS\tPRIORITY\tQUEUE\tREQUESTER\tASSIGNEE\tUPDATED\tSUBJECT")
	for _, t := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.Status, t.Priority, t.Queue, t.Requester,
			dash(t.Assignee), t.UpdatedAt.Local().Format("2006-01-02 15:04"), t.Subject)
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
