package rules

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
)

func TestRedactCards(t *testing.T) {
	tests := []struct {
		in, want string
		n        int
	}{
		{"Subject: card 4111 1111 1111 1111 declined", "Subject: card [card number removed] declined", 1},
		{"my card is 5500-0000-0000-0004.", "my card is [card number removed].", 1},
		{"Amex 378282246310005, Discover 6011111111111117!", "Amex [card number removed], Discover [card number removed]!", 2},
		{"Amex grouped 3782 822463 10005 ok", "Amex grouped [card number removed] ok", 1},
		{"4111111111111111", "[card number removed]", 1},
		{"(4111-1111-1111-1111)", "([card number removed])", 1},
		{"Karte:\u00a04111 1111 1111 1111 exp 12/27", "Karte:\u00a0[card number removed] exp 12/27", 1},
		{"card 4111 1111 1111 1111 12 27 cvv 123", "card [card number removed] 12 27 cvv 123", 1},
		{"number: 4111111111111111 1234", "number: [card number removed] 1234", 1},
		{"line one\r\n4111 1111 1111 1111\r\n", "line one\r\n[card number removed]\r\n", 1},
		// Wrapped by a format=flowed client: the line ends in a space.
		{"the number is 4111 1111 \r\n1111 1111, expiry 12/28", "the number is [card number removed], expiry 12/28", 1},
		{"the number is 4111 \n1111 1111 1111.", "the number is [card number removed].", 1},
		// Grouped by no-break spaces, as pasted from a web page or PDF.
		{"card 4111\u00a01111\u00a01111\u00a01111 ok", "card [card number removed] ok", 1},
		{"card 4111\u202f1111\u202f1111\u202f1111.", "card [card number removed].", 1},
	}
	for _, tt := range tests {
		got, red := Redact(tt.in)
		if got != tt.want {
			t.Errorf("Redact(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if want := []Redaction{{Kind: "card", Count: tt.n}}; !reflect.DeepEqual(red, want) {
			t.Errorf("Redact(%q) reported %+v, want %+v", tt.in, red, want)
		}
	}
}

func TestRedactKeepsNonCards(t *testing.T) {
	keep := []string{
		"Order 4111111111111112 shipped",            // fails Luhn
		"Order 4111 1111 1111 1112",                 // grouped, fails Luhn
		"Call +1 (800) 555-0199 or 0049 30 1234567", // phone numbers
		"Meeting on 2024-01-15 at 10:30, ref 15/01/2024",
		"Ticket HS-482913 and HS-4829131",
		"Account 123456789012",                         // 12 digits
		"Tracking 41111111111111111111",                // 20 digits
		"Invoice 12345678901234567890123",              // 23 digits
		"id ab4111111111111111 and 4111111111111111cd", // inside words
		"pi is 3.4111111111111111",                     // decimal fraction
		"total 1,4111111111111111",
		"0000 0000 0000 0000",     // Luhn-valid, but no card starts with 0
		"100 200 300 400 500 600", // list of quantities
		"4111  1111  1111  1111",  // double spaces: not one number
		"4111 1111-1111 1111",     // mixed separators
		"4111 1111\n1111 1111",    // two lines: not one number
		"41 1111 1111 1111 11",    // not grouped like a card
		"",
	}
	// The bank account of a refund stays readable: the groups of an IBAN
	// are no card number, though 16 of their digits pass the Luhn check.
	keep = append(keep,
		"IBAN DE40 3596 2017 5251 7357 63",
		"IBAN PL22 9859 2935 1608 8224 6034 1356",
		"IBAN FR41 2421 1234 5678 9012 3456 855",
	)
	for _, s := range keep {
		if got, red := Redact(s); got != s || red != nil {
			t.Errorf("Redact(%q) = %q, %+v; want unchanged", s, got, red)
		}
	}
}

func TestRedactSSN(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"SSN 123-45-6789", "SSN [SSN removed]"},
		{"ssn: 123 45 6789.", "ssn: [SSN removed]."},
		{"a 234-56-7890, b 665-01-0001", "a [SSN removed], b [SSN removed]"},
		{"000-12-3456", "000-12-3456"}, // area 000
		{"666-12-3456", "666-12-3456"}, // area 666
		{"900-12-3456", "900-12-3456"}, // area 9xx
		{"123-00-4567", "123-00-4567"}, // digitGroup 00
		{"123-45-0000", "123-45-0000"}, // serial 0000
		{"ssn 123\u00a045\u00a06789", "ssn [SSN removed]"},
		{"123-45 6789", "123-45 6789"}, // mixed separators
		{"123\u00a045 6789", "123\u00a045 6789"},
		{"1-123-45-6789", "1-123-45-6789"},
		{"123-45-6789-1", "123-45-6789-1"},
		{"x123-45-6789", "x123-45-6789"},
		{"1123-45-6789", "1123-45-6789"},
		{"12-34-5678", "12-34-5678"},
	}
	for _, tt := range tests {
		got, red := Redact(tt.in)
		if got != tt.want {
			t.Errorf("Redact(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if removed := strings.Count(tt.want, ssnMark); removed > 0 {
			if want := []Redaction{{Kind: "ssn", Count: removed}}; !reflect.DeepEqual(red, want) {
				t.Errorf("Redact(%q) reported %+v, want %+v", tt.in, red, want)
			}
		} else if red != nil {
			t.Errorf("Redact(%q) reported %+v, want nil", tt.in, red)
		}
	}
}

func TestRedactBoth(t *testing.T) {
	in := "Hi, my SSN is 123-45-6789 and card 4111 1111 1111 1111, card 5500000000000004."
	got, red := Redact(in)
	want := "Hi, my SSN is [SSN removed] and card [card number removed], card [card number removed]."
	if got != want {
		t.Errorf("got %q\nwant %q", got, want)
	}
	wantRed := []Redaction{{Kind: "card", Count: 2}, {Kind: "ssn", Count: 1}}
	if !reflect.DeepEqual(red, wantRed) {
		t.Errorf("reported %+v, want %+v", red, wantRed)
	}
}

func TestRedactBytes(t *testing.T) {
	raw := []byte("Subject: card 4111 1111 1111 1111\r\nContent-Type: text/plain; charset=iso-8859-1\r\n\r\nKarte \xfc 5500-0000-0000-0004 SSN 123-45-6789\r\n")
	orig := bytes.Clone(raw)
	got, red := RedactBytes(raw)
	want := "Subject: card [card number removed]\r\nContent-Type: text/plain; charset=iso-8859-1\r\n\r\nKarte \xfc [card number removed] SSN [SSN removed]\r\n"
	if string(got) != want {
		t.Errorf("got %q\nwant %q", got, want)
	}
	if !bytes.Equal(raw, orig) {
		t.Errorf("RedactBytes modified its input")
	}
	if len(red) != 2 || red[0].Count != 2 || red[1].Count != 1 {
		t.Errorf("reported %+v", red)
	}
	clean := []byte("nothing to see 12345")
	if got, red := RedactBytes(clean); !bytes.Equal(got, clean) || red != nil {
		t.Errorf("clean input: got %q, %+v", got, red)
	}
}

// luhnRuns returns the digit runs of 13–19 digits in s that pass the Luhn
// check and stand on their own the way Redact requires (no letter or digit
// beside them, not the tail of a decimal number).
func luhnRuns(s string) []string {
	b := []byte(s)
	var runs []string
	for i := 0; i < len(b); {
		if !asciiDigit(b[i]) {
			i++
			continue
		}
		j := i
		for j < len(b) && asciiDigit(b[j]) {
			j++
		}
		if n := j - i; n >= 13 && n <= 19 && b[i] != '0' && luhn(b[i:j]) &&
			leftOK(b, i, ".,") && rightOK(b, j, ".,") {
			runs = append(runs, s[i:j])
		}
		i = j
	}
	return runs
}

func FuzzRedact(f *testing.F) {
	for _, s := range []string{
		"card 4111 1111 1111 1111 exp 12/27",
		"5500-0000-0000-0004 and 378282246310005",
		"6011111111111117 6011111111111117",
		"SSN 123-45-6789 123 45 6789",
		"ssn: 078-05-1120.",
		"4111111111111111-123-45-6789",
		"1.4111111111111111 4111111111111111",
		"12 4111 1111 1111 1111 1111 1111",
		"\xff4111111111111111\xc3",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out, red := Redact(in)
		for _, r := range luhnRuns(out) {
			if strings.Contains(in, r) {
				t.Fatalf("Redact(%q) = %q still holds card-like %q", in, out, r)
			}
		}
		again, red2 := Redact(out)
		if again != out || red2 != nil {
			t.Fatalf("not idempotent: Redact(%q) = %q, then %q (%+v)", in, out, again, red2)
		}
		if (red == nil) != (out == in) {
			t.Fatalf("Redact(%q) = %q but reported %+v", in, out, red)
		}
		b, _ := RedactBytes([]byte(in))
		if string(b) != out {
			t.Fatalf("RedactBytes differs from Redact on %q: %q vs %q", in, b, out)
		}
		// As a body line (not MIME structure), RedactMessage redacts it as
		// Redact does, and hands back the message itself when it does not.
		if !strings.Contains(in, "\n") && !structural(bytes.TrimRight([]byte(in), "\r")) {
			msg := "Subject: x\r\n\r\n" + in
			got, _ := RedactMessage([]byte(msg))
			if want := "Subject: x\r\n\r\n" + out; string(got) != want {
				t.Fatalf("RedactMessage(%q) = %q, want %q", msg, got, want)
			}
		}
	})
}

func TestRedactMessageKeepsMIMEStructure(t *testing.T) {
	raw := "From: a@x.example\r\nMessage-ID: <4111111111111111@x.example>\r\nSubject: card\r\n 4111 1111 1111 1111\r\n" +
		"Content-Type: multipart/alternative; boundary=\"0000000000003455449757443551301\"\r\n\r\n" +
		"--0000000000003455449757443551301\r\nContent-Type: text/plain\r\n\r\nmy card is 5500-0000-0000-0004\r\n" +
		"--0000000000003455449757443551301--\r\n"
	got, red := RedactMessage([]byte(raw))
	s := string(got)
	if strings.Contains(s, "4111 1111 1111 1111") || strings.Contains(s, "5500-0000-0000-0004") {
		t.Errorf("card left in subject or body:\n%s", s)
	}
	if strings.Count(s, "3455449757443551301") != 3 || !strings.Contains(s, "<4111111111111111@x.example>") {
		t.Errorf("boundary or Message-ID changed:\n%s", s)
	}
	if len(red) != 1 || red[0].Kind != "card" || red[0].Count != 2 {
		t.Errorf("redactions %+v, want 2 cards", red)
	}
	if same, red := RedactMessage([]byte("Subject: hi\r\n\r\nnothing here\r\n")); red != nil || string(same) != "Subject: hi\r\n\r\nnothing here\r\n" {
		t.Errorf("clean message changed: %q %v", same, red)
	}
}

// TestRedactMessageLeavesBase64Bodies: the lines of a base64 part are the
// encoding of a file, not text anyone wrote; a run of digits in them is
// left alone (changing it would break the file), while the text part
// before it and a quoted-printable part after it are still redacted, and
// so is a base64 part's filename.
func TestRedactMessageLeavesBase64Bodies(t *testing.T) {
	// 4111111111111111 passes the Luhn check; "/" and "+", base64 too,
	// end it as the space around a number would.
	file := "QUJD/4111111111111111+RUZHSElKS0xNTk9QUVJTVFVWV1hZWg==\r\n"
	raw := "Subject: files\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n" +
		"--b1\r\nContent-Type: text/plain\r\n\r\nmy card is 4111 1111 1111 1111\r\n" +
		"--b1\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"card-4111111111111111.bin\"\r\n" +
		"Content-Transfer-Encoding: BASE64\r\n\r\n" + file +
		"--b1\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nand 5500-0000-0000-0004\r\n" +
		"--b1--\r\n"
	got, red := RedactMessage([]byte(raw))
	s := string(got)
	if !strings.Contains(s, "\r\n\r\n"+file) {
		t.Errorf("the base64 file was changed:\n%s", s)
	}
	for _, card := range []string{"4111 1111 1111 1111", "card-4111111111111111.bin", "5500-0000-0000-0004"} {
		if strings.Contains(s, card) {
			t.Errorf("%q left in a text part or a part's header:\n%s", card, s)
		}
	}
	if len(red) != 1 || red[0].Count != 3 {
		t.Errorf("redactions %+v, want 3 cards", red)
	}
	// A whole message in base64 is left alone too.
	single := "Subject: x\r\nContent-Transfer-Encoding: base64\r\n\r\n" + file
	if got, red := RedactMessage([]byte(single)); string(got) != single || red != nil {
		t.Errorf("a base64 message was changed: %q %v", got, red)
	}
}

func TestRedactMessageThreadTopic(t *testing.T) {
	raw := "Subject: card 4111 1111 1111 1111\r\nThread-Topic: card 4111 1111 1111 1111\r\nX-Other: 4111 1111 1111 1111\r\n\r\nhello\r\n"
	got, red := RedactMessage([]byte(raw))
	s := string(got)
	if !strings.Contains(s, "Thread-Topic: card [card number removed]\r\n") || !strings.Contains(s, "Subject: card [card number removed]\r\n") {
		t.Errorf("subject or thread topic not redacted:\n%s", s)
	}
	if !strings.Contains(s, "X-Other: 4111 1111 1111 1111\r\n") {
		t.Errorf("other header field changed:\n%s", s)
	}
	if len(red) != 1 || red[0].Count != 2 {
		t.Errorf("redactions %+v, want 2 cards", red)
	}
}

// A body line that merely mentions "references:" or "Message-ID:" in a
// sentence is text, and the card number on it is removed from the raw copy.
func TestRedactMessageRemovesCardOnLineMentioningAHeaderName(t *testing.T) {
	for _, line := range []string{
		"My references: order 5512, card 4111 1111 1111 1111",
		"the message-id: of my last mail? Card was 4111 1111 1111 1111",
		"See in-reply-to: above, my card 4111-1111-1111-1111",
	} {
		raw := "Subject: x\r\n\r\n" + line + "\r\n"
		got, red := RedactMessage([]byte(raw))
		if strings.Contains(string(got), "1111 1111 1111") || strings.Contains(string(got), "1111-1111-1111") || len(red) != 1 {
			t.Errorf("RedactMessage(%q) = %q, %+v; want the card removed", raw, got, red)
		}
	}
}
