package mailin

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults for the listener limits a Config leaves at zero.
const (
	DefaultMaxConnectionsPerIP = 20
	DefaultMailFromTimeout     = 30 * time.Second
	DefaultMaxNoops            = 20
	DefaultMaxDataDuration     = 10 * time.Minute
	DefaultReadTimeout         = 5 * time.Minute
)

// DefaultTrustedRelays are the addresses exempt from the per-address
// connection cap when Config names none: the MTA on this host. Other
// loopback addresses (127.0.0.2 …) are not trusted.
var DefaultTrustedRelays = []string{"127.0.0.1", "::1"}

// ParseTrustedRelays reads addresses ("192.0.2.1", "::1") and CIDR
// prefixes ("10.0.0.0/8") into prefixes.
func ParseTrustedRelays(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range list {
		s = strings.TrimSpace(s)
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("trusted relay %q is neither an address nor a CIDR prefix", s)
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// gate is a listener that refuses, with 421 4.7.0 at once, a connection
// past the overall cap or past the cap for its client address, instead
// of leaving it in the kernel's accept queue. The connections it lets in
// are guardConns.
type gate struct {
	net.Listener
	hostname string
	max      int // 0: no overall cap
	perIP    int
	trusted  []netip.Prefix
	log      *slog.Logger
	guard    func(net.Conn) *guardConn // makes the guard of an admitted connection

	mu      sync.Mutex
	open    int
	byIP    map[netip.Addr]int
	refused atomic.Int64
}

// Accept returns the next connection within the caps; it answers and
// closes the others itself.
func (l *gate) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip := clientIP(c)
		if why := l.admit(ip); why != "" {
			l.refuse(c, ip, why)
			continue
		}
		g := l.guard(c)
		g.release = func() { l.leave(ip) }
		return g, nil
	}
}

// admit takes a place for a connection from ip, or says why there is none.
func (l *gate) admit(ip netip.Addr) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.max > 0 && l.open >= l.max {
		return "too many connections"
	}
	if l.perIP > 0 && !l.isTrusted(ip) && l.byIP[ip] >= l.perIP {
		return "too many connections from your address"
	}
	l.open++
	l.byIP[ip]++
	return ""
}

func (l *gate) leave(ip netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.open--
	if l.byIP[ip]--; l.byIP[ip] <= 0 {
		delete(l.byIP, ip)
	}
}

func (l *gate) isTrusted(ip netip.Addr) bool {
	for _, p := range l.trusted {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// refuse answers 421 and closes. The write goes to a fresh socket's empty
// send buffer, so it does not hold up accepting; the deadline is a guard.
func (l *gate) refuse(c net.Conn, ip netip.Addr, why string) {
	c.SetWriteDeadline(time.Now().Add(time.Second))
	io.WriteString(c, fmt.Sprintf("421 4.7.0 %s %s, please try again later\r\n", l.hostname, why))
	c.Close()
	// A flood would write a line per connection; the first and every
	// hundredth say enough.
	if n := l.refused.Add(1); n == 1 || n%100 == 0 {
		l.log.Warn("connection refused", "remote", ip.String(), "reason", why, "refused_so_far", n)
	}
}

// load reports the open connections and the overall cap.
func (l *gate) load() (open, max int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.open, l.max
}

func clientIP(c net.Conn) netip.Addr {
	if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return ta.AddrPort().Addr().Unmap()
	}
	return netip.Addr{} // not TCP: all such clients share one place
}
