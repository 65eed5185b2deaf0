package model

import (
	"testing"

	"gorgonia.org/tensor"
)

// TestCountMatchesBuiltModel: Count's parameters are those New allocates,
// for every architecture, stem and head.
func TestCountMatchesBuiltModel(t *testing.T) {
	for _, cfg := range []Config{
		{Arch: "resnet18", Widths: []int{4, 8, 8, 16}, Blocks: []int{1, 1, 1, 1}, FeatDim: 32, InChannels: 1},
		{Arch: "resnet34", Stem: "imagenet", Widths: []int{4, 8, 8, 8}, Head: "linear"},
		{Arch: "resnet50", Widths: []int{2, 4, 4, 8}, Blocks: []int{1, 2, 1, 1}},
		{Arch: "resnet101", Stem: "imagenet", Widths: []int{2, 2, 2, 2}, FeatDim: 8, InChannels: 2},
		{},
	} {
		m, err := New(cfg, tensor.Float32, 1)
		if err != nil {
			t.Fatal(err)
		}
		var params int64
		for _, p := range m.Params() {
			params += int64(p.Value.Shape().TotalSize())
		}
		var buffers int64
		for _, b := range m.BufferInfos() {
			if b.Name[len(b.Name)-len(NumBatchesTracked):] != NumBatchesTracked {
				buffers += int64(tensor.Shape(b.Shape).TotalSize())
			}
		}
		n, err := cfg.Count(32, 32)
		if err != nil {
			t.Fatal(err)
		}
		if n.Params != params || n.Buffers != buffers {
			t.Errorf("%+v: Count = %d params, %d buffers; New allocated %d, %d", cfg, n.Params, n.Buffers, params, buffers)
		}
	}
}

// TestCountActivations: a CIFAR ResNet-18 on 32 x 32 images: the stem's
// 64 x 32 x 32, four convolutions per stage and the three shortcuts.
func TestCountActivations(t *testing.T) {
	n, err := Config{}.Count(32, 32)
	if err != nil {
		t.Fatal(err)
	}
	want := 64*32*32 + 4*64*32*32 + 5*128*16*16 + 5*256*8*8 + 5*512*4*4
	if n.Activations != float64(want) || n.Params != 11_168_832+512*512+512+512*128+128 {
		t.Errorf("Count = %+v, want %d activations", n, want)
	}
	// The largest valid network is counted, not built.
	huge := Config{Arch: "resnet101", Widths: []int{4096, 4096, 4096, 4096}, Blocks: []int{4096, 4096, 4096, 4096}}
	if n, err := huge.Count(1024, 1024); err != nil || n.Params < 1e12 || n.Activations < 1e14 {
		t.Errorf("huge: %+v, %v", n, err)
	}
	if _, err := (Config{Blocks: []int{0, 1, 1, 1}}).Count(32, 32); err == nil {
		t.Error("invalid config counted")
	}
}
