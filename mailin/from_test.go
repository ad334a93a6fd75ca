package mailin

import "testing"

// TestReadSender: the sender is who RFC 5322 says it is, never the first
// word with an "@" in a From that does not parse.
func TestReadSender(t *testing.T) {
	cases := []struct {
		from, sender []string
		want         string // "" : unknown sender
		name         string
	}{
		{from: []string{`"Alice Doe" <alice@customer.example>`}, want: "alice@customer.example", name: "Alice Doe"},
		{from: []string{`alice@customer.example`}, want: "alice@customer.example"},
		{from: []string{`Alice <ALICE@Customer.Example> (work)`}, want: "alice@customer.example", name: "Alice"},
		{from: []string{`=?utf-8?q?J=C3=BCrgen?= <jurgen@customer.example>`}, want: "jurgen@customer.example", name: "Jürgen"},
		// The addr-spec in angle brackets is the address.
		{from: []string{`alice@customer.example <eve@evil.example>`}, want: "eve@evil.example", name: "alice@customer.example"},
		{from: []string{`Dr. Who <who@customer.example>`}, want: "who@customer.example"},
		// Two angle-addrs without a comma: not a mailbox list at all.
		{from: []string{`<alice@customer.example> <eve@evil.example>`}},
		// Several mailboxes: Sender says who sent it, else nobody knows.
		{from: []string{`alice@customer.example, <eve@evil.example>`}},
		{from: []string{`James <james@customer.example>, =?ISO-8859-1?Q?Andr=E9?= Pirard <pirard@customer.example>`},
			sender: []string{`=?ISO-8859-1?Q?Andr=E9?= Pirard <pirard@customer.example>`}, want: "james@customer.example", name: "James"},
		{from: []string{`alice@customer.example, bob@customer.example`}, sender: []string{`not an address`}},
		// Only one address in a malformed From: no one else can be meant.
		{from: []string{`Test test@example.com`}, want: "test@example.com"},
		{from: []string{`Test test@example.com eve@evil.example`}},
		{from: []string{`"your secret past" <power quadrant system@example.com>`}},
		{from: []string{`not an address`}},
		{from: nil},
	}
	for _, c := range cases {
		got, rule, problem := readSender(c.from, c.sender)
		if got.Address != c.want || (c.want == "") != (problem != "") || (c.want != "" && rule == "") {
			t.Errorf("From %q Sender %q: read %q by %q (problem %q), want %q", c.from, c.sender, got.Address, rule, problem, c.want)
		}
		if c.name != "" && got.Name != c.name {
			t.Errorf("From %q: name %q, want %q", c.from, got.Name, c.name)
		}
	}
}
