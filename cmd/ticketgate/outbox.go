package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"ticketgate/desk/view"
	"ticketgate/mailout"
	"ticketgate/store"
)

// outboxEntry is one line of "outbox -json" and GET /api/outbox.
type outboxEntry struct {
	ID          uint64    `json:"id"`
	Ticket      string    `json:"ticket"`
	Kind        string    `json:"kind"`
	To          []string  `json:"to"`
	Attempts    int       `json:"attempts"`
	NextAttempt time.Time `json:"next_attempt"`
	LastError   string    `json:"last_error"`
}

func newOutboxEntry(m *store.OutMail) outboxEntry {
	to := m.Pending()
	if to == nil {
		to = []string{}
	}
	return outboxEntry{ID: m.ID, Ticket: m.TicketID, Kind: m.Kind, To: to, Attempts: m.Attempts,
		NextAttempt: m.DueAt().UTC(), LastError: m.LastErr}
}

// runOutbox is "outbox", "outbox show" and "outbox retry".
func runOutbox(ctx context.Context, args []string, stdin io.Reader, stdout io.Writer) error {
	sub := func(name string, rest []string) error {
		if name == "show" {
			return runOutboxShow(ctx, rest, stdout)
		}
		return runOutboxRetry(ctx, rest, stdout)
	}
	if len(args) > 0 && (args[0] == "show" || args[0] == "retry") {
		return sub(args[0], args[1:])
	}
	fs, cfgPath := flags("outbox")
	asJSON := fs.Bool("json", false, "print a JSON array")
	if err := parseFlags(fs, args, 0, -1); err != nil {
		return err
	}
	if a := fs.Arg(0); a == "show" || a == "retry" {
		// "outbox -config F show ID" is "outbox show -config F ID".
		return sub(a, append([]string{"-config", *cfgPath}, fs.Args()[1:]...))
	}
	if fs.NArg() > 0 {
		return &usageError{fs: fs, err: fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return &exitError{code: exConfig, err: err}
	}
	var list []outboxEntry
	err = withStore(cfg, newLogger(io.Discard), reads,
		func(a *app) (err error) { list, err = listOutbox(ctx, a.store); return err },
		func(c *adminClient) error { return c.do(ctx, http.MethodGet, "/api/outbox", nil, nil, &list) })
	if err != nil {
		return err
	}
	if *asJSON {
		if list == nil {
			list = []outboxEntry{}
		}
		return view.Encode(stdout, list)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tTICKET\tKIND\tTO\tATTEMPTS\tNEXT ATTEMPT\tLAST ERROR")
	for _, m := range list {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%s\t%s\n", m.ID, dash(m.Ticket), m.Kind, safeText(strings.Join(m.To, ",")),
			m.Attempts, m.NextAttempt.Local().Format("2006-01-02 15:04:05"), dash(oneLine(m.LastError)))
	}
	return tw.Flush()
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

func listOutbox(ctx context.Context, s store.Store) ([]outboxEntry, error) {
	var list []outboxEntry
	err := s.View(ctx, func(tx store.Tx) error {
		all, err := tx.OutboxList(0, 0)
		list = list[:0]
		for _, m := range all {
			list = append(list, newOutboxEntry(m))
		}
		return err
	})
	return list, err
}

func outboxID(s string) (uint64, error) {
	id, err := strconv.ParseUint(s, 10, 64)
	if err != nil || id == 0 {
		return 0, fmt.Errorf("outbox id %q is not a number from the outbox listing", s)
	}
	return id, nil
}

// noOutboxEntry is the error for an id no longer (or never) in the outbox.
func noOutboxEntry(err error, id uint64) error {
	var ae *apiError
	if errors.Is(err, store.ErrNotFound) || (errors.As(err, &ae) && ae.Status == http.StatusNotFound) {
		return &exitError{code: 1, err: fmt.Errorf("no mail %d in the outbox (sent, failed or never queued)", id)}
	}
	return err
}

func runOutboxShow(ctx context.Context, args []string, stdout io.Writer) error {
	fs, cfgPath := flags("outbox show")
	if err := parseFlags(fs, args, 1, 1); err != nil {
		return err
	}
	id, err := outboxID(fs.Arg(0))
	if err != nil {
		return &usageError{fs: fs, err: err}
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return &exitError{code: exConfig, err: err}
	}
	var raw []byte
	err = withStore(cfg, newLogger(io.Discard), reads,
		func(a *app) (err error) { raw, err = outboxRaw(ctx, a.store, id); return err },
		func(c *adminClient) error {
			var r struct {
				Raw string `json:"raw"`
			}
			err := c.do(ctx, http.MethodGet, "/api/outbox/"+strconv.FormatUint(id, 10), nil, nil, &r)
			raw = []byte(r.Raw)
			return err
		})
	if err != nil {
		return noOutboxEntry(err, id)
	}
	_, err = stdout.Write(raw)
	return err
}

func outboxRaw(ctx context.Context, s store.Store, id uint64) ([]byte, error) {
	var raw []byte
	err := s.View(ctx, func(tx store.Tx) error {
		m, err := tx.OutboxEntry(id)
		if err != nil {
			return err
		}
		raw, err = mailout.OutboxMail(tx, m)
		return err
	})
	return raw, err
}

func runOutboxRetry(ctx context.Context, args []string, stdout io.Writer) error {
	fs, cfgPath := flags("outbox retry")
	all := fs.Bool("all", false, "make every queued mail due now")
	if err := parseFlags(fs, args, 0, 1); err != nil {
		return err
	}
	var id uint64
	switch {
	case *all && fs.NArg() == 1:
		return &usageError{fs: fs, err: errors.New("give an id or -all, not both")}
	case !*all && fs.NArg() == 0:
		return &usageError{fs: fs, err: errors.New("give an id from the outbox listing or -all")}
	case !*all:
		var err error
		if id, err = outboxID(fs.Arg(0)); err != nil {
			return &usageError{fs: fs, err: err}
		}
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return &exitError{code: exConfig, err: err}
	}
	var n int
	err = withStore(cfg, newLogger(io.Discard), writes,
		func(a *app) (err error) { n, err = a.retryOutbox(ctx, id); return err },
		func(c *adminClient) error {
			q := url.Values{"all": {"1"}}
			if id != 0 {
				q = url.Values{"id": {strconv.FormatUint(id, 10)}}
			}
			var r struct {
				Due int `json:"due"`
			}
			err := c.do(ctx, http.MethodPost, "/api/outbox/retry", q, nil, &r)
			n = r.Due
			return err
		})
	if err != nil {
		return noOutboxEntry(err, id)
	}
	fmt.Fprintf(stdout, "%d mail(s) due now\n", n)
	return nil
}

// retryBatch is how many entries "outbox retry -all" makes due in one
// transaction: each holds the database's single writer, and mail
// arriving meanwhile waits for it.
const retryBatch = 500

// retryOutbox makes entry id (every entry for 0) due now and wakes the
// worker when serve runs. It returns how many entries it made due.
// Every entry is gone over in batches of retryBatch, one transaction
// each, in id order (so in each queue's order).
func (a *app) retryOutbox(ctx context.Context, id uint64) (int, error) {
	now := time.Now()
	n := 0
	var after uint64
	for {
		var list []*store.OutMail
		err := a.store.UpdateNow(ctx, func(tx store.Tx) error {
			if id != 0 {
				m, err := tx.OutboxEntry(id)
				if err != nil {
					return err
				}
				list = []*store.OutMail{m}
			} else {
				var err error
				if list, err = tx.OutboxList(after, retryBatch); err != nil {
					return err
				}
			}
			for _, m := range list {
				if !m.NextAt.After(now) {
					// Due already, perhaps being delivered right now:
					// queuing it again would end its delivery's claim, and
					// that delivery's outcome would be dropped and the mail
					// sent again.
					continue
				}
				m.NextAt = now
				if err := tx.Enqueue(m); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return n, err
		}
		n += len(list)
		if id != 0 || len(list) < retryBatch {
			break
		}
		after = list[len(list)-1].ID
	}
	if a.gw != nil && a.gw.wake != nil {
		a.gw.wake()
	}
	return n, nil
}

// handleOutbox is GET /api/outbox.
func (a *app) handleOutbox(w http.ResponseWriter, r *http.Request) {
	list, err := listOutbox(r.Context(), a.store)
	if err != nil {
		httpError(w, http.StatusInternalServerError, err.Error())
		return
	}
	if list == nil {
		list = []outboxEntry{}
	}
	writeJSON(w, list)
}

// handleOutboxShow is GET /api/outbox/{id}: the raw mail as {"raw": ...}.
func (a *app) handleOutboxShow(w http.ResponseWriter, r *http.Request) {
	id, err := outboxID(r.PathValue("id"))
	if err != nil {
		httpError(w, http.StatusBadRequest, err.Error())
		return
	}
	raw, err := outboxRaw(r.Context(), a.store, id)
	writeRead(w, map[string]string{"raw": string(raw)}, err)
}

// handleOutboxRetry is POST /api/outbox/retry?id=N or ?all=1.
func (a *app) handleOutboxRetry(w http.ResponseWriter, r *http.Request) {
	var id uint64
	q := r.URL.Query()
	if err := onlyOnce(q, "id", "all"); err != nil {
		httpError(w, http.StatusBadRequest, err.Error())
		return
	}
	switch {
	case q.Get("all") == "1" && q.Get("id") == "":
	case q.Get("id") != "" && q.Get("all") == "":
		var err error
		if id, err = outboxID(q.Get("id")); err != nil {
			httpError(w, http.StatusBadRequest, err.Error())
			return
		}
	default:
		httpError(w, http.StatusBadRequest, "give id=N or all=1")
		return
	}
	n, err := a.retryOutbox(r.Context(), id)
	writeRead(w, map[string]int{"due": n}, err)
}
