package rules

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base32"
	"strings"
)

// TokenKind says what a signed address is for.
type TokenKind byte

// The kinds of signed address an agent is given for a ticket.
const (
	TokenReply TokenKind = 'r' // mail to it is a reply to the customer
	TokenNote  TokenKind = 'n' // mail to it is an internal note
)

// macLen is how many bytes of the HMAC-SHA256 a token keeps: 80 bits is far
// beyond what an attacker can guess by sending mail, and encodes to 16 chars.
const macLen = 10

// macChars is the length of the encoded MAC in a token.
const macChars = 16

// tokenEnc is base32 in lowercase without padding: it survives MTAs that
// lowercase local parts and needs no characters outside [a-z0-9].
var tokenEnc = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// Signer makes and checks the tokens in signed agent reply addresses.
// Keys[0] signs; every key verifies (old keys stay listed for a grace period
// after rotation). Empty keys are ignored; a Signer without a usable key makes
// no tokens and verifies none.
type Signer struct {
	Keys [][]byte
}

// Token returns the plus-address token binding kind, ticket and agent e-mail
// (case-insensitive address), for example "hs-482913-r-k3vxq2mzh7a4pd6e".
// It is lowercase [a-z0-9-] only, so it survives MTAs that lowercase local
// parts, and at most 34 characters long. Ticket ids look like "HS-482913":
// 1-8 letters, "-" and 6 digits, in any case. Token returns "" when the
// ticket id has another form, the kind is unknown or the Signer has no key,
// so that no unverifiable address is ever handed out.
func (s Signer) Token(kind TokenKind, ticketID, agent string) string {
	prefix, digits, ok := splitTicketID(ticketID)
	if !ok || !validKind(kind) || len(s.Keys) == 0 || len(s.Keys[0]) == 0 {
		return ""
	}
	mac := tokenMAC(s.Keys[0], kind, canonicalID(prefix, digits), agent)
	return strings.ToLower(prefix) + "-" + digits + "-" + string(rune(kind)) + "-" + tokenEnc.EncodeToString(mac)
}

// ParseToken reads kind and ticket id out of a token without checking the
// signature (ticket id returned in canonical upper-case form, e.g.
// "HS-482913"); ok false if malformed. Tokens are read in any case.
func ParseToken(token string) (kind TokenKind, ticketID string, ok bool) {
	kind, ticketID, _, ok = parseToken(token)
	return kind, ticketID, ok
}

// Verify reports whether token is a valid signature by any key for kind,
// ticketID and agent (the From address of the mail, any case). The MAC is
// compared in constant time.
func (s Signer) Verify(token string, kind TokenKind, ticketID, agent string) bool {
	tkind, tid, mac, ok := parseToken(token)
	if !ok || tkind != kind {
		return false
	}
	prefix, digits, ok := splitTicketID(ticketID)
	if !ok || canonicalID(prefix, digits) != tid {
		return false
	}
	valid := false
	for _, key := range s.Keys {
		if len(key) == 0 {
			continue
		}
		// No early exit: the time taken does not say which key matched.
		if hmac.Equal(mac, tokenMAC(key, kind, tid, agent)) {
			valid = true
		}
	}
	return valid
}

// parseToken splits a token into its kind, canonical ticket id and raw MAC.
func parseToken(token string) (TokenKind, string, []byte, bool) {
	parts := strings.Split(asciiLower(token), "-")
	if len(parts) != 4 {
		return 0, "", nil, false
	}
	prefix, digits, k, enc := parts[0], parts[1], parts[2], parts[3]
	if !isLetters(prefix) || !isDigits(digits) || len(k) != 1 || !validKind(TokenKind(k[0])) {
		return 0, "", nil, false
	}
	if len(enc) != macChars {
		return 0, "", nil, false
	}
	mac, err := tokenEnc.DecodeString(enc)
	if err != nil || len(mac) != macLen {
		return 0, "", nil, false
	}
	return TokenKind(k[0]), canonicalID(prefix, digits), mac, true
}

// tokenMAC signs kind, canonical ticket id and the agent address, each
// separated by a NUL so that no two inputs share a message.
func tokenMAC(key []byte, kind TokenKind, ticketID, agent string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte("ticketgate-token-v1\x00"))
	h.Write([]byte{byte(kind), 0})
	h.Write([]byte(ticketID))
	h.Write([]byte{0})
	h.Write([]byte(strings.ToLower(strings.TrimSpace(agent))))
	return h.Sum(nil)[:macLen]
}

// splitTicketID splits "HS-482913" into its letters and digits, any case.
func splitTicketID(id string) (prefix, digits string, ok bool) {
	prefix, digits, found := strings.Cut(id, "-")
	if !found || !isLetters(prefix) || !isDigits(digits) {
		return "", "", false
	}
	return prefix, digits, true
}

// canonicalID is the ticket id as the store knows it: upper-case letters.
func canonicalID(prefix, digits string) string {
	return strings.ToUpper(prefix) + "-" + digits
}

// asciiLower lowers ASCII letters only, so that no Unicode folding (the
// Kelvin sign lowers to "k") lets two different strings read as one token.
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

func validKind(k TokenKind) bool { return k == TokenReply || k == TokenNote }

// isLetters reports whether s is 1-8 ASCII letters.
func isLetters(s string) bool {
	if len(s) < 1 || len(s) > 8 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i] | 0x20 // ASCII lower case
		if c < 'a' || c > 'z' {
			return false
		}
	}
	return true
}

// isDigits reports whether s is exactly 6 ASCII digits.
func isDigits(s string) bool {
	if len(s) != 6 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// ParseTicketID reads a ticket number as an agent writes it in a command,
// "HS-123456" or "[hs-123456]", and returns it as the store knows it.
func ParseTicketID(s string) (string, bool) {
	s = strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(s), "["), "]")
	prefix, digits, ok := splitTicketID(s)
	if !ok {
		return "", false
	}
	return canonicalID(prefix, digits), true
}
