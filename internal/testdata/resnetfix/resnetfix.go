// Package resnetfix reads one model of a ResNet fixture folder
// (testdata/resnet/README.md): its architecture, parameter and buffer
// lists, cases and reference tensors. It is apart from package testdata,
// which locates the folders, because the safetensors tests use that one
// and this one reads safetensors; it has no testing dependency, so the GPU
// checks (bench/gpu) read the fixtures with it too.
package resnetfix

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/supflow/supflow/model"
	"github.com/supflow/supflow/safetensors"
	"github.com/supflow/supflow/statedict"
)

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
