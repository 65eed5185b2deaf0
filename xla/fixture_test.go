package xla_test

import (
	"math"
	"strings"
	"testing"

	"gorgonia.org/tensor"

	"github.com/supflow/supflow/internal/fixtures"
	"github.com/supflow/supflow/internal/fixtures/resnetfix"
	"github.com/supflow/supflow/internal/hloeval"
	"github.com/supflow/supflow/model"
	"github.com/supflow/supflow/xla"
)

// resnet is one model of a resnet fixture folder, with the helpers these
// tests read it through.
type resnet struct{ *resnetfix.Fixture }

func loadResnet(t *testing.T, dir, name string) *resnet {
	t.Helper()
	f, err := resnetfix.Read(dir, name)
	if err != nil {
		t.Fatal(err)
	}
	return &resnet{f}
}

func (r *resnet) model(t *testing.T, dt tensor.Dtype) *model.Model {
	t.Helper()
	m, err := model.New(r.Config(), dt, 1)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// batch is the shape of case cs's input.
func (r *resnet) batch(t *testing.T, cs string) xla.Batch {
	t.Helper()
	b, err := r.Batch(cs)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// initState is m's step state inputs at the fixture's init/ tensors.
func (r *resnet) initState(t *testing.T, m *model.Model) map[string][]float64 {
	t.Helper()
	in, err := r.InitState(m)
	if err != nil {
		t.Fatal(err)
	}
	return in
}

// stepInputs is the inputs of case cs's first step with labels.
func (r *resnet) stepInputs(t *testing.T, m *model.Model, cs string, labels []int) map[string][]float64 {
	t.Helper()
	in, err := r.StepInputs(m, cs, labels)
	if err != nil {
		t.Fatal(err)
	}
	return in
}

func (r *resnet) get(t *testing.T, name string) []float64 {
	t.Helper()
	v, _, err := r.Tensors.Float64s(name)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// tensorOf is an evaluator argument of arg's type holding v (rounded to
// the type).
func tensorOf(arg xla.Arg, v []float64) *hloeval.Tensor {
	x := hloeval.New(arg.ElementType(), v, arg.Shape...)
	return x.Rounded()
}

// compareAt reports the worst entry of got beyond tol of want.
func compareAt(t *testing.T, what string, got, want []float64, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d values, want %d", what, len(got), len(want))
		return
	}
	worst, at := 0.0, -1
	for i := range got {
		if d := math.Abs(got[i] - want[i]); !(d <= worst) {
			worst, at = d, i
		}
	}
	if at >= 0 && !(worst <= tol) {
		t.Errorf("%s: max abs diff %g at %d (got %g, want %g), tolerance %g", what, worst, at, got[at], want[at], tol)
	}
}

// runReplicas executes p once per replica in lockstep, replica r's inputs
// being in[r].
func runReplicas(t *testing.T, p *xla.Program, in []map[string][]float64) []map[string][]float64 {
	t.Helper()
	prog, err := hloeval.Parse(string(p.Text))
	if err != nil {
		t.Fatal(err)
	}
	args := make([][]*hloeval.Tensor, len(in))
	for r := range in {
		for _, a := range p.Inputs {
			v, ok := in[r][a.Name]
			if !ok {
				t.Fatalf("no value for input %s", a.Name)
			}
			args[r] = append(args[r], tensorOf(a, v))
		}
	}
	res, err := prog.RunReplicas(args)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]map[string][]float64, len(res))
	for r := range res {
		out[r] = map[string][]float64{}
		for i, a := range p.Outputs {
			out[r][a.Name] = res[r][i].Data
		}
	}
	return out
}

// run executes p with the inputs named by in and returns its outputs by
// name.
func run(t *testing.T, p *xla.Program, in map[string][]float64) map[string][]float64 {
	t.Helper()
	return runReplicas(t, p, []map[string][]float64{in})[0]
}

// tolerances of a dtype against the float64 fixtures (README): absolute on
// features, parameters and statistics; relative to the largest entry on
// gradients; absolute on the loss (relative 1e-10 in float64).
type tolerances struct{ abs, grad, loss float64 }

var tols = map[tensor.Dtype]tolerances{
	tensor.Float64: {abs: 1e-9, grad: 1e-9, loss: 1e-10},
	tensor.Float32: {abs: 1e-5, grad: 1e-5, loss: 1e-5},
}

// TestStepFixtures runs the emitted step and encode programs in the
// evaluator through the fixtures' procedure: step 1 (loss, features, every
// gradient, BN statistics, parameters), eval features before and after it,
// step 2 from step 1's outputs.
func TestStepFixtures(t *testing.T) {
	fixtures.ForEach(t, "resnet", func(t *testing.T, dir string) {
		for _, name := range []string{"tiny_basic", "tiny_bottleneck"} {
			r := loadResnet(t, dir, name)
			for _, c := range r.Cases {
				for _, dt := range []tensor.Dtype{tensor.Float64, tensor.Float32} {
					t.Run(name+"/"+c.Name+"/"+dt.String(), func(t *testing.T) {
						testStepFixture(t, r, c.Name, c.Bsz, c.Labels, [2]float64{c.LossStep1, c.LossStep2}, c.HasStepTensors, dt)
					})
				}
			}
		}
	})
}

func testStepFixture(t *testing.T, r *resnet, cs string, bsz int, labels []int, losses [2]float64, stepTensors bool, dt tensor.Dtype) {
	tol := tols[dt]
	m := r.model(t, dt)
	input := r.get(t, cs+"/input")
	batch := r.batch(t, cs)
	step, err := xla.Step(m, xla.StepConfig{Batch: batch, Views: 2, Loss: resnetfix.Loss, Optim: resnetfix.Optim, Gradients: true})
	if err != nil {
		t.Fatal(err)
	}
	encode, err := xla.Encode(m, xla.EncodeConfig{Batch: batch})
	if err != nil {
		t.Fatal(err)
	}
	in := r.stepInputs(t, m, cs, labels)
	checkState := func(out map[string][]float64, after, params string) {
		t.Helper()
		for _, b := range m.BufferInfos() {
			if !strings.HasSuffix(b.Name, model.NumBatchesTracked) {
				compareAt(t, after+b.Name, out[b.Name], r.get(t, after+b.Name), tol.abs)
			}
		}
		if stepTensors {
			for _, p := range m.ParamInfos() {
				compareAt(t, params+p.Name, out[xla.PrefixParam+p.Name], r.get(t, params+p.Name), tol.abs)
			}
		}
	}
	checkEval := func(state map[string][]float64, prefix string) {
		t.Helper()
		ev := map[string][]float64{xla.ArgImages: input}
		for _, a := range encode.Inputs {
			if a.Name != xla.ArgImages {
				ev[a.Name] = state[a.Name]
			}
		}
		out := run(t, encode, ev)
		compareAt(t, prefix+"encoder_features", out[xla.ArgEncoder], r.get(t, prefix+"encoder_features"), tol.abs)
		compareAt(t, prefix+"features", out[xla.ArgFeatures], r.get(t, prefix+"features"), tol.abs)
	}
	checkLoss := func(n int, got []float64) {
		t.Helper()
		want := losses[n-1]
		lt := tol.loss
		if dt == tensor.Float64 {
			lt *= math.Abs(want)
		}
		if math.Abs(got[0]-want) > lt {
			t.Errorf("step %d loss %.17g, want %.17g", n, got[0], want)
		}
	}

	out := run(t, step, in)
	checkLoss(1, out[xla.ArgLoss])
	compareAt(t, "train/encoder_features", out[xla.ArgEncoder], r.get(t, cs+"/train/encoder_features"), tol.abs)
	compareAt(t, "train/features", out[xla.ArgFeatures], r.get(t, cs+"/train/features"), tol.abs)
	var scale float64
	for _, p := range m.ParamInfos() {
		for _, v := range r.get(t, cs+"/grad/"+p.Name) {
			scale = max(scale, math.Abs(v))
		}
	}
	for _, p := range m.ParamInfos() {
		compareAt(t, "grad/"+p.Name, out[xla.PrefixGrad+p.Name], r.get(t, cs+"/grad/"+p.Name), tol.grad*scale)
	}
	checkState(out, cs+"/after_forward1/", cs+"/step1/")

	// Eval with the initial parameters and the updated statistics, then
	// with the stepped parameters.
	evalState := map[string][]float64{}
	for k, v := range in {
		evalState[k] = v
	}
	for _, b := range m.BufferInfos() {
		if v, ok := out[b.Name]; ok {
			evalState[b.Name] = v
		}
	}
	checkEval(evalState, cs+"/eval_init/")
	for k, v := range out {
		evalState[k] = v
	}
	checkEval(evalState, cs+"/eval_step1/")

	// Step 2 from step 1's outputs: parameters, momentum, statistics.
	for _, a := range step.Inputs {
		if v, ok := out[a.Name]; ok {
			in[a.Name] = v
		}
	}
	out = run(t, step, in)
	checkLoss(2, out[xla.ArgLoss])
	checkState(out, cs+"/after_forward2/", cs+"/step2/")
}
