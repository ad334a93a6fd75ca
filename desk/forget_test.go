package desk

import "testing"

// TestForgetReplacesWholeAddressesOnly: the address is replaced where it
// stands as an address of its own, in any case, and nowhere it is only
// part of another one.
func TestForgetReplacesWholeAddressesOnly(t *testing.T) {
	f := Forget{Addr: "ann@customer.example", Pseudonym: "p-1@forgotten.invalid"}
	for _, c := range []struct{ in, want string }{
		{"from Ann@Customer.Example to support", "from p-1@forgotten.invalid to support"},
		{"<ann@customer.example>, ann@customer.example.", "<p-1@forgotten.invalid>, p-1@forgotten.invalid."},
		{"joann@customer.example wrote", "joann@customer.example wrote"},
		{"jo.ann@customer.example wrote", "jo.ann@customer.example wrote"},
		{"ann@customer.example.org wrote", "ann@customer.example.org wrote"},
		{"ann@customer.examples", "ann@customer.examples"},
		{"Grüße, ANN@customer.example", "Grüße, p-1@forgotten.invalid"},
	} {
		if got := f.replace(c.in, ""); got != c.want {
			t.Errorf("replace(%q) = %q, want %q", c.in, got, c.want)
		}
		if got, want := f.in(c.in), c.want != c.in; got != want {
			t.Errorf("in(%q) = %v, want %v", c.in, got, want)
		}
	}
}
