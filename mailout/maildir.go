package mailout

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"
)

// MaildirPrefix starts an [outbound] relay value that names a Maildir
// instead of a smarthost: relay = "maildir:PATH".
const MaildirPrefix = "maildir:"

// MaildirPath returns the directory of a relay value "maildir:PATH", and
// false for a smarthost address.
func MaildirPath(relay string) (string, bool) {
	p, ok := strings.CutPrefix(relay, MaildirPrefix)
	return p, ok
}

// Maildir is a Sender that delivers every mail as one file in a Maildir
// (Dir/new), the way a local delivery agent would: written in Dir/tmp,
// synced, then renamed into Dir/new, so a reader never sees half a mail.
// It needs no mail server: a development setup reads what the gateway
// sends with any mail reader or a text editor.
type Maildir struct {
	Dir string
}

var maildirSeq atomic.Uint64

// Send writes raw with a Return-Path and the envelope recipients as
// Delivered-To fields in front, as a local delivery would. It never
// refuses a recipient.
func (m *Maildir) Send(from string, to []string, raw []byte, handedOver func(refused []RcptError)) ([]RcptError, error) {
	for _, sub := range []string{"tmp", "new", "cur"} {
		if err := os.MkdirAll(filepath.Join(m.Dir, sub), 0o750); err != nil {
			return nil, fmt.Errorf("maildir relay: %w", err)
		}
	}
	name, err := maildirName()
	if err != nil {
		return nil, fmt.Errorf("maildir relay: %w", err)
	}
	tmp := filepath.Join(m.Dir, "tmp", name)
	var head strings.Builder
	fmt.Fprintf(&head, "Return-Path: <%s>\r\n", from)
	for _, r := range to {
		fmt.Fprintf(&head, "Delivered-To: %s\r\n", r)
	}
	if err := writeSynced(tmp, []byte(head.String()), raw); err != nil {
		os.Remove(tmp)
		return nil, fmt.Errorf("maildir relay: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(m.Dir, "new", name)); err != nil {
		os.Remove(tmp)
		return nil, fmt.Errorf("maildir relay: %w", err)
	}
	if d, err := os.Open(filepath.Join(m.Dir, "new")); err == nil {
		d.Sync()
		d.Close()
	}
	// Handed over once it is in new/: a crash before leaves it to be
	// sent again, as an SMTP relay's lost 250 does.
	if handedOver != nil {
		handedOver(nil)
	}
	return nil, nil
}

func writeSynced(path string, parts ...[]byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
	if err != nil {
		return err
	}
	for _, p := range parts {
		if _, err := f.Write(p); err != nil {
			f.Close()
			return err
		}
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// maildirName is a unique file name as the Maildir convention builds it:
// time, then what makes it unique on this host (pid, a counter and random
// bytes), then the host name.
func maildirName() (string, error) {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	host, _ := os.Hostname()
	host = strings.NewReplacer("/", `\057`, ":", `\072`).Replace(host)
	now := time.Now()
	return fmt.Sprintf("%d.M%dP%dQ%dR%s.%s", now.Unix(), now.Nanosecond()/1000, os.Getpid(), maildirSeq.Add(1), hex.EncodeToString(b[:]), host), nil
}
