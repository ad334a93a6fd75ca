package binrec

import (
	"errors"
	"reflect"
	"testing"
	"time"
)

// record writes one field of each kind, as a store record would.
func record() []byte {
	b := AppendUvarint(nil, 300)
	b = AppendVarint(b, -7)
	b = AppendStrings(b, "", "ünïcode\x00and a zero")
	b = AppendList(b, []string{"a", ""})
	b = AppendList(b, []string{})
	b = AppendListOrNil(b, nil)
	b = AppendListOrNil(b, []string{})
	b = AppendBool(b, true)
	b = AppendTimes(b, time.Date(2026, 12, 6, 10, 0, 0, 5, time.FixedZone("", -5*3600)), time.Time{})
	b = AppendSpan(b, nil)
	return AppendSpan(b, &[2]int{3, -1})
}

func TestRecordReadsBack(t *testing.T) {
	d := NewReader(record())
	if v := d.Uvarint(); v != 300 {
		t.Errorf("uvarint %d", v)
	}
	if v := d.Varint(); v != -7 {
		t.Errorf("varint %d", v)
	}
	if a, b := d.String(), d.String(); a != "" || b != "ünïcode\x00and a zero" {
		t.Errorf("strings %q %q", a, b)
	}
	if l := d.List(); !reflect.DeepEqual(l, []string{"a", ""}) {
		t.Errorf("list %q", l)
	}
	if l := d.List(); l != nil {
		t.Errorf("empty list read as %#v, want nil", l)
	}
	if l := d.ListOrNil(); l != nil {
		t.Errorf("nil list read as %#v", l)
	}
	if l := d.ListOrNil(); l == nil || len(l) != 0 {
		t.Errorf("empty list read as %#v, want empty and not nil", l)
	}
	if !d.Bool() {
		t.Error("bool read as false")
	}
	at, zero := d.Time(), d.Time()
	if _, off := at.Zone(); !at.Equal(time.Date(2026, 12, 6, 15, 0, 0, 5, time.UTC)) || off != -5*3600 {
		t.Errorf("time %v", at)
	}
	if !zero.IsZero() {
		t.Errorf("zero time read as %v", zero)
	}
	if s := d.Span(); s != nil {
		t.Errorf("nil span read as %v", s)
	}
	if s := d.Span(); s == nil || *s != [2]int{3, -1} {
		t.Errorf("span %v", s)
	}
	if err := d.Err(); err != nil {
		t.Error(err)
	}
}

// TestMalformedRecords: a record cut anywhere, or with bytes left over,
// is malformed, and reading on past the fault gives zero values.
func TestMalformedRecords(t *testing.T) {
	full := record()
	for n := range len(full) {
		if err := readAll(full[:n]); !errors.Is(err, ErrMalformed) {
			t.Errorf("record cut to %d of %d bytes: %v", n, len(full), err)
		}
	}
	if err := readAll(append(full, 0)); !errors.Is(err, ErrMalformed) {
		t.Errorf("a byte left over: %v", err)
	}
	d := NewReader([]byte{0xff}) // a varint that never ends
	if d.String() != "" || !d.Failed() || d.Uvarint() != 0 || d.List() != nil {
		t.Error("reading past a fault gave values")
	}
	d = NewReader(AppendUvarint(nil, 1<<40)) // a list longer than the record
	if l := d.List(); l != nil || !d.Failed() {
		t.Errorf("list of 2^40 strings read as %d", len(l))
	}
	d = NewReader([]byte{2})
	if d.Bool(); !d.Failed() {
		t.Error("a bool of 2 read")
	}
}

func readAll(b []byte) error {
	d := NewReader(b)
	d.Uvarint()
	d.Varint()
	_, _ = d.String(), d.String()
	d.List()
	d.List()
	d.ListOrNil()
	d.ListOrNil()
	d.Bool()
	d.Time()
	d.Time()
	d.Span()
	d.Span()
	return d.Err()
}
