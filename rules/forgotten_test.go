package rules

import "testing"

func TestForgotten(t *testing.T) {
	for addr, want := range map[string]bool{
		"p-1c2892258854d50e83f54d26@forgotten.invalid":  true,
		" P-1C2892258854D50E83F54D26@Forgotten.Invalid": true,
		"ann@customer.example":                          false,
		"ann@forgotten.invalid.example":                 false,
		"ann@notforgotten.invalid":                      false,
		"forgotten.invalid":                             false,
	} {
		if got := Forgotten(addr); got != want {
			t.Errorf("Forgotten(%q) = %v, want %v", addr, got, want)
		}
	}
}
