package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"ticketgate/desk/view"
	"ticketgate/store"
)

func runShow(ctx context.Context, args []string, _ io.Reader, stdout io.Writer) error {
	fs, cfgPath := flags("show")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseFlags(fs, args, 1, 1); err != nil {
		return err
	}
	id := strings.ToUpper(fs.Arg(0))
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return &exitError{code: exConfig, err: err}
	}
	var t *view.Ticket
	err = withStore(cfg, newLogger(io.Discard), reads,
		func(a *app) error {
			var err error
			t, err = showView(ctx, a.store, id)
			return err
		},
		func(c *adminClient) error {
			return c.do(ctx, "GET", "/api/tickets/"+id, nil, nil, &t)
		})
	var ae *apiError
	if errors.Is(err, store.ErrNotFound) || (errors.As(err, &ae) && ae.Status == http.StatusNotFound) {
		return &exitError{code: 1, err: fmt.Errorf("no ticket %s", id)}
	}
	if err != nil {
		return err
	}
	if *asJSON {
		return view.Encode(stdout, t)
	}
	printTicket(stdout, t)
	return nil
}

func printTicket(w io.Writer, t *view.Ticket) {
	fmt.Fprintf(w, "%s  %s\n", t.ID, safeText(t.Subject))
	fmt.Fprintf(w, "status %s · priority %s · queue %s · requester %s · assignee %s\n", t.Status, t.Priority, t.Queue, safeText(t.Requester), dash(t.Assignee))
	if len(t.CC) > 0 {
		fmt.Fprintf(w, "cc %s\n", safeText(strings.Join(t.CC, ", ")))
	}
	fmt.Fprintf(w, "created %s · updated %s\n", t.CreatedAt.Local().Format("2006-01-02 15:04:05"), t.UpdatedAt.Local().Format("2006-01-02 15:04:05"))
	for _, m := range t.Messages {
		fmt.Fprintf(w, "\n--- %s %s %s from %s · %s\n", m.CreatedAt.Local().Format("2006-01-02 15:04"), m.Direction, m.Kind, safeText(m.From), safeText(m.Subject))
		text := m.VisibleText
		if text == "" {
			text = m.Text
		}
		fmt.Fprintln(w, safeText(strings.TrimSpace(text)))
		for _, a := range m.Attachments {
			fmt.Fprintf(w, "[attachment] %s (%s, %d bytes)\n", safeText(a.Filename), safeText(a.ContentType), a.Size)
		}
	}
	fmt.Fprintln(w, "\nmail:")
	if len(t.Mail) == 0 {
		fmt.Fprintln(w, "  none")
	}
	for _, m := range t.Mail {
		state := "sent " + m.At.Local().Format("2006-01-02 15:04:05")
		if m.State == "queued" {
			state = fmt.Sprintf("queued, next try %s", m.At.Local().Format("2006-01-02 15:04:05"))
			if m.Attempts > 0 {
				state += fmt.Sprintf(", %d attempt(s), last error: %s", m.Attempts, safeText(m.LastError))
			}
		}
		fmt.Fprintf(w, "  #%-6d %-10s to %s: %s\n", m.ID, m.Kind, safeText(strings.Join(m.To, ", ")), state)
	}
	fmt.Fprintln(w, "\nevents:")
	for _, e := range t.Events {
		fmt.Fprintf(w, "  %s  %-22s %s\n", e.At.Local().Format("2006-01-02 15:04:05"), e.Type, safeText(e.Detail))
	}
}

// safeText is s as show prints it to a terminal: control characters
// other than newline and tab (ESC, which starts the sequences that clear
// a screen, hide text or retitle a window; C1 controls such as CSI)
// become U+FFFD. Mail from anyone lands in the texts show prints.
func safeText(s string) string {
	return strings.Map(func(r rune) rune {
		if r < ' ' && r != '\n' && r != '\t' || r >= 0x7f && r < 0xa0 {
			return '\uFFFD'
		}
		return r
	}, s)
}
