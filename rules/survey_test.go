package rules

import (
	"strings"
	"testing"
)

func TestParseRating(t *testing.T) {
	tests := []struct {
		text    string
		ok      bool
		score   int
		comment string
	}{
		{"5", true, 5, ""},
		{"  5\n", true, 5, ""},
		{"1", true, 1, ""},
		{"4 - thanks", true, 4, "thanks"},
		{"4/5 great job", true, 4, "great job"},
		{"3 / 5", true, 3, ""},
		{"2 out of 5, slow answers", true, 2, "slow answers"},
		{"Score: 3", true, 3, ""},
		{"rating=2 meh", true, 2, "meh"},
		{"five", true, 5, ""},
		{"Four, but slow", true, 4, "but slow"},
		{"FIVE stars!", true, 5, ""},
		{"5 Sterne, gerne wieder", true, 5, "gerne wieder"},
		{"Fünf", true, 5, ""},
		{"5!\r\n\r\nVery helpful, would buy again.\r\n\r\n-- \r\nJo Smith\r\nACME Corp\r\n+1 555 0100", true, 5, "Very helpful, would buy again."},
		{"4 — Ana was great", true, 4, "Ana was great"},
		{"2.\nIt took three days.", true, 2, "It took three days."},

		{"5 of our users still can't log in, why?", false, 0, ""},
		{"5 of our users still can't log in.", false, 0, ""},
		{"One of the printers is broken", false, 0, ""},
		{"One more thing: the scanner jams on every page now.", false, 0, ""},
		{"Two things: the toner light stays on, and the tray will not close.", false, 0, ""},
		{"One last question. The invoice shows the wrong address.", false, 0, ""},
		{"1. The scanner jams on every page.\n2. The fax line is silent.", false, 0, ""},
		{"1) toner empty\r\n2) tray stuck", false, 0, ""},
		{"Is it fixed?", false, 0, ""},
		{"3 - is this really closed?", false, 0, ""},
		{"4, but the export still fails", false, 0, ""},
		{"2 - the same problem is happening again", false, 0, ""},
		{"1, geht immer noch nicht", false, 0, ""},
		{"", false, 0, ""},
		{"0", false, 0, ""},
		{"6", false, 0, ""},
		{"10/10", false, 0, ""},
		{"4.5", false, 0, ""},
		{"4,5 Sterne", false, 0, ""},
		{"4/10", false, 0, ""},
		{"5-star support", false, 0, ""},
		{"5x faster", false, 0, ""},
		{"fivefold", false, 0, ""},
		{"Thanks! 5", false, 0, ""},
		{"Score: great", false, 0, ""},
		{"5\n" + strings.Repeat("x", 401), false, 0, ""},
		{"5\na\nb\nc\nd\ne\nf\ng", false, 0, ""},
	}
	for _, tt := range tests {
		r, ok := ParseRating(tt.text)
		if ok != tt.ok || r.Score != tt.score || r.Comment != tt.comment {
			t.Errorf("ParseRating(%q) = %+v, %v; want {%d %q}, %v", tt.text, r, ok, tt.score, tt.comment, tt.ok)
		}
	}
}

func FuzzParseRating(f *testing.F) {
	f.Add("4/5 great job")
	f.Add("Four, but slow")
	f.Add("5 of our users still can't log in, why?")
	f.Add("5-\u2014")
	f.Fuzz(func(t *testing.T, text string) {
		r, ok := ParseRating(text)
		if !ok {
			if r != (Rating{}) {
				t.Fatalf("ParseRating(%q) refused but returned %+v", text, r)
			}
			return
		}
		if r.Score < 1 || r.Score > 5 {
			t.Fatalf("ParseRating(%q) score %d out of 1-5", text, r.Score)
		}
		if strings.Contains(r.Comment, "?") || len([]rune(r.Comment)) > maxCommentRunes {
			t.Fatalf("ParseRating(%q) comment %q is a question or too long", text, r.Comment)
		}
		if !strings.Contains(normalizeNewlines(text), r.Comment) {
			t.Fatalf("ParseRating(%q) comment %q is not from the text", text, r.Comment)
		}
	})
}
