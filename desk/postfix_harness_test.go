package desk

// Real Dovecot and Postfix for integration tests. The tests start their own
// instances from the templates in ../testdata/dovecot and ../testdata/postfix,
// on 127.0.0.1 and a free port, with every file in a directory of their own,
// and stop them at cleanup. Set TICKETGATE_INTEGRATION=1 to make a missing
// server a failure instead of a skip (CI does).

import (
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/textproto"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

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

	bin    string
	dir    string // config_directory
	log    string
	queue  string // queue_directory
	banner string // in this instance's SMTP greeting, and no other's
	cmd    *exec.Cmd
	done   chan struct{}
}

// postfixConf is what the templates in testdata/postfix are filled with.
type postfixConf struct {
	Addr      string
	Port      int
	QueueDir  string
	DataDir   string
	LogFile   string
	Banner    string // smtpd_banner's text after "$myhostname ESMTP"
	Transport string
	PipeUser  string
	PipeArgv  string
	// RcptRestrictions is smtpd_recipient_restrictions (none when empty).
	RcptRestrictions string

	// Deploy leaves routing, recipient checks and the pipe service out of
	// the templates: install adds them from contrib/postfix instead.
	Deploy  bool
	install func(t testing.TB, dir string) // run on the config directory before the start
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
	conf.QueueDir = filepath.Join(base, "queue")
	conf.DataDir = filepath.Join(base, "data")
	conf.LogFile = filepath.Join(base, "postfix.log")
	conf.Banner = "ticketgate-test-" + rand.Text()
	for _, d := range []string{dir, conf.QueueDir} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	p := &postfixServer{
		PipeUser: conf.PipeUser,
		bin:      bin,
		dir:      dir,
		log:      conf.LogFile,
		queue:    conf.QueueDir,
		banner:   conf.Banner,
	}
	logOnFailure(t, "postfix", p.log)
	t.Cleanup(func() { p.stop(t) })
	// The port is free when picked but Postfix binds it seconds later;
	// should another process have taken it meanwhile, the master exits,
	// and Postfix is started again on another port.
	for attempt := 1; ; attempt++ {
		conf.Port = freeLoopbackPort(t)
		p.SMTPAddr = net.JoinHostPort(conf.Addr, strconv.Itoa(conf.Port))
		renderTemplate(t, "../testdata/postfix/main.cf.tmpl", filepath.Join(dir, "main.cf"), conf)
		renderTemplate(t, "../testdata/postfix/master.cf.tmpl", filepath.Join(dir, "master.cf"), conf)
		if conf.install != nil {
			conf.install(t, dir)
		}
		err := p.start(t)
		if err == nil {
			return p
		}
		if !errors.Is(err, errPortTaken) || attempt == 3 {
			t.Fatal(err)
		}
		t.Logf("%v; starting again on another port", err)
	}
}

// errPortTaken is start's error when the master could not bind the SMTP
// port because another process had taken it since it was picked.
var errPortTaken = errors.New("postfix: SMTP port taken by another process")

// start runs the master in the foreground as a child of the test, and
// waits until this instance's SMTP server greets: a server that another
// process started on the same port meanwhile (see freeLoopbackPort) is
// told apart by its greeting, which lacks this instance's banner.
func (p *postfixServer) start(t testing.TB) error {
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
	go func(done chan struct{}) {
		cmd.Wait()
		close(done)
	}(p.done)

	// A bound on the start, as a failure limit only: on a busy machine
	// postfix start-fg's checks alone take over 15 s.
	const limit = 90 * time.Second
	deadline := time.Now().Add(limit)
	for {
		err := smtpGreets(p.SMTPAddr, p.banner)
		if err == nil {
			return nil
		}
		select {
		case <-p.done:
			p.cmd = nil
			if strings.Contains(p.Log(t), fmt.Sprintf("bind %s port %d: Address already in use", p.addrHost(), p.port())) {
				return fmt.Errorf("%w: %s", errPortTaken, p.SMTPAddr)
			}
			// Postfix writes early fatal errors to stderr only when it is
			// a terminal; otherwise they go to syslog, or to the log file
			// once that is set up.
			out, _ := os.ReadFile(filepath.Join(p.dir, "postfix.out"))
			return fmt.Errorf("postfix exited at start: %v\n%s\n(to see errors that reach no log: script -qc 'postfix -c %s check' /dev/null)",
				cmd.ProcessState, out, p.dir)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("postfix on %s not ready after %v: %v", p.SMTPAddr, limit, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (p *postfixServer) addrHost() string {
	host, _, _ := net.SplitHostPort(p.SMTPAddr)
	return host
}

func (p *postfixServer) port() int {
	_, port, _ := net.SplitHostPort(p.SMTPAddr)
	n, _ := strconv.Atoi(port)
	return n
}

// smtpGreets reports whether the SMTP server at addr is ready and is the
// one whose greeting holds banner. Like the first session of any client,
// it says EHLO and QUIT.
func smtpGreets(addr, banner string) error {
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	// A bound on one try, as a failure limit only.
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	c := textproto.NewConn(conn)
	_, greeting, err := c.ReadResponse(220)
	if err != nil {
		return err
	}
	if !strings.Contains(greeting, banner) {
		return fmt.Errorf("greeted by another server: %q", greeting)
	}
	for _, cmd := range []struct {
		line string
		code int
	}{{"EHLO localhost", 250}, {"QUIT", 221}} {
		id, err := c.Cmd("%s", cmd.line)
		if err != nil {
			return err
		}
		c.StartResponse(id)
		_, _, err = c.ReadResponse(cmd.code)
		c.EndResponse(id)
		if err != nil {
			return fmt.Errorf("%s: %w", cmd.line, err)
		}
	}
	return nil
}

// stop asks the master to stop and waits for it. A start still under way
// (the test failed before Postfix was ready) has no master to ask yet:
// its processes are sent SIGTERM.
func (p *postfixServer) stop(t testing.TB) {
	if p.cmd == nil {
		return
	}
	if out, err := exec.Command(p.bin, "-c", p.dir, "stop").CombinedOutput(); err != nil {
		t.Logf("postfix stop: %v\n%s", err, out)
		syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	}
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
		t.Errorf("postfix did not stop within 10s; killed")
	}
	p.cmd = nil
	p.stopMaster(t)
}

// stopMaster stops a master of this instance that is still running once
// postfix start-fg has exited: one that started while a start under way
// was being stopped. The master runs in a session of its own, out of reach
// of the signals to start-fg's process group. It is found by its pid file,
// and known for this instance's by its working directory, the queue.
func (p *postfixServer) stopMaster(t testing.TB) {
	b, err := os.ReadFile(filepath.Join(p.queue, "pid", "master.pid"))
	if err != nil {
		return
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		return
	}
	running := func() bool {
		cwd, err := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid))
		return err == nil && cwd == p.queue
	}
	if !running() {
		return
	}
	syscall.Kill(-pid, syscall.SIGTERM)
	for deadline := time.Now().Add(10 * time.Second); running(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			syscall.Kill(-pid, syscall.SIGKILL)
			t.Errorf("postfix master %d left running after start-fg exited, did not stop within 10s of SIGTERM; killed", pid)
			return
		}
	}
	t.Logf("postfix master %d was left running after start-fg exited; stopped", pid)
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
