package xla_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/supflow/supflow/engine"
	_ "github.com/supflow/supflow/internal/blasimpl"
	"github.com/supflow/supflow/model"
	"github.com/supflow/supflow/optim"
	"github.com/supflow/supflow/xla"
)

// TestStepMatchesCPUEngine runs two steps of the CPU engine and of the
// emitted program, in the evaluator, on the same uint8 views in float64: an
// ImageNet stem (7x7 stride-2 convolution, max-pool) on odd sizes, views
// normalised in the program, each optimizer (SGD with momentum, Nesterov,
// LARS, SGD without momentum) and method ce. Losses, parameters and running statistics
// agree at 1e-9.
func TestStepMatchesCPUEngine(t *testing.T) {
	for _, o := range []optim.Config{
		{Momentum: 0.9, WeightDecay: 1e-4, Optimizer: optim.OptimizerSGD},
		{Momentum: 0.9, WeightDecay: 1e-4, Optimizer: optim.OptimizerSGD, Nesterov: true},
		{Momentum: 0.9, WeightDecay: 1e-4, Optimizer: optim.OptimizerLARS, TrustCoefficient: 0.02},
		{WeightDecay: 1e-4, Optimizer: optim.OptimizerSGD},
	} {
		t.Run(fmt.Sprintf("%s/momentum=%g/nesterov=%v", o.Optimizer, o.Momentum, o.Nesterov), func(t *testing.T) { testStepMatchesCPUEngine(t, engine.MethodSupCon, o) })
	}
	t.Run("method ce", func(t *testing.T) {
		testStepMatchesCPUEngine(t, engine.MethodCE, optim.Config{Momentum: 0.9, WeightDecay: 1e-4, Optimizer: optim.OptimizerSGD})
	})
}

// smallConfig is a tiny ResNet-18 with an ImageNet stem (7x7 stride-2
// convolution, max-pool) for 3-channel views of odd sizes, trained by
// method with o in dtype.
func smallConfig(method string, o optim.Config, dtype string) engine.Config {
	train := engine.DefaultTrainConfig()
	train.Method = method
	train.Optim = o
	cfg := engine.Config{
		Model: engine.ModelConfig{Config: model.Config{Arch: "resnet18", Stem: "imagenet", Widths: []int{4, 8, 8, 8}, Blocks: []int{1, 1, 1, 1}, FeatDim: 8, InChannels: 3}, DType: dtype},
		Train: train,
		Mean:  []float64{0.4914, 0.4822, 0.4465},
		Std:   []float64{0.2470, 0.2435, 0.2616},
		Seed:  3,
	}
	if method == engine.MethodCE {
		cfg.Classes = 3
	}
	return cfg
}

// smallHW is the views' size for smallConfig.
const smallHW = 19

// randomBatch is size samples of views random views of smallHW pixels,
// labelled labels, at batch index of perEpoch in epoch 1.
func randomBatch(seed uint64, size, views int, labels []int, index, perEpoch int) engine.Batch {
	rng := rand.New(rand.NewPCG(seed, 2))
	b := engine.Batch{Size: size, Views: views, Height: smallHW, Width: smallHW, Channels: 3, Labels: labels, Epoch: 1, Index: index, PerEpoch: perEpoch,
		Pixels: make([]uint8, size*views*smallHW*smallHW*3)}
	for i := range b.Pixels {
		b.Pixels[i] = uint8(rng.IntN(256))
	}
	return b
}

func testStepMatchesCPUEngine(t *testing.T, method string, o optim.Config) {
	cfg := smallConfig(method, o, engine.Float64)
	train := cfg.Train
	cpu, err := engine.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	const size, views, hw = 3, 2, smallHW
	b := randomBatch(1, size, views, []int{0, 1, 0}, 0, 2)
	m := cpu.Model()
	prog, err := xla.Step(m, xla.StepConfig{
		Batch: xla.Batch{Rows: size * views, Channels: 3, Height: hw, Width: hw, Mean: cfg.Mean, Std: cfg.Std},
		Views: views, Loss: train.Loss, Optim: train.Optim, CrossEntropy: method == engine.MethodCE,
	})
	if err != nil {
		t.Fatal(err)
	}
	in := map[string][]float64{xla.ArgLabels: {0, 1, 0}}
	for _, p := range b.Pixels {
		in[xla.ArgImages] = append(in[xla.ArgImages], float64(p))
	}
	state := m.State()
	for _, p := range m.ParamInfos() {
		in[xla.PrefixParam+p.Name] = state[p.Name].F64
		if o.Momentum != 0 {
			in[xla.PrefixMomentum+p.Name] = make([]float64, len(state[p.Name].F64))
		}
	}
	for _, buf := range m.BufferInfos() {
		if !strings.HasSuffix(buf.Name, model.NumBatchesTracked) {
			in[buf.Name] = state[buf.Name].F64
		}
	}
	for step := range 2 {
		b.Index = step
		st, err := cpu.Step(context.Background(), b)
		if err != nil {
			t.Fatal(err)
		}
		in[xla.ArgLR] = []float64{st.LR}
		out := run(t, prog, in)
		if d := math.Abs(out[xla.ArgLoss][0] - st.Loss); d > 1e-10*math.Abs(st.Loss) {
			t.Errorf("step %d: loss %.17g, CPU engine %.17g", step+1, out[xla.ArgLoss][0], st.Loss)
		}
		state := m.State()
		for _, a := range prog.Outputs {
			name := strings.TrimPrefix(a.Name, xla.PrefixParam)
			if want, ok := state[name]; ok {
				compareAt(t, a.Name, out[a.Name], want.F64, 1e-9)
			}
		}
		for _, a := range prog.Inputs {
			if v, ok := out[a.Name]; ok {
				in[a.Name] = v
			}
		}
	}
}
