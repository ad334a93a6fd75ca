package main

import (
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"mime"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
)

// adminPrincipal is who the admin token identifies: the operator. Actions
// taken with it are recorded as the operator's unless the request names
// an agent (the CLI's -as), and then as that agent's through the
// operator's token.
const adminPrincipal = "operator"

// adminOpenPaths are served without a token: probes and scrapers that
// hold no secret. They still get the Host and Origin checks.
var adminOpenPaths = map[string]bool{"/healthz": true, "/metrics": true}

// Media types the admin API accepts for request bodies.
const (
	typeJSON = "application/json"
	typeMail = "message/rfc822" // inject and explain: one whole message
)

// adminTokenFile is [admin] token_file, or admin.token next to the
// database as the other key files are.
func adminTokenFile(cfg *Config) string {
	if f := cfg.Admin.TokenFile; f != "" {
		return f
	}
	return filepath.Join(filepath.Dir(cfg.Store.Path), "admin.token")
}

// loadOrCreateAdminToken returns serve's bearer token, creating the token
// file (0600, 32 random bytes in hex) when it does not exist.
func loadOrCreateAdminToken(cfg *Config) (string, error) {
	key, err := loadOrCreateKey(adminTokenFile(cfg))
	if err != nil {
		return "", fmt.Errorf("admin.token_file: %w", err)
	}
	return hex.EncodeToString(key), nil
}

// readAdminToken reads the token a command hands over with; only serve
// creates the file.
func readAdminToken(cfg *Config) (string, error) {
	key, err := readKey(adminTokenFile(cfg))
	if errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("admin.token_file %s does not exist (serve creates it when it starts): %w", adminTokenFile(cfg), err)
	}
	if err != nil {
		return "", fmt.Errorf("admin.token_file: %w", err)
	}
	return hex.EncodeToString(key), nil
}

// checkAdminListen refuses an admin listen address other hosts can reach
// unless the API speaks TLS: the bearer token would cross the network in
// clear.
func checkAdminListen(cfg *Config) error {
	if isLoopbackHost(listenHost(cfg.Admin.Listen)) || cfg.Admin.TLSCert != "" {
		return nil
	}
	return fmt.Errorf("admin.listen %q is not a loopback address: listen on 127.0.0.1, or set admin.tls_cert and admin.tls_key to serve the admin API over HTTPS", cfg.Admin.Listen)
}

func listenHost(addr string) string {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	return host
}

// isLoopbackHost reports whether a listen host is loopback only: a
// loopback IP or "localhost". "" and 0.0.0.0 listen everywhere.
func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// adminGuard stands in front of the admin API. In order: the Host must be
// one of the API's own names (a page whose DNS name was rebound to
// 127.0.0.1 sends its own), a browser's Origin must be the API's own (a
// cross-site page can POST text/plain without a preflight), and every
// path but adminOpenPaths needs the bearer token.
type adminGuard struct {
	tokenSum [32]byte // SHA-256 of the token: comparing sums takes the same time whatever was sent
	hosts    map[string]bool
	scheme   string
	next     http.Handler
}

// newAdminGuard protects next for a listener bound to bound (the listen
// address, resolved).
func newAdminGuard(cfg *Config, bound net.Addr, token string, next http.Handler) *adminGuard {
	g := &adminGuard{tokenSum: sha256.Sum256([]byte(token)), hosts: map[string]bool{}, scheme: "http", next: next}
	if cfg.Admin.TLSCert != "" {
		g.scheme = "https"
	}
	listen := listenHost(cfg.Admin.Listen)
	for _, h := range append([]string{listen, listenHost(bound.String())}, cfg.Admin.Hostnames...) {
		if h = normalHost(h); h != "" && !net.ParseIP(h).IsUnspecified() {
			g.hosts[h] = true
		}
	}
	if ip := net.ParseIP(listen); isLoopbackHost(listen) || listen == "" || ip != nil && ip.IsUnspecified() {
		// Reachable over loopback: the names every local client uses.
		for _, h := range []string{"localhost", "127.0.0.1", "::1"} {
			g.hosts[h] = true
		}
	}
	return g
}

// normalHost is a Host header's or configured name's host part, without
// port and brackets, lower case and without a trailing dot.
func normalHost(h string) string {
	if host, _, err := net.SplitHostPort(h); err == nil {
		h = host
	}
	h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
	return strings.TrimSuffix(strings.ToLower(h), ".")
}

func (g *adminGuard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !g.hosts[normalHost(r.Host)] {
		refuse(w, http.StatusMisdirectedRequest, fmt.Sprintf("Host %q is not an address of this admin API (add it to [admin] hostnames)", r.Host))
		return
	}
	if why := g.crossSite(r); why != "" {
		refuse(w, http.StatusForbidden, "cross-site request refused: "+why)
		return
	}
	if !adminOpenPaths[r.URL.Path] && !g.authorized(r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="ticketgate admin"`)
		refuse(w, http.StatusUnauthorized, "missing or wrong admin token: send \"Authorization: Bearer <token>\" with the token from [admin] token_file")
		return
	}
	g.next.ServeHTTP(w, r)
}

// refuse answers a request the guard turns away and closes its
// connection: the server would otherwise read the body it announced
// before answering, and wait for good for one that never comes.
func refuse(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Connection", "close")
	httpError(w, code, msg)
}

// crossSite says why a request came from another site's page, or "".
// Browsers send Origin with every cross-origin POST; command-line clients
// send none.
func (g *adminGuard) crossSite(r *http.Request) string {
	if o := r.Header.Get("Origin"); o != "" {
		u, err := url.Parse(o)
		if err != nil || u.Scheme != g.scheme || !strings.EqualFold(u.Host, r.Host) {
			return fmt.Sprintf("Origin %q is not %s://%s", o, g.scheme, r.Host)
		}
	}
	if s := r.Header.Get("Sec-Fetch-Site"); s != "" && s != "same-origin" && s != "none" {
		return "Sec-Fetch-Site is " + s
	}
	return ""
}

func (g *adminGuard) authorized(r *http.Request) bool {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	// The token is hex, kept in lower case: one written in upper case
	// in the token file is the same token.
	sum := sha256.Sum256([]byte(strings.ToLower(strings.TrimSpace(tok))))
	return subtle.ConstantTimeCompare(sum[:], g.tokenSum[:]) == 1
}

// accepts serves h only when the request body is declared as media type
// want; with want "", only requests without a body. A browser form can
// send text/plain, application/x-www-form-urlencoded and
// multipart/form-data without a preflight; none of them is accepted.
func accepts(want string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ct := r.Header.Get("Content-Type")
		if want == "" {
			if ct != "" || r.ContentLength != 0 {
				httpError(w, http.StatusUnsupportedMediaType, "this request takes no body")
				return
			}
			h(w, r)
			return
		}
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != want {
			httpError(w, http.StatusUnsupportedMediaType, fmt.Sprintf("Content-Type must be %s, not %q", want, ct))
			return
		}
		h(w, r)
	}
}

// adminTLS is the server's TLS configuration from [admin] tls_cert and
// tls_key, or nil when they are not set.
func adminTLS(cfg *Config) (*tls.Config, error) {
	if cfg.Admin.TLSCert == "" {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(cfg.Admin.TLSCert, cfg.Admin.TLSKey)
	if err != nil {
		return nil, fmt.Errorf("admin.tls_cert/tls_key: %w", err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

// pinnedTLS is the commands' TLS configuration for the handover: they
// run on the same machine as serve and read the same tls_cert, so they
// accept exactly that certificate, whatever names it carries (they dial a
// loopback address the certificate need not list).
func pinnedTLS(certFile string) (*tls.Config, error) {
	b, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("admin.tls_cert: %w", err)
	}
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("admin.tls_cert %s: no PEM certificate", certFile)
	}
	leaf := block.Bytes
	return &tls.Config{
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: true, // replaced by the pin below
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 || subtle.ConstantTimeCompare(cs.PeerCertificates[0].Raw, leaf) != 1 {
				return fmt.Errorf("admin API's certificate is not the one in %s", certFile)
			}
			return nil
		},
	}, nil
}

// adminDialAddr is where a command reaches serve's admin API: the listen
// address, with a wildcard host replaced by loopback.
func adminDialAddr(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen
	}
	switch ip := net.ParseIP(host); {
	case host == "" || ip != nil && ip.IsUnspecified() && ip.To4() != nil:
		host = "127.0.0.1"
	case ip != nil && ip.IsUnspecified():
		host = "::1"
	}
	return net.JoinHostPort(host, port)
}
