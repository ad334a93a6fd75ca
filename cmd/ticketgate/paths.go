package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"ticketgate/mailout"
)

// exNoInput is the exit code (sysexits.h EX_NOINPUT) of a command that
// needs the database when there is none.
const exNoInput = 66

// resolvePaths makes every file path in the configuration absolute, taking
// relative ones from base: the config file's directory, so that a command
// started anywhere (Postfix runs its pipe in its spool directory, an
// operator in their home) uses the same files; or the current directory for
// the built-in defaults, as the README's quick start expects (./data).
func (c *Config) resolvePaths(base string) {
	for _, p := range c.pathFields() {
		if *p != "" && !filepath.IsAbs(*p) { // "" means "not set" for every path key
			*p = filepath.Join(base, *p)
		}
	}
	// relay is a host:port or "maildir:PATH"; only the PATH is a path.
	if dir, ok := mailout.MaildirPath(c.Outbound.Relay); ok && dir != "" && !filepath.IsAbs(dir) {
		c.Outbound.Relay = mailout.MaildirPrefix + filepath.Join(base, dir)
	}
}

// pathFields returns every configuration value that names a file or a
// directory. A new path key must be added here: TestEveryPathKeyIsResolved
// fails until it is.
func (c *Config) pathFields() []*string {
	ps := []*string{&c.Store.Path, &c.Store.DSNFile, &c.Outbound.Templates, &c.Outbound.VERPKeyFile, &c.AgentsConf.SecretFile, &c.AgentsConf.PreviousSecretFile,
		&c.Admin.TokenFile, &c.Admin.TLSCert, &c.Admin.TLSKey}
	for i := range c.IMAP {
		ps = append(ps, &c.IMAP[i].PasswordFile)
	}
	return ps
}

// source says where the configuration came from, for error messages.
func (c *Config) source() string {
	if c.file == "" {
		wd, _ := os.Getwd()
		return "the built-in defaults, relative to " + wd
	}
	return c.file
}

// needDatabase refuses a command other than serve and inject when the
// database does not exist. Opening it would create an empty one (and its
// keys, owned by whoever ran the command) wherever the configuration
// points, and the command would answer from that: an empty list, "no
// ticket", a change nobody will see.
func needDatabase(cfg *Config) error {
	if cfg.Store.Postgres() {
		return needPostgres(cfg)
	}
	_, err := os.Stat(cfg.Store.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return &exitError{code: exNoInput, err: fmt.Errorf("%w at %s (store.path from %s); serve or inject creates it",
			errNoDatabase, cfg.Store.Path, cfg.source())}
	}
	// Other errors (permission denied) are the open's to report: a running
	// serve may still answer through the admin API.
	return nil
}
