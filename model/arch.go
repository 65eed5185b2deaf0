package model

import "fmt"

type convLayer struct {
	name                      string
	cin, cout, k, stride, pad int
}

type bnLayer struct {
	name string
	c    int
}

type linearLayer struct {
	name    string
	in, out int
}

// block is one residual block: conv/BN pairs, ReLU between them, the last
// pair's output added to the shortcut before a final ReLU.
type block struct {
	convs    []convLayer
	bns      []bnLayer
	shortcut *convLayer // nil for the identity
	scBN     bnLayer
}

// arch is the resolved layer structure of a SupConResNet.
type arch struct {
	stem     convLayer
	stemBN   bnLayer
	maxPool  bool
	blocks   []block
	head     []linearLayer // ReLU between consecutive layers
	inChans  int
	encDim   int
	features int
}

func newArch(cfg Config) arch {
	a := arch{inChans: cfg.InChannels, features: cfg.FeatDim}
	w0 := cfg.Widths[0]
	if cfg.Stem == "imagenet" {
		a.stem = convLayer{name: "encoder.conv1", cin: cfg.InChannels, cout: w0, k: 7, stride: 2, pad: 3}
		a.maxPool = true
	} else {
		a.stem = convLayer{name: "encoder.conv1", cin: cfg.InChannels, cout: w0, k: 3, stride: 1, pad: 1}
	}
	a.stemBN = bnLayer{name: "encoder.bn1", c: w0}
	exp := cfg.expansion()
	in := w0
	for s := range 4 {
		planes := cfg.Widths[s]
		for i := range cfg.Blocks[s] {
			stride := 1
			if s > 0 && i == 0 {
				stride = 2
			}
			p := fmt.Sprintf("encoder.layer%d.%d", s+1, i)
			conv := func(n, cin, cout, k, stride int) convLayer {
				return convLayer{name: fmt.Sprintf("%s.conv%d", p, n), cin: cin, cout: cout, k: k, stride: stride, pad: k / 2}
			}
			var b block
			if exp == 1 {
				b.convs = []convLayer{conv(1, in, planes, 3, stride), conv(2, planes, planes, 3, 1)}
			} else {
				// Bottleneck with the stride on the 3x3, as in resnet_big.py.
				b.convs = []convLayer{conv(1, in, planes, 1, 1), conv(2, planes, planes, 3, stride), conv(3, planes, exp*planes, 1, 1)}
			}
			for n, c := range b.convs {
				b.bns = append(b.bns, bnLayer{name: fmt.Sprintf("%s.bn%d", p, n+1), c: c.cout})
			}
			if stride != 1 || in != exp*planes {
				b.shortcut = &convLayer{name: p + ".shortcut.0", cin: in, cout: exp * planes, k: 1, stride: stride}
				b.scBN = bnLayer{name: p + ".shortcut.1", c: exp * planes}
			}
			a.blocks = append(a.blocks, b)
			in = exp * planes
		}
	}
	a.encDim = in
	if cfg.Head == "linear" {
		a.head = []linearLayer{{name: "head", in: in, out: cfg.FeatDim}}
	} else {
		a.head = []linearLayer{{name: "head.0", in: in, out: in}, {name: "head.2", in: in, out: cfg.FeatDim}}
	}
	return a
}

// walk visits the parameterised layers (convLayer, bnLayer, linearLayer) in
// PyTorch module registration order.
func (a arch) walk(visit func(any)) {
	visit(a.stem)
	visit(a.stemBN)
	for _, b := range a.blocks {
		for i := range b.convs {
			visit(b.convs[i])
			visit(b.bns[i])
		}
		if b.shortcut != nil {
			visit(*b.shortcut)
			visit(b.scBN)
		}
	}
	for _, l := range a.head {
		visit(l)
	}
}

// Conv is a convolution without bias: weight Name+".weight" [Out, In, K, K],
// zero padding Pad on every side.
type Conv struct {
	Name                         string
	In, Out, Kernel, Stride, Pad int
}

// BatchNorm is a batch norm over Channels channels: parameters
// Name+".weight" and Name+".bias", running statistics Name+".running_mean"
// and Name+".running_var".
type BatchNorm struct {
	Name     string
	Channels int
}

// Linear is y = x Wᵀ + b with weight Name+".weight" [Out, In] and bias
// Name+".bias" [Out].
type Linear struct {
	Name    string
	In, Out int
}

// Block is a residual block: Convs[i] then BNs[i], with a ReLU after each
// pair but the last; the last pair's output is added to the shortcut
// (Shortcut and ShortcutBN, or the identity when Shortcut is nil) and
// followed by a ReLU.
type Block struct {
	Convs      []Conv
	BNs        []BatchNorm
	Shortcut   *Conv
	ShortcutBN BatchNorm
}

// Arch is the network Build unrolls, for lowerings to other backends (the
// XLA trainer) so that the model is defined once: Stem, StemBN and a ReLU;
// a 3x3 stride-2 max-pool with padding 1 when MaxPool; Blocks; global
// average pooling to the encoder features; Head with a ReLU between
// consecutive layers; L2 normalisation of each row.
type Arch struct {
	Stem    Conv
	StemBN  BatchNorm
	MaxPool bool
	Blocks  []Block
	Head    []Linear
}

// Arch returns a copy of the model's architecture.
func (m *Model) Arch() Arch {
	a := m.arch
	conv := func(c convLayer) Conv {
		return Conv{Name: c.name, In: c.cin, Out: c.cout, Kernel: c.k, Stride: c.stride, Pad: c.pad}
	}
	bn := func(b bnLayer) BatchNorm { return BatchNorm{Name: b.name, Channels: b.c} }
	out := Arch{Stem: conv(a.stem), StemBN: bn(a.stemBN), MaxPool: a.maxPool}
	for _, b := range a.blocks {
		var blk Block
		for i := range b.convs {
			blk.Convs = append(blk.Convs, conv(b.convs[i]))
			blk.BNs = append(blk.BNs, bn(b.bns[i]))
		}
		if b.shortcut != nil {
			sc := conv(*b.shortcut)
			blk.Shortcut, blk.ShortcutBN = &sc, bn(b.scBN)
		}
		out.Blocks = append(out.Blocks, blk)
	}
	for _, l := range a.head {
		out.Head = append(out.Head, Linear{Name: l.name, In: l.in, Out: l.out})
	}
	return out
}
