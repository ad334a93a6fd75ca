package store

import (
	"slices"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// wordsByFields is Words as its comment defines it, written the plain way
// (the whole text split into a slice first): the reference Words must
// agree with.
func wordsByFields(s string) []string {
	var out []string
	for _, w := range strings.FieldsFunc(s, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsNumber(r) }) {
		w = strings.ToLower(w)
		if len(w) > MaxWordLen {
			n := MaxWordLen
			for n > 0 && !utf8.RuneStart(w[n]) {
				n--
			}
			w = w[:n]
		}
		if !slices.Contains(out, w) {
			out = append(out, w)
		}
	}
	return out
}

func TestWords(t *testing.T) {
	long := strings.Repeat("ä", 40) // 80 bytes: cut at a rune start
	for in, want := range map[string][]string{
		"Ann@Customer.example":          {"ann", "customer", "example"},
		"  the THE the, printer!! ":     {"the", "printer"},
		"héllo wörld 42x ünïcode_under": {"héllo", "wörld", "42x", "ünïcode", "under"},
		"":                              nil,
		"... --- !!!":                   nil,
		long + " b":                     {strings.Repeat("ä", 32), "b"},
	} {
		if got := Words(in); !slices.Equal(got, want) {
			t.Errorf("Words(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzWords(f *testing.F) {
	for _, s := range []string{"Ann@Customer.example", "héllo wörld", strings.Repeat("ä", 40), "a\xffb c", "İstanbul ΣΑΣ"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := Words(s), wordsByFields(s); !slices.Equal(got, want) {
			t.Errorf("Words(%q) = %q, want %q", s, got, want)
		}
	})
}

func BenchmarkWords(b *testing.B) {
	text := strings.Repeat("The quick brown fox jumps over the lazy dog while the printer keeps jamming.\n", 52)
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		Words(text)
	}
}
