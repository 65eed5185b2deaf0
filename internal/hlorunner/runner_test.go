package hlorunner

import (
	"errors"
	"testing"

	S "github.com/gomlx/go-xla/pkg/stablehlo"
	"github.com/gomlx/go-xla/pkg/types/dtypes"
	"github.com/gomlx/go-xla/pkg/types/shapes"

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

// allSum is a 2-replica program: out = x summed over the replicas, x
// aliasing it.
func allSum(t *testing.T) *xla.Program {
	t.Helper()
	b := S.New("all_sum").WithNumReplicas(2)
	f := b.Main()
	x, err := f.Input(shapes.Make(dtypes.Float64, 2))
	if err != nil {
		t.Fatal(err)
	}
	add := f.Closure()
	l, _ := add.NamedInput("a", shapes.Make(dtypes.Float64))
	r, _ := add.NamedInput("b", shapes.Make(dtypes.Float64))
	sum, err := S.Add(l, r)
	if err != nil {
		t.Fatal(err)
	}
	if err := add.Return(sum); err != nil {
		t.Fatal(err)
	}
	out, err := S.AllReduce([]*S.Value{x}, [][]int{{0, 1}}, add)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Return(out[0]); err != nil {
		t.Fatal(err)
	}
	text, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	a := xla.Arg{Name: "x", DType: dtypes.Float64, Shape: []int{2}}
	return &xla.Program{Text: text, Inputs: []xla.Arg{a}, Outputs: []xla.Arg{a}, Replicas: 2}
}

// TestRunReplicas: a 2-replica program runs each replica on its device's
// inputs in lockstep, returns the outputs replica by replica on their
// devices and consumes the donated inputs of both; a replica given another
// device's buffer, or a wrong number of inputs, is refused.
func TestRunReplicas(t *testing.T) {
	r := New(WithDevices(2))
	exe, err := r.Compile(allSum(t))
	if err != nil {
		t.Fatal(err)
	}
	a := xla.Arg{Name: "x", DType: dtypes.Float64, Shape: []int{2}}
	up := func(dev int, v ...float64) xla.Buffer {
		b, err := r.Upload(dev, a, v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, bad := range [][]xla.Buffer{{up(0, 1, 2)}, {up(0, 1, 2), up(0, 3, 4)}, {up(1, 1, 2), up(0, 3, 4)}} {
		if _, err := exe.Run(bad, nil); err == nil {
			t.Errorf("Run of %d inputs on the wrong devices accepted", len(bad))
		}
	}
	in := []xla.Buffer{up(0, 1, 2), up(1, 10, 20)}
	out, err := exe.Run(in, []int{0})
	if err != nil {
		t.Fatal(err)
	}
	for k, b := range out {
		if v, err := b.Download(); err != nil || v[0] != 11 || v[1] != 22 || b.(*buffer).device != k {
			t.Errorf("replica %d: %v, %v on device %d; want [11 22] on device %d", k, v, err, b.(*buffer).device, k)
		}
		if _, err := in[k].Download(); !errors.Is(err, ErrBuffer) {
			t.Errorf("replica %d's donated input: %v, want ErrBuffer", k, err)
		}
	}
}
