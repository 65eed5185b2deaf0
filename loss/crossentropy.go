package loss

import (
	"fmt"
	"math"
)

// CrossEntropyResult is the output of [CrossEntropy].
type CrossEntropyResult[T Float] struct {
	// Loss is the mean negative log-likelihood over the batch.
	Loss float64
	// Grad is d Loss / d logits, laid out like the logits.
	Grad []T
}

// CrossEntropy computes softmax cross-entropy averaged over the batch, as
// PyTorch's nn.CrossEntropyLoss with integer targets: logits holds one row
// of classes values per sample, targets one class index per sample.
func CrossEntropy[T Float](logits []T, classes int, targets []int) (CrossEntropyResult[T], error) {
	if err := checkCrossEntropyInput(logits, classes, targets); err != nil {
		return CrossEntropyResult[T]{}, err
	}
	n := len(targets)
	res := CrossEntropyResult[T]{Grad: make([]T, len(logits))}
	var total float64
	for i, y := range targets {
		row := logits[i*classes : (i+1)*classes]
		m := math.Inf(-1)
		for _, v := range row {
			m = math.Max(m, float64(v))
		}
		var sum float64
		for _, v := range row {
			sum += math.Exp(float64(v) - m)
		}
		lse := m + math.Log(sum)
		total += lse - float64(row[y])
		g := res.Grad[i*classes : (i+1)*classes]
		for c, v := range row {
			p := math.Exp(float64(v) - lse)
			if c == y {
				p--
			}
			g[c] = T(p / float64(n))
		}
	}
	res.Loss = total / float64(n)
	return res, nil
}

func checkCrossEntropyInput[T Float](logits []T, classes int, targets []int) error {
	if classes < 1 {
		return fmt.Errorf("%w: %d classes", ErrInput, classes)
	}
	if len(targets) == 0 {
		return fmt.Errorf("%w: empty batch", ErrInput)
	}
	if len(logits) != len(targets)*classes {
		return fmt.Errorf("%w: %d logits for %d targets of %d classes", ErrInput, len(logits), len(targets), classes)
	}
	for i, y := range targets {
		if y < 0 || y >= classes {
			return fmt.Errorf("%w: target %d is class %d, want 0..%d", ErrInput, i, y, classes-1)
		}
	}
	if i := firstNonFinite(logits); i >= 0 {
		return fmt.Errorf("%w: logit [%d][%d] is %v", ErrInput, i/classes, i%classes, logits[i])
	}
	return nil
}
