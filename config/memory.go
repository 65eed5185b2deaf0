package config

import (
	"fmt"

	"github.com/supflow/supflow/engine"
)

// TrainMemory estimates the trainer's peak memory for c (engine.TrainMemory):
// the model section on batches of train.batch_size x augment.n_views views
// of augment.size x augment.size. The data set's channel count is not known
// here; the model section's default (3) stands for it, and the stem it
// changes is a small part of any network.
func (c *Config) TrainMemory() (engine.Memory, error) {
	return engine.TrainMemory(c.Model, c.Train.Stage.BatchSize*c.Augment.NViews, c.Augment.Size, c.Augment.Size)
}

// EncodeMemory estimates the evaluation's peak memory for c
// (engine.EncodeMemory at augment.size, the size images are scored at).
func (c *Config) EncodeMemory() (engine.Memory, error) {
	return engine.EncodeMemory(c.Model, c.Augment.Size, c.Augment.Size)
}

// CheckMemory estimates the memory c needs for training (train true: the
// run and train commands) or evaluating (evaluate), and refuses it with
// ErrInvalid, naming the keys that size it and both figures, when the
// estimate exceeds limit, the bytes the caller's machine has (0 = unknown:
// nothing is refused). The estimate is returned for the caller to warn
// when it comes close.
func (c *Config) CheckMemory(train bool, limit uint64) (engine.Memory, error) {
	what, est, err := "the trainer", engine.Memory{}, error(nil)
	if train {
		est, err = c.TrainMemory()
	} else {
		what = "the evaluation"
		est, err = c.EncodeMemory()
	}
	if err != nil {
		return est, fmt.Errorf("%w: model: %w", ErrInvalid, err)
	}
	if limit == 0 || est.Total() <= float64(limit) {
		return est, nil
	}
	keys := "model.widths, model.blocks or model.arch"
	if train {
		keys += ", train.batch_size, augment.n_views or augment.size"
	} else {
		keys += " or augment.size"
	}
	return est, fmt.Errorf("%w: model: %s needs about %s (parameters %s, activations %s), more than the %s of memory this machine has: make %s smaller",
		ErrInvalid, what, Bytes(est.Total()), Bytes(est.Params), Bytes(est.Activations), Bytes(float64(limit)), keys)
}

// Bytes formats an amount of memory: 512 MiB, 15.5 GiB, 17.0 TiB.
func Bytes(n float64) string {
	units := []string{"bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
	i := 0
	for n >= 1024 && i < len(units)-1 {
		n /= 1024
		i++
	}
	if i == 0 {
		return fmt.Sprintf("%.0f bytes", n)
	}
	return fmt.Sprintf("%.1f %s", n, units[i])
}
