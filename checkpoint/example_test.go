package checkpoint_test

import (
	"fmt"

	"github.com/supflow/supflow/checkpoint"
	"github.com/supflow/supflow/statedict"
)

func Example() {
	s := checkpoint.State{
		Tensors: map[string]statedict.Tensor{
			"head.0.weight":                   {Shape: []int{1, 2}, F32: []float32{0.5, -0.5}},
			"encoder.bn1.num_batches_tracked": {Shape: []int{}, I64: []int64{12}},
		},
		Momentum: map[string]statedict.Tensor{
			"head.0.weight": {Shape: []int{1, 2}, F32: []float32{0.01, 0.02}},
		},
		Meta: checkpoint.Meta{Step: 12, Epoch: 1, DType: checkpoint.Float32, RNG: "seed=7"},
	}
	b, err := checkpoint.Encode(s)
	if err != nil {
		fmt.Println(err)
		return
	}
	back, err := checkpoint.Decode(b)
	if err != nil {
		fmt.Println(err)
		return
	}
	err = checkpoint.Check(back, []statedict.Info{
		{Name: "head.0.weight", Shape: []int{2, 2}},
		{Name: "encoder.bn1.num_batches_tracked", Shape: []int{}},
	})
	fmt.Println("step", back.Meta.Step)
	fmt.Println(err)
	// Output:
	// step 12
	// checkpoint: tensor "head.0.weight" has shape [1 2] in the checkpoint, the model wants [2 2]
}
