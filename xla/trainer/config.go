package trainer

import (
	"errors"

	"github.com/supflow/supflow/config/field"
)

// Backends a Config may name.
const (
	BackendCPU = "cpu" // engine.CPU: gorgonia on the host
	BackendXLA = "xla" // Engine on a PJRT plugin (xla/device)
)

// ErrConfig reports a Config that Validate refuses.
var ErrConfig = errors.New("xla/trainer: invalid config")

// Config selects the trainer backend: pipeline.yaml's train.backend,
// train.pjrt_plugin and train.devices, which sit in the train section
// inline beside the engine's and the train stage's keys. The zero value is
// the CPU backend.
type Config struct {
	// Backend is BackendCPU (default) or BackendXLA. The stages (train,
	// the kNN monitor, evaluate, embed) run on either.
	Backend string `yaml:"backend"`
	// Plugin is the PJRT plugin's path (for NVIDIA GPUs jax-cuda's
	// xla_cuda_plugin.so) for backend xla; empty = the
	// SUPFLOW_PJRT_PLUGIN environment variable. A missing or failing
	// plugin is an error at start, never a fallback to the CPU.
	Plugin string `yaml:"pjrt_plugin"`
	// Devices is the number of the plugin's devices to train on, data
	// parallel (the engine's WithDevices); 0 = all. More than one needs a
	// train.batch_size they divide and method supcon or simclr; the
	// engine refuses the others at start.
	Devices int `yaml:"devices"`
	// SyncBN all-reduces the batch-norm statistics over the devices
	// (PyTorch's SyncBatchNorm; WithSyncBN): a step equals the one-device
	// step on the whole batch. Without it each device normalises its
	// share of the batch (DDP's default).
	SyncBN bool `yaml:"sync_bn"`
}

// Options are the engine options c sets.
func (c Config) Options() []Option {
	return []Option{WithDevices(c.Devices), WithSyncBN(c.SyncBN)}
}

// Validate reports every field of c out of range, each a *field.Error
// named by its key and wrapping ErrConfig.
func (c Config) Validate() error {
	k := field.NewChecker(ErrConfig)
	if c.Backend != "" {
		k.OneOf("backend", c.Backend, BackendCPU, BackendXLA)
	}
	if c.Devices < 0 {
		k.Add("devices", c.Devices, "0 (all) or more")
	}
	return k.Err()
}

// DefaultConfig is the CPU backend on all devices.
func DefaultConfig() Config { return Config{Backend: BackendCPU} }
