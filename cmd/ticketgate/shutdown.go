package main

import (
	"context"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"ticketgate/mailin"
)

// watchSecondSignal makes a second SIGTERM or interrupt end serve at once,
// without waiting for the grace period. Nothing acknowledged is lost: a
// 250 is sent only after its commit, and bbolt survives an abrupt exit.
func watchSecondSignal(log *slog.Logger) {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sigs // the first one ends serve's context
		<-sigs
		log.Warn("second signal: exiting at once")
		os.Exit(1)
	}()
}

// stopServing stops taking mail: the listeners close, open sessions get
// 421 for a new transaction, and a message being received has until
// shutdown.grace to finish (its commit included); then the connections
// still open are dropped. The admin API gets the same grace.
func (a *app) stopServing(s *servers, httpSrv *http.Server) {
	grace := dur(a.current().cfg.Shutdown.Grace, 30*time.Second)
	a.log.Info("shutting down", "grace", grace)
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	var wg sync.WaitGroup
	for _, srv := range []*mailin.Server{s.smtp, s.lmtp} {
		if srv == nil {
			continue
		}
		wg.Go(func() {
			if err := srv.Shutdown(ctx); err != nil {
				a.log.Warn("grace period over: dropping the connections still open", "listener", srv.Addr(), "err", err)
				srv.Close()
			}
		})
	}
	if httpSrv != nil {
		wg.Go(func() {
			if err := httpSrv.Shutdown(ctx); err != nil {
				httpSrv.Close()
			}
		})
	}
	wg.Wait()
}
