package main

import (
	"fmt"
	"log/slog"

	"ticketgate/mailin"
	"ticketgate/mailout"
	"ticketgate/rules"
	"ticketgate/store"
)

// app is the gateway assembled from its configuration: the store and the
// pipeline every way of bringing mail in shares.
type app struct {
	cfg      *Config
	log      *slog.Logger
	store    *store.Store
	pipeline *mailin.Pipeline
}

func openApp(cfg *Config, log *slog.Logger, opts store.Options) (*app, error) {
	st, err := store.Open(cfg.Store.Path, opts, log)
	if err != nil {
		return nil, err
	}
	a, err := newApp(cfg, log, st)
	if err != nil {
		st.Close()
		return nil, err
	}
	return a, nil
}

func newApp(cfg *Config, log *slog.Logger, st *store.Store) (*app, error) {
	tpl, err := mailout.LoadTemplates(cfg.Outbound.Templates)
	if err != nil {
		return nil, fmt.Errorf("load templates: %w", err)
	}
	rules.CompileToken(cfg.Tickets.Prefix)
	p := &mailin.Pipeline{
		Store: st, Routes: cfg.Routes, Prefix: cfg.Tickets.Prefix, Hostname: cfg.Inbound.Hostname,
		Desk: &mailout.Desk{Hostname: cfg.Inbound.Hostname, FromName: cfg.Outbound.FromName, Templates: tpl}, Log: log,
		Limits: mailin.Limits{MaxHeaderBytes: cfg.Inbound.MaxHeaderBytes, MaxDepth: cfg.Inbound.MaxMIMEDepth, MaxParts: cfg.Inbound.MaxMIMEParts},
		Thread: rules.ThreadPolicy{ReopenWindow: dur(cfg.Tickets.ReopenWindow, 168*3600e9)},
	}
	a := &app{cfg: cfg, log: log, store: st, pipeline: p}
	if err := a.agentSetup(); err != nil {
		return nil, err
	}
	if err := a.policySetup(); err != nil {
		return nil, err
	}
	return a, nil
}

func (a *app) close() error { return a.store.Close() }
