package boltdb

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
)

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func jsonOf(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
