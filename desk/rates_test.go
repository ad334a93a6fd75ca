package desk

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"ticketgate/rules"
	"ticketgate/store"
)

// TestSweepDeletesCountersThatNoLongerCount: the sweep deletes a rate
// counter once it counts for nothing (flood counters an hour after their
// last message, auto-reply counters after the longest auto limit's
// window, a bounce mark when its hold ends, a listing's answered mark
// after a week) and keeps every counter that still counts: a sender at
// its limit is still refused after a sweep within the hour. A counter of
// a kind it does not know is kept.
func TestSweepDeletesCountersThatNoLongerCount(t *testing.T) {
	ctx := context.Background()
	g := startGateway(t)
	t0 := time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)
	now := t0
	g.pipeline.Now = func() time.Time { return now }
	g.pipeline.Policies = Policies{PerSender: 2, PerDomain: 100}
	g.pipeline.Desk.AutoLimits = []rules.Limit{{Per: time.Hour, Max: 10}, {Per: 24 * time.Hour, Max: 40}}
	for i := range 2 {
		g.mustSend("n@customer.example", []string{"support@example.com"}, msg("n@customer.example", "support@example.com", fmt.Sprintf("flood %d", i), "x"))
	}
	err := g.store.UpdateNow(ctx, func(tx store.Tx) error {
		if err := tx.MarkBouncing("gone@customer.example", t0.Add(3*time.Hour)); err != nil {
			return err
		}
		if err := tx.PutRateTimes(answeredKey("<m1@customer.example>"), []time.Time{t0}); err != nil {
			return err
		}
		return tx.PutRateTimes("someday:x", []time.Time{t0})
	})
	if err != nil {
		t.Fatal(err)
	}
	sw := &Sweeper{Store: g.store, Desk: g.pipeline.Desk, Log: testLogger(t),
		Policy: &Policy{Lifecycle: rules.DefaultLifecycle(), SLA: rules.DefaultSLAPolicy()}}
	sweep := func(after time.Duration) []string {
		t.Helper()
		if _, err := sw.Sweep(ctx, t0.Add(after), false); err != nil {
			t.Fatalf("sweep at t0+%s: %v", after, err)
		}
		var keys []string
		err := g.store.View(ctx, func(tx store.Tx) error {
			for after := ""; ; {
				list, next, err := tx.Rates(after, 2)
				if err != nil {
					return err
				}
				for _, r := range list {
					keys = append(keys, r.Key)
				}
				if after = next; after == "" {
					return nil
				}
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(keys)
		return keys
	}
	want := []string{"auto:n@customer.example", "bounce:gone@customer.example", "in:domain:customer.example",
		"in:sender:n@customer.example", "list:answered:<m1@customer.example>", "someday:x"}
	if got := sweep(59 * time.Minute); !slices.Equal(got, want) {
		t.Fatalf("after a sweep within the hour: %q, want %q", got, want)
	}
	now = t0.Add(59 * time.Minute)
	err = g.send("n@customer.example", []string{"support@example.com"}, msg("n@customer.example", "support@example.com", "flood 3", "x"))
	var se *smtp.SMTPError
	if !errors.As(err, &se) || se.Code != 451 {
		t.Fatalf("third message within the hour, after a sweep: %v, want 451", err)
	}
	for _, step := range []struct {
		after time.Duration
		gone  string
	}{
		{61 * time.Minute, "in:"},
		{3 * time.Hour, "bounce:"},
		{24*time.Hour + time.Minute, "auto:"},
		{7*24*time.Hour + time.Minute, "list:answered:"},
	} {
		want = slices.DeleteFunc(want, func(k string) bool { return len(k) >= len(step.gone) && k[:len(step.gone)] == step.gone })
		if got := sweep(step.after); !slices.Equal(got, want) {
			t.Errorf("after a sweep at t0+%s: %q, want %q", step.after, got, want)
		}
	}
}
