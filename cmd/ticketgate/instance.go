package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"ticketgate/store"
)

// keysFingerprint is a hash of the agent-token key, the VERP key and the
// admin token this configuration uses (a missing file counts as empty):
// equal on every gateway that signs and verifies alike, and telling
// nothing of the keys.
func keysFingerprint(cfg *Config) string {
	h := sha256.New()
	h.Write([]byte("ticketgate keys v1\x00"))
	for _, f := range []string{agentKeyFile(cfg), verpKeyFile(cfg), adminTokenFile(cfg)} {
		b, _ := os.ReadFile(f)
		fmt.Fprintf(h, "%d:", len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// instanceName names an installation in the database: its host and its
// configuration file.
func instanceName(cfgPath string) string {
	host, _ := os.Hostname()
	if abs, err := filepath.Abs(cfgPath); err == nil {
		cfgPath = abs
	}
	return host + ":" + cfgPath
}

// reportInstance records this serve's fingerprint for check to compare.
func (a *app) reportInstance(ctx context.Context, cfgPath string) error {
	in := store.Instance{ID: instanceName(cfgPath), Fingerprint: keysFingerprint(a.cfg), Seen: time.Now().UTC()}
	return a.store.UpdateNow(ctx, func(tx store.Tx) error { return tx.PutInstance(in) })
}

// instanceWindow is how far back check looks for instances: one that
// has not reported within it (serve reports at its start and at every
// run of its scheduler) is taken to be gone.
const instanceWindow = 30 * 24 * time.Hour

// warnInstances writes a warning to w when the instances that reported
// within instanceWindow use different keys, and reports whether it did.
func warnInstances(st store.Store, ctx context.Context, w io.Writer) (bool, error) {
	var list []store.Instance
	err := st.View(ctx, func(tx store.Tx) error {
		var err error
		list, err = tx.Instances()
		return err
	})
	if err != nil {
		return false, err
	}
	byFP := map[string][]string{}
	for _, in := range list {
		if time.Since(in.Seen) <= instanceWindow {
			byFP[in.Fingerprint] = append(byFP[in.Fingerprint], in.ID)
		}
	}
	if len(byFP) < 2 {
		return false, nil
	}
	var groups []string
	for fp, ids := range byFP {
		slices.Sort(ids)
		groups = append(groups, fmt.Sprintf("  keys %s: %s", fp, strings.Join(ids, ", ")))
	}
	slices.Sort(groups)
	fmt.Fprintf(w, "warning: the gateways sharing this database use different keys (agent secret_file, outbound verp_key_file, admin token_file); agent replies and bounces signed by one are refused by another:\n%s\n",
		strings.Join(groups, "\n"))
	return true, nil
}
