package hlorunner

import (
	"errors"
	"testing"

	"github.com/gomlx/go-xla/pkg/types/dtypes"

	"github.com/supflow/supflow/xla"
)

// TestUploadAndBuffers: uploads check their values against the argument
// (count, Go type) and round to its element type; a freed buffer is
// ErrBuffer; a device the runner lacks is refused.
func TestUploadAndBuffers(t *testing.T) {
	r := New()
	a := xla.Arg{Name: "x", DType: dtypes.Float32, Shape: []int{2}}
	for _, dev := range []int{-1, 1} {
		if _, err := r.Upload(dev, a, []float64{1, 2}); err == nil {
			t.Errorf("Upload to device %d of 1 accepted", dev)
		}
	}
	if _, err := New(WithDevices(2)).Upload(1, a, []float64{1, 2}); err != nil {
		t.Errorf("Upload to device 1 of 2: %v", err)
	}
	for _, bad := range []any{[]float64{1}, []int64{1, 2}, "12"} {
		if _, err := r.Upload(0, a, bad); err == nil {
			t.Errorf("Upload(%v) accepted", bad)
		}
	}
	b, err := r.Upload(0, a, []float64{1, 1 + 1e-12})
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
