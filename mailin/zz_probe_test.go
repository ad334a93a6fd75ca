package mailin

import "testing"

func TestZZTextFileCharset(t *testing.T) {
	for _, raw := range []string{
		"From: a@x.example\r\nSubject: s\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=m\r\n\r\n--m\r\nContent-Type: text/plain\r\n\r\nhi\r\n--m\r\nContent-Type: text/plain; charset=windows-1252\r\nContent-Disposition: attachment; filename=notes.txt\r\n\r\ncaf\xe9 cr\xe8me\r\n--m--\r\n",
		"From: a@x.example\r\nSubject: s\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=m\r\n\r\n--m\r\nContent-Type: text/plain\r\n\r\nhi\r\n--m\r\nContent-Type: text/csv; charset=iso-8859-1\r\nContent-Disposition: attachment; filename=data.csv\r\n\r\ncaf\xe9;cr\xe8me\r\n--m--\r\n",
		"From: a@x.example\r\nSubject: s\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=m\r\n\r\n--m\r\nContent-Type: text/plain\r\n\r\nhi\r\n--m\r\nContent-Type: text/html; charset=utf-8\r\nContent-Disposition: attachment; filename=page.html\r\n\r\n<p>caf\xc3\xa9</p>\r\n--m--\r\n",
		"From: a@x.example\r\nSubject: s\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=m\r\n\r\n--m\r\nContent-Type: text/plain\r\n\r\nhi\r\n--m\r\nContent-Type: text/plain; charset=utf-16le\r\nContent-Disposition: attachment; filename=u16.txt\r\nContent-Transfer-Encoding: base64\r\n\r\n//5jAGEAZgDpAA==\r\n--m--\r\n",
	} {
		in, err := Parse([]byte(raw), Limits{})
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range in.Attachments {
			t.Logf("%s %s %q", a.Filename, a.ContentType, a.Content)
		}
		t.Logf("text %q notes %q", in.Text, in.Notes)
	}
}
