package model_test

import (
	"math"
	"slices"
	"strings"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	_ "github.com/supflow/supflow/internal/blasimpl"
	"github.com/supflow/supflow/internal/fixtures"
	"github.com/supflow/supflow/internal/fixtures/resnetfix"
	"github.com/supflow/supflow/loss"
	"github.com/supflow/supflow/model"
	"github.com/supflow/supflow/optim"
	"github.com/supflow/supflow/statedict"
)

// fixture is one model of a resnet fixture folder, with the helpers these
// tests read it through.
type fixture struct{ *resnetfix.Fixture }

var fixtureNames = []string{"tiny_basic", "tiny_bottleneck"}

// loadFixture reads model name of the resnet fixture folder dir.
func loadFixture(t *testing.T, dir, name string) *fixture {
	t.Helper()
	f, err := resnetfix.Read(dir, name)
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{f}
}

func (f *fixture) get(t *testing.T, name string) ([]float64, []int) {
	t.Helper()
	v, shape, err := f.Tensors.Float64s(name)
	if err != nil {
		t.Fatalf("fixture tensor %s: %v", name, err)
	}
	return v, shape
}

func (f *fixture) dense(t *testing.T, name string, dt tensor.Dtype) *tensor.Dense {
	t.Helper()
	v, shape := f.get(t, name)
	if dt == tensor.Float32 {
		v32 := make([]float32, len(v))
		for i, x := range v {
			v32[i] = float32(x)
		}
		return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(v32))
	}
	return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(slices.Clone(v)))
}

// newModel builds the fixture's model in dtype dt loaded with init/*.
func (f *fixture) newModel(t *testing.T, dt tensor.Dtype) *model.Model {
	t.Helper()
	m, err := model.New(f.Config(), dt, 1)
	if err != nil {
		t.Fatal(err)
	}
	state := map[string]statedict.Tensor{}
	for _, in := range append(m.ParamInfos(), m.BufferInfos()...) {
		// The fixture holds every tensor as F64.
		v, shape := f.get(t, "init/"+in.Name)
		st := statedict.Tensor{Shape: shape}
		switch {
		case strings.HasSuffix(in.Name, ".num_batches_tracked"):
			st.I64 = []int64{int64(v[0])}
		case dt == tensor.Float32:
			st.F32 = make([]float32, len(v))
			for i, x := range v {
				st.F32[i] = float32(x)
			}
		default:
			st.F64 = v
		}
		state[in.Name] = st
	}
	if err := m.LoadState(state); err != nil {
		t.Fatal(err)
	}
	return m
}

func values(t *testing.T, v any) []float64 {
	t.Helper()
	d, ok := v.(*tensor.Dense)
	if !ok {
		t.Fatalf("value is %T", v)
	}
	switch x := d.Data().(type) {
	case []float64:
		return x
	case []float32:
		out := make([]float64, len(x))
		for i, e := range x {
			out[i] = float64(e)
		}
		return out
	}
	t.Fatalf("dtype %v", d.Dtype())
	return nil
}

// near reports the first entry where got and want differ by more than tol.
func near(t *testing.T, what string, got, want []float64, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d values, want %d", what, len(got), len(want))
		return
	}
	var worst float64
	at := -1
	for i := range got {
		if d := math.Abs(got[i] - want[i]); d > worst || math.IsNaN(d) {
			worst, at = d, i
		}
	}
	if at >= 0 && !(worst <= tol) {
		t.Errorf("%s: max abs diff %g at %d (got %g, want %g), tolerance %g", what, worst, at, got[at], want[at], tol)
	}
}

// checkBuffers compares the batch-norm buffers of a float64 model with the
// fixture's under prefix.
func checkBuffers(t *testing.T, f *fixture, m *model.Model, prefix string) {
	t.Helper()
	state := m.State()
	for _, b := range f.Buffers {
		got := state[b.Name].F64
		if n := state[b.Name].I64; n != nil {
			got = []float64{float64(n[0])}
		}
		want, _ := f.get(t, prefix+b.Name)
		near(t, prefix+b.Name, got, want, 1e-9)
	}
}

func TestFixtureNames(t *testing.T) {
	fixtures.ForEach(t, "resnet", func(t *testing.T, dir string) {
		for _, name := range fixtureNames {
			t.Run(name, func(t *testing.T) {
				f := loadFixture(t, dir, name)
				m, err := model.New(f.Config(), tensor.Float64, 1)
				if err != nil {
					t.Fatal(err)
				}
				if got := m.ParamInfos(); !equalInfos(got, f.Parameters) {
					t.Errorf("parameters\n got %v\nwant %v", got, f.Parameters)
				}
				if got := m.BufferInfos(); !equalInfos(got, f.Buffers) {
					t.Errorf("buffers\n got %v\nwant %v", got, f.Buffers)
				}
				if m.EncoderDim() != f.Architecture.EncoderDim {
					t.Errorf("EncoderDim = %d, want %d", m.EncoderDim(), f.Architecture.EncoderDim)
				}
			})
		}
	})
}

func equalInfos(a, b []statedict.Info) bool {
	return slices.EqualFunc(a, b, func(x, y statedict.Info) bool { return x.Name == y.Name && slices.Equal(x.Shape, y.Shape) })
}

// TestFixtureForward checks the train-mode and eval-mode forward passes and
// the running statistics after one training forward, in float64 (1e-9) and
// float32 (1e-4 on the normalised features).
func TestFixtureForward(t *testing.T) {
	fixtures.ForEach(t, "resnet", func(t *testing.T, dir string) {
		for _, name := range fixtureNames {
			f := loadFixture(t, dir, name)
			for _, c := range f.Cases {
				t.Run(name+"/"+c.Name, func(t *testing.T) {
					m := f.newModel(t, tensor.Float64)
					out, err := m.Forward(f.dense(t, c.Name+"/input", tensor.Float64))
					if err != nil {
						t.Fatal(err)
					}
					for _, o := range []struct {
						name string
						got  *tensor.Dense
					}{{"encoder_features", out.Encoder}, {"head_output", out.Head}, {"features", out.Output}} {
						want, _ := f.get(t, c.Name+"/train/"+o.name)
						near(t, "train/"+o.name, values(t, o.got), want, 1e-9)
					}
					checkBuffers(t, f, m, c.Name+"/after_forward1/")

					m.SetTraining(false)
					if out, err = m.Forward(f.dense(t, c.Name+"/input", tensor.Float64)); err != nil {
						t.Fatal(err)
					}
					for _, o := range []struct {
						name string
						got  *tensor.Dense
					}{{"encoder_features", out.Encoder}, {"features", out.Output}} {
						want, _ := f.get(t, c.Name+"/eval_init/"+o.name)
						near(t, "eval_init/"+o.name, values(t, o.got), want, 1e-9)
					}
					checkBuffers(t, f, m, c.Name+"/after_forward1/")

					m32 := f.newModel(t, tensor.Float32)
					out32, err := m32.Forward(f.dense(t, c.Name+"/input", tensor.Float32))
					if err != nil {
						t.Fatal(err)
					}
					want, _ := f.get(t, c.Name+"/train/features")
					near(t, "float32 train/features", values(t, out32.Output), want, 1e-4)
				})
			}
		}
	})
}

// TestFixtureTraining runs the fixture's two SupCon + SGD steps through a
// graph from Build with the loss and optimizer packages: losses, every
// parameter and input gradient, BN buffers, SGD parameters and the eval
// forward between the steps.
func TestFixtureTraining(t *testing.T) {
	fixtures.ForEach(t, "resnet", func(t *testing.T, dir string) {
		for _, name := range fixtureNames {
			f := loadFixture(t, dir, name)
			for _, c := range f.Cases {
				t.Run(name+"/"+c.Name, func(t *testing.T) {
					m := f.newModel(t, tensor.Float64)
					x := f.dense(t, c.Name+"/input", tensor.Float64)
					s := x.Shape()
					gr, err := m.Build(s[0], s[2], s[3])
					if err != nil {
						t.Fatal(err)
					}
					mask, err := loss.LabelMask(c.Labels, tensor.Float64)
					if err != nil {
						t.Fatal(err)
					}
					maskNode := G.NewTensor(gr.G, tensor.Float64, 2, G.WithShape(c.Bsz, c.Bsz), G.WithValue(mask), G.WithName("mask"))
					cost, err := loss.SupConNode(gr.Output, maskNode, 2, loss.SupConConfig{Temperature: 0.1, BaseTemperature: 0.07})
					if err != nil {
						t.Fatal(err)
					}
					grads, err := G.Grad(cost, append(slices.Clone(gr.Params), gr.Input)...)
					if err != nil {
						t.Fatal(err)
					}
					// As the trainer runs it.
					vm, err := model.Compile(gr.G, append(G.Nodes{cost}, grads...)...)
					if err != nil {
						t.Fatal(err)
					}
					defer vm.Close()
					opt, err := optim.New(optim.Config{Momentum: 0.9, WeightDecay: 1e-4})
					if err != nil {
						t.Fatal(err)
					}
					params := m.Params()
					step := func(n int, wantLoss float64) {
						t.Helper()
						if err := G.Let(gr.Input, x); err != nil {
							t.Fatal(err)
						}
						vm.Reset()
						if err := vm.RunAll(); err != nil {
							t.Fatal(err)
						}
						got := cost.Value().Data().(float64)
						if math.Abs(got-wantLoss) > 1e-10*math.Abs(wantLoss) {
							t.Errorf("step %d loss %.17g, want %.17g", n, got, wantLoss)
						}
						if n == 1 {
							for i, p := range params {
								want, _ := f.get(t, c.Name+"/grad/"+p.Name)
								near(t, "grad/"+p.Name, values(t, grads[i].Value()), want, 1e-9)
							}
							want, _ := f.get(t, c.Name+"/grad_input")
							near(t, "grad_input", values(t, grads[len(params)].Value()), want, 1e-9)
						}
						op := make([]optim.Param, len(params))
						for i, p := range params {
							op[i] = optim.Param{Name: p.Name, Value: p.Value, Grad: grads[i].Value().(*tensor.Dense)}
						}
						if err := opt.Step(0.05, op); err != nil {
							t.Fatal(err)
						}
						if c.HasStepTensors {
							for _, p := range params {
								want, _ := f.get(t, c.Name+"/step"+string(rune('0'+n))+"/"+p.Name)
								near(t, "step"+string(rune('0'+n))+"/"+p.Name, values(t, p.Value), want, 1e-9)
							}
						}
					}

					step(1, c.LossStep1)
					checkBuffers(t, f, m, c.Name+"/after_forward1/")

					m.SetTraining(false)
					out, err := m.Forward(x)
					if err != nil {
						t.Fatal(err)
					}
					for _, o := range []struct {
						name string
						got  *tensor.Dense
					}{{"encoder_features", out.Encoder}, {"features", out.Output}} {
						want, _ := f.get(t, c.Name+"/eval_step1/"+o.name)
						near(t, "eval_step1/"+o.name, values(t, o.got), want, 1e-9)
					}

					m.SetTraining(true)
					step(2, c.LossStep2)
					checkBuffers(t, f, m, c.Name+"/after_forward2/")
				})
			}
		}
	})
}

// TestFixtureTrainingFloat32 runs the first training step in float32 and
// compares with the float64 reference at the README's float32 tolerances:
// 1e-5 on the loss and 1e-5 times the largest entry on the gradients.
func TestFixtureTrainingFloat32(t *testing.T) {
	fixtures.ForEach(t, "resnet", func(t *testing.T, dir string) {
		for _, name := range fixtureNames {
			f := loadFixture(t, dir, name)
			c := f.Cases[0]
			t.Run(name+"/"+c.Name, func(t *testing.T) {
				m := f.newModel(t, tensor.Float32)
				x := f.dense(t, c.Name+"/input", tensor.Float32)
				s := x.Shape()
				gr, err := m.Build(s[0], s[2], s[3])
				if err != nil {
					t.Fatal(err)
				}
				mask, err := loss.LabelMask(c.Labels, tensor.Float32)
				if err != nil {
					t.Fatal(err)
				}
				maskNode := G.NewTensor(gr.G, tensor.Float32, 2, G.WithShape(c.Bsz, c.Bsz), G.WithValue(mask))
				cost, err := loss.SupConNode(gr.Output, maskNode, 2, loss.SupConConfig{Temperature: 0.1, BaseTemperature: 0.07})
				if err != nil {
					t.Fatal(err)
				}
				grads, err := G.Grad(cost, gr.Params...)
				if err != nil {
					t.Fatal(err)
				}
				vm, err := model.Compile(gr.G, append(G.Nodes{cost}, grads...)...)
				if err != nil {
					t.Fatal(err)
				}
				defer vm.Close()
				if err := G.Let(gr.Input, x); err != nil {
					t.Fatal(err)
				}
				if err := vm.RunAll(); err != nil {
					t.Fatal(err)
				}
				got := float64(cost.Value().Data().(float32))
				if math.Abs(got-c.LossStep1) > 1e-5 {
					t.Errorf("loss %g, want %g", got, c.LossStep1)
				}
				var scale float64
				want := make([][]float64, len(grads))
				for i, p := range m.Params() {
					want[i], _ = f.get(t, c.Name+"/grad/"+p.Name)
					for _, v := range want[i] {
						scale = max(scale, math.Abs(v))
					}
				}
				for i, p := range m.Params() {
					near(t, "grad/"+p.Name, values(t, grads[i].Value()), want[i], 1e-5*scale)
				}
			})
		}
	})
}
