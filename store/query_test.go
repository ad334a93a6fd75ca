package store

import (
	"slices"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"
)

// wordsByFields is Words as its comment defines it, written the plain way
// (the whole text split into a slice first): the reference Words must
// agree with.
func wordsByFields(s string) []string {
	var words []string
	for _, field := range strings.FieldsFunc(norm.NFC.String(s), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsNumber(r) }) {
		// Chinese, Japanese, Korean: each character and each pair.
		rs := []rune(field)
		other := ""
		for i, r := range rs {
			if !isCJK(r) {
				other += string(r)
				continue
			}
			if other != "" {
				words = append(words, other)
				other = ""
			}
			words = append(words, string(r))
			if i+1 < len(rs) && isCJK(rs[i+1]) {
				words = append(words, string(rs[i:i+2]))
			}
		}
		if other != "" {
			words = append(words, other)
		}
	}
	var out []string
	for _, w := range words {
		w = cases.Fold().String(strings.ToLower(w))
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
		// Final sigma and its capital are one letter; an accent typed
		// apart is the same as one composed.
		"ΟΔΟΣ οδος Οδός":       {"οδοσ", "οδόσ"},
		"cafe\u0301 café":      {"café"},
		"µs ſtraße STRASSE ıi": {"μs", "strasse", "ıi"},
		// Chinese, Japanese, Korean: each character, each pair side by
		// side; the Latin letters among them a word.
		"你好，打印机坏了":     {"你", "你好", "好", "打", "打印", "印", "印机", "机", "机坏", "坏", "坏了", "了"},
		"Windows10が起動": {"windows10", "が", "が起", "起", "起動", "動"},
		"プリンター":        {"プ", "プリ", "リ", "リン", "ン", "ンタ", "タ", "ター", "ー"},
		"프린터가 고장":      {"프", "프린", "린", "린터", "터", "터가", "가", "고", "고장", "장"},
		"紙 3月 ｱｰ":      {"紙", "3", "月", "ｱ", "ｱｰ", "ｰ"},
	} {
		if got := Words(in); !slices.Equal(got, want) {
			t.Errorf("Words(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzWords(f *testing.F) {
	for _, s := range []string{"Ann@Customer.example", "héllo wörld", strings.Repeat("ä", 40), "a\xffb c", "İstanbul ΣΑΣ", "Straße οδος cafe\u0301", "你好，打印机坏了", "Windows10が起動しない", "프린터가 고장"} {
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
