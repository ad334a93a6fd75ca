package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"ticketgate/store"
)

// access is what a command does with the database, and so whether it
// may make the key files missing beside it.
type access int

const (
	// writes: the command changes tickets (inject, the actions, sweep,
	// forget); a missing key file is made as serve makes it.
	writes access = iota
	// reads: the database opens read only and no key file is made.
	reads
	// dryRun: the command writes only in transactions it rolls back
	// (explain, sweep -dry-run): the database opens for writing, but as
	// for reads no key file is made.
	dryRun
)

// withStore runs local when this process can open the database, and remote
// when a running "serve" holds it (bbolt allows one writer): the command is
// then handed over to serve's admin API. A missing database is an error
// (EX_NOINPUT): only serve and inject create one.
func withStore(cfg *Config, log *slog.Logger, acc access, local func(*app) error, remote func(*adminClient) error) error {
	if err := needDatabase(cfg); err != nil {
		return err
	}
	return withStoreOrCreate(cfg, log, acc, local, remote)
}

// withStoreOrCreate is withStore for inject, which creates the database
// when Postfix hands it the first message before serve ever ran.
func withStoreOrCreate(cfg *Config, log *slog.Logger, acc access, local func(*app) error, remote func(*adminClient) error) error {
	// One quick try: a running serve is asked at once instead of waited for.
	a, err := openAppFor(cfg, log, acc, time.Millisecond)
	if errors.Is(err, store.ErrLocked) {
		why, err := handOver(cfg, remote)
		if !errors.Is(err, errAdminDown) {
			return err
		}
		// No serve to hand over to: another short-lived command (a
		// parallel inject from Postfix) holds the database. Wait for it.
		a, err = openAppFor(cfg, log, acc, lockWait)
		if errors.Is(err, store.ErrLocked) {
			return &exitError{code: exTempFail, err: fmt.Errorf("%w and %s", err, why)}
		}
	}
	var ee *exitError
	if errors.As(err, &ee) {
		return err
	}
	if err != nil {
		return &exitError{code: exTempFail, err: err}
	}
	defer a.close()
	return local(a)
}

// handOver runs remote against serve's admin API. It returns
// errAdminDown, with why for the user, when there is no admin API to ask.
func handOver(cfg *Config, remote func(*adminClient) error) (why string, err error) {
	if cfg.Admin.Listen == "" {
		return "admin.listen is off so it cannot be handed over", errAdminDown
	}
	c, err := newAdminClient(cfg)
	if errors.Is(err, fs.ErrNotExist) {
		// serve writes the token as its admin API starts: none yet,
		// no admin API yet.
		return "its admin API does not answer (" + err.Error() + ")", errAdminDown
	}
	if err != nil {
		return "", &exitError{code: exConfig, err: fmt.Errorf("%s is in use and cannot be handed over to serve: %w", cfg.Store.Path, err)}
	}
	return "its admin API does not answer", remote(c)
}

// adminClientExit is the exit for a command that must ask serve (it
// holds the database) but cannot build its client: 75 while the token
// file is missing (serve writes it as its admin API starts), 78 for one
// that cannot be read or used.
func adminClientExit(cfg *Config, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return &exitError{code: exTempFail, err: fmt.Errorf("%s is in use and serve cannot be asked: %w", cfg.Store.Path, err)}
	}
	return &exitError{code: exConfig, err: fmt.Errorf("%s is in use and cannot be handed over to serve: %w", cfg.Store.Path, err)}
}

// lockWait is how long a command waits for another command's lock when no
// running serve answers.
var lockWait = 5 * time.Second

// errAdminDown is returned when the admin API of the process holding the
// database does not answer.
var errAdminDown = errors.New("admin API does not answer")

// errNoDatabase is returned to every command but serve and inject when the
// database does not exist.
var errNoDatabase = errors.New("no database")

// adminClient talks to a running serve's admin API with its token.
type adminClient struct {
	base   string // scheme://host:port
	token  string
	client *http.Client
}

// adminTimeout bounds one handed-over command (a sweep can take a while).
const adminTimeout = 5 * time.Minute

// newAdminClient reads the token (and, for HTTPS, the certificate) serve
// uses from the files the configuration names.
func newAdminClient(cfg *Config) (*adminClient, error) {
	token, err := readAdminToken(cfg)
	if err != nil {
		return nil, err
	}
	c := &adminClient{base: "http://" + adminDialAddr(cfg.Admin.Listen), token: token, client: &http.Client{Timeout: adminTimeout}}
	if cfg.Admin.TLSCert != "" {
		tc, err := pinnedTLS(cfg.Admin.TLSCert)
		if err != nil {
			return nil, err
		}
		c.base = "https://" + adminDialAddr(cfg.Admin.Listen)
		c.client.Transport = &http.Transport{TLSClientConfig: tc, Proxy: nil}
	}
	return c, nil
}

// apiError is an error answer from the admin API.
type apiError struct {
	Status int
	Msg    string
}

func (e *apiError) Error() string { return e.Msg }

// bodyType is the media type of a request body sent to path: a whole
// message for inject and explain (an empty one too: serve says why it is
// not mail), JSON for the rest, none without a body.
func bodyType(path string, body []byte) string {
	switch {
	case path == "/api/inject" || path == "/api/explain":
		return typeMail
	case len(body) > 0:
		return typeJSON
	}
	return ""
}

// do sends one request and decodes a 2xx answer's JSON into out; other
// answers are *apiError.
func (c *adminClient) do(ctx context.Context, method, path string, q url.Values, body []byte, out any) error {
	u := c.base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(body))
	if err != nil {
		return err
	}
	if ct := bodyType(path, body); ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	resp, err := c.send(req)
	if err != nil {
		return fmt.Errorf("database is in use, and the admin API at %s: %w (%v)", c.base, errAdminDown, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return &exitError{code: exTempFail, err: err}
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error string `json:"error"`
		}
		_ = json.Unmarshal(b, &e)
		if e.Error == "" {
			e.Error = resp.Status
		}
		return &apiError{Status: resp.StatusCode, Msg: e.Error}
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(b, out)
}

// send sends req with the token.
func (c *adminClient) send(req *http.Request) (*http.Response, error) {
	req.Header.Set("Authorization", "Bearer "+c.token)
	return c.client.Do(req)
}
