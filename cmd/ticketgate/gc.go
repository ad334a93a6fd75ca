package main

import "runtime/debug"

// serve's collector: the default (collect when the heap has doubled)
// spends a large share of a busy gateway's CPU on the many short-lived
// buffers of each mail. Unless the environment sets GOGC or GOMEMLIMIT,
// serve lets the heap grow to four times what is live (GOGC=300) under a
// soft limit of gcMemoryLimit, which bounds what that costs in memory:
// near the limit the collector runs as often as it needs (at most half
// the CPU). docs/operations.md, "Memory".
const (
	gcPercent     = 300
	gcMemoryLimit = 128 << 20
)

func setGCDefaults(getenv func(string) string) {
	if getenv("GOGC") != "" || getenv("GOMEMLIMIT") != "" {
		return
	}
	debug.SetGCPercent(gcPercent)
	debug.SetMemoryLimit(gcMemoryLimit)
}
