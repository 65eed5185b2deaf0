package xla_test

import (
	"regexp"
	"strconv"
	"testing"

	"gorgonia.org/tensor"

	"github.com/supflow/supflow/internal/hloeval"
	"github.com/supflow/supflow/loss"
	"github.com/supflow/supflow/model"
	"github.com/supflow/supflow/optim"
	"github.com/supflow/supflow/xla"
)

// TestResNet50Programs emits the programs bench/gpu compiles (ResNet-50,
// ImageNet stem, 224 px, bf16, uint8 views) and checks that the evaluator
// parses them and that every parameter, momentum buffer and running
// statistic comes back as an output of the same name, type and shape,
// which the input is declared to alias (so that XLA updates the donated
// buffer in place). Running them is
// the GPU's job: far too slow here.
func TestResNet50Programs(t *testing.T) {
	m, err := model.New(model.Config{Arch: "resnet50", Stem: "imagenet"}, tensor.Float32, 1)
	if err != nil {
		t.Fatal(err)
	}
	batch := xla.Batch{Rows: 4, Channels: 3, Height: 224, Width: 224, Mean: []float64{0.485, 0.456, 0.406}, Std: []float64{0.229, 0.224, 0.225}}
	step, err := xla.Step(m, xla.StepConfig{Batch: batch, Views: 2, BF16: true,
		Loss: loss.SupConConfig{Temperature: 0.1}, Optim: optim.Config{Momentum: 0.9, WeightDecay: 1e-4}})
	if err != nil {
		t.Fatal(err)
	}
	encode, err := xla.Encode(m, xla.EncodeConfig{Batch: batch, BF16: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []*xla.Program{step, encode} {
		if _, err := hloeval.Parse(string(p.Text)); err != nil {
			t.Fatal(err)
		}
	}
	outs := map[string]xla.Arg{}
	for _, a := range step.Outputs {
		outs[a.Name] = a
	}
	state := 0
	for _, a := range step.Inputs {
		switch a.Name {
		case xla.ArgLR, xla.ArgLabels, xla.ArgImages:
			continue
		}
		o, ok := outs[a.Name]
		if !ok || o.DType != a.DType || len(o.Shape) != len(a.Shape) {
			t.Errorf("input %s %v %v: output %v", a.Name, a.DType, a.Shape, o)
			continue
		}
		for i := range a.Shape {
			if a.Shape[i] != o.Shape[i] {
				t.Errorf("input %s %v: output shape %v", a.Name, a.Shape, o.Shape)
			}
		}
		state++
	}
	// Each of them aliases its output (tf.aliasing_output), nothing else.
	aliases := regexp.MustCompile(`%arg(\d+): tensor<[^>]*> \{ tf.aliasing_output = (\d+) : i32 \}`).FindAllStringSubmatch(string(step.Text), -1)
	for _, m := range aliases {
		i, _ := strconv.Atoi(m[1])
		o, _ := strconv.Atoi(m[2])
		if step.Inputs[i].Name != step.Outputs[o].Name {
			t.Errorf("input %d %s aliases output %d %s", i, step.Inputs[i].Name, o, step.Outputs[o].Name)
		}
	}
	if len(aliases) != state {
		t.Errorf("%d aliased inputs, want %d", len(aliases), state)
	}
	// Parameters and momentum of each, mean and variance of each BN.
	if want := 2*len(m.ParamInfos()) + 2*len(m.BufferInfos())/3; state != want {
		t.Errorf("%d state inputs, want %d", state, want)
	}
	t.Logf("step program %d KiB, %d inputs; encode %d KiB", len(step.Text)/1024, len(step.Inputs), len(encode.Text)/1024)
}
