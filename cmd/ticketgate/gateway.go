package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/mail"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"ticketgate/desk"
	"ticketgate/mailin"
	"ticketgate/mailout"
	"ticketgate/metrics"
	"ticketgate/rules"
	"ticketgate/store"
	"ticketgate/store/boltdb"
)

// gateway is what serve runs. It holds the current app (SIGHUP builds a
// new one from the reloaded config and swaps it in), the metrics, and is
// the Handler every listener and poller hands mail to: a message goes to
// the pipeline current when its transaction began (MAIL FROM; Pin), so a
// reload never drops or splits one.
type gateway struct {
	*metrics.Metrics // listeners and pollers report here (mailin.Observer)

	cur     atomic.Pointer[generation]
	db      servedStore
	base    store.Store // db with commit timing, shared by every generation
	log     *slog.Logger
	level   *slog.LevelVar
	cfgPath string
	wake    func() // wakes the outbox worker
	admin   http.Handler
	// instance names this process in leases and outbox claims; sweep is
	// the lease the scheduler's sweep runs under.
	instance string
	sweep    *lease
	// relayError is the outbox worker's RelayError, for status.
	relayError func() (string, time.Time)
	// listeners are the SMTP and LMTP servers, for /healthz's cap check.
	listeners []*mailin.Server

	reloading sync.Mutex // one reload at a time
	// hup receives SIGHUP from the start of serve, so that one sent
	// while serve starts neither ends it nor is lost; nil: watchReload
	// makes its own.
	hup chan os.Signal
}

// servedStore is a backend serve can run on: it also counts itself for
// the metrics and checks itself for GET /api/check.
type servedStore interface {
	store.Store
	store.Inspector
}

// commitObserver is a store that groups commits (bbolt) and reports each
// group, for ticketgate_store_commit_batch_size.
type commitObserver interface {
	ObserveCommits(func(calls int, took time.Duration))
}

// generation is one configuration's app and its admin API.
type generation struct {
	app   *app
	admin http.Handler
}

// openGateway opens the database for serve and assembles the first
// generation from cfg.
func openGateway(cfg *Config, cfgPath string, log *slog.Logger, level *slog.LevelVar) (*app, error) {
	st, err := openStore(cfg, boltdb.Options{LockTimeout: 5 * time.Second}, log)
	if err != nil {
		return nil, err
	}
	db, ok := st.(servedStore)
	if !ok {
		st.Close()
		return nil, fmt.Errorf("store %s cannot count and check itself", storeName(cfg))
	}
	g := &gateway{db: db, log: log, level: level, cfgPath: cfgPath, instance: instanceID()}
	g.Metrics = metrics.New(db.Stats)
	if c, ok := db.(commitObserver); ok {
		c.ObserveCommits(g.Metrics.GroupCommit)
	}
	g.base = meteredStore{Store: db, m: g.Metrics}
	a, err := newApp(cfg, log, g.base)
	if err != nil {
		db.Close()
		return nil, &exitError{code: exConfig, err: err}
	}
	a.gw = g
	g.install(a)
	g.admin = g.adminHandler()
	return a, nil
}

func (g *gateway) install(a *app) {
	g.cur.Store(&generation{app: a, admin: a.adminHandler()})
}

// current is the app of the configuration in force.
func (g *gateway) current() *app { return g.cur.Load().app }

// Deliver implements mailin.Handler with the current pipeline.
func (g *gateway) Deliver(ctx context.Context, d *mailin.Delivery) (mailin.Result, error) {
	a := g.current()
	return deliver(ctx, a.pipeline, a.log, g.Metrics, d)
}

// Accepts implements mailin.Handler with the current routes.
func (g *gateway) Accepts(addr string) bool { return g.current().pipeline.Accepts(addr) }

// Expect implements mailin.Expecter with the current pipeline.
func (g *gateway) Expect() func() { return g.current().pipeline.Expect() }

// Pin implements mailin.Pinner: the listeners keep the app in force at
// a transaction's MAIL FROM until its message is committed, so a reload
// meanwhile (a route taken out, say) does not refuse a message whose
// recipients were taken.
func (g *gateway) Pin() mailin.Handler { return pinned{g: g, a: g.current()} }

// pinned is the gateway with the app of one SMTP or LMTP transaction.
type pinned struct {
	g *gateway
	a *app
}

func (p pinned) Deliver(ctx context.Context, d *mailin.Delivery) (mailin.Result, error) {
	return deliver(ctx, p.a.pipeline, p.a.log, p.g.Metrics, d)
}

func (p pinned) Accepts(addr string) bool { return p.a.pipeline.Accepts(addr) }

func (p pinned) Expect() func() { return p.a.pipeline.Expect() }

// adminHandler adds /metrics, backup and check to the current
// generation's admin API.
func (g *gateway) adminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", getOnly(g.Metrics.Handler()))
	mux.Handle("/api/backup", getOnly(noParams(g.handleBackup)))
	mux.Handle("/api/check", getOnly(noParams(g.handleCheck)))
	mux.Handle("/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.cur.Load().admin.ServeHTTP(w, r)
	}))
	return mux
}

// getOnly serves h for GET and HEAD and answers another method 405 with
// an Allow header, as the generation's routes are answered. (A "GET"
// pattern beside "/" would hand such a request to "/", which has no
// route for it and answers 404.)
func getOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			httpError(w, http.StatusMethodNotAllowed, r.Method+" "+r.URL.Path+": method not allowed (GET)")
			return
		}
		h.ServeHTTP(w, r)
	})
}

// intake is what this app hands mail to: the gateway while serving,
// otherwise its pipeline with the per-message log line.
func (a *app) intake() mailin.Handler {
	if a.gw != nil {
		return a.gw
	}
	return loggedPipeline{a}
}

// current is the app of the configuration in force: a itself unless
// serve reloaded it since.
func (a *app) current() *app {
	if a.gw != nil {
		return a.gw.current()
	}
	return a
}

// metrics returns the serving process's metrics, or nil (nothing counted).
func (a *app) metrics() *metrics.Metrics {
	if a.gw != nil {
		return a.gw.Metrics
	}
	return nil
}

// loggedPipeline is the pipeline as a Handler, logging each message.
type loggedPipeline struct{ a *app }

func (l loggedPipeline) Deliver(ctx context.Context, d *mailin.Delivery) (mailin.Result, error) {
	return deliver(ctx, l.a.pipeline, l.a.log, nil, d)
}

func (l loggedPipeline) Accepts(addr string) bool { return l.a.pipeline.Accepts(addr) }

func (l loggedPipeline) Expect() func() { return l.a.pipeline.Expect() }

// deliver hands d to p, counts it, and writes the one log line per
// message: ticket, msgid, route, outcome, duration (and where it came
// from). Bodies, headers other than the Message-ID, and secrets stay out.
func deliver(ctx context.Context, p *desk.Pipeline, log *slog.Logger, m *metrics.Metrics, d *mailin.Delivery) (mailin.Result, error) {
	start := time.Now()
	res, err := p.Deliver(ctx, d)
	record(ctx, p, log, m, d, res, err, time.Since(start))
	return res, err
}

// record counts a message handed to the pipeline, or refused before it,
// and writes its log line.
func record(ctx context.Context, p *desk.Pipeline, log *slog.Logger, m *metrics.Metrics, d *mailin.Delivery, res mailin.Result, err error, took time.Duration) {
	route := routeLabel(p, d.Rcpts)
	outcome := outcomeOf(res, err)
	m.Received(sourceLabel(d.Source), route, outcome)
	msgid := res.MessageID
	if msgid == "" {
		msgid = headerMessageID(d.Raw)
	}
	attrs := []any{"ticket", res.TicketID, "msgid", msgid, "route", route, "outcome", outcome,
		"duration", took.Round(time.Microsecond), "source", d.Source}
	if d.Remote != "" {
		attrs = append(attrs, "remote", d.Remote)
	}
	level := slog.LevelInfo
	if err != nil {
		attrs = append(attrs, "err", err)
		level = slog.LevelWarn
		if outcome == "temp_error" {
			level = slog.LevelError
		}
	}
	log.Log(ctx, level, "message", attrs...)
}

// routeLabel is the routing address the message went to, "bounce" for a
// bounce address, "none" otherwise: a set bounded by the config.
func routeLabel(p *desk.Pipeline, rcpts []string) string {
	if rt, _, ok := p.Route(rcpts); ok {
		return strings.ToLower(rt.Address)
	}
	for _, r := range rcpts {
		if p.IsBounceAddress(r) {
			return "bounce"
		}
	}
	return "none"
}

// outcomeOf is the thread action of a stored message, or why it was not.
func outcomeOf(res mailin.Result, err error) string {
	switch {
	case err == nil && res.Action != "":
		return res.Action
	case err == nil:
		return "stored"
	case errors.Is(err, mailin.ErrNotMail):
		return "not_mail"
	case errors.Is(err, mailin.ErrUnknownRecipient):
		return "unknown_recipient"
	case errors.Is(err, mailin.ErrRateLimited):
		return "rate_limited"
	}
	return "temp_error"
}

// sourceLabel drops the mailbox name of "imap:<name>".
func sourceLabel(s string) string {
	if i := strings.IndexByte(s, ':'); i >= 0 {
		return s[:i]
	}
	return s
}

// headerMessageID reads the Message-ID of a message the pipeline refused,
// for the log line; the header block only, never the body.
func headerMessageID(raw []byte) string {
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(msg.Header.Get("Message-Id"))
}

// meteredStore times write transactions for
// ticketgate_store_commit_duration_seconds.
type meteredStore struct {
	store.Store
	m *metrics.Metrics
}

func (s meteredStore) Update(ctx context.Context, fn func(store.Tx) error) error {
	start := time.Now()
	var c eventCounter
	err := s.Store.Update(ctx, c.wrap(fn))
	s.m.Commit("batch", time.Since(start))
	c.count(s.m, err)
	return err
}

func (s meteredStore) UpdateNow(ctx context.Context, fn func(store.Tx) error) error {
	start := time.Now()
	var c eventCounter
	err := s.Store.UpdateNow(ctx, c.wrap(fn))
	s.m.Commit("single", time.Since(start))
	c.count(s.m, err)
	return err
}

// eventCounter keeps the events a write transaction adds, for the ticket
// counters once it is committed. fn may run more than once: each run
// starts the list anew, so only the committed run counts.
type eventCounter struct{ events []store.Event }

func (c *eventCounter) wrap(fn func(store.Tx) error) func(store.Tx) error {
	return func(tx store.Tx) error {
		c.events = c.events[:0]
		return fn(countingTx{Tx: tx, c: c})
	}
}

func (c *eventCounter) count(m *metrics.Metrics, err error) {
	if err != nil {
		return
	}
	for _, e := range c.events {
		switch {
		case desk.MergedCopy(e):
			// A merge's copy of the other ticket's history: counted
			// when it happened there.
		case e.Type == rules.EventCreated:
			m.Ticket("opened")
		case e.Type == rules.EventReopened:
			m.Ticket("reopened")
		case e.Type == rules.EventStatus && desk.Resolves(e.Detail):
			m.Ticket("resolved")
		case e.Type == rules.EventSatisfaction:
			var score int
			if _, err := fmt.Sscanf(e.Detail, "rated %d/5", &score); err == nil {
				m.Rating(score)
			}
		}
	}
}

// countingTx passes every call to Tx and notes the events added.
type countingTx struct {
	store.Tx
	c *eventCounter
}

func (t countingTx) AddEvent(id string, e store.Event) error {
	if err := t.Tx.AddEvent(id, e); err != nil {
		return err
	}
	t.c.events = append(t.c.events, e)
	return nil
}

// meteredSender counts what the relay answers: a mail it took for
// anyone is sent; one it refused for every recipient is an error, for
// good when every refusal was.
type meteredSender struct {
	mailout.Sender
	m *metrics.Metrics
}

func (s meteredSender) Send(from string, to []string, raw []byte, handedOver func([]mailout.RcptError)) ([]mailout.RcptError, error) {
	refused, err := s.Sender.Send(from, to, raw, handedOver)
	switch {
	case errors.Is(err, mailout.ErrAborted):
		// Cut short by a stop: the relay answered nothing.
	case err == nil && len(refused) < len(to):
		s.m.Delivery("sent")
	case err == nil && !slices.ContainsFunc(refused, func(r mailout.RcptError) bool { return !mailout.Permanent(r.Err) }),
		err != nil && mailout.Permanent(err):
		s.m.Delivery("permanent_error")
	default:
		s.m.Delivery("temporary_error")
	}
	return refused, err
}
