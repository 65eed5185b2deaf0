package xla

import (
	"math"
	"testing"

	S "github.com/gomlx/go-xla/pkg/stablehlo"
	"github.com/gomlx/go-xla/pkg/types/dtypes"
	"github.com/gomlx/go-xla/pkg/types/shapes"

	"github.com/supflow/supflow/internal/fixtures"
	"github.com/supflow/supflow/internal/hloeval"
	"github.com/supflow/supflow/loss"
)

// weights is the case's [bsz,bsz] positive weights: the mask, the labels'
// equality, or the identity (SimCLR).
func weights(c fixtures.SupConCase) []float64 {
	w := make([]float64, c.Bsz*c.Bsz)
	for i := range c.Bsz {
		for j := range c.Bsz {
			switch {
			case c.Mask != nil:
				w[i*c.Bsz+j] = c.Mask[i][j]
			case c.Labels != nil && c.Labels[i] == c.Labels[j], c.Labels == nil && i == j:
				w[i*c.Bsz+j] = 1
			}
		}
	}
	return w
}

// TestSupConFixtures runs the emitted loss and gradient of every contrast
// mode all fixture in the evaluator: float64 at 1e-10 relative on the loss
// and 1e-9 on the gradient, float32 against the fixture's float32 loss at
// 1e-5 relative and the gradient at 1e-5 times its largest entry.
func TestSupConFixtures(t *testing.T) {
	fixtures.ForEach(t, "supcon", func(t *testing.T, dir string) {
		for _, c := range fixtures.SupConCases(t, dir) {
			if c.ContrastMode != string(loss.ContrastAll) {
				t.Logf("%s: contrast mode %s is not lowered", c.Name, c.ContrastMode)
				continue
			}
			for _, dt := range []dtypes.DType{dtypes.Float64, dtypes.Float32} {
				t.Run(c.Name+"/"+dt.String(), func(t *testing.T) {
					got, grad := runSupCon(t, c, dt)
					want, tol, gtol := c.Loss, 1e-10*math.Abs(c.Loss), 1e-9
					if dt == dtypes.Float32 {
						want, tol = c.LossFloat32, 1e-5*math.Abs(c.LossFloat32)
						gtol = 0
						for _, v := range fixtures.ViewMajor(c.Grad) {
							gtol = max(gtol, 1e-5*math.Abs(v))
						}
					}
					if math.Abs(got-want) > tol {
						t.Errorf("loss %.17g, want %.17g", got, want)
					}
					wg := fixtures.ViewMajor(c.Grad)
					for i := range wg {
						if d := math.Abs(grad[i] - wg[i]); !(d <= gtol) {
							t.Fatalf("grad[%d] = %g, want %g (tolerance %g)", i, grad[i], wg[i], gtol)
						}
					}
				})
			}
		}
	})
}

// runSupCon emits a program computing the loss and its gradient of c's
// features and runs it.
func runSupCon(t *testing.T, c fixtures.SupConCase, dt dtypes.DType) (float64, []float64) {
	t.Helper()
	n := c.Bsz * c.NViews
	bld := S.New("supcon")
	f := &fn{f: bld.Main(), dt: dt}
	var text []byte
	err := emit(func() {
		z := must(f.f.Input(shapes.Make(dt, n, c.Dim)))
		w := must(f.f.Input(shapes.Make(dt, c.Bsz, c.Bsz)))
		l, dz := f.supCon(z, w, loss.SupConConfig{Temperature: c.Temperature, BaseTemperature: c.BaseTemperature})
		if err := f.f.Return(l, dz); err != nil {
			panic(buildError{err})
		}
		var err error
		if text, err = bld.Build(); err != nil {
			panic(buildError{err})
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	p, err := hloeval.Parse(string(text))
	if err != nil {
		t.Fatal(err)
	}
	et := Arg{DType: dt}.ElementType()
	out, err := p.Run(hloeval.New(et, fixtures.ViewMajor(c.Features), n, c.Dim).Rounded(), hloeval.New(et, weights(c), c.Bsz, c.Bsz))
	if err != nil {
		t.Fatal(err)
	}
	return out[0].Data[0], out[1].Data
}
