package main

import "github.com/supflow/supflow/model"

// forwardMACs counts the multiply-accumulates of one image's forward pass
// through a SupConResNet described by cfg (Arch, Stem, Widths, Blocks and
// InChannels set explicitly), mirroring model's layer structure: the
// convolutions and, unless encoderOnly, the MLP head. BatchNorm, ReLU,
// pooling and the loss are left out; they are a few percent of the total.
func forwardMACs(cfg model.Config, size int, encoderOnly bool) int64 {
	var macs int64
	hw := size
	conv := func(cin, cout, k, stride int) {
		hw = (hw+2*(k/2)-k)/stride + 1
		macs += int64(hw*hw) * int64(cout*cin*k*k)
	}
	w0 := cfg.Widths[0]
	if cfg.Stem == "imagenet" {
		conv(cfg.InChannels, w0, 7, 2)
		hw = (hw+2-3)/2 + 1 // 3x3 stride-2 max-pool
	} else {
		conv(cfg.InChannels, w0, 3, 1)
	}
	exp := 1
	if cfg.Arch == "resnet50" || cfg.Arch == "resnet101" {
		exp = 4
	}
	in := w0
	for s, planes := range cfg.Widths {
		for i := range cfg.Blocks[s] {
			stride := 1
			if s > 0 && i == 0 {
				stride = 2
			}
			inHW := hw
			if exp == 1 {
				conv(in, planes, 3, stride)
				conv(planes, planes, 3, 1)
			} else {
				conv(in, planes, 1, 1)
				conv(planes, planes, 3, stride)
				conv(planes, exp*planes, 1, 1)
			}
			if stride != 1 || in != exp*planes {
				out := hw
				hw = inHW
				conv(in, exp*planes, 1, stride)
				hw = out
			}
			in = exp * planes
		}
	}
	if !encoderOnly {
		macs += int64(in*in) + int64(in*cfg.FeatDim)
	}
	return macs
}
