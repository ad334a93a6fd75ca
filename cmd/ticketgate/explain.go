package main

import (
	"context"
	"fmt"
	"io"
	"net/http"

	"ticketgate/desk"
	"ticketgate/desk/view"
	"ticketgate/mailin"
)

// runExplain prints what the gateway would do with the message on stdin,
// without storing or sending anything.
func runExplain(ctx context.Context, args []string, stdin io.Reader, stdout io.Writer) error {
	fs, cfgPath := flags("explain")
	var to multiFlag
	fs.Var(&to, "to", "recipient (routing address); repeatable, and any arguments are more recipients; default: the routing addresses in the message's headers")
	from := fs.String("from", "", "envelope sender (as inject takes it); \"\" is the null sender; default: the message's From address")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseRecipients(fs, args, &to); err != nil {
		return err
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return &exitError{code: exConfig, err: err}
	}
	raw, err := readMessage(cfg, stdin)
	if err != nil {
		return err
	}
	if !flagSet(fs, "from") {
		*from = headerFrom(raw)
	}
	var ex *desk.Explanation
	err = withStore(cfg, newLogger(io.Discard), dryRun,
		func(a *app) error {
			ex, err = a.explain(ctx, raw, to, *from)
			return err
		},
		func(c *adminClient) error {
			return c.do(ctx, "POST", "/api/explain", envelope(to, *from), raw, &ex)
		})
	if err != nil {
		return err
	}
	if *asJSON {
		return view.Encode(stdout, ex)
	}
	for _, s := range ex.Steps {
		fmt.Fprintln(stdout, safeText(s)) // the message's addresses and subject are anyone's
	}
	return nil
}

// explain explains raw as delivered from envelope sender from ("": the
// null sender, as inject takes it) to the recipients to.
func (a *app) explain(ctx context.Context, raw []byte, to []string, from string) (*desk.Explanation, error) {
	if len(to) == 0 {
		to = mailin.HeaderRecipients(raw, a.pipeline.Routes)
	}
	return a.pipeline.Explain(ctx, &mailin.Delivery{MailFrom: from, Rcpts: to, Raw: raw, Source: "explain"})
}

func (a *app) handleExplain(w http.ResponseWriter, r *http.Request) {
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, a.cfg.Inbound.MaxMessageBytes))
	if err != nil {
		httpError(w, http.StatusRequestEntityTooLarge, err.Error())
		return
	}
	q := r.URL.Query()
	from := envelopeFrom(q, raw)
	ex, err := a.explain(r.Context(), raw, q["to"], from)
	if err != nil {
		httpError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	writeJSON(w, ex)
}

// headerFrom is the address in raw's From field, the envelope sender
// explain takes when none is given.
func headerFrom(raw []byte) string {
	in, err := mailin.Parse(raw, mailin.Limits{})
	if err != nil {
		return ""
	}
	return in.From.Address
}
