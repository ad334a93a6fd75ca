package rules

import "testing"

func TestFreemail(t *testing.T) {
	for _, d := range []string{"gmail.com", "GMail.com", "outlook.com", "hotmail.com", "yahoo.com", "gmx.de", "web.de",
		"proton.me", "qq.com", "163.com", " icloud.com ", "aol.com."} {
		if !Freemail(d) {
			t.Errorf("Freemail(%q) = false, want true", d)
		}
	}
	for _, d := range []string{"", "example.com", "bigcorp.example", "mail.gmail.com.evil.example", "gmail.co", "notgmail.com", "corp.gmail.com"} {
		if Freemail(d) {
			t.Errorf("Freemail(%q) = true, want false", d)
		}
	}
}
