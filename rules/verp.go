package rules

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base32"
	"encoding/binary"
	"strings"
)

// verpMACLen is how many bytes of the HMAC a VERP address carries: 80 bits
// make forging one by guessing hopeless while keeping the local part short.
const verpMACLen = 10

// verpCodeLen is the length of the base32 code for 8 id bytes and the MAC.
var verpCodeLen = verpEnc.EncodedLen(8 + verpMACLen)

var verpEnc = base32.StdEncoding.WithPadding(base32.NoPadding)

// VERP builds the return path "<prefix>+<code>@<domain>" for outbox entry id,
// where code is lowercase base32 (no padding) of the 8-byte big-endian id and
// a truncated HMAC-SHA256 (10 bytes) under key. Survives MTAs that lowercase
// local parts. The MAC also covers the prefix (lowercased), so a code minted
// for one prefix is not accepted under another.
func VERP(key []byte, prefix, domain string, id uint64) string {
	return prefix + "+" + verpCode(key, prefix, id) + "@" + domain
}

func verpCode(key []byte, prefix string, id uint64) string {
	var raw [8 + verpMACLen]byte
	binary.BigEndian.PutUint64(raw[:8], id)
	copy(raw[8:], verpMAC(key, prefix, raw[:8]))
	return strings.ToLower(verpEnc.EncodeToString(raw[:]))
}

func verpMAC(key []byte, prefix string, idBytes []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(strings.ToLower(prefix)))
	m.Write([]byte{0})
	m.Write(idBytes)
	return m.Sum(nil)[:verpMACLen]
}

// ParseVERP returns the outbox id from such an address (any case, with or
// without angle brackets, any domain), trying each key (current key first,
// older ones during rotation); ok is false for a forged or malformed
// address, or one with another prefix. It accepts exactly the codes VERP
// produces: a code that decodes to the same bytes but is spelled
// differently is refused.
func ParseVERP(keys [][]byte, prefix, addr string) (id uint64, ok bool) {
	addr = strings.TrimSpace(addr)
	addr = strings.TrimSuffix(strings.TrimPrefix(addr, "<"), ">")
	at := strings.LastIndexByte(addr, '@')
	if at < 0 || prefix == "" {
		return 0, false
	}
	local := strings.ToLower(addr[:at])
	head := strings.ToLower(prefix) + "+"
	if !strings.HasPrefix(local, head) {
		return 0, false
	}
	code := local[len(head):]
	if len(code) != verpCodeLen {
		return 0, false
	}
	raw, err := verpEnc.DecodeString(strings.ToUpper(code))
	if err != nil || len(raw) != 8+verpMACLen {
		return 0, false
	}
	if strings.ToLower(verpEnc.EncodeToString(raw)) != code {
		return 0, false // non-canonical trailing bits
	}
	for _, k := range keys {
		if hmac.Equal(raw[8:], verpMAC(k, prefix, raw[:8])) {
			return binary.BigEndian.Uint64(raw[:8]), true
		}
	}
	return 0, false
}
