package rules

import (
	"strings"
	"testing"
)

var (
	verpKey    = []byte("current-key-0123456789abcdef")
	verpOldKey = []byte("previous-key-0123456789abcdef")
)

func TestVERPRoundTrip(t *testing.T) {
	for _, id := range []uint64{0, 1, 42, 1 << 32, ^uint64(0)} {
		addr := VERP(verpKey, "bounces", "tickets.example.com", id)
		local, domain, _ := strings.Cut(addr, "@")
		if domain != "tickets.example.com" || !strings.HasPrefix(local, "bounces+") {
			t.Fatalf("VERP(%d) = %q, want bounces+<code>@tickets.example.com", id, addr)
		}
		if strings.ToLower(addr) != addr {
			t.Errorf("VERP(%d) = %q is not lowercase", id, addr)
		}
		// MTAs may upper- or lowercase the address and add angle brackets.
		for _, a := range []string{addr, strings.ToUpper(addr), "<" + addr + ">"} {
			got, ok := ParseVERP([][]byte{verpKey}, "bounces", a)
			if !ok || got != id {
				t.Errorf("ParseVERP(%q) = %d, %v; want %d, true", a, got, ok, id)
			}
		}
	}
}

func TestVERPDistinct(t *testing.T) {
	a := VERP(verpKey, "bounces", "x.example", 7)
	if b := VERP(verpKey, "bounces", "x.example", 8); a == b {
		t.Errorf("ids 7 and 8 share the return path %q", a)
	}
	if b := VERP(verpOldKey, "bounces", "x.example", 7); a == b {
		t.Errorf("two keys give the same return path %q", a)
	}
}

func TestVERPRotation(t *testing.T) {
	old := VERP(verpOldKey, "bounces", "x.example", 99)
	if id, ok := ParseVERP([][]byte{verpKey, verpOldKey}, "bounces", old); !ok || id != 99 {
		t.Errorf("old key during rotation: got %d, %v; want 99, true", id, ok)
	}
	if _, ok := ParseVERP([][]byte{verpKey}, "bounces", old); ok {
		t.Errorf("retired key still accepted")
	}
}

func TestParseVERPRejects(t *testing.T) {
	good := VERP(verpKey, "bounces", "x.example", 1234)
	local, _, _ := strings.Cut(good, "@")
	code := strings.TrimPrefix(local, "bounces+")
	flip := func(s string, i int) string {
		c := byte('a')
		if s[i] == 'a' {
			c = 'b'
		}
		return s[:i] + string(c) + s[i+1:]
	}
	forged := VERP([]byte("attacker"), "bounces", "x.example", 1234)
	bad := map[string]string{
		"forged key":      forged,
		"other prefix":    "replies+" + code + "@x.example",
		"prefix only":     "bounces@x.example",
		"empty code":      "bounces+@x.example",
		"id bit changed":  "bounces+" + flip(code, 3) + "@x.example",
		"mac bit changed": "bounces+" + flip(code, len(code)-3) + "@x.example",
		"truncated":       "bounces+" + code[:len(code)-1] + "@x.example",
		"extra char":      "bounces+" + code + "a@x.example",
		"no at":           "bounces+" + code,
		"padding":         "bounces+" + code + "===@x.example",
		"not base32":      "bounces+" + strings.Repeat("1", len(code)) + "@x.example",
		"longer prefix":   "xbounces+" + code + "@x.example",
		"plain address":   "customer@example.org",
		"empty":           "",
	}
	for name, addr := range bad {
		if id, ok := ParseVERP([][]byte{verpKey}, "bounces", addr); ok {
			t.Errorf("%s: ParseVERP(%q) accepted id %d", name, addr, id)
		}
	}
	if _, ok := ParseVERP(nil, "bounces", good); ok {
		t.Errorf("accepted with no keys")
	}
}

func FuzzParseVERP(f *testing.F) {
	f.Add("bounces", VERP(verpKey, "bounces", "x.example", 5))
	f.Add("bounces", VERP(verpKey, "bounces", "x.example", ^uint64(0)))
	f.Add("b", "B+AAAAAAAAAAAAAAAAAAAAAAAAAAAAA@x")
	f.Add("", "+@")
	f.Fuzz(func(t *testing.T, prefix, addr string) {
		id, ok := ParseVERP([][]byte{verpKey, verpOldKey}, prefix, addr)
		if !ok {
			return
		}
		// Accepted: the address must be exactly what VERP made, up to case,
		// brackets and domain.
		local := strings.TrimPrefix(strings.TrimSpace(addr), "<")
		local = strings.ToLower(strings.TrimSuffix(local, ">"))
		local = local[:strings.LastIndexByte(local, '@')]
		var made []string
		for _, k := range [][]byte{verpKey, verpOldKey} {
			m := strings.ToLower(VERP(k, prefix, "d", id))
			made = append(made, m[:strings.LastIndexByte(m, '@')])
		}
		if local != made[0] && local != made[1] {
			t.Fatalf("ParseVERP(%q, %q) = %d, but VERP makes %q", prefix, addr, id, made)
		}
	})
}
