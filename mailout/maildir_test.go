package mailout

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestMaildirMailIsInNewWhenHandedOver: the gateway notes a mail handed
// over (and never sends it again, even after a crash) only once it is in
// the Maildir's new/, where a reader finds it; a crash before that leaves
// it to be sent again, never in tmp/ counted as delivered.
func TestMaildirMailIsInNewWhenHandedOver(t *testing.T) {
	dir := t.TempDir()
	m := &Maildir{Dir: dir}
	raw := []byte("From: support@example.com\r\nTo: ann@customer.example\r\nSubject: hi\r\n\r\nhello\r\n")
	var atHandOver []string
	refused, err := m.Send("bounce@example.com", []string{"ann@customer.example"}, raw, func([]RcptError) {
		got, _ := os.ReadDir(filepath.Join(dir, "new"))
		for _, e := range got {
			atHandOver = append(atHandOver, e.Name())
		}
	})
	if err != nil || len(refused) != 0 {
		t.Fatalf("send: refused %v, %v", refused, err)
	}
	if len(atHandOver) != 1 {
		t.Fatalf("mails in new/ when the mail was noted handed over: %v, want the one sent", atHandOver)
	}
	b, err := os.ReadFile(filepath.Join(dir, "new", atHandOver[0]))
	if err != nil || !strings.Contains(string(b), "Delivered-To: ann@customer.example\r\n") || !strings.HasSuffix(string(b), "hello\r\n") {
		t.Errorf("the mail in new/: %q, %v", b, err)
	}
	if tmp, _ := os.ReadDir(filepath.Join(dir, "tmp")); len(tmp) != 0 {
		t.Errorf("left in tmp/: %v", tmp)
	}
}
