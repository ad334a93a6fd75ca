package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// seed sends n new tickets over one connection before the timed run and
// learns their ids from the admin API at api, so that token replies go to
// tickets that exist. With fake (the discard server) the ids are made up:
// the load has the same shape. It says what it did.
func seed(ctx context.Context, l load, m *mix, n int, api admin, fake bool) (string, error) {
	if n == 0 {
		return "no seed tickets: no token replies", nil
	}
	l.conns, l.max = 1, n
	l.duration = min(l.duration+30*time.Second, maxDuration)
	m.mu.Lock()
	m.seeding = true
	m.mu.Unlock()
	res := l.run(ctx, m)
	m.mu.Lock()
	m.seeding = false
	m.mu.Unlock()
	if res.ok == 0 {
		return "", fmt.Errorf("%s: no seed message accepted (%s)", l.addr, strings.TrimSpace(res.describe("seed")))
	}
	m.mu.Lock()
	seeds := append([]thread(nil), m.threads...)
	m.mu.Unlock()
	switch {
	case fake:
		for i := range seeds {
			seeds[i].ticket = fmt.Sprintf("HS-9%05d", i)
		}
	case api.addr == "":
		return fmt.Sprintf("%d seed tickets, no -api: no token replies", len(seeds)), nil
	default:
		ids, err := ticketIDs(ctx, api)
		if err != nil {
			return "", fmt.Errorf("learn the seed tickets' ids (-api \"\" to go without): %w", err)
		}
		known := seeds[:0]
		for _, t := range seeds {
			if id := ids[t.subject]; id != "" {
				t.ticket = id
				known = append(known, t)
			}
		}
		seeds = known
	}
	m.known(seeds)
	return fmt.Sprintf("%d seed tickets, %d ids known for token replies", res.ok, len(seeds)), nil
}

// ticketIDs maps subjects to ticket ids, from the admin API's list of
// new tickets.
func ticketIDs(ctx context.Context, api admin) (map[string]string, error) {
	var list []struct{ ID, Subject string }
	err := api.get(ctx, "/api/tickets?status=new", 30*time.Second, func(body io.Reader) error {
		return json.NewDecoder(body).Decode(&list)
	})
	if err != nil {
		return nil, err
	}
	ids := make(map[string]string, len(list))
	for _, t := range list {
		ids[t.Subject] = t.ID
	}
	return ids, nil
}

// admin is the gateway's admin API: its address (host:port) and the
// bearer token its routes but /healthz and /metrics want.
type admin struct {
	addr, token string
}

// get GETs path and hands the body of a 200 to read.
func (a admin) get(ctx context.Context, path string, timeout time.Duration, read func(io.Reader) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+a.addr+path, nil)
	if err != nil {
		return err
	}
	if a.token != "" {
		req.Header.Set("Authorization", "Bearer "+a.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusUnauthorized && a.token == "":
		return fmt.Errorf("GET %s: %s: give the admin token with -token-file", path, resp.Status)
	case resp.StatusCode != http.StatusOK:
		return fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	if err := read(resp.Body); err != nil {
		return fmt.Errorf("GET %s: %w", path, err)
	}
	return nil
}
