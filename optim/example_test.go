package optim_test

import (
	"fmt"

	"github.com/supflow/supflow/optim"
	"gorgonia.org/tensor"
)

func Example() {
	sched := optim.Schedule{BaseLR: 0.5, Epochs: 100, Decay: optim.DecayCosine, BatchSize: 1024}
	opt, err := optim.New(optim.Config{Momentum: 0.9, WeightDecay: 1e-4})
	if err != nil {
		fmt.Println(err)
		return
	}
	w := tensor.New(tensor.WithShape(2), tensor.WithBacking([]float64{1, -1}))
	g := tensor.New(tensor.WithShape(2), tensor.WithBacking([]float64{0.5, 0.5}))
	lr, err := sched.LR(1, 0, 100) // epoch 1, first batch: warm-up start
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := opt.Step(lr, []optim.Param{{Name: "head.0.bias", Value: w, Grad: g}}); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("lr %.2f, w %.6f\n", lr, w.Float64s())
	// Output: lr 0.01, w [0.994999 -1.004999]
}
