package rules

import (
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Rating is a satisfaction-survey answer.
type Rating struct {
	Score   int    // 1 (bad) to 5 (good)
	Comment string // what the customer wrote after the score, may be ""
}

// Limits on what still reads as a comment on a score rather than a new message.
const (
	maxCommentRunes = 400
	maxCommentLines = 6
)

var scoreWords = map[string]int{
	"one": 1, "two": 2, "three": 3, "four": 4, "five": 5,
	"eins": 1, "zwei": 2, "drei": 3, "vier": 4, "fünf": 5, "fuenf": 5,
}

// countedWords, right after a number, make it a count of something rather
// than a score: the mail goes on about what it counts.
var countedWords = map[string]bool{
	"of": true, "von": true, "out": true, "more": true, "other": true, "last": true, "further": true,
	"thing": true, "things": true, "question": true, "questions": true,
	"issue": true, "issues": true, "problem": true, "problems": true,
}

var (
	// scoreLabel is a leading "Score:", "Rating =", "Bewertung" ...
	scoreLabel = regexp.MustCompile(`(?i)^(?:score|rating|bewertung)\s*[:=]?\s*`)
	// scoreScale is "/5", "out of 5", "of 5", "von 5" right after the score.
	scoreScale = regexp.MustCompile(`(?i)^\s*(?:/|out\s+of|of|von)\s*5\b`)
	// scoreUnit is "stars" or "Sterne" after the score.
	scoreUnit = regexp.MustCompile(`(?i)^\s*(?:stars?|sterne?)\b`)
)

// problemPhrases mark a comment that reports a problem rather than rates the
// help: such a mail belongs on the ticket, where an agent will read it. They
// match whole words, so "helpful" is not "help" and "would buy again" stays a
// rating.
var problemPhrases = []string{
	"can't", "cant", "cannot", "can not", "couldn't", "unable", "doesn't", "not working",
	"isn't working", "don't work", "not fixed", "still broken", "broken", "error", "errors",
	"fails", "failing", "failed", "happening again", "broken again", "down again", "fails again",
	"same issue", "same problem", "another issue", "another problem", "new issue", "new problem",
	"need help", "please help", "geht nicht", "funktioniert nicht", "klappt nicht", "noch nicht",
	"immer noch", "schon wieder", "fehler", "kaputt",
}

// ParseRating reads a reply to the satisfaction survey. It is a rating when
// the visible text starts with a score 1–5 ("5", "4 - thanks", "4/5 great
// job", "Score: 3", "five", "Four, but slow") and the rest is a short comment
// (at most 400 characters on 6 lines, a "-- " signature left out). A mail
// that asks a question or reports a new problem ("5 of our users still can't
// log in, why?", "Is it fixed?") is not a rating, and neither are "4.5",
// "10" or "5-star": when in doubt, the mail is left to reach an agent.
func ParseRating(visible string) (Rating, bool) {
	text := strings.TrimSpace(beforeSignature(normalizeNewlines(visible)))
	text = scoreLabel.ReplaceAllString(text, "")
	score, rest, ok := leadingScore(text)
	if !ok || numberedList(score, rest) {
		return Rating{}, false
	}
	if m := scoreScale.FindString(rest); m != "" {
		rest = rest[len(m):]
	}
	if m := scoreUnit.FindString(rest); m != "" {
		rest = rest[len(m):]
	}
	comment, ok := ratingComment(rest)
	if !ok {
		return Rating{}, false
	}
	return Rating{Score: score, Comment: comment}, true
}

// beforeSignature cuts text at a "-- " signature separator line.
func beforeSignature(text string) string {
	lines := strings.Split(text, "\n")
	for i, l := range lines {
		if strings.TrimRight(l, " \t") == "--" {
			return strings.Join(lines[:i], "\n")
		}
	}
	return text
}

// leadingScore reads the score 1-5 that text starts with, as a digit or a
// number word, and returns what follows it.
func leadingScore(text string) (int, string, bool) {
	if text == "" {
		return 0, "", false
	}
	if c := text[0]; c >= '0' && c <= '9' {
		rest := text[1:]
		// "10", "4.5" and "4,5" are not a score from 1 to 5.
		if c < '1' || c > '5' || startsWithDigit(rest) ||
			((strings.HasPrefix(rest, ".") || strings.HasPrefix(rest, ",")) && startsWithDigit(rest[1:])) {
			return 0, "", false
		}
		return int(c - '0'), rest, true
	}
	end := strings.IndexFunc(text, func(r rune) bool { return !unicode.IsLetter(r) })
	if end < 0 {
		end = len(text)
	}
	score, ok := scoreWords[strings.ToLower(text[:end])]
	return score, text[end:], ok
}

// numberedList reports whether the text after a leading score goes on
// with a line that starts with the next number ("1. ...\n2. ..."): the
// items of a list, not a rating.
func numberedList(score int, rest string) bool {
	next := strconv.Itoa(score + 1)
	lines := strings.Split(rest, "\n")
	for _, l := range lines[1:] {
		l = strings.TrimSpace(l)
		if strings.HasPrefix(l, next+".") || strings.HasPrefix(l, next+")") {
			return true
		}
	}
	return false
}

func startsWithDigit(s string) bool { return s != "" && s[0] >= '0' && s[0] <= '9' }

// ratingComment checks that what follows a score is a short comment on it and
// returns the comment tidied of its leading separator.
func ratingComment(rest string) (string, bool) {
	if rest == "" {
		return "", true
	}
	first, size := utf8.DecodeRuneInString(rest)
	switch {
	case first == '-' && size < len(rest) && !unicode.IsSpace(rune(rest[size])):
		return "", false // "5-star", "3-4": a compound, not a score
	case !unicode.IsSpace(first) && !strings.ContainsRune("-–—:,.!;)", first):
		return "", false // "4x", "5%", "4/10"
	}
	comment := strings.TrimSpace(strings.TrimLeft(rest, " \t\n-–—:,.!;)"))
	lower := strings.ToLower(comment)
	// "5 of our users", "One more thing: ...", "Two things: ...": a
	// quantity, not a score.
	if w, _ := cutField(lower); countedWords[strings.TrimRight(w, ":,.;!")] {
		return "", false
	}
	if strings.Contains(comment, "?") || utf8.RuneCountInString(comment) > maxCommentRunes {
		return "", false
	}
	lines := 0
	for _, l := range strings.Split(comment, "\n") {
		if strings.TrimSpace(l) != "" {
			lines++
		}
	}
	if lines > maxCommentLines {
		return "", false
	}
	if reportsProblem(lower) {
		return "", false
	}
	return comment, true
}

// reportsProblem reports whether a lower-case comment contains one of the
// problemPhrases as whole words.
func reportsProblem(lower string) bool {
	words := strings.FieldsFunc(strings.ReplaceAll(lower, "’", "'"), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '\''
	})
	padded := " " + strings.Join(words, " ") + " "
	for _, p := range problemPhrases {
		if strings.Contains(padded, " "+p+" ") {
			return true
		}
	}
	return false
}
