package engine

import (
	"context"
	"math/rand/v2"
	"testing"

	"github.com/supflow/supflow/model"
)

// BenchmarkStepMNIST is one SupCon step of the demo's model (widths 8..64,
// gray 28x28) at batch 128 x 2 views.
func BenchmarkStepMNIST(b *testing.B) {
	cfg := tinyConfig(MethodSupCon, "float32")
	cfg.Model.Config = model.Config{Widths: []int{8, 16, 32, 64}, Blocks: []int{1, 1, 1, 1}, InChannels: 1}
	tr, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 1))
	batch := Batch{Size: 128, Views: 2, Height: 28, Width: 28, Channels: 1, Labels: make([]int, 128), Epoch: 1, PerEpoch: 1}
	batch.Pixels = make([]uint8, 256*28*28)
	for i := range batch.Pixels {
		batch.Pixels[i] = uint8(r.IntN(256))
	}
	for i := range batch.Labels {
		batch.Labels[i] = i % 10
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tr.Step(context.Background(), batch); err != nil {
			b.Fatal(err)
		}
	}
}
