package desk

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"ticketgate/mailin"
	"ticketgate/rules"
)

// htmlReplyDir holds HTML-only reply bodies written by common mail clients.
var htmlReplyDir = filepath.Join("..", "..", "shared", "corpus", "talon", "html_replies")

// htmlReply is what a person reads as the new part of one HTML reply.
type htmlReply struct {
	keep []string // the reply's own words
	drop []string // words of the quoted original
	// gap, when set, says why the check fails today; the subtest then
	// skips with that reason, and fails once the check passes so the
	// note is removed.
	gap string
}

var htmlReplies = map[string]htmlReply{
	"gmail.html":           {keep: []string{"Hi. I am fine.", "Thanks,", "Alex"}, drop: []string{"Hello! How are you?", "Sasha", "wrote:"}},
	"mail_ru.html":         {keep: []string{"Hi. I am fine.", "Alex"}, drop: []string{"Hello! How are you?", "Sasha", "от Alexander L"}},
	"ms_outlook_2003.html": {keep: []string{"Hi. I am fine.", "Alex"}, drop: []string{"Hello! How are you?", "Sasha", "Test message", "mailto:abc@example.com"}},
	"ms_outlook_2007.html": {keep: []string{"Hi. I am fine.", "Alex"}, drop: []string{"Hello! How are you?", "Sasha", "July 03, 2014"}},
	"ms_outlook_2010.html": {keep: []string{"Hi. I am fine.", "Alex"}, drop: []string{"Hello! How are you?", "On Behalf Of", "Conversation"}},
	"thunderbird.html":     {keep: []string{"Hi. I am fine.", "Alex"}, drop: []string{"Hello! How are you?", "Sasha", "Alexander L wrote"}},
	"windows_mail.html":    {keep: []string{"Hi. I am fine.", "Alex"}, drop: []string{"Hello! How are you?", "Sasha", "Отправлено"}},
	"yandex_ru.html":       {keep: []string{"Hi. I am fine.", "Alex"}, drop: []string{"Hello! How are you?", "Sasha", "26.06.2014, 14:41"}},
	"hotmail.html":         {keep: []string{"Hi. I am fine.", "Alex"}, drop: []string{"Hello! How are you?", "Sasha", "Subject: Test message"}},
}

// TestHTMLOnlyRepliesKeepOnlyTheNewText wraps each corpus reply in an
// HTML-only message, parses it as received mail and checks the visible
// text a ticket would show.
func TestHTMLOnlyRepliesKeepOnlyTheNewText(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(htmlReplyDir, "*.html"))
	if err != nil || len(files) == 0 {
		t.Skipf("no HTML reply corpus at %s", htmlReplyDir)
	}
	for _, f := range files {
		name := filepath.Base(f)
		t.Run(strings.TrimSuffix(name, ".html"), func(t *testing.T) {
			want, ok := htmlReplies[name]
			if !ok {
				t.Fatalf("no expectation written for %s", name)
			}
			body, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			raw := "From: Alex <alex.l@example.com>\r\nTo: support@example.com\r\nSubject: Re: Test message\r\n" +
				"Message-ID: <" + name + "@example.com>\r\nMIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n\r\n" + string(body)
			in, err := mailin.Parse([]byte(raw), mailin.Limits{})
			if err != nil {
				t.Fatal(err)
			}
			if in.HTML == "" || in.Text == "" {
				t.Fatalf("HTML %d bytes, text %d bytes: the HTML was not turned into text", len(in.HTML), len(in.Text))
			}
			visible := rules.VisibleText(in.Text)
			var problems []string
			for _, s := range want.keep {
				if !strings.Contains(visible, s) {
					problems = append(problems, "lost "+s)
				}
			}
			for _, s := range want.drop {
				if strings.Contains(visible, s) {
					problems = append(problems, "kept quoted "+s)
				}
			}
			switch {
			case len(problems) > 0 && want.gap != "":
				t.Skipf("known gap (%s): %s", strings.Join(problems, "; "), want.gap)
			case len(problems) > 0:
				t.Errorf("%s\nvisible text:\n%s\nparsed text:\n%s", strings.Join(problems, "; "), visible, in.Text)
			case want.gap != "":
				t.Errorf("passes now: remove the gap note for %s", name)
			}
		})
	}
}
