package loss_test

import (
	"fmt"

	"github.com/supflow/supflow/loss"
)

func ExampleSupCon() {
	// Two samples (labels 0 and 1), two views each, 2-D unit features;
	// rows are view-major: view 0 of both samples, then view 1.
	features := []float64{
		1, 0, // view 0, sample 0
		0, 1, // view 0, sample 1
		0.8, 0.6, // view 1, sample 0
		0.6, 0.8, // view 1, sample 1
	}
	r, err := loss.SupCon(features, 2, 2, []int{0, 1}, nil, loss.SupConConfig{Temperature: 0.5, BaseTemperature: 0.5})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("loss %.4f over %d anchors, %v positives each\n", r.Loss, len(r.AnchorLoss), r.Positives[0])
	// Output: loss 0.8707 over 4 anchors, 1 positives each
}

func ExampleCrossEntropy() {
	r, err := loss.CrossEntropy([]float32{2, 0, 0, 0, 3, 0}, 3, []int{0, 1})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("loss %.4f\n", r.Loss)
	// Output: loss 0.1672
}
