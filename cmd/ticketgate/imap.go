package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"ticketgate/desk/view"
	"ticketgate/mailin"
	"ticketgate/mailout"
	"ticketgate/store"
)

// running holds the pollers of each serving app, for GET /api/status.
var running sync.Map // *app → []*mailin.Poller

// buildPollers builds the poller of every [[imap]] mailbox (their names,
// one each, were checked with the configuration: checkIMAP).
func (a *app) buildPollers() ([]*mailin.Poller, error) {
	var list []*mailin.Poller
	for _, c := range a.cfg.IMAP {
		p, err := mailin.NewPoller(c, mailin.Intake{Handler: a.intake(), Store: a.store, Routes: a.pipeline.Routes, Prefix: a.pipeline.Prefix}, a.log.With("part", "imap"))
		if err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
		p.MaxBytes = a.cfg.Inbound.MaxMessageBytes
		list = append(list, p)
	}
	return list, nil
}

// startPollers starts one IMAP poller per [[imap]] mailbox; stop cancels
// them and waits.
func (a *app) startPollers(ctx context.Context) (stop func(), err error) {
	list, err := a.buildPollers()
	if err != nil {
		return nil, err
	}
	pctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, p := range list {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if a.gw == nil {
				p.Run(pctx) // Run recovers its own panics and reconnects
				return
			}
			// One instance at a time polls a mailbox.
			l := newLease(a.store, "imap:"+p.Config().Name, a.gw.instance, leaseTTL(a.cfg), a.log.With("imap", p.Config().Name))
			l.run(pctx, p.Run)
		}()
	}
	running.Store(a, list)
	return func() {
		cancel()
		wg.Wait()
		running.Delete(a)
	}, nil
}

// statusReport is what "status" shows and GET /api/status returns.
type statusReport struct {
	Serving bool `json:"serving"`
	Outbox  int  `json:"outbox"`
	// OutboxOldestAge is how long the oldest queued mail has waited, in
	// seconds (0 for an empty outbox).
	OutboxOldestAge int64 `json:"outbox_oldest_age_seconds"`
	// RelayLastError is the relay's last failure: from the running outbox
	// worker (cleared once the relay takes mail again), else the newest
	// error recorded on a queued mail. "" when there is none.
	RelayLastError   string          `json:"relay_last_error"`
	RelayLastErrorAt time.Time       `json:"relay_last_error_at,omitzero"`
	RelayTLSFailed   bool            `json:"relay_tls_failed"`
	Mailboxes        []mailboxReport `json:"mailboxes"`
}

type mailboxReport struct {
	mailin.PollerStatus
	Checkpoint store.Checkpoint `json:"checkpoint"`
}

// report gathers the status from the database, and from the pollers when
// this process runs them.
func (a *app) report(ctx context.Context, serving bool) (*statusReport, error) {
	r := &statusReport{Serving: serving, Mailboxes: []mailboxReport{}}
	live := map[string]mailin.PollerStatus{}
	if v, ok := running.Load(a); ok {
		for _, p := range v.([]*mailin.Poller) {
			live[p.Config().Name] = p.Status()
		}
	}
	err := a.store.View(ctx, func(tx store.Tx) error {
		out, err := tx.Outbox(time.Time{}, 0)
		if err != nil {
			return err
		}
		r.Outbox = len(out)
		var lastErrID uint64
		for _, m := range out {
			if age := int64(time.Since(m.Created).Seconds()); age > r.OutboxOldestAge {
				r.OutboxOldestAge = age
			}
			if m.LastErr != "" && m.ID > lastErrID {
				lastErrID, r.RelayLastError = m.ID, m.LastErr
			}
		}
		for _, c := range a.cfg.IMAP {
			cp, err := tx.Checkpoint(c.Name)
			if err != nil {
				return err
			}
			st, ok := live[c.Name]
			if !ok {
				mbox := c.Mailbox
				if mbox == "" {
					mbox = "INBOX"
				}
				st = mailin.PollerStatus{Name: c.Name, Addr: c.Addr, Mailbox: mbox}
			}
			// Kept in the host's zone; written in UTC, as every time
			// of the JSON.
			st.LastSuccess, st.LastErrorAt = st.LastSuccess.UTC(), st.LastErrorAt.UTC()
			r.Mailboxes = append(r.Mailboxes, mailboxReport{PollerStatus: st, Checkpoint: cp})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read status: %w", err)
	}
	if a.gw != nil && a.gw.relayError != nil {
		r.RelayLastError, r.RelayLastErrorAt = a.gw.relayError()
		r.RelayLastErrorAt = r.RelayLastErrorAt.UTC()
	}
	r.RelayTLSFailed = mailout.IsTLSErrorText(r.RelayLastError)
	return r, nil
}

// runStatus is "ticketgate status -config F". With positional arguments
// ("status -config F HS-123456 open") it sets a ticket's status instead.
func runStatus(ctx context.Context, args []string, stdin io.Reader, stdout io.Writer) error {
	fs, cfgPath := flags("status")
	asJSON := fs.Bool("json", false, "print JSON")
	// For the usage: the action (with a ticket) takes -as, as assign does.
	as := fs.String("as", "operator", "with a ticket: who acts (recorded on the ticket)")
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		return &usageError{fs: fs, help: true}
	}
	if err != nil || fs.NArg() > 0 {
		return runAction("status")(ctx, args, stdin, stdout)
	}
	if flagSet(fs, "as") {
		return &usageError{fs: fs, err: fmt.Errorf("-as %s goes with a ticket and a status: status -as EMAIL HS-123456 STATUS", *as)}
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return &exitError{code: exConfig, err: err}
	}
	var r *statusReport
	askServe := func(c *adminClient) error {
		r = &statusReport{}
		return c.do(ctx, http.MethodGet, "/api/status", nil, nil, r)
	}
	if cfg.Store.Postgres() && cfg.Admin.Listen != "" {
		// Any process may open PostgreSQL, so no lock says whether
		// serve runs: ask it first, and read the database only when
		// it does not answer.
		if c, err := newAdminClient(cfg); err == nil && askServe(c) == nil {
			return printStatusReport(stdout, r, *asJSON)
		}
	}
	err = withStore(cfg, newLogger(os.Stderr), reads,
		func(a *app) (err error) { r, err = a.report(ctx, false); return err },
		askServe)
	if err != nil {
		return err
	}
	return printStatusReport(stdout, r, *asJSON)
}

// printStatusReport writes r as status shows it: a few lines, or JSON.
func printStatusReport(stdout io.Writer, r *statusReport, asJSON bool) error {
	if asJSON {
		return view.Encode(stdout, r)
	}
	printStatus(stdout, r)
	return nil
}

func printStatus(w io.Writer, r *statusReport) {
	if r.Serving {
		fmt.Fprintln(w, "gateway: serving")
	} else {
		fmt.Fprintln(w, "gateway: not running; mailbox connections are unknown, only checkpoints from the database are shown")
	}
	fmt.Fprintf(w, "outbox: %d waiting", r.Outbox)
	if r.Outbox > 0 {
		fmt.Fprintf(w, ", oldest queued %s ago", (time.Duration(r.OutboxOldestAge) * time.Second).String())
	}
	fmt.Fprintln(w)
	switch {
	case r.RelayTLSFailed:
		fmt.Fprintf(w, "relay: TLS FAILED, no mail leaves: %s\n", relayError(r))
	case r.RelayLastError != "":
		fmt.Fprintf(w, "relay: last error %s\n", relayError(r))
	default:
		fmt.Fprintln(w, "relay: last error none")
	}
	if len(r.Mailboxes) == 0 {
		fmt.Fprintln(w, "mailboxes: none configured")
	}
	for _, m := range r.Mailboxes {
		fmt.Fprintf(w, "mailbox %s (%s on %s):\n", m.Name, m.Mailbox, m.Addr)
		if r.Serving {
			state := "not connected"
			if m.Connected {
				state = "connected, polling"
				if m.Idle {
					state = "connected, idle"
				}
			}
			fmt.Fprintf(w, "  %s\n  last success: %s\n  last error: %s\n", state, when(m.LastSuccess), orNone(m.LastError, m.LastErrorAt))
			fmt.Fprintf(w, "  taken: %d (%d already known), failed: %d, left in place: %d\n", m.Taken, m.Duplicates, m.Failed, m.LeftInPlace)
		}
		if m.Checkpoint.UIDValidity == 0 {
			fmt.Fprintln(w, "  checkpoint: nothing taken yet")
		} else {
			fmt.Fprintf(w, "  checkpoint: uidvalidity %d, uid %d\n", m.Checkpoint.UIDValidity, m.Checkpoint.UID)
		}
	}
}

// relayError is the relay's last error with its time when known (serve
// running), else as recorded on the newest queued mail.
func relayError(r *statusReport) string {
	if r.RelayLastErrorAt.IsZero() {
		return oneLine(r.RelayLastError) + " (recorded on a queued mail)"
	}
	return orNone(oneLine(r.RelayLastError), r.RelayLastErrorAt)
}

func when(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.Local().Format(time.RFC3339)
}

func orNone(msg string, at time.Time) string {
	if msg == "" {
		return "none"
	}
	return when(at) + " " + strings.TrimSpace(msg)
}

// handleStatus is GET /api/status.
func (a *app) handleStatus(w http.ResponseWriter, r *http.Request) {
	rep, err := a.report(r.Context(), true)
	if err != nil {
		httpError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, rep)
}
