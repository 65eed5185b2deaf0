package main

import (
	"testing"

	"github.com/supflow/supflow/model"
)

// The expected counts are the published ones (thop/fvcore conventions:
// convolutions and linear layers only).
func TestForwardMACs(t *testing.T) {
	for _, tc := range []struct {
		name        string
		cfg         model.Config
		size        int
		encoderOnly bool
		want, tol   float64
	}{
		{"resnet18 cifar", model.Config{Arch: "resnet18", Stem: "cifar", Widths: []int{64, 128, 256, 512}, Blocks: []int{2, 2, 2, 2}, InChannels: 3}, 32, true, 0.556e9, 0.005e9},
		{"resnet50 imagenet", model.Config{Arch: "resnet50", Stem: "imagenet", Widths: []int{64, 128, 256, 512}, Blocks: []int{3, 4, 6, 3}, InChannels: 3}, 224, true, 4.09e9, 0.02e9},
	} {
		if got := float64(forwardMACs(tc.cfg, tc.size, tc.encoderOnly)); got < tc.want-tc.tol || got > tc.want+tc.tol {
			t.Errorf("%s: %.4g MACs, want %.4g", tc.name, got, tc.want)
		}
	}
}
