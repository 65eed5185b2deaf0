package hlorunner

import (
	"errors"
	"testing"

	"github.com/gomlx/go-xla/pkg/types/dtypes"

	"github.com/supflow/supflow/xla"
)

// TestUploadAndBuffers: uploads check their values against the argument
// (count, Go type) and round to its element type; a freed buffer is
// ErrBuffer.
func TestUploadAndBuffers(t *testing.T) {
	r := New()
	a := xla.Arg{Name: "x", DType: dtypes.Float32, Shape: []int{2}}
	for _, bad := range []any{[]float64{1}, []int64{1, 2}, "12"} {
		if _, err := r.Upload(a, bad); err == nil {
			t.Errorf("Upload(%v) accepted", bad)
		}
	}
	b, err := r.Upload(a, []float64{1, 1 + 1e-12})
	if err != nil {
		t.Fatal(err)
	}
	if v, err := b.Download(); err != nil || v[0] != 1 || v[1] != 1 {
		t.Errorf("Download = %v, %v; want [1 1] (rounded to f32)", v, err)
	}
	if err := b.Free(); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Download(); !errors.Is(err, ErrBuffer) {
		t.Errorf("Download after Free = %v, want ErrBuffer", err)
	}
}
