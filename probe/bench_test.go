package probe

import (
	"context"
	"testing"
)

// BenchmarkTrain trains on the shape of ResNet-18 features of CIFAR-10/MNIST.
func BenchmarkTrain(b *testing.B) {
	train := clusters(1, 60000, 512, 10, 1)
	for b.Loop() {
		if _, err := Train(context.Background(), Config{Epochs: 20}, train); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkKNN scores 2000 test rows against 60000 training rows; a full
// 10000-row test set costs five times as much, nearly all of it in GEMM.
func BenchmarkKNN(b *testing.B) {
	train, test := split(clusters(2, 62000, 512, 10, 1), 60000)
	for b.Loop() {
		if _, err := KNN(context.Background(), KNNConfig{}, train, test); err != nil {
			b.Fatal(err)
		}
	}
}
