package main

import (
	"context"
	"errors"
	"io"
	"net/http"
)

// startPollers starts one IMAP poller per [[imap]] mailbox; stop cancels
// them and waits.
func (a *app) startPollers(ctx context.Context) (stop func(), err error) { return func() {}, nil }

// runStatus is "ticketgate status -config F".
func runStatus(context.Context, []string, io.Reader, io.Writer) error {
	return errors.New("status: not available yet")
}

// handleStatus is GET /api/status.
func (a *app) handleStatus(w http.ResponseWriter, r *http.Request) {
	httpError(w, http.StatusNotImplemented, "not available yet")
}
