package main

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path/filepath"
	"time"

	"ticketgate/desk"
	"ticketgate/mailin"
	"ticketgate/mailout"
	"ticketgate/rules"
	"ticketgate/store"
	"ticketgate/store/boltdb"
)

// app is the gateway assembled from its configuration: the store and the
// pipeline every way of bringing mail in shares.
type app struct {
	cfg      *Config
	log      *slog.Logger
	store    store.Store // with the policy's due times once policySetup ran
	pipeline *desk.Pipeline
	gw       *gateway // the serving gateway; nil outside serve
	// pseudonymKey makes the pseudonyms of erased addresses (forget): the
	// VERP key, which every gateway sharing the database has.
	pseudonymKey []byte
	// key reads a key file: loadOrCreateKey, or for a command that only
	// reads, readKeyOrTemporary.
	key func(path string) ([]byte, error)
}

func openApp(cfg *Config, log *slog.Logger, opts boltdb.Options) (*app, error) {
	load := loadOrCreateKey
	if opts.ReadOnly {
		// A command that only reads makes no key files: serve and
		// inject make the installation's.
		load = readKeyOrTemporary
	}
	return openAppKeys(cfg, log, opts, load)
}

// openAppFor opens the app for a command that accesses the database as
// acc, waiting up to wait for another process's lock.
func openAppFor(cfg *Config, log *slog.Logger, acc access, wait time.Duration) (*app, error) {
	opts := boltdb.Options{ReadOnly: acc == reads, LockTimeout: wait}
	if acc == dryRun {
		// It stores nothing, so it makes no key files either.
		return openAppKeys(cfg, log, opts, readKeyOrTemporary)
	}
	return openApp(cfg, log, opts)
}

// openAppKeys is openApp reading the key files with load.
func openAppKeys(cfg *Config, log *slog.Logger, opts boltdb.Options, load func(string) ([]byte, error)) (*app, error) {
	st, err := openStore(cfg, opts, log)
	if err != nil {
		return nil, err
	}
	a, err := buildApp(cfg, log, st, load)
	if err != nil {
		st.Close()
		// Templates, agents, keys: a setup problem ops must fix (inject
		// exits 75 for it instead: Postfix bounces EX_CONFIG).
		return nil, &exitError{code: exConfig, err: err}
	}
	return a, nil
}

func newApp(cfg *Config, log *slog.Logger, st store.Store) (*app, error) {
	return buildApp(cfg, log, st, loadOrCreateKey)
}

// buildApp is newApp reading the key files with load.
func buildApp(cfg *Config, log *slog.Logger, st store.Store, load func(string) ([]byte, error)) (*app, error) {
	tpl, err := mailout.LoadTemplates(cfg.Outbound.Templates)
	if err != nil {
		return nil, fmt.Errorf("load templates: %w", err)
	}
	rules.CompileToken(cfg.Tickets.Prefix)
	verpKey, err := load(verpKeyFile(cfg))
	if err != nil {
		return nil, fmt.Errorf("bounce address key: %w", err)
	}
	lim := cfg.Limits
	mailer := &mailout.Mailer{Hostname: cfg.Inbound.Hostname, FromName: cfg.Outbound.FromName, Templates: tpl,
		VERPKeys: [][]byte{verpKey}, BounceHold: dur(lim.BounceHold, 60*24*time.Hour), MaxRecipients: cfg.Outbound.MaxRecipientsPerMail}
	if lim.AutoRepliesPerHour > 0 {
		mailer.AutoLimits = append(mailer.AutoLimits, rules.Limit{Per: time.Hour, Max: lim.AutoRepliesPerHour})
	}
	if lim.AutoRepliesPerDay > 0 {
		mailer.AutoLimits = append(mailer.AutoLimits, rules.Limit{Per: 24 * time.Hour, Max: lim.AutoRepliesPerDay})
	}
	p := &desk.Pipeline{
		Store: st, Routes: cfg.Routes, Prefix: cfg.Tickets.Prefix, Sequential: cfg.Tickets.Numbers == "sequential", Shared: cfg.Store.Postgres(), Hostname: cfg.Inbound.Hostname,
		Desk: mailer, Log: log, MaxParticipants: cfg.Tickets.MaxParticipants,
		Policies: desk.Policies{PerSender: lim.InboundPerSender, PerDomain: lim.InboundPerDomain, PerTicket: lim.InboundPerTicket,
			MaxAttachments: lim.MaxAttachments, MaxAttachmentBytes: lim.MaxAttachmentBytes, MaxAttachmentsTotal: lim.MaxAttachmentsTotal,
			BounceHold: mailer.BounceHold},
		Limits: mailin.Limits{MaxHeaderBytes: cfg.Inbound.MaxHeaderBytes, MaxDepth: cfg.Inbound.MaxMIMEDepth, MaxParts: cfg.Inbound.MaxMIMEParts},
		Thread: rules.ThreadPolicy{ReopenWindow: dur(cfg.Tickets.ReopenWindow, 168*3600e9)},
	}
	a := &app{cfg: cfg, log: log, store: st, pipeline: p, pseudonymKey: verpKey, key: load}
	if err := a.agentSetup(); err != nil {
		return nil, err
	}
	if err := a.policySetup(); err != nil {
		return nil, err
	}
	return a, nil
}

func (a *app) close() error { return a.store.Close() }

// verpKeyFile is [outbound] verp_key_file, or verp.key next to the
// database.
func verpKeyFile(cfg *Config) string {
	if f := cfg.Outbound.VERPKeyFile; f != "" {
		return f
	}
	return filepath.Join(filepath.Dir(cfg.Store.Path), "verp.key")
}

// readKeyOrTemporary reads a key file, or without one returns a random
// key it does not keep: the key of a command that only reads, which
// signs nothing that is kept or sent.
func readKeyOrTemporary(path string) ([]byte, error) {
	key, err := readKey(path)
	if errors.Is(err, fs.ErrNotExist) {
		key = make([]byte, 32)
		_, err = rand.Read(key)
	}
	return key, err
}
