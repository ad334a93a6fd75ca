package view

import (
	"bytes"
	"encoding/json"
	"io"
)

// Encode writes v to w as indented JSON without HTML escaping ("<", ">"
// and "&" in mail text come out as they are), followed by a newline.
func Encode(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// Marshal returns v as compact JSON without HTML escaping, for
// MarshalJSON methods that write a view.
func Marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}
