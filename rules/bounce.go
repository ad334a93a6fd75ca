package rules

import (
	"regexp"
	"strings"
)

// Failure is one recipient a bounce reports as failed.
type Failure struct {
	Recipient  string // lowercased bare address
	Status     string // enhanced status code, e.g. "5.1.1"; "" when the bounce gives none
	Diagnostic string // what the remote side said, e.g. "550 5.1.1 <x@y>: user unknown"
	Permanent  bool   // retrying will not help (5.x.x, or a bounce that says so)
	// Original is the address the mail was sent to when the report names
	// another as the recipient that failed (an alias the receiving side
	// expanded: Original-Recipient, Postfix's "expanded from"),
	// lowercased; "" when it names none or the same.
	Original string
}

var (
	addrRe     = regexp.MustCompile(`[A-Za-z0-9.!#$%&'*+/=?^_{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*`)
	statusRe   = regexp.MustCompile(`(?:^|[^\d.])([245]\.\d{1,3}\.\d{1,3})(?:$|[^\d.])`)
	replyRe    = regexp.MustCompile(`(?:^|[\s#'"(])([245]\d\d)(?:[\s-]|$)`)
	inReplyRe  = regexp.MustCompile(`\s*\(in reply to [^)]*\)\s*$`)
	spaceRunRe = regexp.MustCompile(`\s+`)
)

// BounceHeldKind reports whether a bounce hold keeps automatic mail of
// kind from the address held: the desk's automatic mail to customers
// (the auto-reply, the escalation's acknowledgement, status notices,
// reminders, the survey and its thanks, the list of their tickets, the
// refusal and redaction notices). The team's mail (notifications, notes,
// alerts, errors) is never held, nor mail a person wrote.
func BounceHeldKind(kind string) bool {
	switch kind {
	case "auto", "escalated", "reminder", "survey_thanks", "list", "refusal", "redaction",
		string(NoticeResolution), string(NoticeClosed), string(NoticeWaiting), string(NoticeStatus), string(NoticeSurvey):
		return true
	}
	return false
}

// ParseDSN reads the message/delivery-status part of an RFC 3464 report
// (the part's body text) and returns the recipients whose Action is
// "failed" (or, without an Action, whose Status is 5.x.x), in report order.
// Delayed, relayed and delivered recipients are not failures.
func ParseDSN(deliveryStatus string) []Failure {
	var out []Failure
	for _, f := range dsnGroups(deliveryStatus) {
		rcpt, orig := dsnAddr(f["final-recipient"]), dsnAddr(f["original-recipient"])
		if rcpt == "" {
			rcpt = orig
		}
		if rcpt == "" {
			continue
		}
		status := firstMatch(statusRe, f["status"])
		action := strings.ToLower(headerToken(f["action"]))
		if action != "failed" && !(action == "" && strings.HasPrefix(status, "5")) {
			continue
		}
		diag := f["diagnostic-code"]
		if i := strings.IndexByte(diag, ';'); i >= 0 {
			diag = diag[i+1:]
		}
		out = append(out, withOriginal(newFailure(rcpt, status, diag, true), orig))
	}
	return out
}

// withOriginal is f with orig, the address the mail was sent to, as its
// Original when that is another than its recipient.
func withOriginal(f Failure, orig string) Failure {
	if orig = strings.ToLower(orig); orig != f.Recipient {
		f.Original = orig
	}
	return f
}

// ReportUnread reports whether a bounce says nothing about its
// recipients: its delivery-status part names none and its text is no
// delay warning. A report that names recipients, none of them failed
// (delayed, relayed, delivered), says no delivery failed.
func ReportUnread(deliveryStatus, text string) bool {
	for _, f := range dsnGroups(deliveryStatus) {
		if dsnAddr(f["final-recipient"]) != "" || dsnAddr(f["original-recipient"]) != "" {
			return false
		}
	}
	for _, m := range warningMarkers {
		if strings.Contains(text, m) {
			return false
		}
	}
	return true
}

// dsnGroups splits a delivery-status body into its field groups (separated
// by blank lines), unfolding continuation lines; names are lowercased.
func dsnGroups(s string) []map[string]string {
	var groups []map[string]string
	cur := map[string]string{}
	last := ""
	for _, line := range strings.Split(strings.ReplaceAll(s, "\r\n", "\n"), "\n") {
		switch {
		case strings.TrimSpace(line) == "":
			if len(cur) > 0 {
				groups = append(groups, cur)
				cur, last = map[string]string{}, ""
			}
		case line[0] == ' ' || line[0] == '\t':
			if last != "" {
				cur[last] += " " + strings.TrimSpace(line)
			}
		default:
			name, value, ok := strings.Cut(line, ":")
			if !ok {
				continue
			}
			last = strings.ToLower(strings.TrimSpace(name))
			if _, dup := cur[last]; !dup {
				cur[last] = strings.TrimSpace(value)
			} else {
				last = "" // keep the first, ignore its continuation too
			}
		}
	}
	if len(cur) > 0 {
		groups = append(groups, cur)
	}
	return groups
}

// dsnAddr returns the address of a "rfc822; x@y" recipient field.
func dsnAddr(v string) string {
	typ, addr, ok := strings.Cut(v, ";")
	if !ok {
		addr = typ
	} else if t := strings.ToLower(strings.TrimSpace(typ)); t != "rfc822" && t != "utf-8" {
		return ""
	}
	addr = strings.Trim(strings.TrimSpace(addr), "<>")
	if !strings.Contains(addr, "@") || strings.ContainsAny(addr, " \t") {
		return ""
	}
	return strings.ToLower(addr)
}

func firstMatch(re *regexp.Regexp, s string) string {
	if m := re.FindStringSubmatch(s); m != nil {
		return m[1]
	}
	return ""
}

// newFailure builds a Failure, taking the status from the diagnostic when
// the report gives none. fallback is Permanent when no code says otherwise.
func newFailure(rcpt, status, diag string, fallback bool) Failure {
	diag = strings.TrimSpace(spaceRunRe.ReplaceAllString(diag, " "))
	diag = inReplyRe.ReplaceAllString(diag, "")
	if status == "" {
		status = firstMatch(statusRe, diag)
	}
	perm := fallback
	if status != "" {
		perm = status[0] == '5'
	} else if code := firstMatch(replyRe, diag); code != "" {
		perm = code[0] == '5'
	}
	return Failure{Recipient: strings.ToLower(rcpt), Status: status, Diagnostic: diag, Permanent: perm}
}

// quoteMarkers start the copy of the returned message in classic bounces;
// nothing after them is the bounce's own text.
var quoteMarkers = []string{
	"------ This is a copy of the message",
	"--- Below this line is a copy of the message",
	"----- Original message -----",
	"Original message headers:",
	"----- Message header follows -----",
}

// warningMarkers say a report is only a delay warning.
var warningMarkers = []string{
	"THIS IS A WARNING ONLY",
	"has not yet been delivered",
	"There was a temporary problem delivering",
}

// ParseBounceText finds failed recipients in the human-readable text of a
// classic bounce: Postfix ("<x@y>: host ... said: 550 ..."), Exim ("This
// message was created automatically by mail delivery software" ... "  x@y\n
// SMTP error from remote mail server after RCPT TO:..."), Exchange/Office
// 365 ("Delivery has failed to these recipients or groups:" / "Your message
// to x@y couldn't be delivered"), Gmail ("Address not found" / "Your
// message wasn't delivered to x@y because ..."), qmail ("failure notice",
// "<x@y>:\n..."). A delay warning yields nothing; so does the quoted copy
// of the returned message. Each recipient appears once, in text order.
func ParseBounceText(text string) []Failure {
	text = strings.ReplaceAll(text, "\r\n", "\n")
	for _, m := range quoteMarkers {
		if i := strings.Index(text, m); i >= 0 {
			text = text[:i]
		}
	}
	for _, m := range warningMarkers {
		if strings.Contains(text, m) {
			return nil
		}
	}
	lines := strings.Split(text, "\n")
	var all []Failure
	all = append(all, parsePostfix(lines)...)
	all = append(all, parseExim(lines)...)
	all = append(all, parseExchange(text, lines)...)
	all = append(all, parseGmail(text, lines)...)
	return dedupe(all)
}

// dedupe keeps the first failure per recipient, filling a missing
// diagnostic from a later one.
func dedupe(fs []Failure) []Failure {
	var out []Failure
	seen := map[string]int{}
	for _, f := range fs {
		i, ok := seen[f.Recipient]
		if !ok {
			seen[f.Recipient] = len(out)
			out = append(out, f)
			continue
		}
		if out[i].Diagnostic == "" && f.Diagnostic != "" {
			out[i] = f
		}
	}
	return out
}

// postfixRe matches the first line of a Postfix or qmail recipient
// paragraph: "<x@y>: text" or "<x@y> (expanded from <z>): text".
var postfixRe = regexp.MustCompile(`^\s*<([^<>\s]+@[^<>\s]+)>(?:\s+\(expanded from <([^>]*)>\))?:(.*)$`)

// parsePostfix reads "<x@y>: ..." paragraphs (Postfix and qmail): the
// address line must start a paragraph, the following lines up to a blank
// line hold the diagnostic.
func parsePostfix(lines []string) []Failure {
	var out []Failure
	for i := 0; i < len(lines); i++ {
		m := postfixRe.FindStringSubmatch(lines[i])
		if m == nil || i > 0 && strings.TrimSpace(lines[i-1]) != "" {
			continue
		}
		para := []string{m[3]}
		for i+1 < len(lines) && strings.TrimSpace(lines[i+1]) != "" {
			i++
			para = append(para, lines[i])
		}
		out = append(out, withOriginal(newFailure(m[1], "", postfixDiag(para), true), m[2]))
	}
	return out
}

// postfixDiag picks the remote answer out of a recipient paragraph.
func postfixDiag(para []string) string {
	var kept []string
	for _, l := range para {
		if strings.HasPrefix(strings.TrimSpace(l), "Giving up on") {
			break
		}
		kept = append(kept, strings.TrimSpace(l))
	}
	d := strings.Join(kept, " ")
	if _, after, ok := strings.Cut(d, "said:"); ok {
		return after
	}
	return d
}

// parseExim reads the indented address list that follows Exim's "The
// following address(es) failed:".
func parseExim(lines []string) []Failure {
	start := -1
	for i, l := range lines {
		if strings.Contains(l, "following address(es) failed:") {
			start = i + 1
			break
		}
	}
	if start < 0 {
		return nil
	}
	var out []Failure
	var rcpt string
	var diag []string
	flush := func() {
		if rcpt != "" {
			out = append(out, newFailure(rcpt, "", fromReplyCode(strings.Join(diag, " ")), true))
		}
		rcpt, diag = "", nil
	}
	addrIndent := -1
	for _, l := range lines[start:] {
		t := strings.TrimSpace(l)
		if t == "" {
			continue
		}
		ind := len(l) - len(strings.TrimLeft(l, " \t"))
		if addrIndent < 0 {
			addrIndent = ind
		}
		switch {
		case ind < addrIndent || ind == 0 && addrIndent > 0:
			flush()
			return out
		case ind == addrIndent:
			flush()
			if a := addrRe.FindString(t); a != "" && strings.Index(t, a) <= 1 {
				rcpt = a
			}
		default:
			diag = append(diag, t)
		}
	}
	flush()
	return out
}

// fromReplyCode trims a diagnostic to start at its SMTP reply code, when
// it has one: "SMTP error ... host mx [ip]: 550 5.1.1 ..." -> "550 5.1.1 ...".
func fromReplyCode(d string) string {
	if loc := replyRe.FindStringSubmatchIndex(d); loc != nil {
		return d[loc[2]:]
	}
	return d
}

// exchangeToRe and gmailToRe find the recipient in the one-line summaries
// of Office 365 and Gmail; the apostrophe may be typographic.
var (
	exchangeToRe = regexp.MustCompile(`Your message to (\S+@\S+?) couldn['’]t be delivered`)
	gmailToRe    = regexp.MustCompile(`(?:Your message wasn['’]t delivered to|There was a problem delivering your message to) (\S+@\S+)`)
)

// parseExchange reads Exchange and Office 365 non-delivery reports: the
// recipient list under "Delivery has failed to these recipients or
// groups:" or the "Your message to x@y couldn't be delivered" summary,
// and the per-recipient lines under "Diagnostic information for
// administrators:".
func parseExchange(text string, lines []string) []Failure {
	var rcpts []string
	diagAt := len(lines)
	for i, l := range lines {
		if strings.Contains(l, "Diagnostic information for administrators") {
			diagAt = i
			break
		}
	}
	for i, l := range lines[:diagAt] {
		if !strings.Contains(l, "Delivery has failed to these recipients or groups") {
			continue
		}
		for _, r := range lines[i+1 : diagAt] {
			if a := leadingAddr(r); a != "" {
				rcpts = append(rcpts, a)
			}
		}
		break
	}
	for _, m := range exchangeToRe.FindAllStringSubmatch(text, -1) {
		rcpts = append(rcpts, addrRe.FindString(m[1]))
	}
	if len(rcpts) == 0 {
		return nil
	}
	diags := exchangeDiags(lines[diagAt:])
	var out []Failure
	for _, r := range rcpts {
		d, ok := diags[strings.ToLower(r)]
		if !ok && len(diags) == 1 && len(rcpts) == 1 {
			for _, only := range diags {
				d = only
			}
		}
		out = append(out, newFailure(r, "", d, true))
	}
	return out
}

// leadingAddr returns the address a line starts with, or "".
func leadingAddr(l string) string {
	t := strings.TrimSpace(l)
	loc := addrRe.FindStringIndex(t)
	if loc == nil || loc[0] != 0 {
		return ""
	}
	return t[:loc[1]]
}

// exchangeDiags maps each address in the administrators' section to the
// remote answer on the line after it.
func exchangeDiags(lines []string) map[string]string {
	diags := map[string]string{}
	cur := ""
	for _, l := range lines {
		t := strings.TrimSpace(l)
		if a := leadingAddr(t); a != "" && len(a) == len(t) {
			cur = strings.ToLower(a)
			continue
		}
		if cur == "" || replyRe.FindString(t) == "" {
			continue
		}
		t = strings.TrimPrefix(t, "Remote Server returned")
		t = strings.TrimSpace(strings.TrimPrefix(t, "#"))
		if i := strings.Index(t, "##"); i >= 0 {
			t = t[:i]
		}
		diags[cur] = strings.Trim(strings.TrimSpace(t), "'")
		cur = ""
	}
	return diags
}

// gmailRespMarkers introduce the remote server's answer in Gmail bounces.
var gmailRespMarkers = []string{
	"The response was:",
	"The response from the remote server was:",
	"The error that the other server returned was:",
}

// parseGmail reads Gmail bounces, current ("Your message wasn't delivered
// to x@y because ...") and older ("Delivery to the following recipient
// failed permanently:").
func parseGmail(text string, lines []string) []Failure {
	var rcpts []string
	for _, m := range gmailToRe.FindAllStringSubmatch(text, -1) {
		rcpts = append(rcpts, addrRe.FindString(m[1]))
	}
	for i, l := range lines {
		if !strings.Contains(l, "failed permanently:") {
			continue
		}
		for _, p := range paragraphAfter(lines, i) {
			if a := leadingAddr(p); a != "" {
				rcpts = append(rcpts, a)
			}
		}
	}
	if len(rcpts) == 0 {
		return nil
	}
	diag := ""
	for i, l := range lines {
		for _, m := range gmailRespMarkers {
			if strings.Contains(l, m) && diag == "" {
				diag = strings.Join(paragraphAfter(lines, i), " ")
			}
		}
	}
	var out []Failure
	for _, r := range rcpts {
		out = append(out, newFailure(r, "", diag, true))
	}
	return out
}

// paragraphAfter returns the trimmed lines of the first paragraph after
// line i, skipping blank lines before it.
func paragraphAfter(lines []string, i int) []string {
	var para []string
	for _, l := range lines[i+1:] {
		t := strings.TrimSpace(l)
		if t == "" {
			if len(para) > 0 {
				break
			}
			continue
		}
		para = append(para, t)
	}
	return para
}
