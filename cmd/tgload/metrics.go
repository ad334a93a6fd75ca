package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// commits are the bbolt store's grouped commits so far, from the
// gateway's /metrics: how many, and the write calls they carried.
type commits struct {
	n, calls float64
}

// readCommits reads ticketgate_store_commit_batch_size from the /metrics
// of the admin API at addr (host:port).
func readCommits(ctx context.Context, addr string) (commits, error) {
	var c commits
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return c, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return c, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return c, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	seen := 0
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		var into *float64
		switch name {
		case "ticketgate_store_commit_batch_size_count":
			into = &c.n
		case "ticketgate_store_commit_batch_size_sum":
			into = &c.calls
		}
		if !ok || into == nil {
			continue
		}
		if *into, err = strconv.ParseFloat(value, 64); err != nil {
			return c, fmt.Errorf("/metrics: %s %q: %w", name, value, err)
		}
		seen++
	}
	if err := sc.Err(); err != nil {
		return c, fmt.Errorf("read /metrics: %w", err)
	}
	if seen != 2 {
		return c, fmt.Errorf("/metrics has no ticketgate_store_commit_batch_size (not the bbolt store?)")
	}
	return c, nil
}

// perCommit is the line that says how the run's messages (ok) shared the
// commits between before and after.
func perCommit(before, after commits, ok int) string {
	n, calls := after.n-before.n, after.calls-before.calls
	if n <= 0 {
		return "  commits: none\n"
	}
	return fmt.Sprintf("  commits: %.0f, %.1f messages a commit (%.1f store calls a commit)\n", n, float64(ok)/n, calls/n)
}
