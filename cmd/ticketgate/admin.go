package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"ticketgate/desk/view"
	"ticketgate/mailin"
	"ticketgate/store"
)

// adminHandler is the admin API's routes. The listener serves it behind
// adminGuard (Host, Origin, bearer token); every request body must be of
// the media type its route declares, so no browser form reaches a route.
func (a *app) adminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		if problems := a.health(r.Context()); len(problems) > 0 {
			http.Error(w, "unhealthy: "+strings.Join(problems, "; "), http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /api/tickets", a.handleTickets)
	mux.HandleFunc("GET /api/tickets/{id}", noParams(func(w http.ResponseWriter, r *http.Request) {
		t, err := showView(r.Context(), a.store, r.PathValue("id"))
		writeRead(w, t, err)
	}))
	mux.HandleFunc("POST /api/tickets/{id}/actions", accepts(typeJSON, noParams(a.handleAction)))
	mux.HandleFunc("POST /api/sweep", accepts("", a.handleSweep))
	mux.HandleFunc("POST /api/explain", accepts(typeMail, envelopeParams(a.handleExplain)))
	mux.HandleFunc("GET /api/status", noParams(a.handleStatus))
	mux.HandleFunc("GET /api/report", a.handleReport)
	mux.HandleFunc("GET /api/outbox", noParams(a.handleOutbox))
	mux.HandleFunc("GET /api/outbox/{id}", noParams(a.handleOutboxShow))
	mux.HandleFunc("POST /api/outbox/retry", accepts("", a.handleOutboxRetry))
	mux.HandleFunc("POST /api/forget", accepts(typeJSON, noParams(a.handleForget)))
	mux.HandleFunc("POST /api/inject", accepts(typeMail, envelopeParams(a.handleInject)))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// /api/outbox/retry is also an {id} of GET /api/outbox/{id}: the
		// mux would take a GET of it for a show of mail "retry", and
		// name GET in the Allow of another method.
		if r.URL.Path == "/api/outbox/retry" && r.Method != http.MethodPost {
			w.Header().Set("Allow", "POST")
			httpError(w, http.StatusMethodNotAllowed, r.Method+" "+r.URL.Path+": method not allowed (POST)")
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// noParams serves h only for a request without query parameters: a
// route that takes none refuses one with 400, never ignores it (a forget
// asked for as a dry run, an action asked for as an agent, would be done
// for real, with the operator's rights).
func noParams(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := onlyOnce(r.URL.Query()); err != nil {
			httpError(w, http.StatusBadRequest, err.Error())
			return
		}
		h(w, r)
	}
}

// envelopeParams serves h, inject or explain, only when the query holds
// the envelope alone: to, any number of times, and from at most once.
func envelopeParams(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		for k, vs := range r.URL.Query() {
			switch {
			case k != "to" && k != "from":
				httpError(w, http.StatusBadRequest, fmt.Sprintf("unknown parameter %q (want to, from)", k))
				return
			case k == "from" && len(vs) > 1:
				httpError(w, http.StatusBadRequest, fmt.Sprintf("parameter %q given %d times", k, len(vs)))
				return
			}
		}
		h(w, r)
	}
}

// handleInject is POST /api/inject: one message (message/rfc822) with its
// envelope in the query, the handover for inject. Without a from
// parameter the sender is the message's From, as inject without -from
// has it; from= is the null sender.
func (a *app) handleInject(w http.ResponseWriter, r *http.Request) {
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, a.cfg.Inbound.MaxMessageBytes))
	if err != nil {
		httpError(w, http.StatusRequestEntityTooLarge, "message too large: "+err.Error())
		return
	}
	q := r.URL.Query()
	from := envelopeFrom(q, raw)
	res, err := a.inject(r.Context(), raw, q["to"], from)
	if err != nil {
		httpError(w, injectStatus(err), err.Error())
		return
	}
	writeJSON(w, res)
}

// injectStatus maps a delivery error to the HTTP status the inject client
// turns back into an exit code.
func injectStatus(err error) int {
	switch {
	case errors.Is(err, mailin.ErrNotMail):
		return http.StatusUnprocessableEntity
	case errors.Is(err, mailin.ErrUnknownRecipient):
		return http.StatusNotFound
	}
	return http.StatusServiceUnavailable
}

// badJSONBody answers a request whose JSON body (of the shape want) could
// not be read: 413 for a body over the route's limit, as inject and
// explain answer, else 400.
func badJSONBody(w http.ResponseWriter, err error, want string) {
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		httpError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body over %d bytes", tooLarge.Limit))
		return
	}
	httpError(w, http.StatusBadRequest, "body must be JSON "+want+": "+err.Error())
}

// endOfBody checks that nothing but white space follows the JSON value
// dec decoded: a second value, or text after it, is an error (the
// reader's, such as a body over its limit, as it comes), never passed
// over.
func endOfBody(dec *json.Decoder) error {
	tok, err := dec.Token()
	switch {
	case err == io.EOF:
		return nil
	case err != nil:
		return err
	}
	return fmt.Errorf("more after the JSON value (at %v): send one value", tok)
}

func httpError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(map[string]string{"error": strings.TrimSpace(msg)})
}

// writeRead answers a read of the store: v as JSON, or err as 404 when
// what was asked for is not there and 500 otherwise.
func writeRead(w http.ResponseWriter, v any, err error) {
	switch {
	case errors.Is(err, store.ErrNotFound):
		httpError(w, http.StatusNotFound, err.Error())
	case err != nil:
		httpError(w, http.StatusInternalServerError, err.Error())
	default:
		writeJSON(w, v)
	}
}

// writeJSON answers with v as JSON, written as the views are (no HTML
// escaping).
func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	view.Encode(w, v)
}

// showView reads ticket id with its mail, for "show" and GET
// /api/tickets/{id}.
func showView(ctx context.Context, s store.Store, id string) (*view.Ticket, error) {
	var v *view.Ticket
	err := s.View(ctx, func(tx store.Tx) error {
		t, err := tx.TicketFull(strings.ToUpper(strings.TrimSpace(id)))
		if err != nil {
			return err
		}
		queued, sent, err := tx.TicketMail(t.ID)
		if err != nil {
			return err
		}
		v = view.NewTicket(t)
		v.Mail = view.NewMail(queued, sent)
		return nil
	})
	return v, err
}
