package rules

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jhillyerd/enmime/v2"
)

func replyLines(ls ...string) string { return strings.Join(ls, "\n") }

var visibleCases = []struct {
	name, in, want string
}{
	// Attributions above a quoted original, one per language and client.
	{"gmail en", replyLines("Thanks, works now.", "", "On Mon, Apr 2, 2012 at 6:26 PM, Megan One <m@example.com> wrote:", "", "> Hi", ">"),
		"Thanks, works now."},
	{"gmail en wrapped", replyLines("Thanks, works now.", "", "On Tue, Sep 25, 2012 at 8:59 AM, Chris Wanstrath", "<notifications@example.com>wrote:", "", "> Steps 0-2 are in prod."),
		"Thanks, works now."},
	{"apple en wrapped over three lines", replyLines("Works for me.", "", "On Dec 16, 2011, at 12:47 PM, Corey Donohoe", "<reply@example.com>", "wrote:", "", "> Was this fixed?"),
		"Works for me."},
	{"thunderbird en", replyLines("Done.", "", "On 04/02/2012 06:26 PM, Megan One wrote:", "> Please reset my password."),
		"Done."},
	{"thunderbird name only", replyLines("Done.", "", "Megan One wrote:", "> Please reset my password."),
		"Done."},
	{"german gmail", replyLines("Danke, klappt.", "", "Am Di., 3. Apr. 2012 um 16:19 Uhr schrieb Bob Beispiel <bob@example.com>:", "", "> Bitte neu starten."),
		"Danke, klappt."},
	{"german apple wrapped", replyLines("Danke, klappt.", "", "Am 03.04.2012 um 16:19 schrieb Bob Beispiel", "<bob@example.com>:", "", "> Bitte neu starten."),
		"Danke, klappt."},
	{"french gmail", replyLines("Merci, c'est réglé.", "", "Le mar. 3 avr. 2012 à 16:19, Bob <bob@example.com> a écrit :", "", "> Redémarrez."),
		"Merci, c'est réglé."},
	{"french no-break space", replyLines("Merci.", "", "Le 3 avr. 2012 à 16:19, Bob a\u00a0écrit\u00a0:", "> Redémarrez."),
		"Merci."},
	{"spanish", replyLines("Gracias, ya funciona.", "", "El mar., 3 abr. 2012 a las 16:19, Bob (<bob@example.com>) escribió:", "", "> Reinicie el equipo."),
		"Gracias, ya funciona."},
	{"italian", replyLines("Grazie, ora funziona.", "", "Il giorno mar 3 apr 2012 alle ore 16:19 Bob <bob@example.com> ha scritto:", "", "> Riavvii il computer."),
		"Grazie, ora funziona."},
	{"portuguese", replyLines("Obrigado, funcionou.", "", "Em ter., 3 de abr. de 2012 às 16:19, Bob <bob@example.com> escreveu:", "", "> Reinicie o computador."),
		"Obrigado, funcionou."},
	{"danish", replyLines("Tak, det virker.", "", "Den 3. apr. 2012 kl. 16.19 skrev Bob <bob@example.com>:", "", "> Genstart computeren."),
		"Tak, det virker."},
	{"dutch", replyLines("Bedankt, het werkt.", "", "Op di 3 apr. 2012 om 16:19 schreef Bob <bob@example.com>:", "", "> Herstart de computer."),
		"Bedankt, het werkt."},
	{"dutch apple", replyLines("Bedankt.", "", "Op 3 apr. 2012, om 16:19 heeft Bob het volgende geschreven:", "", "> Herstart de computer."),
		"Bedankt."},
	{"swedish", replyLines("Tack, det fungerar.", "", "Den tis 3 apr. 2012 kl 16:19 skrev Bob <bob@example.com>:", "", "> Starta om datorn."),
		"Tack, det fungerar."},
	{"norwegian", replyLines("Takk, det virker.", "", "tir. 3. apr. 2012 kl. 16:19 skrev Bob <bob@example.com>:", "", "> Start maskinen på nytt."),
		"Takk, det virker."},
	{"russian wrapped", replyLines("Спасибо", "02.04.2012 14:20 пользователь \"bob@example.com\" <", "bob@example.com> написал:", "", "> Hi"),
		"Спасибо"},

	{"japanese gmail wrapped", replyLines("ありがとうございます。", "", "2026年11月21日(土) 10:00 Bob Beispiel <", "bob@example.com>:", "", "> 再起動してください。"),
		"ありがとうございます。"},
	{"russian gmail wrapped", replyLines("Спасибо, работает.", "", "сб, 21 нояб. 2026 г. в 10:00, Bob Beispiel <", "bob@example.com>:", "", "> Перезагрузите компьютер."),
		"Спасибо, работает."},
	{"chinese gmail", replyLines("谢谢，好了。", "", "Bob Beispiel <bob@example.com> 于2026年11月21日周六 10:00写道：", "", "> 请重新启动电脑。"),
		"谢谢，好了。"},
	{"chinese gmail wrapped", replyLines("谢谢，好了。", "", "Bob Beispiel <", "bob@example.com> 于2026年11月21日周六 10:00写道：", "", "> 请重新启动电脑。"),
		"谢谢，好了。"},
	{"korean gmail", replyLines("감사합니다.", "", "2026년 11월 21일 (토) 오전 10:00, Bob Beispiel <bob@example.com>님이 작성:", "", "> 다시 시작하세요."),
		"감사합니다."},

	// Outlook separators and header blocks, with unquoted history below.
	{"outlook original message", replyLines("Fine by me.", "", "-----Original Message-----", "From: Bob <bob@example.com>", "Sent: Monday, April 2, 2012 5:44 PM", "", "Can we meet?"),
		"Fine by me."},
	{"outlook german separator", replyLines("Passt.", "", "-----Ursprüngliche Nachricht-----", "Von: Bob", "", "Treffen wir uns?"),
		"Passt."},
	{"outlook french separator", replyLines("D'accord.", "", "-----Message d'origine-----", "De : Bob", "", "On se voit ?"),
		"D'accord."},
	{"yahoo spaced separator", replyLines("Hello", "", "", "----- Original Message -----", "From: bob@example.com", "Subject: Test", "", "Hi"),
		"Hello"},
	{"outlook header block", replyLines("See attached.", "", "From: Bob [mailto:bob@example.com]", "Sent: March-09-12 4:22 PM", "To: Dan", "Subject: Report", "", "Please send the report."),
		"See attached."},
	{"outlook header block under rule", replyLines("See attached.", "________________________________", "From: Bob <bob@example.com>", "Sent: Friday, 23 March 2012 5:08 p.m.", "To: Dan", "Subject: Report", "", "Please send the report."),
		"See attached."},
	{"outlook bold header block under dashes", replyLines("See attached.", "", "", " ------------------------------", "", "*From:* Bob [mailto:bob@example.com]", "*Sent:* Thursday, February 09, 2012 1:36 PM", "*To:* dan@example.com", "*Subject:* Report", "", "Please send the report."),
		"See attached."},
	{"outlook german header block", replyLines("Anbei.", "", "Von: Bob <bob@example.com>", "Gesendet: Dienstag, 4. März 2025 17:40", "An: Dan", "Betreff: Bericht", "", "Bitte schicken."),
		"Anbei."},
	{"outlook french header block", replyLines("Ci-joint.", "", "De : Bob <bob@example.com>", "Envoyé : mardi 4 mars 2025 17:40", "À : Dan", "Objet : Rapport", "", "Merci d'envoyer."),
		"Ci-joint."},
	{"outlook japanese header block", replyLines("承知しました。", "", "差出人: Bob <bob@example.com>", "送信日時: 2025年3月4日 17:40", "宛先: Dan", "件名: 報告", "", "報告を送ってください。"),
		"承知しました。"},
	{"outlook polish header block", replyLines("W załączniku.", "", "Od: Bob <bob@example.com>", "Wysłane: wtorek, 4 marca 2025 17:40", "Do: Dan", "Temat: Raport", "", "Proszę wysłać raport."),
		"W załączniku."},
	{"foxmail header block", replyLines("好的。", "", "发件人：\"Bob\"<bob@example.com>", "发送时间：2025年3月4日(星期二) 下午5:40", "收件人：\"Dan\"<dan@example.com>", "主题：报告", "", "请发送报告。"),
		"好的。"},
	{"gmail forward", replyLines("Can you look at this?", "", "---------- Forwarded message ---------", "From: Bob <bob@example.com>", "Date: Tue, Mar 4, 2025 at 5:40 PM", "Subject: Broken", "To: <dan@example.com>", "", "It is broken."),
		"Can you look at this?"},

	// Quoting with ">".
	{"trailing quote", replyLines("Hello", "> Hi there!", "> How are you?", ""),
		"Hello"},
	{"quote in the middle of new text", replyLines("Hi,", "", "> Does it blink?", "", "Yes, twice.", "", "> Which model?", "", "An LX-300."),
		replyLines("Hi,", "", "Yes, twice.", "", "An LX-300.")},
	{"bottom post", replyLines("On Tue, Apr 29, 2014 at 4:22 PM, Dev <dev@example.com> wrote:", "", "> Does it work?", ">", "", "It does now."),
		"It does now."},
	{"thunderbird bottom post", replyLines("Megan One wrote:", "> Hi ", "Hello"),
		"Hello"},
	{"plain words above an inline quote stay", replyLines("Bonjour,", "", "Le client a écrit :", "> ça ne marche pas", "", "Nous avons corrigé."),
		replyLines("Bonjour,", "", "Le client a écrit :", "", "Nous avons corrigé.")},
	{"on without wrote stays", replyLines("On your remote host you can run:", "", "    telnet 127.0.0.1 52698", "", "That is all."),
		replyLines("On your remote host you can run:", "", "    telnet 127.0.0.1 52698", "", "That is all.")},

	// Signatures and footers.
	{"dash dash space", replyLines("Please close the ticket.", "", "-- ", "Rick", "Acme Corp"),
		"Please close the ticket."},
	{"dash dash alone", replyLines("Please close the ticket.", "--", "Rick"),
		"Please close the ticket."},
	{"dashes inside a line stay", "a fix -- not a signature.\n\nbye", "a fix -- not a signature.\n\nbye"},
	{"sent from iphone", replyLines("Here is another email", "", "Sent from my iPhone"), "Here is another email"},
	{"sent from ipad", replyLines("On my way.", "", "Sent from my iPad"), "On my way."},
	{"sent from blackberry", replyLines("Here is another email", "", "Sent from my Verizon Wireless BlackBerry"), "Here is another email"},
	{"sent from mobile device", replyLines("Ok.", "Sent from my mobile device"), "Ok."},
	{"outlook for ios", replyLines("Approved.", "", "Get Outlook for iOS"), "Approved."},
	{"outlook for android", replyLines("Approved.", "", "Get Outlook for Android"), "Approved."},
	{"mail for windows", replyLines("Approved.", "", "Sent from Mail for Windows 10"), "Approved."},
	{"french iphone", replyLines("Reçu.", "", "Envoyé de mon iPhone"), "Reçu."},
	{"german iphone", replyLines("Erhalten.", "", "Von meinem iPhone gesendet"), "Erhalten."},
	{"dutch iphone", replyLines("Ontvangen.", "", "Verstuurd vanaf mijn iPhone"), "Ontvangen."},
	{"russian iphone", replyLines("Получил.", "", "Отправлено с iPhone"), "Получил."},
	{"polish iphone", replyLines("Otrzymałem.", "", "Wysłane z iPhone'a"), "Otrzymałem."},
	{"japanese iphone", replyLines("受け取りました。", "", "iPhoneから送信"), "受け取りました。"},
	{"chinese iphone", replyLines("收到。", "", "发自我的iPhone"), "收到。"},
	{"korean iphone", replyLines("받았습니다.", "", "iPhone에서 보냄"), "받았습니다."},
	{"a sentence about the iphone stays", replyLines("iPhone users:", "please update."), replyLines("iPhone users:", "please update.")},
	{"sent from a sentence stays", replyLines("Here is another email", "", "Sent from my desk, is much easier then my mobile phone."),
		replyLines("Here is another email", "", "Sent from my desk, is much easier then my mobile phone.")},
	{"footer above the quote", replyLines("Hello", "", "Sent from my iPhone", "", "On Apr 3, 2012, at 4:19 PM, bob <bob@example.com> wrote:", "", "> Hi"),
		"Hello"},
	{"mailing list footer", replyLines("Thanks all.", "", "_______________________________________________", "riak-users mailing list", "riak-users@example.com"),
		"Thanks all."},

	// Line ends and blank lines.
	{"crlf", "\r\nThanks.\r\n\r\nOn Mon, Apr 2, 2012 at 6:26 PM, Megan <m@example.com> wrote:\r\n> Hi\r\n", "Thanks."},
	{"blank lines and spaces trimmed", "\n \t\nHello\n\n \t \n", "Hello"},

	// Nothing left after cutting: the writer's words are kept.
	{"only a quote", replyLines("> Hi", "> there"), replyLines("> Hi", "> there")},
	{"only a quote with signature", replyLines("> Hi", "", "-- ", "Bob"), "> Hi"},
	{"only a signature", replyLines("-- ", "Bob"), replyLines("-- ", "Bob")},
	{"forward without a note", replyLines("From: Bob <bob@example.com>", "Sent: Monday", "To: Dan", "Subject: Hi", "", "Hello Dan"),
		replyLines("From: Bob <bob@example.com>", "Sent: Monday", "To: Dan", "Subject: Hi", "", "Hello Dan")},
	{"empty", "", ""},
}

// TestForwarded: the message a mail forwards inline is found below the
// sender's words and signature; a reply's history is no forward.
func TestForwarded(t *testing.T) {
	gmail := replyLines("---------- Forwarded message ---------", "From: Bob <bob@example.com>", "Date: Tue, Mar 4, 2025 at 5:40 PM", "Subject: Broken", "To: <dan@example.com>", "", "It is broken.")
	outlook := replyLines("From: Bob <bob@example.com>", "Sent: Monday, April 2, 2012 5:44 PM", "To: Dan", "Subject: Invoice", "", "Your account is suspended.")
	cases := []struct{ name, subject, text, want string }{
		{"gmail", "Fwd: Broken", replyLines("Can you look at this?", "", gmail), gmail},
		{"gmail under a signature", "Fwd: Broken", replyLines("Can you look at this?", "", "-- ", "Dan", "", gmail), gmail},
		{"apple", "Fwd: Broken", replyLines("See below.", "", "Begin forwarded message:", "", "From: Bob <bob@example.com>", "", "It is broken."),
			replyLines("Begin forwarded message:", "", "From: Bob <bob@example.com>", "", "It is broken.")},
		{"outlook", "FW: Invoice", replyLines("Please check.", "", "________________________________", outlook), replyLines("________________________________", outlook)},
		{"outlook german", "WG: Invoice", replyLines("Bitte prüfen.", "", outlook), outlook},
		{"outlook reply", "RE: Invoice", replyLines("Thanks.", "", outlook), ""},
		{"quoted reply", "Fwd: Broken", replyLines("Thanks.", "", "On Mon, Apr 2, 2012 at 6:26 PM, Bob <bob@example.com> wrote:", "> Hi"), ""},
		{"no history", "Fwd: Broken", "Just text.", ""},
	}
	for _, c := range cases {
		if got := Forwarded(c.subject, c.text); got != c.want {
			t.Errorf("%s: got\n%s\nwant\n%s", c.name, got, c.want)
		}
	}
}

func TestVisibleText(t *testing.T) {
	for _, c := range visibleCases {
		t.Run(c.name, func(t *testing.T) {
			if got := VisibleText(c.in); got != c.want {
				t.Errorf("VisibleText(%q)\n got %q\nwant %q", c.in, got, c.want)
			}
		})
	}
}

// TestVisibleTextFiles compares testdata/reply/NAME.txt with NAME.want.
func TestVisibleTextFiles(t *testing.T) {
	ins, err := filepath.Glob(filepath.Join("..", "testdata", "reply", "*.txt"))
	if err != nil || len(ins) == 0 {
		t.Fatalf("no fixtures in testdata/reply: %v", err)
	}
	for _, in := range ins {
		t.Run(filepath.Base(in), func(t *testing.T) {
			body := readReplyFile(t, in)
			want := strings.TrimSuffix(readReplyFile(t, strings.TrimSuffix(in, ".txt")+".want"), "\n")
			if got := VisibleText(body); got != want {
				t.Errorf("got\n%s\nwant\n%s", got, want)
			}
		})
	}
}

func readReplyFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// replyCorpusCases name, per corpus file, text the sender wrote (keep) and text
// from the quoted history, a signature or a footer (gone). An empty gone
// means the file holds nothing to cut: all of it must come back.
var replyCorpusCases = []struct {
	file, keep, gone string
}{
	{"email_reply_parser/correct_sig.txt", "with a correct -- signature.", "rick"},
	{"email_reply_parser/email_1_1.txt", "I am currently using the Java HTTP API.", "riak-users mailing list"},
	{"email_reply_parser/email_1_2.txt", "You can list the keys for the bucket", "> Hi folks"},
	{"email_reply_parser/email_1_3.txt", "Having the function would be great.", "Russell Brown wrote:"},
	{"email_reply_parser/email_1_4.txt", "I haven't had another problem with it.", "Loader seems to be working well."},
	{"email_reply_parser/email_1_5.txt", "This is the fourth bullet point", ""},
	{"email_reply_parser/email_1_6.txt", "I get proper rendering as well.", "Was this caching related"},
	{"email_reply_parser/email_1_7.txt", ":+1:", "Steps 0-2 are in prod."},
	{"email_reply_parser/email_1_8.txt", "I will reply under this one\n\nand under this.", "okay?"},
	{"email_reply_parser/email_2_1.txt", "Outlook with a reply", "Google Apps Sync"},
	{"email_reply_parser/email_2_2.txt", "Outlook with a reply directly above line", "A new comment has been added"},
	{"email_reply_parser/email_2_3.txt", "Outlook with a reply directly above line", "A new comment has been added"},
	{"email_reply_parser/email_BlackBerry.txt", "Here is another email", "Sent from my BlackBerry"},
	{"email_reply_parser/email_bullets.txt", "   - and another", "Give us an example"},
	{"email_reply_parser/email_iPhone.txt", "Here is another email", "Sent from my iPhone"},
	{"email_reply_parser/email_long_quote.txt", "I am currently using the Java HTTP API.", "test?\n>>>>"},
	{"email_reply_parser/email_multi_word_sent_from_my_mobile_device.txt", "Here is another email", "Verizon"},
	{"email_reply_parser/email_one_is_not_on.txt", "Locally (on development), when I run...", "The good news is"},
	{"email_reply_parser/email_sent_from_my_not_signature.txt", "Sent from my desk, is much easier then my mobile phone.", ""},
	{"email_reply_parser/email_sig_delimiter_in_middle_of_line.txt", "kthxbai", ""},
	{"email_reply_parser/greedy_on.txt", "On your remote host you can run:", "George Plymale wrote:"},
	{"email_reply_parser/pathological.txt", "get back to a computer.", "reference_alignment"},
	{"talon/standard_replies/android.eml", "Hello", "написал"},
	{"talon/standard_replies/aol.eml", "Hello", "Original Message"},
	{"talon/standard_replies/apple_mail.eml", "Hello", "bob wrote:"},
	{"talon/standard_replies/apple_mail_2.eml", "Hello", "Hi there!"},
	{"talon/standard_replies/comcast.eml", "Hello", "Original Message"},
	{"talon/standard_replies/gmail.eml", "Hello", "Megan One"},
	{"talon/standard_replies/hotmail.eml", "Hello", "Subject: Test"},
	{"talon/standard_replies/iphone.eml", "Hello", "Sent from my iPhone"},
	{"talon/standard_replies/outlook.eml", "Hello", "The manager's comment"},
	{"talon/standard_replies/sparrow.eml", "Hello", "Sent with Sparrow"},
	{"talon/standard_replies/thunderbird.eml", "Hello", "Megan One wrote:"},
	{"talon/standard_replies/yahoo.eml", "Hello", "Original Message"},
}

func TestVisibleTextCorpus(t *testing.T) {
	dir := filepath.Join("..", "..", "shared", "corpus")
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("corpus not present: %v", err)
	}
	for _, c := range replyCorpusCases {
		t.Run(c.file, func(t *testing.T) {
			body := replyCorpusBody(t, filepath.Join(dir, filepath.FromSlash(c.file)))
			got := VisibleText(body)
			if !strings.Contains(got, c.keep) {
				t.Errorf("lost the new text %q; got:\n%s", c.keep, clipReply(got))
			}
			if c.gone == "" && got != strings.TrimRight(body, "\n") {
				t.Errorf("cut a mail with nothing to cut; got:\n%s", clipReply(got))
			}
			if c.gone != "" && strings.Contains(got, c.gone) {
				t.Errorf("kept %q; got:\n%s", c.gone, clipReply(got))
			}
		})
	}
}

// replyCorpusBody returns the plain-text body of a corpus file: the whole file
// for .txt, the text part for .eml.
func replyCorpusBody(t *testing.T, path string) string {
	t.Helper()
	if !strings.HasSuffix(path, ".eml") {
		return readReplyFile(t, path)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	env, err := enmime.ReadEnvelope(f)
	if err != nil {
		t.Fatalf("parse %s: %v", path, err)
	}
	return env.Text
}

func clipReply(s string) string {
	if len(s) > 2000 {
		return s[:1000] + "\n[…]\n" + s[len(s)-1000:]
	}
	return s
}

func FuzzVisibleText(f *testing.F) {
	for _, c := range visibleCases {
		f.Add(c.in)
	}
	f.Add("On 1 Jan 2020, A <a@b> wrote:\n> x\n\ny\n> z\n-- \ns")
	f.Add("x\r\n--\r\n> q\r\n")
	f.Fuzz(func(t *testing.T, in string) {
		got := VisibleText(in)
		norm := strings.ReplaceAll(in, "\r\n", "\n")
		if len(got) > len(norm) {
			t.Fatalf("output longer than input: %q -> %q", in, got)
		}
		if got == "" {
			return
		}
		// Every output line is an input line, in the input's order.
		rest := strings.Split(norm, "\n")
		for _, l := range strings.Split(got, "\n") {
			i := indexLine(rest, l)
			if i < 0 {
				t.Fatalf("line %q is not a line of the input %q (output %q)", l, in, got)
			}
			rest = rest[i+1:]
		}
	})
}

// FuzzMayForward holds mayForward to the expressions Forwarded reads:
// when it says a mail can forward nothing, neither the subject's prefix
// nor any word of a forward's separator is there to find.
func FuzzMayForward(f *testing.F) {
	for _, c := range visibleCases {
		f.Add("Re: x", c.in)
	}
	for _, s := range []string{"---------- FORWARDED message ---------", "Begin forwarded message:", "WeiterGeleitet", "x transféré y",
		"TRANSFÉRÉ", "tranſféré", "reenviAdo", "inoltrato:", "forwar", "orward"} {
		f.Add("", s)
	}
	f.Add("FW: x", "y")
	f.Add("WG：x", "y")
	f.Fuzz(func(t *testing.T, subject, text string) {
		if mayForward(subject, text) {
			return
		}
		if forwardPrefix.MatchString(subject) || forwardSeparator.MatchString(text) {
			t.Fatalf("mayForward(%q, %q) is false, but the expressions match", subject, text)
		}
	})
}

func indexLine(ls []string, s string) int {
	for i, l := range ls {
		if l == s {
			return i
		}
	}
	return -1
}

func BenchmarkVisibleText(b *testing.B) {
	var sb strings.Builder
	for i := range 20000 {
		sb.WriteString("On Mon, Apr 2, 2012 at 6:26 PM, Megan <m@example.com> wrote:\n")
		if i%2 == 0 {
			sb.WriteString("> quoted line\n")
		}
		sb.WriteString("From: x\n--\n")
	}
	in := sb.String()
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		VisibleText(in)
	}
}
