package main

import (
	"context"
	"os"
	"os/signal"
	"reflect"
	"syscall"
)

// watchReload reloads the configuration on every SIGHUP until ctx ends.
// The signal is taken from the moment watchReload returns (serve takes it
// from its start, and a HUP sent meanwhile is applied now), so a HUP can
// no longer end the process; once ctx ends (serve shutting down) it is
// ignored, not given back its default, which would end serve in the
// middle of its shutdown.
func (g *gateway) watchReload(ctx context.Context) {
	hup := g.hup
	if hup == nil {
		hup = make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
	}
	go func() {
		defer signal.Ignore(syscall.SIGHUP)
		defer func() {
			if r := recover(); r != nil {
				g.log.Error("reload panic", "panic", r)
			}
		}()
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				g.reload()
			}
		}
	}()
}

// reload reads the config file again and swaps in an app built from it:
// templates, agents and their keys, routes, plans, lifecycle and SLA
// policy, limits, notify_status, from_name and the log level. A key file
// the new config names must be there: a reload makes none. Mail being
// received finishes with the pipeline it started with; open connections
// stay. A config that does not load or build is refused with a log line
// and the running one stays. Settings bound at start-up (listeners,
// database, relay, IMAP mailboxes, the ticket prefix, the sweep schedule,
// the log format) keep their running values; a change to them is logged
// as needing a restart.
func (g *gateway) reload() error {
	g.reloading.Lock()
	defer g.reloading.Unlock()
	old := g.current()
	err := g.swap(old)
	g.Reload(err)
	if err != nil {
		g.log.Error("configuration reload refused; the running configuration stays", "config", g.cfgPath, "err", err)
	}
	return err
}

func (g *gateway) swap(old *app) error {
	cfg, err := loadConfig(g.cfgPath)
	if err != nil {
		return err
	}
	restart := keepStartupSettings(old.cfg, cfg)
	// A reload reads the key files and never makes one: a new key where a
	// changed setting points at no file (a typo) would turn away every
	// agent's answer to the addresses signed with the one in use.
	a, err := buildApp(cfg, g.log, g.base, readKey)
	if err != nil {
		return err
	}
	a.gw = g
	a.pipeline.OnCommit = g.wake
	if list, ok := running.Load(old); ok {
		running.Store(a, list) // the same pollers serve the new generation
	}
	g.install(a)
	level, _ := parseLevel(cfg.Log.Level)
	g.level.Set(level)
	attrs := []any{"config", g.cfgPath, "routes", len(cfg.Routes), "agents", len(cfg.Agents), "log_level", level.String()}
	if len(restart) > 0 {
		attrs = append(attrs, "restart_needed_for", restart)
	}
	g.log.Info("configuration reloaded", attrs...)
	return nil
}

// keepStartupSettings copies into next the settings of running that only a
// restart applies, and returns the names of those next wanted to change.
func keepStartupSettings(running, next *Config) []string {
	var changed []string
	keep := func(name string, cur, want any) {
		if !reflect.DeepEqual(reflect.ValueOf(cur).Elem().Interface(), reflect.ValueOf(want).Elem().Interface()) {
			changed = append(changed, name)
			reflect.ValueOf(want).Elem().Set(reflect.ValueOf(cur).Elem())
		}
	}
	keep("store", &running.Store, &next.Store)
	keep("inbound", &running.Inbound, &next.Inbound)
	keep("admin", &running.Admin, &next.Admin)
	keep("imap", &running.IMAP, &next.IMAP)
	keep("tickets.prefix", &running.Tickets.Prefix, &next.Tickets.Prefix)
	keep("tickets.numbers", &running.Tickets.Numbers, &next.Tickets.Numbers)
	keep("lifecycle.schedule", &running.Lifecycle.Schedule, &next.Lifecycle.Schedule)
	keep("log.format", &running.Log.Format, &next.Log.Format)
	// The relay and its retry policy belong to the outbox worker;
	// templates and from_name are the mailer's and reload.
	out := next.Outbound
	out.Templates, out.FromName = running.Outbound.Templates, running.Outbound.FromName
	if !reflect.DeepEqual(out, running.Outbound) {
		changed = append(changed, "outbound (relay settings)")
		tpl, from := next.Outbound.Templates, next.Outbound.FromName
		next.Outbound = running.Outbound
		next.Outbound.Templates, next.Outbound.FromName = tpl, from
	}
	return changed
}
