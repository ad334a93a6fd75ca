package mailout

import "testing"

// A relay on this host gets plain SMTP by default; any other keeps
// verified STARTTLS; an explicit mode is kept.
func TestEffectiveTLS(t *testing.T) {
	for _, c := range []struct{ addr, mode, want string }{
		{"127.0.0.1:25", "auto", "none"},
		{"127.0.0.53:25", "", "none"},
		{"[::1]:25", "auto", "none"},
		{"localhost:25", "auto", "none"},
		{"mail.example.com:25", "auto", "starttls"},
		{"192.0.2.10:587", "", "starttls"},
		{"127.0.0.1:25", "starttls", "starttls"},
		{"mail.example.com:465", "implicit", "implicit"},
		{"mail.example.com:25", "none", "none"},
	} {
		if got := EffectiveTLS(c.addr, c.mode); got != c.want {
			t.Errorf("EffectiveTLS(%q, %q) = %q, want %q", c.addr, c.mode, got, c.want)
		}
	}
}
