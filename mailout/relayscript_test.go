package mailout

import (
	"bufio"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// scriptedRelay is a relay on 127.0.0.1 that plays a script: it greets
// each connection with greeting (and hangs up when that is no 220), then
// hands each command line to the answer session made for the connection,
// which writes the reply (reading on from r where the command has data)
// and returns false to hang up. QUIT is answered 221 before the answer
// sees it. It returns its address and how many connections it took.
func scriptedRelay(t *testing.T, greeting string, session func() (answer func(c net.Conn, r *bufio.Reader, line string) bool)) (addr string, conns func() int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var n atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n.Add(1)
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(30 * time.Second))
				io.WriteString(c, greeting+"\r\n")
				if !strings.HasPrefix(greeting, "220") {
					return
				}
				r, answer := bufio.NewReader(c), session()
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					if strings.EqualFold(strings.TrimSpace(line), "QUIT") {
						io.WriteString(c, "221 bye\r\n")
						return
					}
					if !answer(c, r, line) {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String(), n.Load
}
