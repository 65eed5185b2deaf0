package model_test

import (
	"fmt"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/supflow/supflow/loss"
	"github.com/supflow/supflow/model"
	"github.com/supflow/supflow/optim"
)

func ExampleModel_Forward() {
	cfg := model.Config{Widths: []int{8, 16, 32, 64}, Blocks: []int{1, 1, 1, 1}, FeatDim: 16}
	m, err := model.New(cfg, tensor.Float32, 1)
	if err != nil {
		fmt.Println(err)
		return
	}
	m.SetTraining(false)
	out, err := m.Forward(tensor.New(tensor.Of(tensor.Float32), tensor.WithShape(2, 3, 32, 32)))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(out.Encoder.Shape(), out.Output.Shape(), m.ParamInfos()[0].Name)
	// Output: (2, 64) (2, 16) encoder.conv1.weight
}

// Example_training wires one SupCon training step: Build, the loss on
// Output, gradients of every parameter, and SGD on the model's tensors.
func Example_training() {
	cfg := model.Config{Widths: []int{4, 8, 8, 8}, Blocks: []int{1, 1, 1, 1}, FeatDim: 8}
	m, err := model.New(cfg, tensor.Float64, 1)
	if err != nil {
		fmt.Println(err)
		return
	}
	const bsz = 4 // two views each: 8 rows, view-major
	gr, err := m.Build(2*bsz, 8, 8)
	if err != nil {
		fmt.Println(err)
		return
	}
	mask, err := loss.LabelMask([]int{0, 1, 0, 1}, tensor.Float64)
	if err != nil {
		fmt.Println(err)
		return
	}
	cost, err := loss.SupConNode(gr.Output, G.NodeFromAny(gr.G, mask), 2, loss.SupConConfig{})
	if err != nil {
		fmt.Println(err)
		return
	}
	grads, err := G.Grad(cost, gr.Params...)
	if err != nil {
		fmt.Println(err)
		return
	}
	vm := G.NewTapeMachine(gr.G)
	defer vm.Close()
	opt, err := optim.New(optim.Config{Momentum: 0.9, WeightDecay: 1e-4})
	if err != nil {
		fmt.Println(err)
		return
	}
	batch := randBatch(tensor.Float64, 2*bsz, 3, 8, 8)
	var losses []float64
	for range 3 {
		if err := G.Let(gr.Input, batch); err != nil {
			fmt.Println(err)
			return
		}
		vm.Reset()
		if err := vm.RunAll(); err != nil {
			fmt.Println(err)
			return
		}
		losses = append(losses, cost.Value().Data().(float64))
		params := m.Params()
		step := make([]optim.Param, len(params))
		for i, p := range params {
			step[i] = optim.Param{Name: p.Name, Value: p.Value, Grad: grads[i].Value().(*tensor.Dense)}
		}
		if err := opt.Step(0.05, step); err != nil {
			fmt.Println(err)
			return
		}
	}
	fmt.Println("loss decreased:", losses[2] < losses[0])
	// Output: loss decreased: true
}
