package mailin

import (
	"fmt"
	"io"
	"mime"
	"net/mail"
	"strings"

	"golang.org/x/text/encoding/htmlindex"
)

// readSender decides who sent a message from its From and Sender fields
// (raw values, encoded words not yet decoded), following RFC 5322: a
// single mailbox in From is the sender; several are well-formed only with
// a Sender field saying who sent the message, and then the first is the
// one the ticket is about; without a Sender there is no telling. A From
// that is not well-formed is read in two shapes only, where no other
// address could be meant: free text followed by one angle-addr (the
// address in angle brackets is the address: "alice@customer.example
// <eve@evil.example>" is eve), or text holding exactly one addr-spec. Any
// other From gives no sender, and problem says why.
func readSender(from, sender []string) (addr mail.Address, rule, problem string) {
	v := strings.TrimSpace(strings.Join(from, ", "))
	if v == "" {
		return mail.Address{}, "", "message has no From header"
	}
	list, err := strictList(v)
	switch {
	case err == nil && len(list) == 1:
		return list[0], "From", ""
	case err == nil && len(list) > 1:
		s, serr := strictList(strings.Join(sender, ", "))
		if serr == nil && len(s) == 1 {
			return list[0], "the first of several From mailboxes (Sender " + s[0].Address + " sent it)", ""
		}
		return mail.Address{}, "", fmt.Sprintf("From names %d mailboxes and no Sender header says who sent it: %s", len(list), oneLine(v))
	}
	if a, ok := angleAddr(v); ok {
		return a, "the angle-addr of a malformed From", ""
	}
	if a, ok := loneAddr(v); ok {
		return a, "the only address in a malformed From", ""
	}
	return mail.Address{}, "", "From header could not be read: " + oneLine(v)
}

// loneAddr reads a malformed From that holds exactly one addr-spec and no
// angle brackets, such as "Test test@example.com".
func loneAddr(v string) (mail.Address, bool) {
	if strings.Count(v, "@") != 1 || strings.ContainsAny(v, "<>") {
		return mail.Address{}, false
	}
	for _, f := range strings.Fields(v) {
		if !strings.Contains(f, "@") {
			continue
		}
		a, err := mail.ParseAddress(strings.Trim(f, `,;()`))
		if err != nil {
			return mail.Address{}, false
		}
		return mail.Address{Address: strings.ToLower(a.Address)}, true
	}
	return mail.Address{}, false
}

// strictList parses an address list the way RFC 5322 writes it, lower-casing
// the addresses; encoded words in names are decoded when they can be, those
// in a quoted name too (net/mail leaves them, as RFC 2047 has it, but many
// mailers quote them and every mail client reads them).
func strictList(v string) ([]mail.Address, error) {
	if strings.TrimSpace(v) == "" {
		return nil, fmt.Errorf("empty")
	}
	p := mail.AddressParser{WordDecoder: nameWords}
	list, err := p.ParseList(v)
	if err != nil {
		return nil, err
	}
	out := make([]mail.Address, 0, len(list))
	for _, a := range list {
		out = append(out, mail.Address{Name: strings.ToValidUTF8(decodeWords(a.Name), "\uFFFD"), Address: strings.ToLower(a.Address)})
	}
	return out, nil
}

// angleAddr reads a malformed mailbox of the one shape mail clients and
// scripts really write: free text, then exactly one <addr-spec> at the end.
func angleAddr(v string) (mail.Address, bool) {
	if strings.Count(v, "<") != 1 || strings.Count(v, ">") != 1 || !strings.HasSuffix(v, ">") {
		return mail.Address{}, false
	}
	i := strings.IndexByte(v, '<')
	a, err := mail.ParseAddress(v[i:])
	if err != nil {
		return mail.Address{}, false
	}
	name := strings.Trim(strings.TrimSpace(v[:i]), `"`)
	return mail.Address{Name: decodeWords(name), Address: strings.ToLower(a.Address)}, true
}

// nameWords decodes encoded words in display names in the charsets
// x/text knows; a word in another charset keeps its bytes (made valid
// UTF-8 later) instead of failing the whole address.
var nameWords = &mime.WordDecoder{CharsetReader: func(charset string, r io.Reader) (io.Reader, error) {
	if enc, err := htmlindex.Get(charset); err == nil {
		return enc.NewDecoder().Reader(r), nil
	}
	return r, nil
}}
