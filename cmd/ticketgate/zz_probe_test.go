package main

import (
	"path/filepath"
	"testing"
)

func TestZZProbeZeroFile(t *testing.T) {
	e := agentEnv(t, "")
	msg := []byte("From: ann@customer.example\r\nTo: support@example.com\r\nSubject: empty\r\n" +
		"Message-ID: <z1@customer.example>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n" +
		"--b1\r\nContent-Type: text/plain\r\n\r\nempty file attached\r\n" +
		"--b1\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=\"empty.pdf\"\r\n\r\n\r\n" +
		"--b1\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=\"empty2.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n\r\n--b1--\r\n")
	id := e.injectOK(msg, "-to", "support@example.com", "-from", "ann@customer.example")
	e.injectOK(msg, "-to", "support@example.com", "-from", "ann@customer.example")
	r := e.run(nil, "check")
	t.Logf("check: %d %s %s", r.code, r.stdout, r.stderr)
	r = e.run(nil, "show", id)
	t.Logf("show: %s", r.stdout)
	out := filepath.Join(t.TempDir(), "b.db")
	r = e.run(nil, "backup", "-o", out)
	t.Logf("backup: %d %s %s", r.code, r.stdout, r.stderr)
	r = e.run(nil, "forget", "ann@customer.example")
	t.Logf("forget: %d %s %s", r.code, r.stdout, r.stderr)
	r = e.run(nil, "check")
	t.Logf("check: %d %s %s", r.code, r.stdout, r.stderr)
	r = e.run(nil, "restore", "-force", out)
	t.Logf("restore: %d %s %s", r.code, r.stdout, r.stderr)
	r = e.run(nil, "check")
	t.Logf("check: %d %s %s", r.code, r.stdout, r.stderr)
}
