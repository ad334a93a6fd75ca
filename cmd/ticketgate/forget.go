package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"ticketgate/desk"
	"ticketgate/desk/view"
	"ticketgate/store"
)

// forgetRequest is the body of POST /api/forget.
type forgetRequest struct {
	Address string `json:"address"`
	Actor   string `json:"actor,omitempty"`
}

// runForget is "ticketgate forget -config F [-as EMAIL] [-json] ADDR":
// erase a customer's personal data, handed to serve when it holds the
// database. Exit 64 for an address that is not one, 65 for one of the
// desk's own, 1 when no ticket names it, 74 when tickets were passed
// over because a record of theirs does not decode (the rest is erased).
func runForget(ctx context.Context, args []string, _ io.Reader, stdout io.Writer) error {
	fset, cfgPath := flags("forget")
	as := fset.String("as", adminPrincipal, "who asks for the erasure (recorded on each ticket)")
	asJSON := fset.Bool("json", false, "print the result as JSON")
	if err := parseFlags(fset, args, 1, 1); err != nil {
		return err
	}
	req := forgetRequest{Address: strings.TrimSpace(fset.Arg(0)), Actor: *as}
	if err := desk.CheckAddress(req.Address); err != nil {
		return &exitError{code: 64, err: err}
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return &exitError{code: exConfig, err: err}
	}
	var res *desk.ForgetResult
	err = withStore(cfg, newLogger(os.Stderr), writes,
		func(a *app) error {
			res, err = a.forget(ctx, req, "")
			return err
		},
		func(c *adminClient) error {
			body, _ := json.Marshal(req)
			return c.do(ctx, "POST", "/api/forget", nil, body, &res)
		})
	if err != nil {
		return forgetExit(req.Address, err)
	}
	if *asJSON {
		err = view.Encode(stdout, res)
	} else {
		fmt.Fprintf(stdout, "%s is now %s: erased on %d tickets (%s), %d messages' bodies, %d queued mails dropped\n",
			strings.ToLower(req.Address), res.Pseudonym, len(res.Tickets), strings.Join(res.Tickets, " "), res.Messages, res.Outbox)
	}
	if err == nil && len(res.Damaged) > 0 {
		// The erasure is not whole: these may still name the address.
		return &exitError{code: exIOErr, err: fmt.Errorf("tickets passed over, a record of theirs does not decode (check lists every one; repair or restore them, then run forget again): %s",
			strings.Join(res.Damaged, "; "))}
	}
	return err
}

// forgetExit maps errors to exit codes as actionExit does: 1 nothing to
// erase, 64 not an address, 65 refused. An erasure that could not be
// committed (a full disk, a database or serve that refused it) changed
// nothing and exits 75, so that it is not taken for 1's "nothing to
// erase" and is run again.
func forgetExit(addr string, err error) error {
	var ae *apiError
	var ee *exitError
	switch {
	case errors.Is(err, store.ErrNotFound), errors.As(err, &ae) && ae.Status == http.StatusNotFound:
		return &exitError{code: 1, err: fmt.Errorf("no ticket names %s: nothing erased", addr)}
	case errors.Is(err, desk.ErrNotAddress), errors.As(err, &ae) && ae.Status == http.StatusBadRequest:
		return &exitError{code: 64, err: err}
	case errors.Is(err, desk.ErrBadAction), errors.As(err, &ae) && ae.Status == http.StatusUnprocessableEntity:
		return &exitError{code: exDataErr, err: err}
	case errors.As(err, &ee):
		return err
	}
	return &exitError{code: exTempFail, err: err}
}

// forget erases req.Address, its pseudonym made with the key this
// installation signs bounce addresses with ([outbound] verp_key_file),
// which every gateway sharing the database has: the same address gets the
// same pseudonym on each, every time.
//
// The customer may ask for it themselves: an actor who is the address
// erased is recorded, and logged, as its pseudonym, not by the address.
func (a *app) forget(ctx context.Context, req forgetRequest, via string) (*desk.ForgetResult, error) {
	addr := strings.ToLower(strings.TrimSpace(req.Address))
	pseudonym := desk.Pseudonym(a.pseudonymKey, addr)
	actor := req.Actor
	if strings.EqualFold(strings.TrimSpace(actor), addr) {
		actor = pseudonym
	}
	return a.pipeline.Forget(ctx, desk.Forget{Addr: addr, Pseudonym: pseudonym, Actor: actor, Via: via})
}

// handleForget is POST /api/forget {"address": ..., "actor": ...}, the
// handover for runForget: 200 with the result, 400 for a body or address
// that is not one, 413 for a body over 64 KiB, 404 when no ticket names
// the address, 422 for an address that may not be erased (the desk's own,
// an agent's).
func (a *app) handleForget(w http.ResponseWriter, r *http.Request) {
	var req forgetRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16))
	dec.DisallowUnknownFields()
	err := dec.Decode(&req)
	if err == nil {
		err = endOfBody(dec)
	}
	if err != nil {
		badJSONBody(w, err, `{"address":..., "actor":...}`)
		return
	}
	var via string
	req.Actor, via = apiActor(req.Actor)
	res, err := a.forget(r.Context(), req, via)
	writeActionResult(w, res, err)
}
