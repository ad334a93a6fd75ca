package rules

import (
	"regexp"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// lineKind says how a body line reads once line ends are normalised.
type lineKind uint8

const (
	kindText  lineKind = iota // anything the sender may have written
	kindBlank                 // empty or white space only
	kindQuote                 // starts with ">" after leading blanks
)

// maxAttribution bounds the text tested as an attribution ("On … wrote:"),
// so that a huge line costs one length check, not a pattern match.
const maxAttribution = 1000

var (
	// clockOrAddress is a time of day ("16:19", "16.19") or an address.
	clockOrAddress = regexp.MustCompile(`\d{1,2}[:.]\d{2}|@`)

	// clock is a time of day; addressColon an address in angle brackets
	// ending the text with a colon, as "… Name <bob@example.com>:".
	clock        = regexp.MustCompile(`\d{1,2}[:.]\d{2}`)
	addressColon = regexp.MustCompile(`<\s*[^<>\s@]+@[^<>\s]+\s*>\s*[:：]$`)

	// historySeparator matches the lines Outlook, Yahoo, AOL, Android and
	// Gmail put above the original or forwarded message.
	historySeparator = regexp.MustCompile(`(?i)^[\s*]*(?:-{2,}[\s\x{a0}]*(?:` + strings.Join([]string{
		"original message", "ursprüngliche nachricht", "message d'origine",
		"mensaje original", "messaggio originale", "mensagem original",
		"oorspronkelijk bericht", "originalmeddelelse", "original meddelelse",
		"opprinnelig melding", "ursprungligt meddelande",
		"forwarded message", "weitergeleitete nachricht", "message transféré",
		"mensaje reenviado", "messaggio inoltrato",
	}, "|") + `)[\s\x{a0}]*-{2,}|begin forwarded message:)[\s*]*$`)

	// mobileFooter matches the one-line footers mail apps append.
	mobileFooter = regexp.MustCompile(`(?i)^(?:` + strings.Join([]string{
		`sent from my ` + fewWords,
		`sent from mail for windows(?: 1[01])?`,
		`sent from (?:yahoo mail|outlook) (?:for|on) ` + fewWords,
		`get outlook for (?:ios|android)`,
		`envoyé de mon ` + fewWords,
		`von meinem ` + fewWords + ` gesendet`,
		`enviado desde mi ` + fewWords,
		`enviado do meu ` + fewWords,
		`inviato da(?:l mio)? ` + fewWords,
		`verzonden (?:vanaf|met) mijn ` + fewWords,
		`verstuurd (?:vanaf|met) mijn ` + fewWords,
		`sendt fra min ` + fewWords,
		`skickat från min ` + fewWords,
		`отправлено (?:с|из) ` + fewWords,
		`wysłane z ` + fewWords + `(?:['’]\p{L}+)?`,
		`发自我的 ?` + fewWords,
		`(?:iphone|ipad) ?から送信`,
		`(?:iphone|ipad) ?에서 보냄`,
	}, "|") + `)\.?$`)
)

var (
	// attributionLeads are the words an attribution opens with, lower-cased
	// and followed by one space: "On", "Am", "Le", "El", "Il", "Em", "Den",
	// "Op", "På", "W dniu".
	attributionLeads = []string{"on ", "am ", "le ", "el ", "il ", "em ", "den ", "op ", "på ", "w dniu "}

	// attributionVerbs say "wrote" in the supported languages.
	attributionVerbs = []string{"wrote", "schrieb", "a écrit", "escribió", "ha scritto",
		"escreveu", "skrev", "schreef", "geschreven", "napisał", "написал",
		"写道", "寫道", "작성", "yazdı", "napsal", "kirjoitti", "írta", "пише", "έγραψε"}

	// footerLeads are how mobileFooter's lines open, lower-cased; a cheap
	// test before the pattern.
	footerLeads = []string{"sent ", "get ", "envoy", "von ", "enviado ", "inviato ", "verzonden ", "verstuurd ", "sendt ", "skickat ",
		"отправлено ", "wysłane ", "发自", "iphone", "ipad"}
)

const (
	// fewWords is a device name: up to five words, no punctuation, so that
	// "Sent from my desk, is much easier" stays text.
	fewWords = `[\p{L}\p{N}]+(?: [\p{L}\p{N}]+){0,4}`
)

// fromKeys open an Outlook-style header block; headerKeys may follow them.
var (
	fromKeys = wordSet("from", "von", "de", "van", "fra", "från", "da", "od", "от",
		"差出人", "发件人", "寄件者", "보낸 사람", "kimden", "lähettäjä", "feladó")
	headerKeys = wordSet("sent", "date", "to", "cc", "subject",
		"gesendet", "datum", "an", "betreff",
		"envoyé", "à", "objet",
		"enviado", "fecha", "para", "asunto", "enviada", "assunto",
		"inviato", "data", "a", "oggetto",
		"verzonden", "aan", "onderwerp",
		"sendt", "dato", "til", "emne", "skickat", "till", "ämne",
		"отправлено", "кому", "тема",
		"送信日時", "宛先", "件名", "发送时间", "收件人", "抄送", "主题", "寄件日期", "收件者", "副本", "主旨",
		"보낸 날짜", "받는 사람", "참조", "제목", "wysłane", "do", "dw", "temat", "odesláno", "komu", "kopie", "předmět",
		"gönderildi", "kime", "bilgi", "konu", "lähetetty", "vastaanottaja", "kopio", "aihe",
		"elküldve", "címzett", "másolatot kap", "tárgy")
)

func wordSet(words ...string) map[string]bool {
	m := make(map[string]bool, len(words))
	for _, w := range words {
		m[w] = true
	}
	return m
}

// VisibleText returns the part of a plain-text mail body that the sender
// newly wrote: quoted history, reply headers and signatures removed,
// trailing/leading blank lines trimmed, line ends normalised to \n.
// When cutting would leave nothing (e.g. a mail that is only a quote or
// bottom-posted/inline replies), it must not lose the writer's words: return
// the text with only the signature cut, or the whole text trimmed.
//
// The result is always made of whole lines of the input, in their order, and
// VisibleText runs in time linear in the length of text.
func VisibleText(text string) string {
	lines := strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n")
	kinds := classifyLines(lines)
	sig := signatureStart(lines, kinds)
	end := historyStart(lines[:sig], kinds[:sig])
	if out := joinTrimmed(dropQuotes(lines[:end], kinds[:end])); out != "" {
		return out
	}
	if out := joinTrimmed(lines[:sig]); out != "" {
		return out
	}
	return joinTrimmed(lines)
}

// forwardSeparator matches the separators of historySeparator that only
// a forward has: the forwarded message is new to the reader, not history.
var forwardSeparator = regexp.MustCompile(`(?i)forward|weitergeleitet|transféré|reenviado|inoltrato|begin forwarded message`)

// forwardWords are forwardSeparator's words that ASCII text can hold, by
// their first letter.
var forwardWords = [256]string{'f': "forward", 'w': "weitergeleitet", 'r': "reenviado", 'i': "inoltrato"}

// mayForward reports whether Forwarded can find a forward in text under
// subject: the subject is marked as one, or the text holds a word of
// forwardSeparator. Most mail has neither, and is not read line by line
// a second time for it.
func mayForward(subject, text string) bool {
	if forwardPrefix.MatchString(subject) {
		return true
	}
	for i := 0; i < len(text); i++ {
		if text[i] >= utf8.RuneSelf {
			return true // case folding reaches beyond ASCII: read it all
		}
		if w := forwardWords[text[i]|0x20]; w != "" && hasFoldedPrefix(text[i:], w) {
			return true
		}
	}
	return false
}

// hasFoldedPrefix reports whether s begins with the lower-case ASCII
// word w in any case.
func hasFoldedPrefix(s, w string) bool {
	if len(s) < len(w) {
		return false
	}
	for j := 0; j < len(w); j++ {
		if s[j]|0x20 != w[j] {
			return false
		}
	}
	return true
}

// forwardPrefix is the prefix a forward's subject opens with in the
// languages Outlook writes it in (FW, WG, TR, RV, ENC, VS, I).
var forwardPrefix = regexp.MustCompile(`(?i)^\s*(fw|fwd|wg|tr|rv|enc|vs|i)\s*[:：]`)

// Forwarded returns the message a mail forwards inline, from the line
// that introduces it on (trimmed): when the first history in text, past
// the sender's own words and signature, is a forwarded-message separator
// ("---------- Forwarded message ---------", "Begin forwarded message:"),
// or, under a subject marked as a forward ("FW:", "WG:"), an original-
// message separator or a "From:/Sent:" header block. VisibleText leaves
// it out; it returns "" when text forwards nothing.
func Forwarded(subject, text string) string {
	if !mayForward(subject, text) {
		return ""
	}
	lines := strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n")
	kinds := classifyLines(lines)
	start := historyStart(lines, kinds)
	if start == len(lines) {
		return ""
	}
	l := lines[start]
	if !(len(l) < 200 && historySeparator.MatchString(l) && forwardSeparator.MatchString(l)) && !forwardPrefix.MatchString(subject) {
		return ""
	}
	if listFooter(lines, start) {
		return ""
	}
	return joinTrimmed(lines[start:])
}

func classifyLines(lines []string) []lineKind {
	kinds := make([]lineKind, len(lines))
	for i, l := range lines {
		switch {
		case strings.HasPrefix(strings.TrimLeft(l, " \t"), ">"):
			kinds[i] = kindQuote
		case strings.TrimSpace(l) == "":
			kinds[i] = kindBlank
		}
	}
	return kinds
}

// joinTrimmed drops leading and trailing blank lines and joins the rest with \n.
func joinTrimmed(lines []string) string {
	for len(lines) > 0 && strings.TrimSpace(lines[0]) == "" {
		lines = lines[1:]
	}
	for len(lines) > 0 && strings.TrimSpace(lines[len(lines)-1]) == "" {
		lines = lines[:len(lines)-1]
	}
	return strings.Join(lines, "\n")
}

// signatureStart returns the index of the first unquoted signature
// delimiter or mobile footer, or len(lines).
func signatureStart(lines []string, kinds []lineKind) int {
	for i, l := range lines {
		if kinds[i] != kindText {
			continue
		}
		if t := strings.TrimRight(l, " \t"); t == "--" {
			return i
		}
		if len(l) < 120 && mobileFooterLine(l) {
			return i
		}
	}
	return len(lines)
}

// mobileFooterLine reports whether l is a footer such as "Sent from my
// iPhone".
func mobileFooterLine(l string) bool {
	t := strings.TrimSpace(l)
	return hasAnyPrefixFold(t, footerLeads) && mobileFooter.MatchString(t)
}

// hasAnyPrefixFold reports whether s starts with one of prefixes (given
// in lower case), ignoring case, without lower-casing s.
func hasAnyPrefixFold(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if len(s) >= len(p) && strings.EqualFold(s[:len(p)], p) {
			return true
		}
	}
	return false
}

// historyStart returns the index of the first line of unquoted history:
// an "Original Message" separator, an Outlook header block (with the rule
// drawn above it), a mailing-list footer, or an attribution after which
// nothing is quoted. It returns len(lines) when there is none.
func historyStart(lines []string, kinds []lineKind) int {
	lastQuote := -1
	for i, k := range kinds {
		if k == kindQuote {
			lastQuote = i
		}
	}
	for i, l := range lines {
		if kinds[i] != kindText {
			continue
		}
		switch {
		case len(l) < 200 && strings.ContainsAny(l, "-:") && historySeparator.MatchString(l):
			return i
		case headerBlock(lines, kinds, i):
			return ruleAbove(lines, kinds, i)
		case listFooter(lines, i):
			return i
		case i > lastQuote && leadAttributionAt(lines, kinds, i):
			return i
		}
	}
	return len(lines)
}

// headerBlock reports whether line i opens a "From:/Sent:/To:/Subject:"
// block: a from-line followed closely by at least two other header lines.
func headerBlock(lines []string, kinds []lineKind, i int) bool {
	first := headerKey(lines[i])
	if !fromKeys[first] && !headerKeys[first] {
		return false
	}
	seen := map[string]bool{}
	from := fromKeys[first]
	for j := i + 1; j < len(lines) && j <= i+8 && kinds[j] != kindQuote; j++ {
		if k := headerKey(lines[j]); headerKeys[k] || fromKeys[k] {
			seen[k] = true
			from = from || fromKeys[k]
		}
	}
	if fromKeys[first] {
		return len(seen) >= 2
	}
	// Some clients (and HTML-to-text conversions) open the block with
	// "Date:" or "Sent:": demand more evidence, including a From line.
	return from && len(seen) >= 3
}

// headerKey returns the lower-cased name of a "Name:" line, accepting the
// bold "*From:*" of HTML-to-text conversions, the French "De :" and the
// full-width colon of Chinese.
func headerKey(line string) string {
	s := strings.TrimLeft(line, " \t*")
	s = s[:min(len(s), 40)]
	// Foxmail writes "发件人：". Two plain searches: IndexAny with a
	// character beyond ASCII reads a rune at a time, and every line of
	// every message comes here.
	i := strings.IndexByte(s, ':')
	if j := strings.Index(s, "："); j >= 0 && (i < 0 || j < i) {
		i = j
	}
	if i < 0 {
		return ""
	}
	k := s[:i]
	return strings.ToLower(strings.TrimRight(k, " \t\u00a0*"))
}

// ruleAbove returns the index of the rule ("_____" or "-----") Outlook
// draws above a header block at i, or i when there is none.
func ruleAbove(lines []string, kinds []lineKind, i int) int {
	j := i - 1
	for j >= 0 && kinds[j] == kindBlank {
		j--
	}
	if j >= 0 && isRule(lines[j]) {
		return j
	}
	return i
}

// isRule reports whether a line is only dashes, underscores or equals
// signs, at least five of them.
func isRule(line string) bool {
	t := strings.TrimSpace(line)
	return len(t) >= 5 && strings.Trim(t, "-_=") == ""
}

// listFooter reports whether line i is the rule a mailing list puts above
// its footer ("____\nfoo mailing list").
func listFooter(lines []string, i int) bool {
	t := strings.TrimSpace(lines[i])
	if len(t) < 20 || strings.Trim(t, "_") != "" || i+1 >= len(lines) {
		return false
	}
	next := lines[i+1]
	return len(next) < 200 && strings.Contains(strings.ToLower(next), "mailing list")
}

// leadAttributionAt reports whether an attribution with a known opening
// word starts at line i, possibly wrapped over up to three lines.
func leadAttributionAt(lines []string, kinds []lineKind, i int) bool {
	for n := 1; n <= 3 && i+n <= len(lines); n++ {
		if kinds[i+n-1] != kindText {
			return false
		}
		// An attribution ends in ":", which is cheaper to look for in the
		// last line than in the lines joined.
		if !EndsInColon(lines[i+n-1]) {
			continue
		}
		if s, ok := attributionText(lines, i, i+n); ok && attribution(s, true) {
			return true
		}
	}
	return false
}

// AttributionStart returns the first line of the attribution ("On <date>,
// <name> wrote:" and its translations, possibly wrapped over up to three
// lines) that ends with lines[end-1], or end when the text lines there read
// as none.
func AttributionStart(lines []string, end int) int {
	from := max(0, end-3)
	kinds := classifyLines(lines[from:end])
	// Known openings first, so that a wrapped "On …\n<addr> wrote:" is
	// taken whole rather than from its last line.
	for _, lead := range []bool{true, false} {
		for n := 1; n <= 3 && end-n >= from && kinds[end-n-from] == kindText; n++ {
			s, ok := attributionText(lines, end-n, end)
			if !ok || !attribution(s, lead) {
				continue
			}
			// "<addr> 于…写道：" wrapped after "Name <": an attribution
			// does not begin inside an address.
			if strings.Count(s, ">") > strings.Count(s, "<") && n < 3 && end-n-1 >= from && kinds[end-n-1-from] == kindText {
				if s, ok := attributionText(lines, end-n-1, end); ok && attribution(s, lead) {
					return end - n - 1
				}
			}
			return end - n
		}
	}
	return end
}

// EndsInColon reports whether line ends in a colon, ASCII or full-width
// (Chinese attributions end in "："), before trailing white space.
func EndsInColon(line string) bool {
	t := strings.TrimRightFunc(line, unicode.IsSpace)
	return strings.HasSuffix(t, ":") || strings.HasSuffix(t, "：")
}

// attributionText joins lines[from:to] with spaces; ok is false when the result
// would be too long to be an attribution.
func attributionText(lines []string, from, to int) (string, bool) {
	size := 0
	for _, l := range lines[from:to] {
		size += len(l) + 1
	}
	if size > maxAttribution {
		return "", false
	}
	return strings.Join(lines[from:to], " "), true
}

// attribution reports whether s reads like "On <date>, <name> wrote:" in
// one of the supported languages: it ends in ":", holds a digit and a verb
// for "wrote", and opens with a known word. Without lead, a time of day or
// an address may stand in for the opening word (Norwegian and Swedish
// Gmail, Russian, "Bob <bob@example.com> schrieb am 03.04.2012 16:19:"),
// and a time of day with an address right before the colon for the verb
// (Gmail in Japanese and Russian: "<date> 10:00, Bob <bob@example.com>:").
func attribution(s string, lead bool) bool {
	s = strings.TrimRightFunc(s, unicode.IsSpace)
	if !EndsInColon(s) || !strings.ContainsAny(s, "0123456789") {
		return false
	}
	// Fields folds runs of spaces, tabs and no-break spaces into one space.
	low := strings.Join(strings.Fields(strings.ToLower(s)), " ")
	if !slices.ContainsFunc(attributionVerbs, func(v string) bool { return strings.Contains(low, v) }) {
		return !lead && clock.MatchString(s) && addressColon.MatchString(s)
	}
	if slices.ContainsFunc(attributionLeads, func(p string) bool { return strings.HasPrefix(low, p) }) {
		return true
	}
	return !lead && clockOrAddress.MatchString(s)
}

// dropQuotes returns lines without their quoted blocks, each block taken
// together with the attribution above it and the blank lines before that,
// so that the sender's own lines of an inline reply stay in their order.
func dropQuotes(lines []string, kinds []lineKind) []string {
	firstText := slices.Index(kinds, kindText)
	drop := make([]bool, len(lines))
	for i := 0; i < len(lines); i++ {
		if kinds[i] != kindQuote {
			continue
		}
		// A block runs over quoted and blank lines up to the next text line.
		last, next := i, i
		for ; next < len(lines) && kinds[next] != kindText; next++ {
			if kinds[next] == kindQuote {
				last = next
			}
		}
		from := attributionAbove(lines, kinds, i, next == len(lines), firstText)
		for from > 0 && kinds[from-1] == kindBlank {
			from--
		}
		for j := from; j <= last; j++ {
			drop[j] = true
		}
		i = last
	}
	out := make([]string, 0, len(lines))
	for i, l := range lines {
		if !drop[i] {
			out = append(out, l)
		}
	}
	return out
}

// attributionAbove returns where the attribution introducing the quoted
// block at start begins, or start when there is none. Any line ending in
// ":" counts when the block ends the mail or the line opens it (for
// example Thunderbird's "Bob wrote:"); elsewhere only a dated attribution
// does, so that "He said:" above an inline quote stays.
func attributionAbove(lines []string, kinds []lineKind, start int, trailing bool, firstText int) int {
	j := start - 1
	for j >= 0 && kinds[j] == kindBlank {
		j--
	}
	if j < 0 || kinds[j] != kindText {
		return start
	}
	if i := AttributionStart(lines, j+1); i <= j {
		return i
	}
	l := lines[j]
	if (trailing || j == firstText) && len(l) < 300 && EndsInColon(l) {
		return j
	}
	return start
}
