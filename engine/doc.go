// Package engine runs a SupConResNet for the stages: the train stage's
// optimizer steps and the evaluate stage's and kNN monitor's eval-mode
// encoding. It builds the model from a config, takes optimizer steps on
// batches of uint8 views (normalizing them with the dataset's mean and
// std), encodes images in eval mode, and saves or resumes the exact training
// state. (The train stage, stages/train, decides when to step and save; this
// package only computes.)
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
// with supflow's own ops (package nn); the XLA backend (xla/trainer) runs
// the same model, loss and optimizer compiled for a PJRT device. Both embed
// Core, the host state and the code they share (config, checkpoint, batch
// checks, learning-rate schedule), so that their checkpoints are one
// format and a run resumes on either. It does no transport or storage I/O (checkpoints are bytes) and
// must not import messages, bus, store or any stage.
package engine

import "errors"

// Errors returned (wrapped) by the trainer.
var (
	ErrConfig = errors.New("engine: invalid config")
	ErrBatch  = errors.New("engine: invalid batch")
	ErrLoss   = errors.New("engine: loss is not finite")
)
