package nn_test

import (
	"fmt"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/supflow/supflow/nn"
)

// Example builds relu(bn(conv(x))), differentiates a scalar of it with
// gorgonia and runs the graph twice on one tape machine; the ops return the
// same output tensors on every run.
func Example() {
	g := G.NewGraph()
	x := G.NewTensor(g, tensor.Float32, 4, G.WithShape(2, 3, 8, 8), G.WithName("x"), G.WithInit(G.GlorotN(1)))
	w := G.NewTensor(g, tensor.Float32, 4, G.WithShape(4, 3, 3, 3), G.WithName("w"), G.WithInit(G.GlorotN(1)))
	gamma := G.NewTensor(g, tensor.Float32, 1, G.WithShape(4), G.WithName("gamma"), G.WithInit(G.Ones()))
	beta := G.NewTensor(g, tensor.Float32, 1, G.WithShape(4), G.WithName("beta"), G.WithInit(G.Zeroes()))
	bn := nn.NewBNState(4)

	y, err := nn.Conv2D(x, w, 2, 1)
	if err != nil {
		fmt.Println(err)
		return
	}
	if y, err = nn.BatchNorm(y, gamma, beta, bn); err != nil {
		fmt.Println(err)
		return
	}
	if y, err = nn.ReLU(y); err != nil {
		fmt.Println(err)
		return
	}
	cost := G.Must(G.Sum(y))
	grads, err := G.Grad(cost, w, gamma, beta)
	if err != nil {
		fmt.Println(err)
		return
	}
	vm := G.NewTapeMachine(g)
	defer vm.Close()
	for range 2 {
		vm.Reset()
		if err := nn.RunError(vm.RunAll()); err != nil {
			fmt.Println(err)
			return
		}
	}
	fmt.Println(y.Shape(), grads[0].Shape(), bn.NumBatchesTracked)
	// Output: (2, 4, 4, 4) (4, 3, 3, 3) 2
}
