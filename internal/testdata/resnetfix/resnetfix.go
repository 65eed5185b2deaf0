// Package resnetfix reads one model of a ResNet fixture folder
// (testdata/resnet/README.md): its architecture, parameter and buffer
// lists, cases, reference tensors and the step they were computed with. It is apart from package testdata,
// which locates the folders, because the safetensors tests use that one
// and this one reads safetensors; it has no testing dependency, so the GPU
// checks (bench/gpu) read the fixtures with it too.
package resnetfix

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/supflow/supflow/loss"
	"github.com/supflow/supflow/model"
	"github.com/supflow/supflow/optim"
	"github.com/supflow/supflow/safetensors"
	"github.com/supflow/supflow/statedict"
	"github.com/supflow/supflow/xla"
)

// The training step the fixtures' references took (testdata/resnet/README.md).
var (
	Loss  = loss.SupConConfig{Temperature: 0.1, BaseTemperature: 0.07}
	Optim = optim.Config{Momentum: 0.9, WeightDecay: 1e-4}
)

// LR is the learning rate of that step.
const LR = 0.05

// Fixture is <name>.json of a fixture folder with <name>.safetensors.
type Fixture struct {
	Architecture struct {
		Block       string `json:"block"`
		StageWidths []int  `json:"stage_widths"`
		Blocks      []int  `json:"blocks_per_stage"`
		FeatDim     int    `json:"feat_dim"`
		EncoderDim  int    `json:"encoder_dim"`
	} `json:"architecture"`
	Parameters []statedict.Info `json:"parameters"`
	Buffers    []statedict.Info `json:"buffers"`
	Cases      []struct {
		Name           string  `json:"name"`
		Bsz            int     `json:"bsz"`
		HasStepTensors bool    `json:"has_step_tensors"`
		Labels         []int   `json:"labels"`
		LossStep1      float64 `json:"loss_step1"`
		LossStep2      float64 `json:"loss_step2"`
	} `json:"cases"`
	// Tensors holds the reference tensors (all F64): init/*, <case>/input
	// and what each case computes from them.
	Tensors *safetensors.File `json:"-"`
}

// Read reads model name of the fixture folder dir.
func Read(dir, name string) (*Fixture, error) {
	b, err := os.ReadFile(filepath.Join(dir, name+".json"))
	if err != nil {
		return nil, err
	}
	var f Fixture
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("%s.json: %w", name, err)
	}
	if f.Tensors, err = safetensors.ReadFile(filepath.Join(dir, name+".safetensors")); err != nil {
		return nil, err
	}
	return &f, nil
}

// Config is the model configuration of the fixture's architecture: a
// bottleneck block is the resnet50 family, a basic one resnet18's.
func (f *Fixture) Config() model.Config {
	arch := "resnet18"
	if f.Architecture.Block == "bottleneck" {
		arch = "resnet50"
	}
	return model.Config{Arch: arch, Widths: f.Architecture.StageWidths, Blocks: f.Architecture.Blocks, FeatDim: f.Architecture.FeatDim}
}

// Batch is the shape of case c's input, [rows, channels, height, width].
func (f *Fixture) Batch(c string) (xla.Batch, error) {
	_, shape, err := f.Tensors.Float64s(c + "/input")
	if err != nil {
		return xla.Batch{}, err
	}
	return xla.Batch{Rows: shape[0], Channels: shape[1], Height: shape[2], Width: shape[3]}, nil
}

// InitState is the state inputs of an xla step of m at the fixture's
// init/ tensors: the learning rate, parameters, zero momentum and the
// buffers but num_batches_tracked, which the step does not take.
func (f *Fixture) InitState(m *model.Model) (map[string][]float64, error) {
	in := map[string][]float64{xla.ArgLR: {LR}}
	get := func(key, name string) error {
		v, _, err := f.Tensors.Float64s("init/" + name)
		in[key] = v
		return err
	}
	for _, p := range m.ParamInfos() {
		if err := get(xla.PrefixParam+p.Name, p.Name); err != nil {
			return nil, err
		}
		in[xla.PrefixMomentum+p.Name] = make([]float64, len(in[xla.PrefixParam+p.Name]))
	}
	for _, b := range m.BufferInfos() {
		if !strings.HasSuffix(b.Name, model.NumBatchesTracked) {
			if err := get(b.Name, b.Name); err != nil {
				return nil, err
			}
		}
	}
	return in, nil
}

// StepInputs is InitState with case c's input images and labels: the
// inputs of the case's first step.
func (f *Fixture) StepInputs(m *model.Model, c string, labels []int) (map[string][]float64, error) {
	in, err := f.InitState(m)
	if err != nil {
		return nil, err
	}
	if in[xla.ArgImages], _, err = f.Tensors.Float64s(c + "/input"); err != nil {
		return nil, err
	}
	for _, l := range labels {
		in[xla.ArgLabels] = append(in[xla.ArgLabels], float64(l))
	}
	return in, nil
}
