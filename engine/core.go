package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"gorgonia.org/tensor"

	"github.com/supflow/supflow/model"
	"github.com/supflow/supflow/optim"
)

// Core is what every backend shares: the validated config, the model on
// the host (its parameters and batch-norm statistics are what a checkpoint
// holds), the optimizer's momentum buffers, the step count, and with them
// the checkpoint (Save, Load), the batch checks and the learning-rate
// schedule. CPU embeds it and computes on its tensors in place; the XLA
// backend (xla/trainer) embeds it and copies its device state into it
// before a Save. It is not safe for concurrent use.
type Core struct {
	cfg       Config
	dt        tensor.Dtype
	model     *model.Model
	opt       *optim.SGD
	optimMeta []byte // a checkpoint's supflow.optimizer (optimizerMetaV1)
	steps     int64
}

// NewCore validates cfg (unset settings filled from the defaults) and
// builds the model with freshly initialized parameters.
func NewCore(cfg Config) (*Core, error) {
	meta, err := json.Marshal(optimizerMetaV1Of(cfg.Train))
	if err != nil {
		return nil, err
	}
	cfg.Model.setDefaults()
	cfg.Train.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	dt := cfg.Model.dtype()
	if cfg.Train.Method == MethodCE {
		// SupContrast's SupCEResNet: the encoder and one linear layer.
		cfg.Model.Head, cfg.Model.FeatDim = "linear", cfg.Classes
	}
	m, err := model.New(cfg.Model.Config, dt, cfg.Seed)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	opt, err := optim.New(cfg.Train.Optim)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return &Core{cfg: cfg, dt: dt, model: m, opt: opt, optimMeta: meta}, nil
}

// Config returns the configuration with its defaults filled in.
func (t *Core) Config() Config { return t.cfg }

// Model returns the network on the host.
func (t *Core) Model() *model.Model { return t.model }

// Optimizer returns the optimizer, whose momentum buffers a checkpoint
// holds.
func (t *Core) Optimizer() *optim.SGD { return t.opt }

// Params counts the model's trainable parameters.
func (t *Core) Params() int64 {
	var n int64
	for _, p := range t.model.ParamInfos() {
		k := int64(1)
		for _, v := range p.Shape {
			k *= int64(v)
		}
		n += k
	}
	return n
}

// Steps returns the number of optimizer steps taken (restored by Load).
func (t *Core) Steps() int64 { return t.steps }

// LabelClasses is the number of classes a sample's label must lie in,
// [0, LabelClasses()), for the method to train on it: Config.Classes for
// supcon (positives share a label) and ce (the classifier's outputs), 0
// for simclr, which ignores labels. The train stage dead-letters a view
// group labelled outside it instead of stepping it: a ce step refuses the
// whole batch (ErrBatch), and a supcon step would take the label as one
// more class.
func (t *Core) LabelClasses() int {
	if t.cfg.Train.Method == MethodSimCLR {
		return 0
	}
	return t.cfg.Classes
}

// Prepare is the start of every backend's Step: it checks ctx and b and
// returns b's learning rate from the schedule.
func (t *Core) Prepare(ctx context.Context, b Batch) (float64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if err := t.checkBatch(b); err != nil {
		return 0, err
	}
	if t.cfg.Train.Method != MethodCE && b.Size*b.Views < 2 {
		return 0, fmt.Errorf("%w: a contrastive step needs at least 2 views in the batch", ErrBatch)
	}
	perEpoch := b.PerEpoch
	if perEpoch < 1 {
		perEpoch = 1
	}
	lr, err := t.cfg.Train.Schedule.LR(b.Epoch, min(b.Index, perEpoch-1), perEpoch)
	if err != nil {
		return 0, fmt.Errorf("%w: schedule: %w", ErrBatch, err)
	}
	return lr, nil
}

func (t *Core) checkBatch(b Batch) error {
	if err := b.Validate(); err != nil {
		return err
	}
	if in := t.model.Config().InChannels; b.Channels != in {
		return fmt.Errorf("%w: %d-channel views, the model takes %d", ErrBatch, b.Channels, in)
	}
	if t.cfg.Train.Method == MethodCE {
		for i, l := range b.Labels {
			if l < 0 || l >= t.cfg.Classes {
				return fmt.Errorf("%w: label %d of sample %d outside 0..%d", ErrBatch, l, i, t.cfg.Classes-1)
			}
		}
	}
	return nil
}

// CheckLoss is ErrLoss for a loss that is not finite.
func (t *Core) CheckLoss(l float64) error {
	if !finite(l) {
		return fmt.Errorf("%w: %v at step %d (lower the learning rate?)", ErrLoss, l, t.steps+1)
	}
	return nil
}

// Record counts a completed step on b and describes it.
func (t *Core) Record(b Batch, l, lr float64, start time.Time) Stats {
	t.steps++
	return Stats{Step: t.steps, Epoch: b.Epoch, Batch: b.Index, Batches: b.PerEpoch, Loss: l, LR: lr, Samples: b.Size, Duration: time.Since(start)}
}

// CheckImages reports images the model cannot encode.
func (t *Core) CheckImages(im Images) error {
	if im.N < 1 || im.Height < 1 || im.Width < 1 || im.Channels != t.model.Config().InChannels {
		return fmt.Errorf("%w: %d images of %dx%dx%d for a %d-channel model", ErrBatch, im.N, im.Height, im.Width, im.Channels, t.model.Config().InChannels)
	}
	if size := im.Height * im.Width * im.Channels; len(im.Pixels) != im.N*size {
		return fmt.Errorf("%w: %d pixel bytes for %d images of %d", ErrBatch, len(im.Pixels), im.N, size)
	}
	return nil
}
