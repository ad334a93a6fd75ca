// Package binrec writes and reads the small binary records the store and
// the outbox keep instead of JSON: numbers as varints, strings and lists
// length-prefixed, times in time.Time's binary form. A record written
// with the Append functions is read back field by field, in the same
// order, with a Reader.
package binrec

import (
	"encoding/binary"
	"errors"
	"time"
)

// ErrMalformed is what a Reader reports for a record it cannot read.
var ErrMalformed = errors.New("malformed record")

// AppendUvarint appends v.
func AppendUvarint(b []byte, v uint64) []byte { return binary.AppendUvarint(b, v) }

// AppendVarint appends v.
func AppendVarint(b []byte, v int64) []byte { return binary.AppendVarint(b, v) }

// AppendStrings appends each string, its length first.
func AppendStrings(b []byte, ss ...string) []byte {
	for _, s := range ss {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	return b
}

// AppendList appends l's length, then its strings; nil and empty lists
// both read back as nil.
func AppendList(b []byte, l []string) []byte {
	b = binary.AppendUvarint(b, uint64(len(l)))
	return AppendStrings(b, l...)
}

// AppendListOrNil is AppendList for a list whose nil and empty read back
// differently (a JSON field without omitempty shows null or []): its
// length plus one, 0 for nil.
func AppendListOrNil(b []byte, l []string) []byte {
	return AppendStrings(AppendLen(b, len(l), l == nil), l...)
}

// AppendLen appends the length of a list of n items that follow (of any
// kind), nil told apart from empty: 0 for nil, else n+1.
func AppendLen(b []byte, n int, isNil bool) []byte {
	if isNil {
		return append(b, 0)
	}
	return binary.AppendUvarint(b, uint64(n)+1)
}

// AppendBool appends v as a byte.
func AppendBool(b []byte, v bool) []byte {
	if v {
		return append(b, 1)
	}
	return append(b, 0)
}

// AppendTimes appends each time in its binary form (its zone offset
// kept), its length first.
func AppendTimes(b []byte, ts ...time.Time) []byte {
	for _, t := range ts {
		at := len(b)
		b = append(b, 0)
		b, _ = t.AppendBinary(b) // fails only for a zone offset no real zone has
		b[at] = byte(len(b) - at - 1)
	}
	return b
}

// AppendSpan appends an optional pair of numbers: 0, or 1 and the two.
func AppendSpan(b []byte, s *[2]int) []byte {
	if s == nil {
		return append(b, 0)
	}
	b = append(b, 1)
	b = binary.AppendVarint(b, int64(s[0]))
	return binary.AppendVarint(b, int64(s[1]))
}

// Reader reads a record's fields in the order they were appended. Past
// the first malformed field it reads zero values, and Err reports it.
type Reader struct {
	b   []byte
	bad bool
}

// NewReader reads b.
func NewReader(b []byte) *Reader { return &Reader{b: b} }

// Err is ErrMalformed when a field could not be read or bytes are left
// over, else nil.
func (d *Reader) Err() error {
	if d.bad || len(d.b) > 0 {
		return ErrMalformed
	}
	return nil
}

// Failed reports whether a field read so far was malformed (a record
// read in part: bytes left over are not counted).
func (d *Reader) Failed() bool { return d.bad }

// Fail marks the record malformed (a field read with a value it may not
// have).
func (d *Reader) Fail() { d.bad, d.b = true, nil }

// Uvarint reads a number.
func (d *Reader) Uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.Fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

// Varint reads a signed number.
func (d *Reader) Varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.Fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

// field reads a string's bytes, without copying them.
func (d *Reader) field() []byte {
	n := d.Uvarint()
	if n > uint64(len(d.b)) {
		d.Fail()
		return nil
	}
	s := d.b[:n]
	d.b = d.b[n:]
	return s
}

// String reads a string.
func (d *Reader) String() string { return string(d.field()) }

// List reads AppendList's list.
func (d *Reader) List() []string {
	n := d.Uvarint()
	if n == 0 {
		return nil
	}
	return d.strings(n)
}

// ListOrNil reads AppendListOrNil's list.
func (d *Reader) ListOrNil() []string {
	n := d.Len()
	if n < 0 {
		return nil
	}
	return d.strings(uint64(n))
}

func (d *Reader) strings(n uint64) []string {
	if n > uint64(len(d.b)) { // each string takes a byte at least
		d.Fail()
		return nil
	}
	l := make([]string, n)
	for i := range l {
		l[i] = d.String()
	}
	return l
}

// Len reads a length AppendLen wrote: the number of items that follow,
// or -1 for nil. Each item takes a byte at least, so a length past the
// record's end is malformed.
func (d *Reader) Len() int {
	v := d.Uvarint()
	if v == 0 {
		return -1
	}
	if v-1 > uint64(len(d.b)) {
		d.Fail()
		return -1
	}
	return int(v - 1)
}

// Bool reads AppendBool's byte.
func (d *Reader) Bool() bool {
	switch d.Uvarint() {
	case 0:
		return false
	case 1:
		return true
	}
	d.Fail()
	return false
}

// Time reads a time AppendTimes wrote.
func (d *Reader) Time() time.Time {
	if len(d.b) == 0 {
		d.Fail()
		return time.Time{}
	}
	n := int(d.b[0])
	if n >= len(d.b) {
		d.Fail()
		return time.Time{}
	}
	var t time.Time
	if t.UnmarshalBinary(d.b[1:1+n]) != nil {
		d.Fail()
		return time.Time{}
	}
	d.b = d.b[1+n:]
	return t
}

// Span reads AppendSpan's pair.
func (d *Reader) Span() *[2]int {
	switch d.Uvarint() {
	case 0:
		return nil
	case 1:
		return &[2]int{int(d.Varint()), int(d.Varint())}
	}
	d.Fail()
	return nil
}
