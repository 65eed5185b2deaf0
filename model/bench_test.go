package model_test

import (
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/supflow/supflow/loss"
	"github.com/supflow/supflow/model"
)

// BenchmarkTrainStep times forward and backward of a SupCon step (no
// optimizer) on a quarter-width CIFAR ResNet-18, batch 32 of 32x32, float32.
// B/op shows what each step allocates beyond the persistent buffers.
func BenchmarkTrainStep(b *testing.B) {
	m, err := model.New(model.Config{WidthMult: 0.25}, tensor.Float32, 1)
	if err != nil {
		b.Fatal(err)
	}
	const bsz = 16
	gr, err := m.Build(2*bsz, 32, 32)
	if err != nil {
		b.Fatal(err)
	}
	labels := make([]int, bsz)
	for i := range labels {
		labels[i] = i % 4
	}
	mask, err := loss.LabelMask(labels, tensor.Float32)
	if err != nil {
		b.Fatal(err)
	}
	cost, err := loss.SupConNode(gr.Output, G.NodeFromAny(gr.G, mask), 2, loss.SupConConfig{})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := G.Grad(cost, gr.Params...); err != nil {
		b.Fatal(err)
	}
	vm := G.NewTapeMachine(gr.G)
	defer vm.Close()
	if err := G.Let(gr.Input, randBatch(tensor.Float32, 2*bsz, 3, 32, 32)); err != nil {
		b.Fatal(err)
	}
	step := func() {
		vm.Reset()
		if err := vm.RunAll(); err != nil {
			b.Fatal(err)
		}
	}
	step()
	b.ReportAllocs()
	for b.Loop() {
		step()
	}
}
