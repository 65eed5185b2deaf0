package engine

import "fmt"

// Memory is an estimate, in bytes, of what the engine holds for a
// configuration, made from the configuration alone (model.Config.Count):
// nothing is allocated, so that a caller can refuse a model that cannot
// fit before it starts anything. The factors were fitted to the peak RSS
// of bench/train's cases (docs/benchmarks.md: the demo, ResNet-18,
// half-width ResNet-50 and ResNet-50 at 96 px), which the estimate
// matches within -1% and +8%, +20% for the demo's, dominated by the
// runtime (TestTrainMemoryMatchesMeasured).
type Memory struct {
	// Runtime is the process's fixed part: Go's runtime, OpenBLAS, code.
	Runtime float64
	// Params is the parameters with what a step keeps per parameter
	// (gradients, momentum, the copy a checkpoint is written from).
	Params float64
	// Activations is the forward pass's outputs and their gradients for
	// one batch.
	Activations float64
}

// Total is the estimated peak, in bytes.
func (m Memory) Total() float64 { return m.Runtime + m.Params + m.Activations }

const (
	runtimeBytes = 64 << 20
	// per parameter: the value, its gradient, momentum, a state copy.
	trainParamCopies = 4
	// per convolution output element of a batch: the output, its batch
	// norm, the gradients flowing back, the unfolded input (fitted).
	trainActivationCopies = 3
	// Encode holds the parameters once and, per chunk, about half of the
	// convolutions' outputs (buffers are reused along the forward pass).
	encodeParamCopies      = 1
	encodeActivationCopies = 0.5
)

// TrainMemory estimates the trainer's peak memory for steps on batches of
// rows images of h x w (rows = batch size x views): what New and Step
// allocate. An invalid m is an error wrapping ErrConfig.
func TrainMemory(m ModelConfig, rows, h, w int) (Memory, error) {
	return estimate(m, float64(rows), h, w, trainParamCopies, trainActivationCopies)
}

// EncodeMemory estimates Encode's peak memory (the evaluation's and the kNN
// monitor's) for images of h x w, which it encodes in chunks.
func EncodeMemory(m ModelConfig, h, w int) (Memory, error) {
	return estimate(m, EncodeChunk, h, w, encodeParamCopies, encodeActivationCopies)
}

func estimate(m ModelConfig, rows float64, h, w int, paramCopies, activationCopies float64) (Memory, error) {
	m.setDefaults()
	if err := m.Validate(); err != nil {
		return Memory{}, err
	}
	if rows < 1 || h < 1 || w < 1 {
		return Memory{}, fmt.Errorf("%w: batch of %g images of %dx%d", ErrConfig, rows, h, w)
	}
	n, err := m.Config.Count(h, w)
	if err != nil {
		return Memory{}, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	size := 4.0
	if m.DType == Float64 {
		size = 8
	}
	return Memory{
		Runtime:     runtimeBytes,
		Params:      paramCopies * size * float64(n.Params+n.Buffers),
		Activations: activationCopies * size * rows * n.Activations,
	}, nil
}
