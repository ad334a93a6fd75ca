package mailin

// Real Dovecot and Postfix for integration tests. The tests start their own
// instances from the templates in ../testdata/dovecot and ../testdata/postfix,
// on 127.0.0.1 and a free port, with every file in a directory of their own,
// and stop them at cleanup. Set TICKETGATE_INTEGRATION=1 to make a missing
// server a failure instead of a skip (CI does).

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"text/template"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-smtp"
)

// integrationRequired reports whether the real servers must be there.
func integrationRequired() bool {
	v := os.Getenv("TICKETGATE_INTEGRATION")
	return v != "" && v != "0"
}

// requireBinary returns the path of a binary: the first of paths that is an
// executable file, else name looked up in $PATH. It skips the test when the
// binary is missing, unless TICKETGATE_INTEGRATION=1, where it fails it, so
// that CI never passes by skipping.
func requireBinary(t testing.TB, name string, paths ...string) string {
	t.Helper()
	for _, p := range paths {
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	if integrationRequired() {
		t.Fatalf("%s not found (tried %v and $PATH) and TICKETGATE_INTEGRATION is set", name, paths)
	}
	t.Skipf("%s not installed; set TICKETGATE_INTEGRATION=1 to require it", name)
	return ""
}

// requireRoot skips (or, under TICKETGATE_INTEGRATION, fails) a test whose
// server only runs as root.
func requireRoot(t testing.TB, what string) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if integrationRequired() {
		t.Fatalf("%s needs root and TICKETGATE_INTEGRATION is set", what)
	}
	t.Skipf("%s needs root", what)
}

// serverDir makes a world-traversable directory for a server's files.
// t.TempDir() is not used: its parents are mode 0700, which the servers'
// unprivileged processes (dovenull, postfix, nobody) cannot enter, and its
// long names overflow the 108-byte limit on unix socket paths.
func serverDir(t testing.TB, prefix string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "tg-"+prefix+"-")
	if err != nil {
		t.Fatalf("server dir: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatalf("server dir: %v", err)
	}
	return dir
}

// freeLoopbackPort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freeLoopbackPort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// renderTemplate fills the template src (relative to the package dir) with
// data and writes it to dst.
func renderTemplate(t testing.TB, src, dst string, data any) {
	t.Helper()
	tmpl, err := template.ParseFiles(src)
	if err != nil {
		t.Fatalf("template: %v", err)
	}
	var buf bytes.Buffer
	if err := tmpl.Execute(&buf, data); err != nil {
		t.Fatalf("template %s: %v", src, err)
	}
	if err := os.WriteFile(dst, buf.Bytes(), 0o644); err != nil {
		t.Fatalf("write %s: %v", dst, err)
	}
}

// logOnFailure prints the file at path when the test has failed.
func logOnFailure(t testing.TB, what, path string) {
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Logf("%s log %s: %v", what, path, err)
			return
		}
		t.Logf("%s log %s:\n%s", what, path, lastBytes(b, 16<<10))
	})
}

// lastBytes returns at most the last n bytes of b.
func lastBytes(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// lookupIDs returns the uid and gid of the named user.
func lookupIDs(t testing.TB, name string) (uid, gid int) {
	t.Helper()
	u, err := user.Lookup(name)
	if err != nil {
		t.Fatalf("user %s: %v", name, err)
	}
	uid, _ = strconv.Atoi(u.Uid)
	gid, _ = strconv.Atoi(u.Gid)
	return uid, gid
}

// groupName returns the name of the group gid, or gid as a number.
func groupName(gid int) string {
	if g, err := user.LookupGroupId(strconv.Itoa(gid)); err == nil {
		return g.Name
	}
	return strconv.Itoa(gid)
}

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
		Password: "s3cret-for-tests",
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

// postfixServer is a real Postfix instance with its own config, queue and
// data directories, listening for SMTP on SMTPAddr (127.0.0.1 and a free
// port). It relays mail for example.com to one transport: LMTP to the
// gateway, or a pipe into a command. It is stopped, and its log printed if
// the test failed, at cleanup.
type postfixServer struct {
	SMTPAddr string

	// PipeUser is the account the pipe transport runs its command as
	// (Postfix refuses root); empty for LMTP.
	PipeUser string

	bin  string
	dir  string // config_directory
	log  string
	cmd  *exec.Cmd
	done chan struct{}
}

// postfixConf is what the templates in testdata/postfix are filled with.
type postfixConf struct {
	Addr      string
	Port      int
	QueueDir  string
	DataDir   string
	LogFile   string
	Transport string
	PipeUser  string
	PipeArgv  string
}

// pipeUser is the account Postfix's pipe transport runs commands as.
const pipeUser = "nobody"

// startPostfix starts a Postfix that delivers mail for example.com by LMTP
// to lmtpAddr ("127.0.0.1:PORT"), the way the gateway is deployed.
func startPostfix(t testing.TB, lmtpAddr string) *postfixServer {
	t.Helper()
	return startPostfixConf(t, postfixConf{Transport: "lmtp:inet:" + lmtpAddr})
}

// startPostfixPipe starts a Postfix that delivers mail for example.com by
// running argv (split on spaces, with the recipient appended as the last
// argument) as PipeUser, the message on its standard input. Exit status 75
// (EX_TEMPFAIL) makes Postfix retry; other non-zero statuses bounce. argv's
// program, config and data must be usable by PipeUser: see pipeDir.
func startPostfixPipe(t testing.TB, argv string) *postfixServer {
	t.Helper()
	return startPostfixConf(t, postfixConf{
		Transport: "ticketgate:",
		PipeUser:  pipeUser,
		PipeArgv:  argv,
	})
}

// pipeDir returns a new directory owned by the pipe transport's user, on a
// path that user can reach, for the program, config and database a test's
// pipe command uses. Files the test writes there itself must be readable
// (and, for a database, writable) by that user.
func pipeDir(t testing.TB) string {
	t.Helper()
	requireRoot(t, "postfix")
	dir := serverDir(t, "pipe")
	uid, gid := lookupIDs(t, pipeUser)
	if err := os.Chown(dir, uid, gid); err != nil {
		t.Fatalf("pipe dir: %v", err)
	}
	return dir
}

func startPostfixConf(t testing.TB, conf postfixConf) *postfixServer {
	t.Helper()
	bin := requireBinary(t, "postfix", "/usr/sbin/postfix")
	requireRoot(t, "postfix")
	base := serverDir(t, "postfix")
	// Postfix creates the queue's subdirectories and data_directory
	// itself; the queue must exist and belong to root. Config stays apart
	// from the queue so that postfix check finds nothing to warn about.
	dir := filepath.Join(base, "etc")
	conf.Addr = "127.0.0.1"
	conf.Port = freeLoopbackPort(t)
	conf.QueueDir = filepath.Join(base, "queue")
	conf.DataDir = filepath.Join(base, "data")
	conf.LogFile = filepath.Join(base, "postfix.log")
	for _, d := range []string{dir, conf.QueueDir} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	renderTemplate(t, "../testdata/postfix/main.cf.tmpl", filepath.Join(dir, "main.cf"), conf)
	renderTemplate(t, "../testdata/postfix/master.cf.tmpl", filepath.Join(dir, "master.cf"), conf)
	p := &postfixServer{
		SMTPAddr: net.JoinHostPort(conf.Addr, strconv.Itoa(conf.Port)),
		PipeUser: conf.PipeUser,
		bin:      bin,
		dir:      dir,
		log:      conf.LogFile,
	}
	logOnFailure(t, "postfix", p.log)
	t.Cleanup(func() { p.stop(t) })
	p.start(t)
	return p
}

// start runs the master in the foreground as a child of the test, and
// waits until the SMTP port greets.
func (p *postfixServer) start(t testing.TB) {
	t.Helper()
	out, err := os.Create(filepath.Join(p.dir, "postfix.out"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	cmd := exec.Command(p.bin, "-c", p.dir, "start-fg")
	cmd.Stdout, cmd.Stderr = out, out
	// Pdeathsig: a test binary killed by its timeout takes the server along.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start postfix: %v", err)
	}
	p.cmd = cmd
	p.done = make(chan struct{})
	go func() {
		cmd.Wait()
		close(p.done)
	}()

	deadline := time.Now().Add(20 * time.Second)
	for {
		err := smtpGreets(p.SMTPAddr)
		if err == nil {
			return
		}
		select {
		case <-p.done:
			// Postfix writes early fatal errors to stderr only when it is
			// a terminal; otherwise they go to syslog, or to the log file
			// once that is set up.
			out, _ := os.ReadFile(filepath.Join(p.dir, "postfix.out"))
			t.Fatalf("postfix exited at start: %v\n%s\n(to see errors that reach no log: script -qc 'postfix -c %s check' /dev/null)",
				cmd.ProcessState, out, p.dir)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("postfix on %s not ready after 20s: %v", p.SMTPAddr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// smtpGreets reports whether an SMTP server at addr sends its 220 greeting.
func smtpGreets(addr string) error {
	c, err := smtp.Dial(addr)
	if err != nil {
		return err
	}
	defer c.Close()
	return c.Quit()
}

// stop asks the master to stop and waits for it.
func (p *postfixServer) stop(t testing.TB) {
	if p.cmd == nil {
		return
	}
	if out, err := exec.Command(p.bin, "-c", p.dir, "stop").CombinedOutput(); err != nil {
		t.Logf("postfix stop: %v\n%s", err, out)
	}
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
		t.Errorf("postfix did not stop within 10s; killed")
	}
	p.cmd = nil
}

// Queue returns the output of postqueue -p for this instance: what is still
// waiting for delivery, with the reason of the last failure.
func (p *postfixServer) Queue(t testing.TB) string {
	t.Helper()
	postqueue := requireBinary(t, "postqueue", "/usr/sbin/postqueue")
	out, err := exec.Command(postqueue, "-c", p.dir, "-p").CombinedOutput()
	if err != nil {
		t.Fatalf("postqueue -p: %v\n%s", err, out)
	}
	return string(out)
}

// Flush asks Postfix to retry every deferred message now.
func (p *postfixServer) Flush(t testing.TB) {
	t.Helper()
	postqueue := requireBinary(t, "postqueue", "/usr/sbin/postqueue")
	if out, err := exec.Command(postqueue, "-c", p.dir, "-f").CombinedOutput(); err != nil {
		t.Fatalf("postqueue -f: %v\n%s", err, out)
	}
}

// Log returns Postfix's log so far.
func (p *postfixServer) Log(t testing.TB) string {
	t.Helper()
	b, err := os.ReadFile(p.log)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("postfix log: %v", err)
	}
	return string(b)
}

// Tests of the harness itself.

func harnessMessage(msgID string, size int) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: Alice <alice@customer.test>\r\n"+
		"To: support@example.com\r\n"+
		"Subject: Printer on fire\r\n"+
		"Date: Mon, 02 Jan 2006 15:04:05 +0000\r\n"+
		"Message-ID: <%s>\r\n"+
		"Content-Type: text/plain; charset=utf-8\r\n\r\n", msgID)
	line := "The printer on the third floor is on fire again.\r\n"
	for b.Len()+len(line) <= size {
		b.WriteString(line)
	}
	return b.Bytes()
}

// selectCount returns the number of messages in mailbox, as SELECT reports.
func selectCount(t testing.TB, c *imapclient.Client, mailbox string) uint32 {
	t.Helper()
	data, err := c.Select(mailbox, nil).Wait()
	if err != nil {
		t.Fatalf("select %s: %v", mailbox, err)
	}
	return data.NumMessages
}

func TestDovecotHarness(t *testing.T) {
	t0 := time.Now()
	d := startDovecot(t)
	t.Logf("dovecot start: %v", time.Since(t0))

	d.Append(t, "INBOX", harnessMessage("first@customer.test", 512))

	checkFirst := func() {
		c := d.Client(t, nil)
		if n := selectCount(t, c, "INBOX"); n != 1 {
			t.Fatalf("INBOX has %d messages, want 1", n)
		}
		msgs, err := c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{Envelope: true}).Collect()
		if err != nil {
			t.Fatalf("fetch: %v", err)
		}
		if len(msgs) != 1 || msgs[0].Envelope == nil || msgs[0].Envelope.MessageID != "first@customer.test" {
			t.Fatalf("fetched %+v, want Message-ID first@customer.test", msgs)
		}
		c.Logout().Wait()
	}
	checkFirst()

	t0 = time.Now()
	d.Stop(t)
	t.Logf("dovecot stop: %v", time.Since(t0))
	t0 = time.Now()
	d.Start(t)
	t.Logf("dovecot start again: %v", time.Since(t0))
	checkFirst()

	// IDLE: a client idling on INBOX hears of a message another appends.
	exists := make(chan uint32, 16)
	c := d.Client(t, &imapclient.Options{
		UnilateralDataHandler: &imapclient.UnilateralDataHandler{
			Mailbox: func(m *imapclient.UnilateralDataMailbox) {
				if m.NumMessages != nil {
					select {
					case exists <- *m.NumMessages:
					default:
					}
				}
			},
		},
	})
	if n := selectCount(t, c, "INBOX"); n != 1 {
		t.Fatalf("INBOX has %d messages before IDLE, want 1", n)
	}
	idle, err := c.Idle()
	if err != nil {
		t.Fatalf("idle: %v", err)
	}
	d.Append(t, "INBOX", harnessMessage("second@customer.test", 512))
	timeout := time.After(10 * time.Second)
	for n := uint32(1); n < 2; {
		select {
		case n = <-exists:
		case <-timeout:
			t.Fatalf("no EXISTS 2 within 10s of an APPEND while idling")
		}
	}
	if err := idle.Close(); err != nil {
		t.Fatalf("idle done: %v", err)
	}
	if err := idle.Wait(); err != nil {
		t.Fatalf("idle: %v", err)
	}

	// Many messages, quickly, into another mailbox.
	const many = 10000
	msgs := make([][]byte, many)
	for i := range msgs {
		msgs[i] = harnessMessage(fmt.Sprintf("bulk-%d@customer.test", i), 4096)
	}
	t0 = time.Now()
	d.AppendMany(t, "Bulk", msgs)
	t.Logf("dovecot AppendMany of %d 4 KB messages: %v", many, time.Since(t0))
	if n := selectCount(t, c, "Bulk"); n != many {
		t.Fatalf("Bulk has %d messages, want %d", n, many)
	}
	last, err := c.Fetch(imap.SeqSetNum(many), &imap.FetchOptions{Envelope: true}).Collect()
	if err != nil || len(last) != 1 || last[0].Envelope.MessageID != fmt.Sprintf("bulk-%d@customer.test", many-1) {
		t.Fatalf("last bulk message: %v %+v, want bulk-%d", err, last, many-1)
	}
}

// lmtpRecorder is an LMTP backend that keeps what it is given.
type lmtpRecorder struct {
	mu   sync.Mutex
	got  []lmtpDelivery
	recv chan struct{} // gets a value per delivery
}

type lmtpDelivery struct {
	From string
	To   []string
	Data []byte
}

func (r *lmtpRecorder) NewSession(*smtp.Conn) (smtp.Session, error) {
	return &lmtpRecorderSession{r: r}, nil
}

type lmtpRecorderSession struct {
	r *lmtpRecorder
	d lmtpDelivery
}

func (s *lmtpRecorderSession) Reset()        { s.d = lmtpDelivery{} }
func (s *lmtpRecorderSession) Logout() error { return nil }
func (s *lmtpRecorderSession) Mail(from string, _ *smtp.MailOptions) error {
	s.d.From = from
	return nil
}
func (s *lmtpRecorderSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.d.To = append(s.d.To, to)
	return nil
}
func (s *lmtpRecorderSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.d.Data = b
	s.r.mu.Lock()
	s.r.got = append(s.r.got, s.d)
	s.r.mu.Unlock()
	s.r.recv <- struct{}{}
	return nil
}

func TestPostfixHarness(t *testing.T) {
	rec := &lmtpRecorder{recv: make(chan struct{}, 16)}
	srv := smtp.NewServer(rec)
	srv.LMTP = true
	srv.Domain = "gateway.test"
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })

	t0 := time.Now()
	p := startPostfix(t, l.Addr().String())
	t.Logf("postfix start: %v", time.Since(t0))

	raw := harnessMessage("via-postfix@customer.test", 1024)
	sc, err := smtp.Dial(p.SMTPAddr)
	if err != nil {
		t.Fatalf("dial postfix: %v", err)
	}
	if err := sc.SendMail("alice@customer.test", []string{"support@example.com"}, bytes.NewReader(raw)); err != nil {
		t.Fatalf("send to postfix: %v", err)
	}
	sc.Quit()
	select {
	case <-rec.recv:
	case <-time.After(30 * time.Second):
		t.Fatalf("LMTP got nothing within 30s; queue:\n%s", p.Queue(t))
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	got := rec.got[0]
	if len(got.To) != 1 || got.To[0] != "support@example.com" || got.From != "alice@customer.test" {
		t.Errorf("LMTP envelope from %q to %q, want alice@customer.test to [support@example.com]", got.From, got.To)
	}
	if !bytes.Contains(got.Data, []byte("Message-ID: <via-postfix@customer.test>")) {
		t.Errorf("LMTP data lacks the Message-ID:\n%s", got.Data)
	}
}

func TestPostfixPipeHarness(t *testing.T) {
	dir := pipeDir(t)
	// The command stands in for "ticketgate inject": it keeps the message
	// it reads, named after the recipient it is given.
	script := filepath.Join(dir, "record.sh")
	body := "#!/bin/sh\nset -e\ncat > \"$1/got.tmp\"\nmv \"$1/got.tmp\" \"$1/got-$2\"\n"
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	p := startPostfixPipe(t, script+" "+dir)

	sc, err := smtp.Dial(p.SMTPAddr)
	if err != nil {
		t.Fatalf("dial postfix: %v", err)
	}
	raw := harnessMessage("via-pipe@customer.test", 1024)
	if err := sc.SendMail("alice@customer.test", []string{"support@example.com"}, bytes.NewReader(raw)); err != nil {
		t.Fatalf("send to postfix: %v", err)
	}
	sc.Quit()

	got := filepath.Join(dir, "got-support@example.com")
	deadline := time.Now().Add(30 * time.Second)
	for {
		b, err := os.ReadFile(got)
		if err == nil {
			if !bytes.Contains(b, []byte("Message-ID: <via-pipe@customer.test>")) {
				t.Errorf("piped message lacks the Message-ID:\n%s", b)
			}
			if !bytes.HasPrefix(b, []byte("Return-Path: <alice@customer.test>")) {
				t.Errorf("piped message does not start with the Return-Path:\n%s", b)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("pipe command got nothing within 30s; queue:\n%s", p.Queue(t))
		}
		time.Sleep(50 * time.Millisecond)
	}
}
