package transform_test

import (
	"fmt"
	"log"

	"github.com/supflow/supflow/transform"
)

// A worker makes the two views of a sample, then (as the trainer would)
// turns one into a normalised float tensor.
func ExampleAugmenter_AppendViews() {
	a, err := transform.New(transform.Config{}) // SupContrast's CIFAR policy
	if err != nil {
		log.Fatal(err)
	}
	src := transform.Pixels{H: 32, W: 32, C: 3, Pix: make([]byte, 32*32*3)}
	views, err := a.AppendViews(nil, src, transform.Key{Seed: 1, Epoch: 0, SampleID: 42})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(views))

	var x transform.Image
	if err := x.Load(transform.Pixels{H: 32, W: 32, C: 3, Pix: views[:32*32*3]}); err != nil {
		log.Fatal(err)
	}
	mean := []float32{0.4914, 0.4822, 0.4465}
	std := []float32{0.2023, 0.1994, 0.2010}
	if err := transform.Normalize(&x, mean, std); err != nil {
		log.Fatal(err)
	}
	fmt.Println(x.C, x.H, x.W)
	// Output:
	// 6144
	// 3 32 32
}
