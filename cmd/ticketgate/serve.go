package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"ticketgate/mailin"
	"ticketgate/mailout"
)

func runServe(ctx context.Context, args []string, _ io.Reader, stdout io.Writer) error {
	fs, cfgPath := flags("serve")
	if err := parseFlags(fs, args, 0, 0); err != nil {
		return err
	}
	// A SIGHUP's default is the end of the process, and systemd does not
	// restart a service a SIGHUP ended: "systemctl reload" while serve
	// opens its database or listeners is kept for watchReload instead.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return &exitError{code: exConfig, err: err}
	}
	setGCDefaults(os.Getenv)
	level := new(slog.LevelVar)
	log := newConfigLogger(cfg.Log, os.Stderr, level)
	a, err := openGateway(cfg, *cfgPath, log, level)
	if err != nil {
		return err
	}
	defer a.close()
	a.gw.hup = hup
	return a.serve(ctx, func(s *servers) {
		fmt.Fprintf(stdout, "ticketgate %s: smtp %s lmtp %s admin %s db %s\n", version, s.smtpAddr(), s.lmtpAddr(), s.adminAddr(), storeName(cfg))
	})
}

// servers are the running parts of serve.
type servers struct {
	smtp, lmtp *mailin.Server
	admin      net.Listener
	worker     *mailout.Worker
}

func (s *servers) smtpAddr() string {
	if s.smtp == nil {
		return "off"
	}
	return s.smtp.Addr()
}

func (s *servers) lmtpAddr() string {
	if s.lmtp == nil {
		return "off"
	}
	return s.lmtp.Addr()
}

func (s *servers) adminAddr() string {
	if s.admin == nil {
		return "off"
	}
	return s.admin.Addr().String()
}

// serve runs until ctx ends, then shuts down in order (see stopServing);
// the caller closes the database. SIGHUP reloads the configuration
// meanwhile. It runs the app openGateway returned.
func (a *app) serve(ctx context.Context, started func(*servers)) error {
	cfg := a.cfg
	watchSecondSignal(a.log)
	sender := newSender(cfg)
	w := a.newOutboxWorker(sender)
	s := &servers{worker: w}
	httpSrv, err := a.listen(s)
	if err != nil {
		return err
	}
	// After listen: the admin token file exists by now.
	if err := a.reportInstance(ctx, a.gw.cfgPath); err != nil {
		a.log.Warn("instance not recorded; check cannot compare its keys", "err", err)
	}
	wctx, cancelWorker := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); w.Run(wctx) }()
	if l, ok := a.gw.db.(interface{ Listen(context.Context, func()) }); ok {
		// Mail another gateway queues wakes this one's worker too.
		wg.Add(1)
		go func() { defer wg.Done(); l.Listen(wctx, w.Wake) }()
	}
	// The sweep runs where this lease is held: one instance at a time.
	a.gw.sweep = newLease(a.store, "sweep", a.gw.instance, leaseTTL(cfg), a.log.With("part", "scheduler"))
	lctx, cancelLease := context.WithCancel(context.Background())
	wg.Add(1)
	go func() { defer wg.Done(); a.gw.sweep.run(lctx, nil) }()
	// What failed to start stops the rest: listeners first, as below.
	failed := func(err error) error {
		a.stopServing(s, httpSrv)
		cancelLease()
		cancelWorker()
		wg.Wait()
		return err
	}
	stopPollers, err := a.startPollers(ctx)
	if err != nil {
		return failed(err)
	}
	stopCron, err := a.startScheduler(ctx)
	if err != nil {
		stopPollers()
		return failed(err)
	}
	a.gw.watchReload(ctx)
	a.log.Info("serving", "smtp", s.smtpAddr(), "lmtp", s.lmtpAddr(), "admin", s.adminAddr())
	if started != nil {
		started(s)
	}
	<-ctx.Done()
	if r, ok := sender.(*mailout.Relay); ok {
		// A delivery gets the grace a message being received gets: the
		// relay's answer to the end of a mail may take ten minutes, and
		// systemd kills a stop long before. The outbox stops taking
		// mail, and a mail cut stays queued.
		cut := time.AfterFunc(dur(a.current().cfg.Shutdown.Grace, 30*time.Second), func() {
			cancelWorker()
			r.Abort()
		})
		defer cut.Stop()
	}
	a.stopServing(s, httpSrv)
	stopPollers()
	stopCron()
	cancelLease()
	cancelWorker()
	wg.Wait()
	if r, ok := sender.(*mailout.Relay); ok {
		r.Close() // QUIT the relay sessions kept open
	}
	a.log.Info("stopped; closing the database")
	return nil
}

// newOutboxWorker is the outbox's worker for serve, sending through
// sender, and wired to be woken by every commit that queues mail.
func (a *app) newOutboxWorker(sender mailout.Sender) *mailout.Worker {
	cfg := a.cfg
	w := mailout.NewWorker(a.store, meteredSender{sender, a.metrics()}, a.log.With("part", "outbox"))
	w.Concurrency = cfg.Outbound.RelaySessions
	w.RetryBase = dur(cfg.Outbound.RetryBase, time.Minute)
	w.GiveUp = dur(cfg.Outbound.GiveUpAfter, 120*time.Hour)
	w.Owner, w.Lease = a.gw.instance, leaseTTL(cfg)
	// With PostgreSQL too: the log is this installation's, beside the
	// keys in store.path's directory, and a restarted gateway applies its
	// notes before its dead run's claims expire; a note found after
	// another instance took a claim over changes nothing it has not
	// already sent (docs/scale.md).
	w.HandoffLog = cfg.Store.Path + ".handoff"
	a.pipeline.OnCommit = w.Wake
	a.gw.wake = w.Wake
	a.gw.relayError = w.RelayError
	return w
}

// listen starts the SMTP, LMTP and admin listeners that are configured.
func (a *app) listen(s *servers) (*http.Server, error) {
	cfg := a.cfg
	var err error
	if cfg.Admin.Listen != "" {
		// Before any listener opens: a refused admin setup starts nothing.
		if err := checkAdminListen(cfg); err != nil {
			return nil, &exitError{code: exConfig, err: err}
		}
	}
	if cfg.Inbound.SMTPListen != "" {
		if s.smtp, err = mailin.Listen(cfg.Inbound.SMTPListen, false, cfg.Inbound, a.intake(), a.log.With("part", "smtp")); err != nil {
			return nil, err
		}
	}
	if cfg.Inbound.LMTPListen != "" {
		if s.lmtp, err = mailin.Listen(cfg.Inbound.LMTPListen, true, cfg.Inbound, a.intake(), a.log.With("part", "lmtp")); err != nil {
			return nil, err
		}
	}
	if a.gw != nil {
		for _, l := range []*mailin.Server{s.smtp, s.lmtp} {
			if l != nil {
				a.gw.listeners = append(a.gw.listeners, l)
			}
		}
	}
	if cfg.Admin.Listen == "" {
		return nil, nil
	}
	return a.listenAdmin(s)
}

// adminIdleTimeout closes an admin API connection that waits this long
// for its next request: longer than Go's clients keep one idle (90s), so
// the client's side closes it first.
var adminIdleTimeout = 2 * time.Minute

// listenAdmin starts the admin API: behind adminGuard, over HTTPS when
// [admin] tls_cert is set. It creates the token file when missing.
func (a *app) listenAdmin(s *servers) (*http.Server, error) {
	cfg := a.cfg
	token, err := loadOrCreateAdminToken(cfg)
	if err != nil {
		return nil, &exitError{code: exConfig, err: err}
	}
	tlsCfg, err := adminTLS(cfg)
	if err != nil {
		return nil, &exitError{code: exConfig, err: err}
	}
	if s.admin, err = net.Listen("tcp", cfg.Admin.Listen); err != nil {
		return nil, fmt.Errorf("admin listen: %w", err)
	}
	ln := s.admin
	if tlsCfg != nil {
		ln = tls.NewListener(ln, tlsCfg)
	}
	// serve's handler follows reloads (gw); a bare app serves its own.
	var api http.Handler = a.adminHandler()
	if a.gw != nil {
		api = a.gw.admin
	}
	h := newAdminGuard(cfg, s.admin.Addr(), token, api)
	// No ReadTimeout or WriteTimeout: a backup or an injected message
	// may take long to go through, and the guard refuses a stranger's
	// request before its body. A connection idle between requests is
	// closed; one left open by a client was held for good.
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: adminIdleTimeout, TLSConfig: tlsCfg}
	go func() {
		defer func() {
			if r := recover(); r != nil {
				a.log.Error("admin server panic", "panic", r)
			}
		}()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("admin server stopped", "err", err)
		}
	}()
	return srv, nil
}

// newSender is the relay [outbound] names: a Maildir for "maildir:PATH",
// else the smarthost at host:port.
func newSender(cfg *Config) mailout.Sender {
	if dir, ok := mailout.MaildirPath(cfg.Outbound.Relay); ok {
		return &mailout.Maildir{Dir: dir}
	}
	return &mailout.Relay{Addr: cfg.Outbound.Relay, TLS: cfg.Outbound.TLS, Hostname: cfg.Inbound.Hostname, Insecure: cfg.Outbound.TLSInsecure,
		Sessions: cfg.Outbound.RelaySessions}
}
