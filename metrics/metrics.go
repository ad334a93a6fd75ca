// Package metrics holds ticketgate's Prometheus metric families, every one
// named ticketgate_…, in a registry of their own that serve answers on the
// admin listener's /metrics.
//
// The packages that do the work do not import it: mailin reports through
// its Observer interface (which *Metrics satisfies), and cmd/ticketgate
// wraps the pipeline, the store, the relay and the sweep to time and count
// them. Counting costs a map lookup and an atomic add; nothing here blocks.
package metrics

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"ticketgate/rules"
	"ticketgate/store"
)

// Metrics is the set of families one serve process exports. Its methods
// are safe for concurrent use; a nil *Metrics counts nothing.
type Metrics struct {
	reg        *prometheus.Registry
	received   *prometheus.CounterVec
	sessions   *prometheus.CounterVec
	refusals   *prometheus.CounterVec
	ingest     *prometheus.HistogramVec
	deliveries *prometheus.CounterVec
	sweeps     *prometheus.CounterVec
	sweepTime  prometheus.Histogram
	polls      *prometheus.CounterVec
	pollErrors *prometheus.CounterVec
	commit     *prometheus.HistogramVec
	groupSize  prometheus.Histogram
	groupTime  prometheus.Histogram
	reloads    *prometheus.CounterVec
	opened     prometheus.Counter
	resolved   prometheus.Counter
	reopened   prometheus.Counter
	ratings    *prometheus.CounterVec
}

// StatsFunc reads the store's counts at scrape time; it must be cheap
// (index walks, no record decoding).
type StatsFunc func(ctx context.Context) (store.Stats, error)

// latency buckets, 1 ms to 10 s: a commit is a few fsyncs, an ingest a
// parse plus a commit.
var latency = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// New registers every family; stats, when not nil, is read at each scrape
// for the ticket and outbox gauges.
func New(stats StatsFunc) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		received: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ticketgate_messages_received_total",
			Help: "Messages handed to the pipeline, by source (smtp, lmtp, imap, inject), route address and outcome (the thread action, or why it was refused)."},
			[]string{"source", "route", "outcome"}),
		sessions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ticketgate_smtp_sessions_total",
			Help: "SMTP and LMTP connections opened, by protocol."}, []string{"proto"}),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ticketgate_smtp_refusals_total",
			Help: "SMTP and LMTP answers of 4xx or 5xx, by protocol, command (mail, rcpt, data) and reply code."},
			[]string{"proto", "stage", "code"}),
		ingest: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "ticketgate_ingest_duration_seconds",
			Help: "Time from the end of a message's data to the answer (the 250 or a refusal), by protocol.", Buckets: latency},
			[]string{"proto"}),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ticketgate_deliveries_total",
			Help: "Outgoing mails handed to the relay, by outcome: sent, temporary_error (retried), permanent_error."},
			[]string{"outcome"}),
		sweeps: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ticketgate_sweep_runs_total",
			Help: "Lifecycle and SLA sweeps run by the scheduler, by result (ok, error)."}, []string{"result"}),
		sweepTime: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "ticketgate_sweep_duration_seconds",
			Help: "How long a scheduled sweep took.", Buckets: []float64{.01, .05, .1, .5, 1, 5, 10, 30, 60, 300}}),
		polls: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ticketgate_imap_polls_total",
			Help: "Passes over an IMAP mailbox (search and take what waits), by mailbox name."}, []string{"mailbox"}),
		pollErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ticketgate_imap_errors_total",
			Help: "IMAP sessions or passes that failed (connect, login, fetch, store), by mailbox name."}, []string{"mailbox"}),
		commit: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "ticketgate_store_commit_duration_seconds",
			Help: "Store write transactions from call to durable commit, by kind (batch: grouped ingest commits; single).", Buckets: latency},
			[]string{"kind"}),
		groupSize: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "ticketgate_store_commit_batch_size",
			Help:    "Write calls each grouped commit of the bbolt store carried (one fsync for all of them).",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024}}),
		groupTime: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "ticketgate_store_commit_batch_duration_seconds",
			Help: "How long each grouped commit of the bbolt store took, from its start to its fsync.", Buckets: latency}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ticketgate_config_reloads_total",
			Help: "Configuration reloads on SIGHUP, by result (ok, error: the old configuration stays)."}, []string{"result"}),
	}
	m.opened = prometheus.NewCounter(prometheus.CounterOpts{Name: "ticketgate_tickets_opened_total",
		Help: "Tickets opened (as \"opened\" in ticketgate report)."})
	m.resolved = prometheus.NewCounter(prometheus.CounterOpts{Name: "ticketgate_tickets_resolved_total",
		Help: "Tickets resolved: moved into resolved, or into closed from another status than resolved (as \"resolved\" in ticketgate report)."})
	m.reopened = prometheus.NewCounter(prometheus.CounterOpts{Name: "ticketgate_tickets_reopened_total",
		Help: "Closed tickets opened again (as \"reopened\" in ticketgate report)."})
	m.ratings = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ticketgate_satisfaction_ratings_total",
		Help: "Satisfaction ratings given by customers, by score (1 to 5)."}, []string{"score"})
	m.reg.MustRegister(m.received, m.sessions, m.refusals, m.ingest, m.deliveries, m.sweeps, m.sweepTime,
		m.polls, m.pollErrors, m.commit, m.groupSize, m.groupTime, m.reloads, m.opened, m.resolved, m.reopened, m.ratings)
	if stats != nil {
		m.reg.MustRegister(&storeCollector{stats: stats})
	}
	return m
}

// Handler serves the registry in the Prometheus text format. A store that
// cannot be read fails only its own families, not the scrape.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// Received counts one message handed to the pipeline.
func (m *Metrics) Received(source, route, outcome string) {
	if m == nil {
		return
	}
	m.received.WithLabelValues(source, route, label(outcome)).Inc()
}

// Session counts an SMTP or LMTP connection (mailin.Observer).
func (m *Metrics) Session(proto string) {
	if m != nil {
		m.sessions.WithLabelValues(proto).Inc()
	}
}

// Reply counts an answer to MAIL, RCPT or DATA; only refusals (4xx, 5xx)
// are kept (mailin.Observer).
func (m *Metrics) Reply(proto, stage string, code int) {
	if m != nil && code >= 400 {
		m.refusals.WithLabelValues(proto, stage, strconv.Itoa(code)).Inc()
	}
}

// Ingest records the time from the end of a message's data to its answer
// (mailin.Observer).
func (m *Metrics) Ingest(proto string, d time.Duration) {
	if m != nil {
		m.ingest.WithLabelValues(proto).Observe(d.Seconds())
	}
}

// Poll counts a pass over an IMAP mailbox, and its failure when err is
// not nil (mailin.Observer).
func (m *Metrics) Poll(mailbox string, err error) {
	if m == nil {
		return
	}
	if err != nil {
		m.pollErrors.WithLabelValues(mailbox).Inc()
		return
	}
	m.polls.WithLabelValues(mailbox).Inc()
}

// Delivery counts one attempt to hand an outgoing mail to the relay.
func (m *Metrics) Delivery(outcome string) {
	if m != nil {
		m.deliveries.WithLabelValues(outcome).Inc()
	}
}

// Sweep records one scheduled sweep.
func (m *Metrics) Sweep(d time.Duration, err error) {
	if m == nil {
		return
	}
	m.sweepTime.Observe(d.Seconds())
	m.sweeps.WithLabelValues(result(err)).Inc()
}

// Commit records one store write transaction.
func (m *Metrics) Commit(kind string, d time.Duration) {
	if m != nil {
		m.commit.WithLabelValues(kind).Observe(d.Seconds())
	}
}

// GroupCommit records one grouped commit of the store: the write calls it
// carried and how long it took. Its signature is the one
// boltdb.DB.ObserveCommits takes.
func (m *Metrics) GroupCommit(calls int, took time.Duration) {
	if m != nil {
		m.groupSize.Observe(float64(calls))
		m.groupTime.Observe(took.Seconds())
	}
}

// Reload counts one configuration reload.
func (m *Metrics) Reload(err error) {
	if m != nil {
		m.reloads.WithLabelValues(result(err)).Inc()
	}
}

// Ticket counts a committed change to a ticket: "opened", "resolved" or
// "reopened".
func (m *Metrics) Ticket(what string) {
	if m == nil {
		return
	}
	switch what {
	case "opened":
		m.opened.Inc()
	case "resolved":
		m.resolved.Inc()
	case "reopened":
		m.reopened.Inc()
	}
}

// Rating counts a customer's satisfaction rating of score (1 to 5).
func (m *Metrics) Rating(score int) {
	if m != nil && score >= 1 && score <= 5 {
		m.ratings.WithLabelValues(strconv.Itoa(score)).Inc()
	}
}

func result(err error) string {
	if err != nil {
		return "error"
	}
	return "ok"
}

// label keeps a label value in the usual snake_case ("survey rating" →
// "survey_rating", "agent-refused" → "agent_refused").
func label(s string) string {
	return strings.NewReplacer(" ", "_", "-", "_").Replace(s)
}

// storeCollector reads the store's counts at scrape time.
type storeCollector struct {
	stats StatsFunc
}

var (
	ticketsDesc = prometheus.NewDesc("ticketgate_tickets", "Tickets by status, counted from the status index at scrape time.", []string{"status"}, nil)
	depthDesc   = prometheus.NewDesc("ticketgate_outbox_depth", "Mails waiting in the outbox, due or not.", nil, nil)
	oldestDesc  = prometheus.NewDesc("ticketgate_outbox_oldest_due_age_seconds",
		"How long the mail waiting longest in the outbox has been due, since it was queued however often the relay deferred it (0 for an empty outbox): grows while the relay does not take mail.", nil, nil)
)

func (c *storeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- ticketsDesc
	ch <- depthDesc
	ch <- oldestDesc
}

func (c *storeCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := c.stats(ctx)
	if err != nil {
		for _, d := range []*prometheus.Desc{ticketsDesc, depthDesc, oldestDesc} {
			ch <- prometheus.NewInvalidMetric(d, err)
		}
		return
	}
	// Every status is exported, zero included, so a panel's series do
	// not come and go.
	for _, s := range []rules.Status{rules.StatusNew, rules.StatusOpen, rules.StatusWaiting, rules.StatusOnHold,
		rules.StatusResolved, rules.StatusClosed} {
		ch <- prometheus.MustNewConstMetric(ticketsDesc, prometheus.GaugeValue, float64(st.ByStatus[s]), string(s))
	}
	ch <- prometheus.MustNewConstMetric(depthDesc, prometheus.GaugeValue, float64(st.Outbox))
	age := 0.0
	if !st.OldestDue.IsZero() {
		age = max(time.Since(st.OldestDue).Seconds(), 0)
	}
	ch <- prometheus.MustNewConstMetric(oldestDesc, prometheus.GaugeValue, age)
}
