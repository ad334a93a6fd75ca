// Package mailintest makes hostile and unusual mail for the tests of the
// packages that read mail, and speaks to listeners the way odd clients do.
package mailintest

import (
	"bytes"
	"fmt"
	"net"
	"net/textproto"
	"strings"
	"testing"
	"time"
)

type Hostile struct {
	Name    string
	Raw     []byte
	Problem string // what the note must name; "" means it parses normally
	Text    string
}

func HostileCases() []Hostile {
	return []Hostile{
		{"nesting 1000 levels", DeepNesting(1000), "nesting deeper than 20", "innermost text"},
		{"nesting 20 levels is fine", DeepNesting(20), "", "innermost text"},
		{"100000 parts", ManyParts(100000), "more than 500 MIME parts", "x"},
		{"500 parts is fine", ManyParts(499), "", "x"},
		{"2 MB header", BigHeader(2<<20, 990), "header is larger than 1048576 bytes", "the body after a big header"},
		{"1 MB single header line", BigHeader(1000000, 1000000), "", "the body after a big header"},
		{"2 MB single header line", BigHeader(2<<20, 2<<20), "header is larger than 1048576 bytes", "the body after a big header"},
		{"2 MB part header", BigPartHeader(2 << 20), "header is larger than 1048576 bytes", "first part"},
	}
}

func DeepNesting(levels int) []byte {
	var b bytes.Buffer
	b.WriteString("From: deep@customer.example\r\nSubject: deep\r\nMessage-ID: <deep@customer.example>\r\nMIME-Version: 1.0\r\n")
	for i := 0; i < levels; i++ {
		fmt.Fprintf(&b, "Content-Type: multipart/mixed; boundary=\"b%d\"\r\n\r\n--b%d\r\n", i, i)
	}
	b.WriteString("Content-Type: text/plain\r\n\r\ninnermost text\r\n")
	for i := levels - 1; i >= 0; i-- {
		fmt.Fprintf(&b, "--b%d--\r\n", i)
	}
	return b.Bytes()
}

func ManyParts(n int) []byte {
	var b bytes.Buffer
	b.WriteString("From: many@customer.example\r\nSubject: many parts\r\nMessage-ID: <many@customer.example>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"p\"\r\n\r\n")
	for i := 0; i < n; i++ {
		b.WriteString("--p\r\n\r\nx\r\n")
	}
	b.WriteString("--p--\r\n")
	return b.Bytes()
}

// BigHeader is a message whose top-level header holds size bytes in
// lines of lineLen.
func BigHeader(size, lineLen int) []byte {
	var b bytes.Buffer
	b.WriteString("From: big@customer.example\r\nSubject: big header\r\nMessage-ID: <big-header@customer.example>\r\n")
	line := "X-Filler: " + strings.Repeat("a", lineLen) + "\r\n"
	for b.Len() < size {
		b.WriteString(line)
	}
	b.WriteString("\r\nthe body after a big header\r\n")
	return b.Bytes()
}

// BigPartHeader is a multipart message whose second part has a header of
// size bytes.
func BigPartHeader(size int) []byte {
	var b bytes.Buffer
	b.WriteString("From: part@customer.example\r\nSubject: big part header\r\nContent-Type: multipart/mixed; boundary=\"q\"\r\n\r\n--q\r\nContent-Type: text/plain\r\n\r\nfirst part\r\n--q\r\n")
	for b.Len() < size+200 {
		b.WriteString("X-Filler: " + strings.Repeat("b", 990) + "\r\n")
	}
	b.WriteString("\r\nsecond\r\n--q--\r\n")
	return b.Bytes()
}

// SendBDAT delivers raw in one BDAT chunk (RFC 3030), which carries the
// bytes as they are, with no line-length limit, and returns the final
// reply code.
func SendBDAT(t *testing.T, addr, from, to string, raw []byte) int {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	c := textproto.NewConn(conn)
	expect := func(want int) {
		t.Helper()
		if code, msg, err := c.ReadResponse(want); err != nil {
			t.Fatalf("want %d, got %d %s: %v", want, code, msg, err)
		}
	}
	expect(220)
	for _, cmd := range []string{"EHLO client.example", "MAIL FROM:<" + from + ">", "RCPT TO:<" + to + ">"} {
		if err := c.PrintfLine("%s", cmd); err != nil {
			t.Fatal(err)
		}
		expect(250)
	}
	if err := c.PrintfLine("BDAT %d LAST", len(raw)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.W.Write(raw); err != nil {
		t.Fatal(err)
	}
	if err := c.W.Flush(); err != nil {
		t.Fatal(err)
	}
	code, msg, err := c.ReadResponse(0)
	if err != nil && code == 0 {
		t.Fatalf("BDAT reply: %v", err)
	}
	c.PrintfLine("QUIT")
	t.Logf("BDAT answered %d %s", code, msg)
	return code
}
