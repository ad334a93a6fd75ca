// Package pgtest starts a throwaway PostgreSQL server for tests: initdb in a
// directory of its own, the server on 127.0.0.1 and a free port with its
// Unix socket in that directory, stopped and removed at cleanup. As root
// (CI) the server runs as nobody: PostgreSQL refuses to run as root.
//
// A missing PostgreSQL skips the test, unless TICKETGATE_INTEGRATION=1,
// where it fails it, so that CI never passes by skipping.
package pgtest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Cluster is a running PostgreSQL server whose superuser "postgres" logs
// in without a password over TCP on 127.0.0.1:Port.
type Cluster struct {
	Port int

	dir  string
	log  string
	bin  string
	cred *syscall.Credential
	cmd  *exec.Cmd
	done chan struct{}
	n    atomic.Int64
}

// integrationRequired reports whether the real servers must be there.
func integrationRequired() bool {
	v := os.Getenv("TICKETGATE_INTEGRATION")
	return v != "" && v != "0"
}

// binDir returns the directory holding initdb and postgres: the newest
// Debian /usr/lib/postgresql/N/bin, else the one in $PATH.
func binDir(t testing.TB) string {
	t.Helper()
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int {
		va, _ := strconv.Atoi(filepath.Base(filepath.Dir(a)))
		vb, _ := strconv.Atoi(filepath.Base(filepath.Dir(b)))
		return vb - va
	})
	for _, d := range dirs {
		if isExec(filepath.Join(d, "initdb")) && isExec(filepath.Join(d, "postgres")) {
			return d
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil && isExec(filepath.Join(filepath.Dir(p), "postgres")) {
		return filepath.Dir(p)
	}
	if integrationRequired() {
		t.Fatal("PostgreSQL server (initdb, postgres) not found in /usr/lib/postgresql/*/bin or $PATH and TICKETGATE_INTEGRATION is set; install the postgresql package")
	}
	t.Skip("PostgreSQL server not installed; set TICKETGATE_INTEGRATION=1 to require it")
	return ""
}

func isExec(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// Start initialises and starts a cluster for the test and its subtests,
// and stops it at cleanup.
func Start(t testing.TB) *Cluster {
	t.Helper()
	bin := binDir(t)
	// Not t.TempDir(): its parents are 0700, which nobody cannot enter,
	// and its long names overflow the 108-byte limit on socket paths.
	dir, err := os.MkdirTemp("", "tg-pg-")
	if err != nil {
		t.Fatalf("cluster dir: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	cred := credential(t)
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			t.Fatal(err)
		}
	}
	c := &Cluster{dir: dir, log: filepath.Join(dir, "postgres.log")}
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", filepath.Join(dir, "data"), "-U", "postgres",
		"--auth=trust", "-E", "UTF8", "--no-locale", "--no-sync")
	initdb.Dir = dir
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if out, err := initdb.CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	c.Port = freePort(t)
	logf, err := os.Create(c.log)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	c.bin, c.cred = bin, cred
	c.start(t, logf)
	t.Cleanup(func() { c.stop(t) })
	c.waitReady(t)
	return c
}

// start starts the server on c's directory and port, its output to logf.
func (c *Cluster) start(t testing.TB, logf *os.File) {
	t.Helper()
	// Durability is not what these tests measure: no fsync.
	c.cmd = exec.Command(filepath.Join(c.bin, "postgres"), "-D", filepath.Join(c.dir, "data"),
		"-h", "127.0.0.1", "-p", strconv.Itoa(c.Port), "-k", c.dir,
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
		"-c", "max_connections=300", "-c", "shared_buffers=32MB", "-c", "max_pred_locks_per_transaction=256")
	c.cmd.Dir = c.dir
	c.cmd.Stdout, c.cmd.Stderr = logf, logf
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred}
	if err := c.cmd.Start(); err != nil {
		t.Fatalf("start postgres: %v", err)
	}
	done := make(chan struct{})
	c.done = done
	go func(cmd *exec.Cmd) { cmd.Wait(); close(done) }(c.cmd)
}

// Restart stops the server as an operator's restart does (a fast
// shutdown: every connection is ended) and starts it again on the same
// port, returning once it takes connections.
func (c *Cluster) Restart(t testing.TB) {
	t.Helper()
	c.stop(t)
	logf, err := os.OpenFile(c.log, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	c.start(t, logf)
	c.waitReady(t)
}

// credential is who runs the server: nobody when the tests run as root,
// else the user running them.
func credential(t testing.TB) *syscall.Credential {
	t.Helper()
	if os.Geteuid() != 0 {
		return nil
	}
	u, err := user.Lookup("nobody")
	if err != nil {
		t.Fatalf("user nobody: %v", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func (c *Cluster) waitReady(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		conn, err := pgx.Connect(context.Background(), c.DSN("postgres"))
		if err == nil {
			conn.Close(context.Background())
			return
		}
		select {
		case <-c.done:
			t.Fatalf("postgres exited at start: %v\n%s", c.cmd.ProcessState, c.logTail())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("postgres on port %d not ready after 30s: %v\n%s", c.Port, err, c.logTail())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (c *Cluster) stop(t testing.TB) {
	if t.Failed() {
		t.Logf("postgres log:\n%s", c.logTail())
	}
	c.cmd.Process.Signal(syscall.SIGINT) // fast shutdown
	select {
	case <-c.done:
	case <-time.After(15 * time.Second):
		c.cmd.Process.Kill()
		<-c.done
	}
}

func (c *Cluster) logTail() string {
	b, err := os.ReadFile(c.log)
	if err != nil {
		return err.Error()
	}
	if len(b) > 16<<10 {
		b = b[len(b)-16<<10:]
	}
	return string(b)
}

// DSN is the connection string for database db as the superuser.
func (c *Cluster) DSN(db string) string {
	return fmt.Sprintf("host=127.0.0.1 port=%d user=postgres dbname=%s sslmode=disable", c.Port, db)
}

// NewDatabase creates an empty database and returns its DSN.
func (c *Cluster) NewDatabase(t testing.TB) string {
	t.Helper()
	name := fmt.Sprintf("t%d", c.n.Add(1))
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, c.DSN("postgres"))
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name+" STRATEGY FILE_COPY"); err != nil {
		t.Fatalf("create database: %v", err)
	}
	return c.DSN(name)
}
