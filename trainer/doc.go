// Package trainer is the training API the train and evaluate stages call:
// build a SupConResNet from a config, take optimizer steps on batches of
// uint8 views (normalizing them with the dataset's mean and std), encode
// images in eval mode, and save or resume the exact training state.
//
// The API is backend-neutral: the CPU implementation here runs on gorgonia
// with supflow's own ops (package nn); a GPU backend can implement the same
// methods.
package trainer

import (
	"errors"
	"fmt"
)

// Errors returned (wrapped) by the trainer.
var (
	ErrConfig = errors.New("trainer: invalid config")
	ErrBatch  = errors.New("trainer: invalid batch")
	ErrLoss   = errors.New("trainer: loss is not finite")
	// ErrSingleClass (wrapping ErrBatch) rejects a contrastive batch without
	// negatives: a step on it teaches nothing.
	ErrSingleClass = fmt.Errorf("%w: no negatives", ErrBatch)
)
