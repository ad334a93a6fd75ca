package main

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
)

// LogConfig is the [log] section: how serve writes its log.
type LogConfig struct {
	Format string `toml:"format"` // "text" (logfmt, the default) or "json"
	Level  string `toml:"level"`  // debug, info (default), warn, error
}

// ShutdownConfig is the [shutdown] section.
type ShutdownConfig struct {
	// Grace is how long SIGTERM waits for messages being received to
	// finish before it drops the connections; default 30s.
	Grace string `toml:"grace"`
}

// check returns what is wrong with the section, naming the keys.
func (c LogConfig) check() []string {
	var errs []string
	switch c.Format {
	case "", "text", "json":
	default:
		errs = append(errs, fmt.Sprintf("log.format %q must be \"text\" or \"json\"", c.Format))
	}
	if _, ok := parseLevel(c.Level); !ok {
		errs = append(errs, fmt.Sprintf("log.level %q must be debug, info, warn or error", c.Level))
	}
	return errs
}

func parseLevel(s string) (slog.Level, bool) {
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug, true
	case "", "info":
		return slog.LevelInfo, true
	case "warn", "warning":
		return slog.LevelWarn, true
	case "error":
		return slog.LevelError, true
	}
	return 0, false
}

// newConfigLogger returns the logger [log] asks for, its level held in
// level so that a reload can change it.
func newConfigLogger(c LogConfig, w io.Writer, level *slog.LevelVar) *slog.Logger {
	l, _ := parseLevel(c.Level)
	level.Set(l)
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
