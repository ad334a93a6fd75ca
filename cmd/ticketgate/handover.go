package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"ticketgate/store"
	"ticketgate/store/boltdb"
)

// withStore runs local when this process can open the database, and remote
// when a running "serve" holds it (bbolt allows one writer): the command is
// then handed over to serve's admin API. A missing database is an error
// (EX_NOINPUT): only serve and inject create one.
func withStore(cfg *Config, log *slog.Logger, readOnly bool, local func(*app) error, remote func(*adminClient) error) error {
	if err := needDatabase(cfg); err != nil {
		return err
	}
	return withStoreOrCreate(cfg, log, readOnly, local, remote)
}

// withStoreOrCreate is withStore for inject, which creates the database
// when Postfix hands it the first message before serve ever ran.
func withStoreOrCreate(cfg *Config, log *slog.Logger, readOnly bool, local func(*app) error, remote func(*adminClient) error) error {
	// One quick try: a running serve is asked at once instead of waited for.
	a, err := openApp(cfg, log, boltdb.Options{ReadOnly: readOnly, LockTimeout: time.Millisecond})
	if errors.Is(err, store.ErrLocked) {
		if cfg.Admin.Listen != "" {
			err := remote(&adminClient{base: "http://" + cfg.Admin.Listen})
			if !errors.Is(err, errAdminDown) {
				return err
			}
		}
		// No serve to hand over to: another short-lived command (a
		// parallel inject from Postfix) holds the database. Wait for it.
		a, err = openApp(cfg, log, boltdb.Options{ReadOnly: readOnly, LockTimeout: lockWait})
		if errors.Is(err, store.ErrLocked) {
			why := "its admin API does not answer"
			if cfg.Admin.Listen == "" {
				why = "admin.listen is off so it cannot be handed over"
			}
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

// lockWait is how long a command waits for another command's lock when no
// running serve answers.
var lockWait = 5 * time.Second

// errAdminDown is returned when the admin API of the process holding the
// database does not answer.
var errAdminDown = errors.New("admin API does not answer")

// errNoDatabase is returned to every command but serve and inject when the
// database does not exist.
var errNoDatabase = errors.New("no database")

// adminClient talks to a running serve's admin API.
type adminClient struct {
	base string
}

var httpClient = &http.Client{Timeout: 5 * time.Minute}

// apiError is an error answer from the admin API.
type apiError struct {
	Status int
	Msg    string
}

func (e *apiError) Error() string { return e.Msg }

func (c *adminClient) do(ctx context.Context, method, path string, q url.Values, body []byte, out any) error {
	u := c.base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(body))
	if err != nil {
		return err
	}
	resp, err := httpClient.Do(req)
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
