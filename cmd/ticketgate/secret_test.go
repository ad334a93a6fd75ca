package main

import (
	"bytes"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// Processes that create the same key file at once (gateways sharing
// PostgreSQL, serve and inject on a new host) all get the one key, never
// an error about an empty or half-written file; the file is 0600.
func TestKeyCreatedAtOnceIsOneWholeKeyForEveryone(t *testing.T) {
	for round := range 100 {
		path := filepath.Join(t.TempDir(), "data", "verp.key")
		var wg sync.WaitGroup
		keys := make([][]byte, 8)
		errs := make([]error, len(keys))
		for i := range keys {
			wg.Go(func() { keys[i], errs[i] = loadOrCreateKey(path) })
		}
		wg.Wait()
		for i := range keys {
			if errs[i] != nil {
				t.Fatalf("round %d: loader %d: %v", round, i, errs[i])
			}
			if !bytes.Equal(keys[i], keys[0]) {
				t.Fatalf("round %d: loader %d got another key than loader 0", round, i)
			}
		}
		if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("round %d: key file %v (%v), want mode 0600", round, fi.Mode(), err)
		}
	}
}
