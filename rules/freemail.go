package rules

import "strings"

// freemail are the big public mail providers: thousands of unrelated
// people share each of these domains.
var freemail = map[string]bool{
	"gmail.com": true, "googlemail.com": true,
	"outlook.com": true, "hotmail.com": true, "live.com": true, "msn.com": true,
	"yahoo.com": true, "ymail.com": true,
	"icloud.com": true, "me.com": true,
	"aol.com": true,
	"gmx.com": true, "gmx.de": true, "gmx.net": true, "web.de": true,
	"proton.me": true, "protonmail.com": true,
	"mail.ru": true, "yandex.ru": true, "yandex.com": true,
	"qq.com": true, "163.com": true,
}

// Freemail reports whether domain (any case, optionally with a trailing
// dot) belongs to a big public mail provider, whose users must not be
// counted together as one sender by a per-domain limit.
func Freemail(domain string) bool {
	d := strings.TrimSuffix(strings.ToLower(strings.TrimSpace(domain)), ".")
	return freemail[d]
}
