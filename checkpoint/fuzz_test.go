package checkpoint

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzDecode feeds arbitrary bytes to Decode: it must return ErrFormat or
// ErrVersion, never panic, and whatever it accepts must re-encode to a
// fixed point. The seed corpus is in testdata/fuzz/FuzzDecode.
func FuzzDecode(f *testing.F) {
	for _, dtype := range []string{Float32, Float64} {
		b, err := Encode(sampleState(dtype))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := Decode(b)
		if err != nil {
			if !errors.Is(err, ErrFormat) && !errors.Is(err, ErrVersion) {
				t.Fatalf("error %v is neither ErrFormat nor ErrVersion", err)
			}
			return
		}
		b2, err := Encode(s)
		if err != nil {
			t.Fatalf("decoded state does not encode: %v", err)
		}
		s2, err := Decode(b2)
		if err != nil {
			t.Fatalf("re-encoded state does not decode: %v", err)
		}
		b3, err := Encode(s2)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b2, b3) {
			t.Fatal("encode(decode(x)) is not a fixed point")
		}
	})
}
