package loss

import (
	"errors"
	"math"
	"strings"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

func TestCrossEntropyValues(t *testing.T) {
	tests := []struct {
		name    string
		logits  []float64
		classes int
		targets []int
		want    float64
	}{
		{"uniform", []float64{0, 0, 0, 0, 0, 0}, 3, []int{0, 2}, math.Log(3)},
		{"one class", []float64{5, -2}, 1, []int{0, 0}, 0},
		// -log(e^2/(e^0+e^2)) = log(1+e^-2)
		{"two classes", []float64{0, 2}, 2, []int{1}, math.Log1p(math.Exp(-2))},
		// huge logits must not overflow
		{"large logits", []float64{1000, 0, -1000, 1000}, 2, []int{0, 1}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := CrossEntropy(tt.logits, tt.classes, tt.targets)
			if err != nil {
				t.Fatal(err)
			}
			if math.Abs(r.Loss-tt.want) > 1e-14 {
				t.Errorf("loss %.17g, want %.17g", r.Loss, tt.want)
			}
		})
	}
}

func TestCrossEntropyFiniteDifferences(t *testing.T) {
	const classes = 5
	targets := []int{4, 0, 2}
	logits := make([]float64, len(targets)*classes)
	for i := range logits {
		logits[i] = 2 * math.Sin(1.7*float64(i)+0.3)
	}
	r, err := CrossEntropy(logits, classes, targets)
	if err != nil {
		t.Fatal(err)
	}
	const h = 1e-6
	for i := range logits {
		x := append([]float64(nil), logits...)
		x[i] += h
		up, err := CrossEntropy(x, classes, targets)
		if err != nil {
			t.Fatal(err)
		}
		x[i] -= 2 * h
		down, err := CrossEntropy(x, classes, targets)
		if err != nil {
			t.Fatal(err)
		}
		fd := (up.Loss - down.Loss) / (2 * h)
		if math.Abs(fd-r.Grad[i]) > 1e-8 {
			t.Errorf("d/dlogit[%d]: kernel %g, finite difference %g", i, r.Grad[i], fd)
		}
	}
}

func TestCrossEntropyInvalid(t *testing.T) {
	tests := []struct {
		name    string
		logits  []float32
		classes int
		targets []int
	}{
		{"target too large", []float32{0, 1, 2, 3}, 2, []int{0, 2}},
		{"negative target", []float32{0, 1, 2, 3}, 2, []int{-1, 0}},
		{"no classes", nil, 0, []int{0}},
		{"empty batch", nil, 2, nil},
		{"size mismatch", []float32{0, 1, 2}, 2, []int{0, 1}},
		{"NaN logit", []float32{0, float32(math.NaN())}, 2, []int{0}},
		{"Inf logit", []float32{float32(math.Inf(1)), 0}, 2, []int{0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := CrossEntropy(tt.logits, tt.classes, tt.targets); !errors.Is(err, ErrInput) {
				t.Errorf("err = %v, want ErrInput", err)
			}
		})
	}
}

// TestCrossEntropyNodeLinear trains nothing but checks the op inside a
// linear classifier graph: d loss / d W through MatMul must equal
// x^T * (kernel gradient), for both float types.
func TestCrossEntropyNodeLinear(t *testing.T) {
	const batch, in, classes = 4, 3, 5
	x := make([]float64, batch*in)
	w := make([]float64, in*classes)
	for i := range x {
		x[i] = math.Cos(0.9 * float64(i))
	}
	for i := range w {
		w[i] = math.Sin(1.3*float64(i)) / 2
	}
	targets := []int{1, 4, 0, 1}
	logits := make([]float64, batch*classes)
	for b := range batch {
		for c := range classes {
			for k := range in {
				logits[b*classes+c] += x[b*in+k] * w[k*classes+c]
			}
		}
	}
	ref, err := CrossEntropy(logits, classes, targets)
	if err != nil {
		t.Fatal(err)
	}
	wantW := make([]float64, in*classes)
	for k := range in {
		for c := range classes {
			for b := range batch {
				wantW[k*classes+c] += x[b*in+k] * ref.Grad[b*classes+c]
			}
		}
	}
	for _, dt := range []tensor.Dtype{tensor.Float64, tensor.Float32} {
		t.Run(dt.String(), func(t *testing.T) {
			g := G.NewGraph()
			xn := G.NewMatrix(g, dt, G.WithShape(batch, in), G.WithName("x"), G.WithValue(denseOf(dt, []int{batch, in}, x)))
			wn := G.NewMatrix(g, dt, G.WithShape(in, classes), G.WithName("w"), G.WithValue(denseOf(dt, []int{in, classes}, w)))
			yn := G.NewVector(g, tensor.Int, G.WithShape(batch), G.WithName("y"),
				G.WithValue(tensor.New(tensor.WithShape(batch), tensor.WithBacking(append([]int(nil), targets...)))))
			out, err := G.Mul(xn, wn)
			if err != nil {
				t.Fatal(err)
			}
			cost, err := CrossEntropyNode(out, yn)
			if err != nil {
				t.Fatal(err)
			}
			lossV, gradV := runGraph(t, g, cost, wn)
			tol := 1e-13
			if dt == tensor.Float32 {
				tol = 1e-6
			}
			got, err := scalar(lossV)
			if err != nil {
				t.Fatal(err)
			}
			if math.Abs(got-ref.Loss) > tol {
				t.Errorf("loss %v, want %v", got, ref.Loss)
			}
			var d float64
			switch gd := gradV.Data().(type) {
			case []float64:
				d = maxAbsDiff(gd, wantW)
			case []float32:
				d = maxAbsDiff(gd, wantW)
			}
			if d > tol {
				t.Errorf("dW max abs diff %g", d)
			}
		})
	}
}

func TestCrossEntropyNodeInvalid(t *testing.T) {
	g := G.NewGraph()
	logits := G.NewMatrix(g, tensor.Float64, G.WithShape(2, 3), G.WithName("logits"))
	y := G.NewVector(g, tensor.Int, G.WithShape(2), G.WithName("y"))
	y3 := G.NewVector(g, tensor.Int, G.WithShape(3), G.WithName("y3"))
	yf := G.NewVector(g, tensor.Float64, G.WithShape(2), G.WithName("yf"))
	tests := []struct {
		name            string
		logits, targets *G.Node
	}{
		{"nil logits", nil, y},
		{"nil targets", logits, nil},
		{"float targets", logits, yf},
		{"batch mismatch", logits, y3},
		{"vector logits", y3, y},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := CrossEntropyNode(tt.logits, tt.targets); !errors.Is(err, ErrInput) {
				t.Errorf("err = %v, want ErrInput", err)
			}
		})
	}
}

func TestCrossEntropyNodeBadTarget(t *testing.T) {
	g := G.NewGraph()
	logits := G.NewMatrix(g, tensor.Float64, G.WithShape(2, 3), G.WithName("logits"),
		G.WithValue(tensor.New(tensor.WithShape(2, 3), tensor.WithBacking([]float64{0, 1, 2, 3, 4, 5}))))
	y := G.NewVector(g, tensor.Int, G.WithShape(2), G.WithName("y"),
		G.WithValue(tensor.New(tensor.WithShape(2), tensor.WithBacking([]int{0, 3}))))
	if _, err := CrossEntropyNode(logits, y); err != nil {
		t.Fatal(err)
	}
	vm := G.NewTapeMachine(g)
	defer vm.Close()
	if err := vm.RunAll(); err == nil || !strings.Contains(err.Error(), "class 3") {
		t.Errorf("RunAll with target 3 of 3 classes: err = %v, want it named", err)
	}
}
