package mailout

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strings"
)

// TLSAuto is the [outbound] tls value that picks the mode from the relay's
// address (see EffectiveTLS); it is the default.
const TLSAuto = "auto"

// EffectiveTLS is the TLS mode used with the relay at addr (host:port)
// when the configuration says mode. "auto" (or nothing) means no TLS for a
// relay on a loopback address, and STARTTLS with certificate verification
// for any other: on the same host the mail never crosses a network, and a
// local MTA's certificate (Debian's Postfix ships the snakeoil one, made
// for the host name, not 127.0.0.1) cannot be verified for a loopback
// address anyway. A remote relay always gets verified STARTTLS unless the
// configuration names another mode.
func EffectiveTLS(addr, mode string) string {
	if mode != "" && mode != TLSAuto {
		return mode
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	if strings.EqualFold(host, "localhost") {
		return "none"
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return "none"
	}
	return "starttls"
}

// TLSError is a failure to set up TLS with the relay: a certificate that
// cannot be verified, a relay without STARTTLS, a failed handshake.
// Retrying will not help until the configuration or the relay changes, so
// the outbox says so at the first failure.
type TLSError struct {
	Addr string
	Mode string
	Err  error
}

func (e *TLSError) Error() string {
	return fmt.Sprintf("TLS (%s) with relay %s failed: %v; fix the relay's certificate or [outbound] tls", e.Mode, e.Addr, e.Err)
}

func (e *TLSError) Unwrap() error { return e.Err }

// IsTLSErrorText reports whether s is the text of a TLSError, as the
// outbox records it on a queued mail.
func IsTLSErrorText(s string) bool { return strings.HasPrefix(s, "TLS (") }

// IsTLSError reports whether err is a TLSError.
func IsTLSError(err error) bool {
	var te *TLSError
	return errors.As(err, &te)
}

// tlsFailure reports whether err, returned while setting up the session,
// comes from TLS.
func tlsFailure(err error) bool {
	var (
		cv  *tls.CertificateVerificationError
		ua  x509.UnknownAuthorityError
		he  x509.HostnameError
		ci  x509.CertificateInvalidError
		rh  tls.RecordHeaderError
		ae  tls.AlertError
		ecd *tls.ECHRejectionError
	)
	switch {
	case errors.As(err, &cv), errors.As(err, &ua), errors.As(err, &he), errors.As(err, &ci),
		errors.As(err, &rh), errors.As(err, &ae), errors.As(err, &ecd):
		return true
	}
	s := err.Error()
	return strings.Contains(s, "x509: ") || strings.Contains(s, "tls: ") || strings.Contains(s, "doesn't support STARTTLS")
}
