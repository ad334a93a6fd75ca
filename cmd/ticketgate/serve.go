package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"ticketgate/mailin"
	"ticketgate/mailout"
	"ticketgate/store/boltdb"
)

func runServe(ctx context.Context, args []string, _ io.Reader, stdout io.Writer) error {
	fs, cfgPath := flags("serve")
	if err := parseFlags(fs, args, 0, 0); err != nil {
		return err
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return &exitError{code: exConfig, err: err}
	}
	log := newLogger(os.Stderr)
	a, err := openApp(cfg, log, boltdb.Options{LockTimeout: 5 * time.Second})
	if err != nil {
		return err
	}
	defer a.close()
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

// serve runs until ctx ends, then shuts down in order: stop accepting mail,
// stop the outbox worker, then (in the caller) close the database.
func (a *app) serve(ctx context.Context, started func(*servers)) error {
	cfg := a.cfg
	relay := &mailout.Relay{Addr: cfg.Outbound.Relay, TLS: cfg.Outbound.TLS, Hostname: cfg.Inbound.Hostname, Insecure: cfg.Outbound.TLSInsecure}
	w := mailout.NewWorker(a.store, relay, a.log.With("part", "outbox"))
	w.RetryBase = dur(cfg.Outbound.RetryBase, time.Minute)
	w.GiveUp = dur(cfg.Outbound.GiveUpAfter, 120*time.Hour)
	a.pipeline.OnCommit = w.Wake
	s := &servers{worker: w}
	httpSrv, err := a.listen(s)
	if err != nil {
		return err
	}
	wctx, cancelWorker := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); w.Run(wctx) }()
	stopPollers, err := a.startPollers(ctx)
	if err != nil {
		cancelWorker()
		return err
	}
	stopCron, err := a.startScheduler(ctx)
	if err != nil {
		stopPollers()
		cancelWorker()
		return err
	}
	a.log.Info("serving", "smtp", s.smtpAddr(), "lmtp", s.lmtpAddr(), "admin", s.adminAddr())
	if started != nil {
		started(s)
	}
	<-ctx.Done()
	a.log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, srv := range []*mailin.Server{s.smtp, s.lmtp} {
		if srv != nil {
			_ = srv.Shutdown(sctx)
		}
	}
	if httpSrv != nil {
		_ = httpSrv.Shutdown(sctx)
	}
	stopPollers()
	stopCron()
	cancelWorker()
	wg.Wait()
	return nil
}

// listen starts the SMTP, LMTP and admin listeners that are configured.
func (a *app) listen(s *servers) (*http.Server, error) {
	cfg := a.cfg
	var err error
	if cfg.Inbound.SMTPListen != "" {
		if s.smtp, err = mailin.Listen(cfg.Inbound.SMTPListen, false, cfg.Inbound, a.pipeline, a.log.With("part", "smtp")); err != nil {
			return nil, err
		}
	}
	if cfg.Inbound.LMTPListen != "" {
		if s.lmtp, err = mailin.Listen(cfg.Inbound.LMTPListen, true, cfg.Inbound, a.pipeline, a.log.With("part", "lmtp")); err != nil {
			return nil, err
		}
	}
	if cfg.Admin.Listen == "" {
		return nil, nil
	}
	if s.admin, err = net.Listen("tcp", cfg.Admin.Listen); err != nil {
		return nil, fmt.Errorf("admin listen: %w", err)
	}
	srv := &http.Server{Handler: a.adminHandler(), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(s.admin); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("admin server stopped", "err", err)
		}
	}()
	return srv, nil
}
