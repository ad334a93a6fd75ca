package mailin

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"ticketgate/mailin/mailintest"
	"unicode/utf8"

	"github.com/jhillyerd/enmime/v2"
)

func addSeeds(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("..", "testdata", "mail", "*.eml"))
	for _, p := range files {
		if raw, err := os.ReadFile(p); err == nil {
			f.Add(raw)
		}
	}
	f.Add(mailintest.DeepNesting(30))
	f.Add(mailintest.ManyParts(20))
	f.Add([]byte("From: a@b.example\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\nContent-Type: multipart/alternative; boundary=y\r\n\r\n--y\r\n\r\ntext\r\n--y--\r\n--x--\r\n"))
	f.Add([]byte("Subject: =?utf-8?B?broken\r\n\r\n\xff"))
}

// FuzzParse: Parse never panics; what it accepts has a Message-ID and
// valid UTF-8 text, subject and sender name; what it refuses is ErrNotMail.
func FuzzParse(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, raw []byte) {
		in, err := Parse(raw, Limits{MaxParts: 50, MaxDepth: 8, MaxHeaderBytes: 64 << 10})
		if err != nil {
			if !errors.Is(err, ErrNotMail) {
				t.Fatalf("error is not ErrNotMail: %v", err)
			}
			return
		}
		if in.MessageID == "" {
			t.Fatal("accepted message has no Message-ID")
		}
		for name, s := range map[string]string{"text": in.Text, "subject": in.Subject, "name": in.From.Name, "html": in.HTML, "dsn": in.DeliveryStatus} {
			if !utf8.ValidString(s) {
				t.Fatalf("%s is not valid UTF-8: %q", name, s)
			}
		}
		for _, n := range in.Notes {
			if !utf8.ValidString(n) {
				t.Fatalf("note is not valid UTF-8: %q", n)
			}
		}
		if !bytes.Equal(in.Raw, raw) {
			t.Fatal("raw not kept")
		}
	})
}

// FuzzCheckStructure: the structural check never panics, and whatever it
// lets through stays within the limits in enmime's own tree.
func FuzzCheckStructure(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, raw []byte) {
		checkAgainstEnmime(t, raw, Limits{MaxParts: 10, MaxDepth: 3, MaxHeaderBytes: 4096})
	})
}

func checkAgainstEnmime(t *testing.T, raw []byte, lim Limits) {
	t.Helper()
	if checkStructure(raw, lim) != "" {
		return
	}
	root, err := enmime.ReadParts(bytes.NewReader(raw))
	if err != nil {
		return
	}
	parts, depth := 0, 0
	var walk func(p *enmime.Part, d int)
	walk = func(p *enmime.Part, d int) {
		depth = max(depth, d)
		for c := p.FirstChild; c != nil; c = c.NextSibling {
			parts++
			walk(c, d+1)
		}
	}
	walk(root, 0)
	if parts > lim.MaxParts || depth > lim.MaxDepth {
		t.Fatalf("structure check passed a message enmime reads as %d parts, %d deep (limits %d, %d):\n%q", parts, depth, lim.MaxParts, lim.MaxDepth, raw)
	}
}
