package desk

import (
	"context"
	"fmt"
	"strings"
	"time"

	"ticketgate/rules"
	"ticketgate/store"
)

// answeredKept is how long a listing request's answered mark is kept:
// longer than a sending server retries one mail (RFC 5321, 4.5.4.1, gives
// up after 4-5 days), so a retry is never answered twice.
const answeredKept = 7 * 24 * time.Hour

// counterSpan is how long the rate counter under key counts for anything
// after its latest time: the window of the limit it feeds, or 0 for a
// bounce mark, whose one time is when its hold ends. ok is false for a
// kind the sweep does not know; such a counter is kept.
func (s *Sweeper) counterSpan(key string) (time.Duration, bool) {
	switch {
	case strings.HasPrefix(key, "in:"):
		return floodWindow, true
	case strings.HasPrefix(key, "auto:") && s.Desk != nil:
		return rules.Longest(s.Desk.AutoLimits...), true
	case strings.HasPrefix(key, "bounce:"):
		return 0, true
	case strings.HasPrefix(key, "list:answered:"):
		return answeredKept, true
	}
	return 0, false
}

// counterExpired reports whether the counter under key, holding times,
// no longer counts for anything at now.
func (s *Sweeper) counterExpired(key string, times []time.Time, now time.Time) bool {
	span, ok := s.counterSpan(key)
	return ok && rules.Expired(times, now, span)
}

// expireRates deletes the rate counters that no longer count for
// anything at now (a sender who wrote once, more than an hour ago;
// a bounce hold that ended) and returns how many. Without it the counters
// of every address that ever wrote would be kept for good. Each page is
// read without the write lock; the counters it found are deleted in one
// transaction that reads each again, so one written since is kept.
func (s *Sweeper) expireRates(ctx context.Context, now time.Time) (int, error) {
	after, total := "", 0
	for {
		var gone []string
		err := s.Store.View(ctx, func(tx store.Tx) error {
			list, next, err := tx.Rates(after, s.batch())
			for _, r := range list {
				if s.counterExpired(r.Key, r.Times, now) {
					gone = append(gone, r.Key)
				}
			}
			after = next
			return err
		})
		if err != nil {
			return total, fmt.Errorf("sweep: read rate counters: %w", err)
		}
		if len(gone) > 0 {
			n := 0
			err := s.Store.UpdateNow(ctx, func(tx store.Tx) error {
				n = 0
				for _, k := range gone {
					times, err := tx.RateTimes(k)
					if err != nil {
						return err
					}
					if times == nil || !s.counterExpired(k, times, now) {
						continue
					}
					if err := tx.PutRateTimes(k, nil); err != nil {
						return err
					}
					n++
				}
				return nil
			})
			if err != nil {
				return total, fmt.Errorf("sweep: delete rate counters: %w", err)
			}
			total += n
		}
		if after == "" {
			return total, nil
		}
	}
}
