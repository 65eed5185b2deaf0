// Package trainer is the training API the train and evaluate stages call:
// build a SupConResNet from a config, take optimizer steps on batches of
// uint8 views (normalizing them with the dataset's mean and std), encode
// images in eval mode, and save or resume the exact training state.
//
// Save and Load are the one checkpoint path: the model's state_dict
// (model.State) and the optimizer's momentum buffers go to package
// checkpoint in the model's own dtype and back, parameters and momentum
// copied as they are, so a float32 model writes F32 tensors and a float64
// one F64, num_batches_tracked being I64 in both, as in PyTorch. (Running
// statistics live in float64 in package nn, rounded to the model's dtype, so
// they convert exactly.)
//
// The API is backend-neutral: the CPU implementation here runs on gorgonia
// with supflow's own ops (package nn); a GPU backend can implement the same
// methods.
package trainer

import "errors"

// Errors returned (wrapped) by the trainer.
var (
	ErrConfig = errors.New("trainer: invalid config")
	ErrBatch  = errors.New("trainer: invalid batch")
	ErrLoss   = errors.New("trainer: loss is not finite")
)
