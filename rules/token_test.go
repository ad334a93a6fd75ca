package rules

import (
	"regexp"
	"strings"
	"testing"
)

var (
	keyNew = []byte("0123456789abcdef0123456789abcdef")
	keyOld = []byte("fedcba9876543210fedcba9876543210")
)

func TestTokenShape(t *testing.T) {
	s := Signer{Keys: [][]byte{keyNew}}
	shape := regexp.MustCompile(`^[a-z0-9-]+$`)
	for _, id := range []string{"HS-482913", "ACME-000001", "ABCDEFGH-999999", "x-123456"} {
		tok := s.Token(TokenReply, id, "ana@example.com")
		if !shape.MatchString(tok) || len(tok) >= 40 {
			t.Errorf("Token(%q) = %q: want lowercase [a-z0-9-] under 40 chars", id, tok)
		}
	}
}

func TestTokenVerify(t *testing.T) {
	signer := Signer{Keys: [][]byte{keyNew}}
	rotated := Signer{Keys: [][]byte{keyNew, keyOld}}
	oldOnly := Signer{Keys: [][]byte{keyOld}}
	tok := signer.Token(TokenReply, "HS-482913", "Ana@Example.com")
	oldTok := oldOnly.Token(TokenReply, "HS-482913", "ana@example.com")
	tampered := []byte(tok)
	if tampered[len(tampered)-1] == 'a' {
		tampered[len(tampered)-1] = 'b'
	} else {
		tampered[len(tampered)-1] = 'a'
	}
	otherPrefix := signer.Token(TokenNote, "ACME-000001", "ana@example.com")

	tests := []struct {
		name   string
		s      Signer
		token  string
		kind   TokenKind
		ticket string
		agent  string
		want   bool
	}{
		{"round trip", signer, tok, TokenReply, "HS-482913", "ana@example.com", true},
		{"From in other case", signer, tok, TokenReply, "HS-482913", "ANA@EXAMPLE.COM", true},
		{"ticket id in lower case", signer, tok, TokenReply, "hs-482913", "ana@example.com", true},
		{"uppercased token", signer, strings.ToUpper(tok), TokenReply, "HS-482913", "ana@example.com", true},
		{"From of another agent", signer, tok, TokenReply, "HS-482913", "bob@example.com", false},
		{"other ticket", signer, tok, TokenReply, "HS-482914", "ana@example.com", false},
		{"other kind", signer, tok, TokenNote, "HS-482913", "ana@example.com", false},
		{"tampered MAC", signer, string(tampered), TokenReply, "HS-482913", "ana@example.com", false},
		{"ticket part swapped", signer, strings.Replace(tok, "482913", "482914", 1), TokenReply, "HS-482914", "ana@example.com", false},
		{"kind part swapped", signer, strings.Replace(tok, "-r-", "-n-", 1), TokenNote, "HS-482913", "ana@example.com", false},
		{"old key listed second", rotated, oldTok, TokenReply, "HS-482913", "ana@example.com", true},
		{"old key removed", signer, oldTok, TokenReply, "HS-482913", "ana@example.com", false},
		{"new token with rotated keys", rotated, tok, TokenReply, "HS-482913", "ana@example.com", true},
		{"other prefix", signer, otherPrefix, TokenNote, "ACME-000001", "ana@example.com", true},
		{"other prefix, wrong ticket", signer, otherPrefix, TokenNote, "HS-000001", "ana@example.com", false},
		{"no keys", Signer{}, tok, TokenReply, "HS-482913", "ana@example.com", false},
		{"empty token", signer, "", TokenReply, "HS-482913", "ana@example.com", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.s.Verify(tt.token, tt.kind, tt.ticket, tt.agent); got != tt.want {
				t.Errorf("Verify(%q, %c, %q, %q) = %v, want %v", tt.token, tt.kind, tt.ticket, tt.agent, got, tt.want)
			}
		})
	}
}

func TestTokenRefuses(t *testing.T) {
	tests := []struct {
		name   string
		s      Signer
		kind   TokenKind
		ticket string
	}{
		{"no keys", Signer{}, TokenReply, "HS-482913"},
		{"empty signing key", Signer{Keys: [][]byte{nil, keyOld}}, TokenReply, "HS-482913"},
		{"unknown kind", Signer{Keys: [][]byte{keyNew}}, 'x', "HS-482913"},
		{"malformed ticket id", Signer{Keys: [][]byte{keyNew}}, TokenReply, "HS-48291"},
		{"prefix too long", Signer{Keys: [][]byte{keyNew}}, TokenReply, "ABCDEFGHI-482913"},
	}
	for _, tt := range tests {
		if got := tt.s.Token(tt.kind, tt.ticket, "ana@example.com"); got != "" {
			t.Errorf("%s: Token = %q, want no token", tt.name, got)
		}
	}
}

func TestParseToken(t *testing.T) {
	s := Signer{Keys: [][]byte{keyNew}}
	reply := s.Token(TokenReply, "hs-482913", "ana@example.com")
	note := s.Token(TokenNote, "ACME-000001", "ana@example.com")
	mac := reply[len(reply)-macChars:]
	tests := []struct {
		token  string
		kind   TokenKind
		ticket string
		ok     bool
	}{
		{reply, TokenReply, "HS-482913", true},
		{strings.ToUpper(reply), TokenReply, "HS-482913", true},
		{note, TokenNote, "ACME-000001", true},
		{"", 0, "", false},
		{"hs-482913-r", 0, "", false},
		{"hs-482913-x-" + mac, 0, "", false},
		{"hs-48291-r-" + mac, 0, "", false},
		{"-482913-r-" + mac, 0, "", false},
		{"abcdefghi-482913-r-" + mac, 0, "", false},
		{"hs-482913-r-" + mac[:15], 0, "", false},
		{"hs-482913-r-" + mac + "a", 0, "", false},
		{"hs-482913-r-" + mac[:15] + "1", 0, "", false}, // '1' is not base32
		{"h5-482913-r-" + mac, 0, "", false},
		{"hs-482913-r-" + mac + "-x", 0, "", false},
		{"hs-\u212a82913-r-" + mac, 0, "", false}, // Kelvin sign
	}
	for _, tt := range tests {
		kind, id, ok := ParseToken(tt.token)
		if kind != tt.kind || id != tt.ticket || ok != tt.ok {
			t.Errorf("ParseToken(%q) = %q, %q, %v; want %q, %q, %v", tt.token, kind, id, ok, tt.kind, tt.ticket, tt.ok)
		}
	}
}

func FuzzParseToken(f *testing.F) {
	s := Signer{Keys: [][]byte{keyNew}}
	f.Add(s.Token(TokenReply, "HS-482913", "ana@example.com"), "ana@example.com")
	f.Add(s.Token(TokenNote, "ACME-000001", "bob@example.org"), "BOB@example.org")
	f.Add("HS-482913-R-AAAAAAAAAAAAAAAA", "")
	f.Add("a-000000-n-7777777777777777", "x")
	f.Fuzz(func(t *testing.T, token, agent string) {
		kind, id, ok := ParseToken(token)
		if !ok {
			if kind != 0 || id != "" {
				t.Fatalf("ParseToken(%q) failed but returned %q, %q", token, kind, id)
			}
			if s.Verify(token, TokenReply, "HS-482913", agent) {
				t.Fatalf("malformed token %q verified", token)
			}
			return
		}
		if kind != TokenReply && kind != TokenNote {
			t.Fatalf("ParseToken(%q) kind %q", token, kind)
		}
		if !regexp.MustCompile(`^[A-Z]{1,8}-[0-9]{6}$`).MatchString(id) {
			t.Fatalf("ParseToken(%q) id %q not canonical", token, id)
		}
		if k2, id2, ok2 := ParseToken(strings.ToUpper(token)); k2 != kind || id2 != id || !ok2 {
			t.Fatalf("upper-cased %q parsed differently", token)
		}
		// A token signed for what the fuzzed one names parses back to it,
		// verifies for its agent, and the fuzzed one verifies only if equal.
		signed := s.Token(kind, id, agent)
		if k2, id2, _ := ParseToken(signed); k2 != kind || id2 != id {
			t.Fatalf("Token(%q, %q) = %q parses to %q, %q", kind, id, signed, k2, id2)
		}
		if !s.Verify(signed, kind, id, agent) {
			t.Fatalf("Token(%q, %q, %q) = %q does not verify", kind, id, agent, signed)
		}
		if s.Verify(token, kind, id, agent) != (strings.ToLower(token) == signed) {
			t.Fatalf("Verify(%q) disagrees with the signed token %q", token, signed)
		}
	})
}
