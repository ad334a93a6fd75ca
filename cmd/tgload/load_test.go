package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// recorder is an SMTP server that keeps what it accepted, refuses every
// refuseEvery-th message with 451, and hands out ticket ids for new
// tickets through a fake admin API.
type recorder struct {
	mu          sync.Mutex
	data        int
	refused     int
	refuseEvery int
	accepted    []*mail.Message
	byMsgID     map[string]*mail.Message
	ids         map[string]string // ticket id → subject
}

func (rc *recorder) session() smtp.Session { return &recSession{rc: rc} }

type recSession struct {
	rc    *recorder
	from  string
	rcpts []string
}

func (s *recSession) Reset()                                      { s.from, s.rcpts = "", nil }
func (s *recSession) Logout() error                               { return nil }
func (s *recSession) Mail(from string, _ *smtp.MailOptions) error { s.from = from; return nil }
func (s *recSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.rcpts = append(s.rcpts, to)
	return nil
}

func (s *recSession) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	rc := s.rc
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.data++
	if rc.data%rc.refuseEvery == 0 {
		rc.refused++
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 7, 1}, Message: "try later"}
	}
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil || m.Header.Get("From") != s.from || len(s.rcpts) != 1 || s.rcpts[0] != "support@example.com" {
		return fmt.Errorf("bad message from %q to %v: %v", s.from, s.rcpts, err)
	}
	rc.accepted = append(rc.accepted, m)
	rc.byMsgID[m.Header.Get("Message-ID")] = m
	if !strings.HasPrefix(m.Header.Get("Subject"), "Re: ") {
		rc.ids[fmt.Sprintf("HS-%06d", len(rc.ids)+1)] = m.Header.Get("Subject")
	}
	return nil
}

// recorderToken is the admin token the recorder's API wants, as the
// gateway's does (tokenFile holds it).
const recorderToken = "s3cret-admin-token"

func tokenFile(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "admin.token")
	if err := os.WriteFile(path, []byte(recorderToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// api answers GET /api/tickets as the gateway's admin API does, the
// bearer token included.
func (rc *recorder) api(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer "+recorderToken {
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	list := []map[string]string{}
	for id, subj := range rc.ids {
		list = append(list, map[string]string{"id": id, "subject": subj, "status": "new"})
	}
	json.NewEncoder(w).Encode(list)
}

func startRecorder(t *testing.T) (*recorder, string) {
	t.Helper()
	rc := &recorder{refuseEvery: 10, byMsgID: map[string]*mail.Message{}, ids: map[string]string{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return rc.session(), nil }))
	srv.Domain = "recorder.localhost"
	srv.MaxMessageBytes = 16 << 20
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return rc, ln.Addr().String()
}

var (
	summaryLine = regexp.MustCompile(`(?m)^(gateway|discard) \S+: (\d+) attempted, (\d+) ok, (\d+) failed`)
	mixLine     = regexp.MustCompile(`(?m)^  mix: (\d+) new, (\d+) token replies, (\d+) in-reply-to replies; (\d+) with the attachment$`)
	seedLine    = regexp.MustCompile(`(?m)^gateway \S+: (\d+) seed tickets, (\d+) ids known`)
	errorsLine  = regexp.MustCompile(`(?m)^  errors: 451=(\d+)$`)
	discardLine = regexp.MustCompile(`(?m)^  discard server received (\d+) messages$`)
	rateLine    = regexp.MustCompile(`(?m)^  rate: [0-9.]+ msg/s; latency to the 250: p50 [0-9.]+ms p99 [0-9.]+ms max [0-9.]+ms$`)
)

func atoi(s string) int { n, _ := strconv.Atoi(s); return n }

// A short run against the built-in discard server and then a recording
// server: what tgload prints is what the servers got, replies go to the
// threads it started, from their own customer, and 451s are counted.
func TestCountsMatchWhatTheServerReceived(t *testing.T) {
	rc, addr := startRecorder(t)
	api := httptest.NewServer(http.HandlerFunc(rc.api))
	defer api.Close()
	var out bytes.Buffer
	args := []string{"-addr", addr, "-api", strings.TrimPrefix(api.URL, "http://"), "-token-file", tokenFile(t), "-c", "3", "-duration", "1s",
		"-seeds", "8", "-attach-size", "2000", "-attach-rate", "0.2", "-discard"}
	if err := run(context.Background(), args, &out, io.Discard); err != nil {
		t.Fatalf("tgload: %v\n%s", err, out.String())
	}
	text := out.String()
	t.Log(text)
	sums, mixes := summaryLine.FindAllStringSubmatch(text, -1), mixLine.FindAllStringSubmatch(text, -1)
	seed, errs, disc := seedLine.FindStringSubmatch(text), errorsLine.FindStringSubmatch(text), discardLine.FindStringSubmatch(text)
	if len(sums) != 2 || len(mixes) != 2 || seed == nil || errs == nil || disc == nil || len(rateLine.FindAllString(text, -1)) != 2 ||
		!strings.Contains(text, "ratio gateway/discard: ") {
		t.Fatalf("output lacks a line:\n%s", text)
	}
	// The discard run: attempted = ok, and the server saw them and the seeds.
	if sums[0][1] != "discard" || sums[0][2] != sums[0][3] || atoi(disc[1]) != atoi(sums[0][3])+8 {
		t.Errorf("discard run %v, server received %s (+8 seeds)", sums[0][1:], disc[1])
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	gw := sums[1]
	seeds, ok, failed := atoi(seed[1]), atoi(gw[3]), atoi(gw[4])
	if len(rc.accepted) != seeds+ok || rc.refused != failed+(8-seeds) || atoi(errs[1]) != failed || rc.data != seeds+atoi(gw[2])+(8-seeds) {
		t.Errorf("printed %d seeds + %d ok, %d failed (451=%s); server accepted %d, refused %d, saw %d DATA",
			seeds, ok, failed, errs[1], len(rc.accepted), rc.refused, rc.data)
	}
	if ok < 20 || atoi(seed[2]) != seeds {
		t.Errorf("only %d messages in 1s, %s of %d seed ids known", ok, seed[2], seeds)
	}
	// Count what the server got in the timed run, by kind, and check each
	// reply's thread.
	var kinds [kindCount]int
	attached := 0
	for i, m := range rc.accepted[seeds:] {
		subj, from := m.Header.Get("Subject"), m.Header.Get("From")
		if strings.Contains(m.Header.Get("Content-Type"), "multipart/mixed") {
			attached++
		}
		switch irt := m.Header.Get("In-Reply-To"); {
		case irt != "":
			kinds[kindRef]++
			orig := rc.byMsgID[irt]
			if orig == nil || orig.Header.Get("From") != from || subj != "Re: "+orig.Header.Get("Subject") {
				t.Errorf("message %d: In-Reply-To %s from %s is no accepted message of its sender", i, irt, from)
			}
		case strings.HasPrefix(subj, "Re: ["):
			kinds[kindToken]++
			id, rest, _ := strings.Cut(strings.TrimPrefix(subj, "Re: ["), "] ")
			if rc.ids[id] != rest {
				t.Errorf("message %d: token reply %q names ticket %s, which is %q", i, subj, id, rc.ids[id])
			}
		default:
			kinds[kindNew]++
		}
	}
	m := mixes[1]
	if kinds[kindNew] != atoi(m[1]) || kinds[kindToken] != atoi(m[2]) || kinds[kindRef] != atoi(m[3]) || attached != atoi(m[4]) {
		t.Errorf("printed mix %v; server got %d new, %d token, %d in-reply-to, %d attached", m[1:], kinds[kindNew], kinds[kindToken], kinds[kindRef], attached)
	}
	if kinds[kindToken] == 0 || kinds[kindRef] == 0 || attached == 0 {
		t.Errorf("the mix lacks a kind: %v, %d attached", kinds, attached)
	}
}

// TestNewOnlyOpensATicketPerMessage: with -new-only every message the
// server gets comes from a sender never seen before and answers nothing.
func TestNewOnlyOpensATicketPerMessage(t *testing.T) {
	rc, addr := startRecorder(t)
	var out bytes.Buffer
	args := []string{"-addr", addr, "-api", "", "-c", "2", "-n", "40", "-new-only", "-attach-rate", "0"}
	if err := run(context.Background(), args, &out, io.Discard); err != nil {
		t.Fatalf("tgload: %v\n%s", err, out.String())
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	from := map[string]bool{}
	for i, m := range rc.accepted {
		if m.Header.Get("In-Reply-To") != "" || strings.HasPrefix(m.Header.Get("Subject"), "Re:") || from[m.Header.Get("From")] {
			t.Errorf("message %d is not a new customer's first mail: %v", i, m.Header)
		}
		from[m.Header.Get("From")] = true
	}
	if len(rc.accepted)+rc.refused != 40 || len(rc.accepted) < 30 {
		t.Errorf("server accepted %d and refused %d messages, want 40 in all and no seeds", len(rc.accepted), rc.refused)
	}
	if err := run(context.Background(), []string{"-addr", addr, "-new-only", "-seeds", "8"}, io.Discard, io.Discard); err == nil {
		t.Error("-new-only with -seeds was accepted")
	}
}

// -n stops after that many messages; the run never outlives -duration.
func TestStopsByItself(t *testing.T) {
	rc, addr := startRecorder(t)
	rc.refuseEvery = 1 << 30
	var out bytes.Buffer
	start := time.Now()
	args := []string{"-addr", addr, "-api", "", "-c", "4", "-n", "25", "-seeds", "0", "-duration", "20s", "-pid", strconv.Itoa(os.Getpid())}
	if err := run(context.Background(), args, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if s := summaryLine.FindStringSubmatch(out.String()); s == nil || s[2] != "25" || s[3] != "25" {
		t.Errorf("-n 25: %s", out.String())
	}
	// This process is both ends here: it used CPU for the 25 messages.
	if !regexp.MustCompile(`(?m)^  pid \d+: [0-9.]+ ms CPU/msg, \d+ bytes written/msg`).MatchString(out.String()) {
		t.Errorf("-pid: no usage line in %s", out.String())
	}
	rc.mu.Lock()
	got := len(rc.accepted)
	rc.mu.Unlock()
	if got != 25 || time.Since(start) > 15*time.Second {
		t.Errorf("-n 25: server got %d in %s", got, time.Since(start))
	}
}

// Only loopback addresses are ever a target.
func TestRefusesAddressesOffThisMachine(t *testing.T) {
	for _, a := range []string{"192.0.2.1:25", "10.1.2.3:2525", "[2001:db8::1]:25"} {
		err := run(context.Background(), []string{"-addr", a, "-duration", "1s"}, io.Discard, io.Discard)
		var ue usageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), "not a loopback address") {
			t.Errorf("-addr %s: %v, want a refusal", a, err)
		}
		for _, flag := range []string{"-api", "-metrics"} {
			err = run(context.Background(), []string{flag, a, "-duration", "1s"}, io.Discard, io.Discard)
			if !errors.As(err, &ue) {
				t.Errorf("%s %s: %v, want a refusal", flag, a, err)
			}
		}
	}
}

// metrics answers GET /metrics as a gateway on bbolt would, as if every
// three messages the recorder accepted (rounded up) had been one commit
// of four calls.
func (rc *recorder) metrics(w http.ResponseWriter, r *http.Request) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	n := (len(rc.accepted) + 2) / 3
	fmt.Fprintf(w, "# TYPE ticketgate_store_commit_batch_size histogram\nticketgate_store_commit_batch_size_bucket{le=\"+Inf\"} %d\n", n)
	fmt.Fprintf(w, "ticketgate_store_commit_batch_size_sum %d\nticketgate_store_commit_batch_size_count %d\n", 4*n, n)
}

// TestMetricsCountsTheRunsCommits: with -metrics tgload prints the
// commits the gateway's /metrics counted during the timed run only (not
// the seeds'), and the run's messages over them.
func TestMetricsCountsTheRunsCommits(t *testing.T) {
	rc, addr := startRecorder(t)
	mux := http.NewServeMux()
	mux.HandleFunc("/api/tickets", rc.api)
	mux.HandleFunc("/metrics", rc.metrics)
	api := httptest.NewServer(mux)
	defer api.Close()
	host := strings.TrimPrefix(api.URL, "http://")
	var out bytes.Buffer
	args := []string{"-addr", addr, "-api", host, "-token-file", tokenFile(t), "-metrics", host, "-c", "2", "-n", "30", "-seeds", "4", "-attach-rate", "0", "-discard"}
	if err := run(context.Background(), args, &out, io.Discard); err != nil {
		t.Fatalf("tgload: %v\n%s", err, out.String())
	}
	text := out.String()
	seed, sums := seedLine.FindStringSubmatch(text), summaryLine.FindAllStringSubmatch(text, -1)
	got := regexp.MustCompile(`(?m)^  commits: (\d+), ([0-9.]+) messages a commit \(([0-9.]+) store calls a commit\)$`).FindAllStringSubmatch(text, -1)
	if seed == nil || len(sums) != 2 || len(got) != 1 {
		t.Fatalf("want one commits line, for the gateway:\n%s", text)
	}
	seeds, ok := atoi(seed[1]), atoi(sums[1][3])
	commits := (seeds+ok+2)/3 - (seeds+2)/3
	if want := fmt.Sprintf("%d %.1f 4.0", commits, float64(ok)/float64(commits)); strings.Join(got[0][1:], " ") != want {
		t.Errorf("printed %q, want %q (%d seeds, %d ok)", got[0][1:], want, seeds, ok)
	}
	// Without the admin token the seed ids cannot be learnt, and the
	// error says which flag gives it.
	err := run(context.Background(), []string{"-addr", addr, "-api", host, "-n", "2", "-seeds", "1"}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "401") || !strings.Contains(err.Error(), "-token-file") {
		t.Errorf("-api without -token-file: %v, want a 401 naming -token-file", err)
	}
	// A /metrics without the store's histogram is an error, not a zero.
	bare := httptest.NewServer(http.NotFoundHandler())
	defer bare.Close()
	err = run(context.Background(), []string{"-addr", addr, "-api", "", "-metrics", strings.TrimPrefix(bare.URL, "http://"), "-n", "2"}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "-metrics") {
		t.Errorf("/metrics answering 404: %v, want an error naming -metrics", err)
	}
}
