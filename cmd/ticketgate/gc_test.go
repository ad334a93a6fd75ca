package main

import (
	"math"
	"runtime/debug"
	"testing"
)

// TestGCDefaults: serve's collector settings apply when the environment
// sets neither GOGC nor GOMEMLIMIT, and the environment's win otherwise.
func TestGCDefaults(t *testing.T) {
	restore := func(percent int, limit int64) {
		debug.SetGCPercent(percent)
		debug.SetMemoryLimit(limit)
	}
	defer restore(debug.SetGCPercent(100), debug.SetMemoryLimit(math.MaxInt64))

	env := map[string]string{}
	getenv := func(k string) string { return env[k] }
	for _, c := range []struct {
		env     map[string]string
		percent int
		limit   int64
		name    string
	}{
		{map[string]string{}, gcPercent, gcMemoryLimit, "neither set: serve's defaults"},
		{map[string]string{"GOGC": "100"}, 100, math.MaxInt64, "GOGC set: the runtime's"},
		{map[string]string{"GOMEMLIMIT": "1GiB"}, 100, math.MaxInt64, "GOMEMLIMIT set: the runtime's"},
	} {
		restore(100, math.MaxInt64)
		env = c.env
		setGCDefaults(getenv)
		percent, limit := debug.SetGCPercent(100), debug.SetMemoryLimit(-1)
		if percent != c.percent || limit != c.limit {
			t.Errorf("%s: GC percent %d, memory limit %d; want %d, %d", c.name, percent, limit, c.percent, c.limit)
		}
	}
}
