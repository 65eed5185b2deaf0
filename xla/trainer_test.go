package xla_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"gorgonia.org/tensor"

	"github.com/supflow/supflow/checkpoint"
	"github.com/supflow/supflow/engine"
	"github.com/supflow/supflow/internal/hlorunner"
	"github.com/supflow/supflow/optim"
	"github.com/supflow/supflow/statedict"
	"github.com/supflow/supflow/xla"
	"github.com/supflow/supflow/xla/trainer"
)

// trainer is the stages' view of a backend.
type backend interface {
	Step(ctx context.Context, b engine.Batch) (engine.Stats, error)
	Save(epoch int, extra map[string]string) ([]byte, error)
	Load(b []byte) (checkpoint.Meta, error)
	Project(ctx context.Context, im engine.Images) ([]float32, int, []float32, int, error)
}

var (
	_ backend = (*engine.CPU)(nil)
	_ backend = (*trainer.Engine)(nil)
)

// epochBatches is an epoch of 8 samples in batches of 3: the last one is
// short (another program shape).
func epochBatches() []engine.Batch {
	return []engine.Batch{
		randomBatch(11, 3, 2, []int{0, 1, 0}, 0, 3),
		randomBatch(12, 3, 2, []int{2, 2, 1}, 1, 3),
		randomBatch(13, 2, 2, []int{1, 0}, 2, 3),
	}
}

func newBackends(t *testing.T, cfg engine.Config) (*engine.CPU, *trainer.Engine) {
	t.Helper()
	cpu, err := engine.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	x, err := trainer.New(cfg, hlorunner.New())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = x.Close() })
	return cpu, x
}

// stepBoth steps both backends on bs and compares their losses.
func stepBoth(t *testing.T, a, b backend, bs []engine.Batch, tol float64) {
	t.Helper()
	for i, batch := range bs {
		sa, err := a.Step(context.Background(), batch)
		if err != nil {
			t.Fatal(err)
		}
		sb, err := b.Step(context.Background(), batch)
		if err != nil {
			t.Fatal(err)
		}
		if sa.Step != sb.Step || sa.LR != sb.LR {
			t.Errorf("batch %d: step %d lr %g, other %d %g", i, sa.Step, sa.LR, sb.Step, sb.LR)
		}
		compareScaled(t, "loss", []float64{sb.Loss}, []float64{sa.Loss}, tol)
	}
}

// compareStates saves both backends and compares every tensor of the
// checkpoints (parameters, running statistics, num_batches_tracked,
// momentum) and the step.
func compareStates(t *testing.T, a, b backend, tol float64) {
	t.Helper()
	sa, sb := decodeSave(t, a), decodeSave(t, b)
	if sa.Meta.Step != sb.Meta.Step || sa.Meta.DType != sb.Meta.DType || len(sa.Tensors) != len(sb.Tensors) || len(sa.Momentum) != len(sb.Momentum) {
		t.Fatalf("checkpoints differ: step %d/%d, dtype %s/%s, %d/%d tensors, %d/%d momentum buffers", sa.Meta.Step, sb.Meta.Step,
			sa.Meta.DType, sb.Meta.DType, len(sa.Tensors), len(sb.Tensors), len(sa.Momentum), len(sb.Momentum))
	}
	for _, set := range []struct {
		kind string
		a, b map[string]statedict.Tensor
	}{{"tensor", sa.Tensors, sb.Tensors}, {"momentum", sa.Momentum, sb.Momentum}} {
		for name, ta := range set.a {
			tb, ok := set.b[name]
			if !ok {
				t.Errorf("%s %s missing", set.kind, name)
				continue
			}
			compareScaled(t, set.kind+" "+name, values(tb), values(ta), tol)
		}
	}
}

func decodeSave(t *testing.T, e backend) checkpoint.State {
	t.Helper()
	b, err := e.Save(1, nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := checkpoint.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func values(t statedict.Tensor) []float64 {
	var v []float64
	for _, x := range t.F32 {
		v = append(v, float64(x))
	}
	for _, x := range t.I64 {
		v = append(v, float64(x))
	}
	return append(v, t.F64...)
}

// compareProject compares both backends' eval-mode features and
// projections of 3 images.
func compareProject(t *testing.T, a, b backend, tol float64) {
	t.Helper()
	v := randomBatch(21, 3, 1, []int{0, 0, 0}, 0, 1)
	im := engine.Images{N: 3, Height: v.Height, Width: v.Width, Channels: 3, Pixels: v.Pixels}
	fa, da, pa, na, err := a.Project(context.Background(), im)
	if err != nil {
		t.Fatal(err)
	}
	fb, db, pb, nb, err := b.Project(context.Background(), im)
	if err != nil {
		t.Fatal(err)
	}
	if da != db || na != nb {
		t.Fatalf("dims %d,%d and %d,%d", da, na, db, nb)
	}
	compareScaled(t, "features", widen32(fb), widen32(fa), tol)
	compareScaled(t, "projections", widen32(pb), widen32(pa), tol)
}

// compareScaled is compareAt with tol relative to want's largest entry
// when that is above 1.
func compareScaled(t *testing.T, what string, got, want []float64, tol float64) {
	t.Helper()
	scale := 1.0
	for _, w := range want {
		scale = max(scale, math.Abs(w))
	}
	compareAt(t, what, got, want, tol*scale)
}

func widen32(f []float32) []float64 {
	v := make([]float64, len(f))
	for i, x := range f {
		v[i] = float64(x)
	}
	return v
}

var sgdMomentum = optim.Config{Momentum: 0.9, WeightDecay: 1e-4, Optimizer: optim.OptimizerSGD}

// TestTrainerMatchesCPU trains an epoch (a short last batch included) on
// the CPU engine and on the XLA engine running its programs in the
// evaluator: the losses, every checkpoint tensor (parameters, running
// statistics, num_batches_tracked, momentum) and the eval-mode features and
// projections agree, at 1e-9 in float64 and within the CPU's float32
// tolerance in float32; then each backend resumes from the other's
// checkpoint and the two runs go on identically.
func TestTrainerMatchesCPU(t *testing.T) {
	for _, c := range []struct {
		method, dtype string
		dt            tensor.Dtype
	}{
		{engine.MethodSupCon, engine.Float64, tensor.Float64},
		{engine.MethodSupCon, engine.Float32, tensor.Float32},
		{engine.MethodSimCLR, engine.Float64, tensor.Float64},
		{engine.MethodCE, engine.Float64, tensor.Float64},
	} {
		t.Run(c.method+"/"+c.dtype, func(t *testing.T) {
			// The CPU's own float32 tolerance against PyTorch (model's
			// fixture tests): 1e-4, here relative to the largest entry.
			tol := tols[c.dt].abs
			if c.dt == tensor.Float32 {
				tol = 1e-4
			}
			cfg := smallConfig(c.method, sgdMomentum, c.dtype)
			cpu, x := newBackends(t, cfg)
			stepBoth(t, cpu, x, epochBatches(), tol)
			compareStates(t, cpu, x, tol)
			compareProject(t, cpu, x, tol)
			if c.method != engine.MethodSupCon || c.dtype != engine.Float64 {
				return
			}
			// Swap: each backend continues from the other's checkpoint.
			cpu2, x2 := newBackends(t, cfg)
			for _, p := range []struct{ from, to backend }{{cpu, x2}, {x, cpu2}} {
				b, err := p.from.Save(1, nil)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := p.to.Load(b); err != nil {
					t.Fatal(err)
				}
			}
			next := []engine.Batch{randomBatch(14, 3, 2, []int{1, 1, 0}, 0, 3)}
			next[0].Epoch = 2
			stepBoth(t, x2, cpu2, next, tol)
			compareStates(t, x2, cpu2, tol)
		})
	}
}

// nanLoss is the evaluator with a step's loss made NaN while nan is set
// (a diverged run); the step's state outputs are the real ones.
type nanLoss struct {
	*hlorunner.Runner
	nan bool
}

func (r *nanLoss) Compile(p *xla.Program) (xla.Executable, error) {
	exe, err := r.Runner.Compile(p)
	return nanExecutable{exe, r, p}, err
}

type nanExecutable struct {
	xla.Executable
	r *nanLoss
	p *xla.Program
}

func (e nanExecutable) Run(in []xla.Buffer, donate []int) ([]xla.Buffer, error) {
	out, err := e.Executable.Run(in, donate)
	if err != nil || !e.r.nan || e.p.Outputs[0].Name != xla.ArgLoss {
		return out, err
	}
	out[0], err = e.r.Upload(0, e.p.Outputs[0], []float64{math.NaN()})
	return out, err
}

// TestTrainerNonFiniteLoss: a step whose loss is not finite is ErrLoss,
// and the engine refuses to go on (its device state took the step) until
// a checkpoint is loaded.
func TestTrainerNonFiniteLoss(t *testing.T) {
	r := &nanLoss{Runner: hlorunner.New()}
	x, err := trainer.New(smallConfig(engine.MethodSupCon, sgdMomentum, engine.Float64), r)
	if err != nil {
		t.Fatal(err)
	}
	ckpt, err := x.Save(0, nil)
	if err != nil {
		t.Fatal(err)
	}
	b := epochBatches()[0]
	r.nan = true
	if _, err := x.Step(context.Background(), b); !errors.Is(err, engine.ErrLoss) {
		t.Fatalf("step = %v, want ErrLoss", err)
	}
	r.nan = false
	if _, err := x.Save(1, nil); !errors.Is(err, trainer.ErrFailed) {
		t.Fatalf("save after a non-finite loss = %v, want ErrFailed", err)
	}
	if _, err := x.Step(context.Background(), b); !errors.Is(err, trainer.ErrFailed) {
		t.Fatalf("step after a non-finite loss = %v, want ErrFailed", err)
	}
	if _, err := x.Load(ckpt); err != nil {
		t.Fatal(err)
	}
	if st, err := x.Step(context.Background(), b); err != nil || st.Step != 1 {
		t.Fatalf("step after load = %+v, %v, want step 1", st, err)
	}
}

// TestTrainerBF16: model.dtype bfloat16 trains on the XLA engine with
// mixed precision (the first loss within 3% of the float32 CPU engine's,
// the later ones, whose parameters have drifted apart, within 10%; none
// equal: the program rounds), writes float32 checkpoints that
// the CPU engine loads, and is refused by the CPU engine itself.
func TestTrainerBF16(t *testing.T) {
	cfg := smallConfig(engine.MethodSupCon, sgdMomentum, engine.BFloat16)
	if _, err := engine.New(cfg); !errors.Is(err, engine.ErrConfig) {
		t.Fatalf("CPU engine in bfloat16: %v, want ErrConfig", err)
	}
	x, err := trainer.New(cfg, hlorunner.New())
	if err != nil {
		t.Fatal(err)
	}
	cfg.Model.DType = engine.Float32
	cpu, err := engine.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for i, b := range epochBatches() {
		s16, err := x.Step(context.Background(), b)
		if err != nil {
			t.Fatal(err)
		}
		s32, err := cpu.Step(context.Background(), b)
		if err != nil {
			t.Fatal(err)
		}
		bound := 0.1
		if i == 0 {
			bound = 0.03
		}
		if d := math.Abs(s16.Loss - s32.Loss); d > bound*math.Abs(s32.Loss) || d == 0 {
			t.Errorf("step %d: bf16 loss %g, float32 %g", s16.Step, s16.Loss, s32.Loss)
		}
	}
	ckpt, err := x.Save(1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cpu.Load(ckpt); err != nil {
		t.Fatalf("CPU float32 engine loading a bf16 run's checkpoint: %v", err)
	}
}

// replicaCheck is the evaluator with two devices that, after every
// data-parallel run, compares each replica's updated parameters and
// momentum with replica 0's: identical by construction (all-reduced
// gradients).
type replicaCheck struct {
	*hlorunner.Runner
	t    *testing.T
	runs int
}

func (r *replicaCheck) Compile(p *xla.Program) (xla.Executable, error) {
	exe, err := r.Runner.Compile(p)
	return replicaExecutable{exe, r, p}, err
}

type replicaExecutable struct {
	xla.Executable
	r *replicaCheck
	p *xla.Program
}

func (e replicaExecutable) Run(in []xla.Buffer, donate []int) ([]xla.Buffer, error) {
	out, err := e.Executable.Run(in, donate)
	if err != nil || e.p.Replicas < 2 {
		return out, err
	}
	e.r.runs++
	n := len(e.p.Outputs)
	for i, a := range e.p.Outputs {
		if !strings.HasPrefix(a.Name, xla.PrefixParam) && !strings.HasPrefix(a.Name, xla.PrefixMomentum) && a.Name != xla.ArgLoss {
			continue
		}
		want, _ := out[i].Download()
		for r := 1; r < e.p.Replicas; r++ {
			got, _ := out[r*n+i].Download()
			compareAt(e.r.t, fmt.Sprintf("replica %d %s", r, a.Name), got, want, 0)
		}
	}
	return out, nil
}

// TestTrainerDevices trains on two evaluator devices (full batches of 4
// split 2+2, a short batch of 3 on one device, its state then copied to
// the other): with SyncBN the losses and the checkpoint equal the
// one-device engine's at 1e-9 in float64; with per-replica batch norms
// (DDP) both devices hold the same parameters and momentum after every
// step, and the first loss differs from the whole batch's (statistics of 2
// samples). Devices the runner lacks, a batch size they do not divide and
// method ce are refused.
func TestTrainerDevices(t *testing.T) {
	cfg := smallConfig(engine.MethodSupCon, sgdMomentum, engine.Float64)
	cfg.Train.Schedule.BatchSize = 4
	batches := []engine.Batch{
		randomBatch(21, 4, 2, []int{0, 1, 0, 1}, 0, 4),
		randomBatch(22, 4, 2, []int{2, 2, 1, 0}, 1, 4),
		randomBatch(23, 3, 2, []int{1, 0, 2}, 2, 4),
		randomBatch(24, 4, 2, []int{1, 1, 0, 2}, 3, 4),
	}
	newEngine := func(r xla.Runner, opts ...trainer.Option) *trainer.Engine {
		t.Helper()
		x, err := trainer.New(cfg, r, opts...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = x.Close() })
		return x
	}
	one := newEngine(hlorunner.New())

	t.Run("SyncBN", func(t *testing.T) {
		two := newEngine(hlorunner.New(hlorunner.WithDevices(2)), trainer.WithDevices(0), trainer.WithSyncBN(true))
		if two.Devices() != 2 {
			t.Fatalf("devices 0 (all) of 2: %d", two.Devices())
		}
		stepBoth(t, two, one, batches, 1e-9)
		compareStates(t, two, one, 1e-9)
	})

	t.Run("per-replica BN", func(t *testing.T) {
		r := &replicaCheck{Runner: hlorunner.New(hlorunner.WithDevices(2)), t: t}
		two := newEngine(r, trainer.WithDevices(2))
		ref := newEngine(hlorunner.New())
		for i, b := range batches {
			s, err := two.Step(context.Background(), b)
			if err != nil {
				t.Fatal(err)
			}
			w, err := ref.Step(context.Background(), b)
			if err != nil {
				t.Fatal(err)
			}
			if i == 0 && s.Loss == w.Loss {
				t.Errorf("per-replica BN loss %g equals the whole batch's", s.Loss)
			}
		}
		if r.runs != 3 {
			t.Errorf("%d data-parallel steps, want 3 (the batch of 3 on one device)", r.runs)
		}
		if st := decodeSave(t, two); st.Meta.Step != int64(len(batches)) {
			t.Errorf("checkpoint at step %d, want %d", st.Meta.Step, len(batches))
		}
	})

	for _, c := range []struct {
		name   string
		method string
		batch  int
		opts   []trainer.Option
	}{
		{"batch size not a multiple", engine.MethodSupCon, 6, []trainer.Option{trainer.WithDevices(4)}},
		{"method ce", engine.MethodCE, 4, []trainer.Option{trainer.WithDevices(2)}},
	} {
		cfg := smallConfig(c.method, sgdMomentum, engine.Float64)
		cfg.Train.Schedule.BatchSize = c.batch
		if _, err := trainer.New(cfg, hlorunner.New(hlorunner.WithDevices(4)), c.opts...); !errors.Is(err, trainer.ErrDevices) {
			t.Errorf("%s: %v, want ErrDevices", c.name, err)
		}
	}
	if _, err := trainer.New(cfg, hlorunner.New(hlorunner.WithDevices(2)), trainer.WithDevices(3)); !errors.Is(err, trainer.ErrDevices) {
		t.Errorf("3 devices of 2: %v, want ErrDevices", err)
	}
}
