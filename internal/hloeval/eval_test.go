package hloeval

import (
	"errors"
	"math"
	"strings"
	"testing"
)

const addProgram = `module @m {
  func.func @main(%x: tensor<2xf32>, %y: tensor<2xf32>) -> tensor<2xf32> {
    %0 = "stablehlo.add"(%x, %y) : (tensor<2xf32>, tensor<2xf32>) -> tensor<2xf32>
    "stablehlo.return"(%0) : (tensor<2xf32>) -> ()
  }
}`

func TestRunRoundsToElementType(t *testing.T) {
	p, err := Parse(addProgram)
	if err != nil {
		t.Fatal(err)
	}
	out, err := p.Run(New("f32", []float64{1, 0.1}, 2), New("f32", []float64{1e-8, 0.2}, 2).Rounded())
	if err != nil {
		t.Fatal(err)
	}
	want := []float64{float64(float32(1) + float32(1e-8)), float64(float32(0.1) + float32(0.2))}
	for i := range want {
		if out[0].Data[i] != want[i] {
			t.Errorf("out[%d] = %v, want float32 sum %v", i, out[0].Data[i], want[i])
		}
	}
}

func TestRoundBF16(t *testing.T) {
	for _, c := range []struct{ in, want float64 }{
		{1, 1},
		{1 + 1.0/256, 1},           // halfway, to even
		{1 + 3.0/256, 1 + 4.0/256}, // halfway, to even (up)
		{1 + 1.0/256 + 1e-6, 1 + 2.0/256},
		{math.Inf(-1), math.Inf(-1)},
	} {
		if got := roundBF16(c.in); got != c.want {
			t.Errorf("roundBF16(%v) = %v, want %v", c.in, got, c.want)
		}
	}
	if !math.IsNaN(roundBF16(math.NaN())) {
		t.Error("NaN not kept")
	}
}

func TestErrors(t *testing.T) {
	p, err := Parse(addProgram)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		run  func() error
		want string
	}{
		{"argument count", func() error { _, err := p.Run(New("f32", []float64{1, 2}, 2)); return err }, "1 arguments, want 2"},
		{"argument type", func() error {
			_, err := p.Run(New("f64", []float64{1, 2}, 2), New("f32", []float64{1, 2}, 2))
			return err
		}, "argument 0 is tensor<2xf64>"},
		{"unknown op", func() error {
			q, err := Parse(strings.Replace(addProgram, "stablehlo.add", "stablehlo.cosine", 1))
			if err != nil {
				return err
			}
			_, err = q.Run(New("f32", []float64{1, 2}, 2), New("f32", []float64{1, 2}, 2))
			return err
		}, "cosine -> %0: op not supported"},
		{"syntax", func() error { _, err := Parse(strings.Replace(addProgram, "(%x, %y) :", "(%x, %y :", 1)); return err }, "want"},
		{"element type", func() error { _, err := Parse(strings.ReplaceAll(addProgram, "f32", "c64")); return err }, `element type "c64"`},
		{"not main", func() error { _, err := Parse(strings.Replace(addProgram, "@main", "@step", 1)); return err }, `function "step", want main`},
	} {
		err := c.run()
		if !errors.Is(err, ErrProgram) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want ErrProgram naming %q", c.name, err, c.want)
		}
	}
}
