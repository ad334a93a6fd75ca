package desk

// Real Dovecot and Postfix for integration tests. The tests start their own
// instances from the templates in ../testdata/dovecot and ../testdata/postfix,
// on 127.0.0.1 and a free port, with every file in a directory of their own,
// and stop them at cleanup. Set TICKETGATE_INTEGRATION=1 to make a missing
// server a failure instead of a skip (CI does).

import (
	"bufio"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// dovecotServer is a real Dovecot serving IMAP on Addr (127.0.0.1 and a free
// port) from a throwaway mdbox, with one user. IDLE is on, and LOGIN over
// plain TCP is allowed. Stop and Start restart it on the same port with the
// same mail. It is stopped, and its log printed if the test failed, at
// cleanup.
type dovecotServer struct {
	Addr     string
	User     string
	Password string

	bin  string
	dir  string // config, sockets, state and log
	conf string
	log  string
	home string // the user's home; mail is in home/mdbox
	uid  int    // owner of the mail files
	gid  int
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
}

// dovecotConf is what testdata/dovecot/dovecot.conf.tmpl is filled with.
type dovecotConf struct {
	Instance      string
	BaseDir       string
	Addr          string
	Port          int
	InternalUser  string
	InternalGroup string
	LoginUser     string
	MailUID       int
	MailGID       int
	MailDir       string
}

// startDovecot starts a Dovecot for the test and waits until the user can
// log in.
func startDovecot(t testing.TB) *dovecotServer {
	t.Helper()
	bin := requireBinary(t, "dovecot", "/usr/sbin/dovecot")
	dir := serverDir(t, "dovecot")
	port := freeLoopbackPort(t)
	d := &dovecotServer{
		Addr:     net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		User:     "support",
		Password: "s3cret-" + rand.Text(), // its own: the readiness login fails at another test's Dovecot on the port
		bin:      bin,
		dir:      dir,
		conf:     filepath.Join(dir, "dovecot.conf"),
		log:      filepath.Join(dir, "dovecot.log"),
	}
	conf := dovecotConf{
		Instance: filepath.Base(dir),
		BaseDir:  dir,
		Addr:     "127.0.0.1",
		Port:     port,
		MailDir:  filepath.Join(dir, "mail"),
	}
	if os.Geteuid() == 0 {
		// Dovecot will not serve mail as uid 0: mail belongs to nobody,
		// and the daemons run as the users the Debian package made.
		conf.InternalUser, conf.LoginUser = "dovecot", "dovenull"
		d.uid, d.gid = lookupIDs(t, "nobody")
	} else {
		// Unprivileged, everything runs as the user running the tests.
		u, err := user.Current()
		if err != nil {
			t.Fatalf("current user: %v", err)
		}
		conf.InternalUser, conf.LoginUser = u.Username, u.Username
		d.uid, d.gid = os.Geteuid(), os.Getegid()
	}
	conf.InternalGroup = groupName(mustGID(t, conf.InternalUser))
	conf.MailUID, conf.MailGID = d.uid, d.gid
	renderTemplate(t, "../testdata/dovecot/dovecot.conf.tmpl", d.conf, conf)

	users := fmt.Sprintf("%s:{PLAIN}%s\n", d.User, d.Password)
	if err := os.WriteFile(filepath.Join(dir, "users"), []byte(users), 0o644); err != nil {
		t.Fatal(err)
	}
	d.home = filepath.Join(conf.MailDir, d.User)
	if err := os.MkdirAll(d.home, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(d.home, d.uid, d.gid); err != nil {
		t.Fatal(err)
	}
	logOnFailure(t, "dovecot", d.log)
	t.Cleanup(func() {
		if d.cmd != nil {
			d.Stop(t)
		}
	})
	d.Start(t)
	return d
}

func mustGID(t testing.TB, name string) int {
	t.Helper()
	_, gid := lookupIDs(t, name)
	return gid
}

// Start starts Dovecot (again) and waits until the user can log in.
func (d *dovecotServer) Start(t testing.TB) {
	t.Helper()
	if d.cmd != nil {
		t.Fatalf("dovecot already running")
	}
	out, err := os.OpenFile(filepath.Join(d.dir, "dovecot.out"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	cmd := exec.Command(d.bin, "-F", "-c", d.conf)
	cmd.Stdout, cmd.Stderr = out, out
	// Pdeathsig: a test binary killed by its timeout takes the server along.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start dovecot: %v", err)
	}
	d.cmd = cmd
	d.done = make(chan struct{})
	go func(done chan struct{}) {
		cmd.Wait()
		close(done)
	}(d.done)

	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := d.login()
		if err == nil {
			c.Logout().Wait()
			c.Close()
			return
		}
		select {
		case <-d.done:
			out, _ := os.ReadFile(filepath.Join(d.dir, "dovecot.out"))
			t.Fatalf("dovecot exited at start: %v\n%s", cmd.ProcessState, out)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("dovecot on %s not ready after 15s: %v", d.Addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop stops Dovecot and waits until it has exited. Mail stays on disk.
func (d *dovecotServer) Stop(t testing.TB) {
	t.Helper()
	if d.cmd == nil {
		t.Fatalf("dovecot not running")
	}
	pgid := d.cmd.Process.Pid
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(10 * time.Second):
		syscall.Kill(-pgid, syscall.SIGKILL)
		<-d.done
		t.Errorf("dovecot did not stop within 10s of SIGTERM; killed")
	}
	d.cmd = nil
}

// login connects and logs in as the user.
func (d *dovecotServer) login() (*imapclient.Client, error) {
	return d.dial(nil)
}

func (d *dovecotServer) dial(opts *imapclient.Options) (*imapclient.Client, error) {
	c, err := imapclient.DialInsecure(d.Addr, opts)
	if err != nil {
		return nil, err
	}
	if err := c.Login(d.User, d.Password).Wait(); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// Client returns a logged-in IMAP client, closed at cleanup.
func (d *dovecotServer) Client(t testing.TB, opts *imapclient.Options) *imapclient.Client {
	t.Helper()
	c, err := d.dial(opts)
	if err != nil {
		t.Fatalf("imap login to %s: %v", d.Addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// ensureMailbox creates mailbox unless it is INBOX or exists.
func ensureMailbox(c *imapclient.Client, mailbox string) error {
	if strings.EqualFold(mailbox, "INBOX") {
		return nil
	}
	err := c.Create(mailbox, nil).Wait()
	var ierr *imap.Error
	if errors.As(err, &ierr) && ierr.Code == imap.ResponseCodeAlreadyExists {
		return nil
	}
	return err
}

// Append puts raw into mailbox (created if needed) as another mail client
// would: APPEND over IMAP.
func (d *dovecotServer) Append(t testing.TB, mailbox string, raw []byte) {
	t.Helper()
	c, err := d.login()
	if err != nil {
		t.Fatalf("append: login: %v", err)
	}
	defer c.Close()
	if err := ensureMailbox(c, mailbox); err != nil {
		t.Fatalf("append: create %s: %v", mailbox, err)
	}
	cmd := c.Append(mailbox, int64(len(raw)), nil)
	if _, err := cmd.Write(raw); err != nil {
		t.Fatalf("append: %v", err)
	}
	if err := cmd.Close(); err != nil {
		t.Fatalf("append: %v", err)
	}
	if _, err := cmd.Wait(); err != nil {
		t.Fatalf("append to %s: %v", mailbox, err)
	}
	if err := c.Logout().Wait(); err != nil {
		t.Fatalf("append: logout: %v", err)
	}
}

// AppendMany puts msgs into mailbox (created if needed; ASCII names only),
// in order, with pipelined APPENDs on one IMAP connection: each message is
// sent as a non-synchronizing literal (LITERAL+, which Dovecot offers), so
// all of them go out without waiting for any answer, and the answers are
// read as they come. imapclient is not used here because it waits for a
// continuation before every literal unless the server offers LITERAL-,
// which Dovecot 2.3 does not; that costs a round trip per message.
func (d *dovecotServer) AppendMany(t testing.TB, mailbox string, msgs [][]byte) {
	t.Helper()
	if len(msgs) == 0 {
		return
	}
	c, err := d.login()
	if err != nil {
		t.Fatalf("append: login: %v", err)
	}
	err = ensureMailbox(c, mailbox)
	c.Logout().Wait()
	c.Close()
	if err != nil {
		t.Fatalf("append: create %s: %v", mailbox, err)
	}
	if err := d.appendPipelined(mailbox, msgs); err != nil {
		t.Fatalf("append to %s: %v", mailbox, err)
	}
}

func (d *dovecotServer) appendPipelined(mailbox string, msgs [][]byte) error {
	for _, r := range mailbox {
		if r < 0x20 || r > 0x7e || r == '"' || r == '\\' {
			return fmt.Errorf("mailbox name %q: only plain ASCII is supported", mailbox)
		}
	}
	conn, err := net.DialTimeout("tcp", d.Addr, 10*time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	// A bound on the whole exchange, as a failure limit only.
	conn.SetDeadline(time.Now().Add(2 * time.Minute))
	br := bufio.NewReader(conn)
	if _, err := imapTagged(br, ""); err != nil { // greeting
		return err
	}
	fmt.Fprintf(conn, "L LOGIN \"%s\" \"%s\"\r\n", d.User, d.Password)
	if _, err := imapTagged(br, "L"); err != nil {
		return fmt.Errorf("login: %w", err)
	}

	werr := make(chan error, 1)
	go func() {
		bw := bufio.NewWriterSize(conn, 256<<10)
		for i, raw := range msgs {
			fmt.Fprintf(bw, "A%d APPEND \"%s\" {%d+}\r\n", i, mailbox, len(raw))
			bw.Write(raw)
			bw.WriteString("\r\n")
		}
		bw.WriteString("Z LOGOUT\r\n")
		werr <- bw.Flush()
	}()
	for i := range msgs {
		if _, err := imapTagged(br, fmt.Sprintf("A%d", i)); err != nil {
			return fmt.Errorf("message %d: %w", i, err)
		}
	}
	if err := <-werr; err != nil {
		return err
	}
	_, err = imapTagged(br, "Z")
	return err
}

// imapTagged reads lines up to the answer tagged tag (the greeting when tag
// is empty), skipping untagged ones, and returns it; an answer other than OK
// is an error. It is for commands whose answers carry no literals.
func imapTagged(br *bufio.Reader, tag string) (string, error) {
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return "", fmt.Errorf("read answer %s: %w", tag, err)
		}
		line = strings.TrimRight(line, "\r\n")
		want := tag
		if tag == "" {
			want = "*"
		} else if strings.HasPrefix(line, "* ") {
			continue
		}
		got, rest, _ := strings.Cut(line, " ")
		if got != want {
			return "", fmt.Errorf("answer %q, want tag %s", line, want)
		}
		if !strings.HasPrefix(rest, "OK") {
			return "", fmt.Errorf("server: %s", line)
		}
		return line, nil
	}
}
