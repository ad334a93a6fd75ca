package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// loadOrCreateKey reads a hex-encoded 32-byte key from path, creating the
// file (0600) with a fresh random key when it does not exist. The file
// appears whole or not at all: it is written beside and linked into
// place, so a process creating it at the same time, or a crash, never
// leaves another reading an empty key.
func loadOrCreateKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		key := make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return nil, fmt.Errorf("generate key: %w", err)
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
			return nil, fmt.Errorf("create key directory: %w", err)
		}
		f, err := os.CreateTemp(filepath.Dir(path), ".key-*") // 0600
		if err != nil {
			return nil, fmt.Errorf("create key file: %w", err)
		}
		defer os.Remove(f.Name())
		_, err = f.WriteString(hex.EncodeToString(key) + "\n")
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return nil, fmt.Errorf("write key file: %w", err)
		}
		err = os.Link(f.Name(), path)
		if errors.Is(err, fs.ErrExist) {
			return loadOrCreateKey(path) // another process made it first
		}
		if err != nil {
			return nil, fmt.Errorf("create key file: %w", err)
		}
		return key, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read key file: %w", err)
	}
	return parseKey(path, b)
}

// readKey reads an existing key file (for rotated, previous keys).
func readKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read key file: %w", err)
	}
	return parseKey(path, b)
}

func parseKey(path string, b []byte) ([]byte, error) {
	key, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(key) < 16 {
		return nil, fmt.Errorf("key file %s: want at least 16 hex-encoded bytes", path)
	}
	return key, nil
}
