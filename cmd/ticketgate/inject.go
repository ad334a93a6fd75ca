package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"

	"ticketgate/mailin"
)

// multiFlag collects a repeatable string flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// runInject delivers one message from stdin, for a Postfix pipe transport.
// Exit 0 means the message is committed to disk; 75 asks Postfix to retry;
// 65 is bad input and 67 an unknown recipient (Postfix bounces those). A
// configuration or key file that does not load is 75 too: Postfix
// bounces EX_CONFIG (78), and the mail must wait for the fix instead.
func runInject(ctx context.Context, args []string, stdin io.Reader, stdout io.Writer) error {
	fs, cfgPath := flags("inject")
	var to multiFlag
	fs.Var(&to, "to", "recipient (routing address or bounce address); repeatable, and any arguments are more recipients\n(Postfix: -to ${recipient}); default: the routing addresses in the message's headers")
	from := fs.String("from", "", "envelope sender (Postfix: ${sender}); \"\" is the null sender; default: the message's From address")
	if err := parseRecipients(fs, args, &to); err != nil {
		return err
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return &exitError{code: exTempFail, err: err}
	}
	raw, err := readMessage(cfg, stdin)
	if err != nil {
		return err
	}
	in, err := injectable(raw)
	if err != nil {
		return &exitError{code: exDataErr, err: err}
	}
	if !flagSet(fs, "from") {
		// Run by hand: the sender is who wrote the message.
		*from = in.From.Address
	}
	log := newLogger(os.Stderr)
	var res mailin.Result
	err = withStoreOrCreate(cfg, log, writes,
		func(a *app) error {
			res, err = a.inject(ctx, raw, to, *from)
			return err
		},
		func(c *adminClient) error {
			return c.do(ctx, "POST", "/api/inject", envelope(to, *from), raw, &res)
		})
	if err != nil {
		return injectExit(err)
	}
	fmt.Fprintf(stdout, "%s %s\n", res.TicketID, res.Action)
	return nil
}

func injectExit(err error) error {
	var ee *exitError
	var ae *apiError
	switch {
	case errors.As(err, &ee) && ee.code == exConfig:
		// Templates, agents, keys, the admin token: ops must fix them,
		// and Postfix keeps the mail meanwhile only on 75.
		return &exitError{code: exTempFail, err: ee.err}
	case errors.As(err, &ee):
		return err
	case errors.Is(err, mailin.ErrNotMail), errors.As(err, &ae) && ae.Status == http.StatusUnprocessableEntity,
		errors.As(err, &ae) && ae.Status == http.StatusRequestEntityTooLarge:
		return &exitError{code: exDataErr, err: err}
	case errors.Is(err, mailin.ErrUnknownRecipient), errors.As(err, &ae) && ae.Status == http.StatusNotFound:
		return &exitError{code: exNoUser, err: err}
	}
	return &exitError{code: exTempFail, err: err}
}

// injectable parses a message inject takes: one that parses, with a
// header. SMTP has an envelope and a sender to answer; text piped in (or
// posted to /api/inject) with no header at all is a mistake, and Postfix
// bounces 65.
func injectable(raw []byte) (*mailin.Inbound, error) {
	in, err := mailin.Parse(raw, mailin.Limits{})
	if err != nil {
		return nil, err
	}
	if len(in.Header) == 0 {
		return nil, fmt.Errorf("%w: the input has no header fields (From:, To:, Subject: ...); inject reads one whole message", mailin.ErrNotMail)
	}
	return in, nil
}

// inject delivers raw to the pipeline; with no recipients given it uses the
// routing addresses named in the message's headers. A recipient may also be
// the bounce address (VERP return path) of mail the gateway sent.
func (a *app) inject(ctx context.Context, raw []byte, to []string, from string) (mailin.Result, error) {
	d := &mailin.Delivery{MailFrom: from, Rcpts: to, RcptsFromHeader: len(to) == 0, Raw: raw, Source: "inject"}
	// A message refused here is counted and logged as one the pipeline
	// refuses.
	refuse := func(err error) (mailin.Result, error) {
		record(ctx, a.pipeline, a.log, a.metrics(), d, mailin.Result{}, err, 0)
		return mailin.Result{}, err
	}
	if _, err := injectable(raw); err != nil {
		return refuse(err)
	}
	if d.RcptsFromHeader {
		d.Rcpts = mailin.HeaderRecipients(raw, a.pipeline.Routes)
		if len(d.Rcpts) == 0 {
			return refuse(fmt.Errorf("no -to given and no routing address in the message's headers: %w", mailin.ErrUnknownRecipient))
		}
	}
	if _, _, ok := a.pipeline.Route(d.Rcpts); !ok && !slices.ContainsFunc(d.Rcpts, a.pipeline.IsBounceAddress) {
		return refuse(fmt.Errorf("%s: %w", strings.Join(d.Rcpts, ", "), mailin.ErrUnknownRecipient))
	}
	return a.intake().Deliver(ctx, d)
}

// readMessage reads one message from stdin, refusing one larger than
// max_message_bytes.
func readMessage(cfg *Config, stdin io.Reader) ([]byte, error) {
	raw, err := io.ReadAll(io.LimitReader(stdin, cfg.Inbound.MaxMessageBytes+1))
	if err != nil {
		return nil, &exitError{code: exTempFail, err: fmt.Errorf("read stdin: %w", err)}
	}
	if int64(len(raw)) > cfg.Inbound.MaxMessageBytes {
		return nil, &exitError{code: exDataErr, err: fmt.Errorf("message is larger than max_message_bytes (%d)", cfg.Inbound.MaxMessageBytes)}
	}
	return raw, nil
}

// parseRecipients parses the flags and takes every positional argument as
// one more recipient, flags and recipients in any order: Postfix's pipe
// expands "-to ${recipient}" into "-to a b c" for a message with several.
func parseRecipients(fs *flag.FlagSet, args []string, to *multiFlag) error {
	for {
		if err := parseFlags(fs, args, 0, -1); err != nil {
			return err
		}
		if fs.NArg() == 0 {
			return nil
		}
		if fs.Arg(0) == "" {
			return &usageError{fs: fs, err: errors.New("empty recipient")}
		}
		*to = append(*to, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// envelope is the query that carries recipients and sender to the admin
// API; an empty from is sent too: the null sender.
func envelope(to []string, from string) url.Values {
	return url.Values{"to": to, "from": {from}}
}

// envelopeFrom is the sender such a query carries: its from ("": the
// null sender), or without one the address in raw's From field, as
// inject and explain take it without -from.
func envelopeFrom(q url.Values, raw []byte) string {
	if q.Has("from") {
		return q.Get("from")
	}
	return headerFrom(raw)
}

// flagSet reports whether the flag name was given on the command line.
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}
