package probe_test

import (
	"context"
	"fmt"
	"math/rand/v2"

	"github.com/supflow/supflow/probe"
)

// Two well separated blobs in two dimensions.
func blobs(n int, seed uint64) probe.Set {
	rng := rand.New(rand.NewPCG(seed, 0))
	s := probe.Set{X: make([]float32, 2*n), Labels: make([]int, n), Dim: 2, Classes: 2}
	for i := range n {
		c := i % 2
		s.Labels[i] = c
		s.X[2*i] = float32(4*c-2) + float32(rng.NormFloat64())*0.3
		s.X[2*i+1] = float32(rng.NormFloat64())
	}
	return s
}

func ExampleTrain() {
	ctx := context.Background()
	clf, err := probe.Train(ctx, probe.Config{Epochs: 5, Standardize: true}, blobs(400, 1))
	if err != nil {
		fmt.Println(err)
		return
	}
	score, err := clf.Evaluate(ctx, blobs(200, 2))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("top-1 %.2f, confusion %v\n", score.Top1, score.Confusion)
	// Output: top-1 1.00, confusion [[100 0] [0 100]]
}

func ExampleKNN() {
	score, err := probe.KNN(context.Background(), probe.KNNConfig{K: 20}, blobs(400, 1), blobs(200, 2))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("top-1 %.2f over %d rows\n", score.Top1, score.N)
	// Output: top-1 1.00 over 200 rows
}
