package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// commits are the bbolt store's grouped commits so far, from the
// gateway's /metrics: how many, and the write calls they carried.
type commits struct {
	n, calls float64
}

// readCommits reads ticketgate_store_commit_batch_size from the admin
// API's /metrics.
func readCommits(ctx context.Context, api admin) (commits, error) {
	var c commits
	err := api.get(ctx, "/metrics", 5*time.Second, func(body io.Reader) error {
		seen := 0
		sc := bufio.NewScanner(body)
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
			var err error
			if *into, err = strconv.ParseFloat(value, 64); err != nil {
				return fmt.Errorf("%s %q: %w", name, value, err)
			}
			seen++
		}
		if err := sc.Err(); err != nil {
			return err
		}
		if seen != 2 {
			return fmt.Errorf("no ticketgate_store_commit_batch_size (not the bbolt store?)")
		}
		return nil
	})
	return c, err
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
