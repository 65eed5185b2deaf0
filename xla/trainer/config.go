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
	// Devices is the number of the plugin's devices to train on; 0 = all.
	// Only one is supported yet (the first): data parallel execution
	// needs the R-replica step program (xla.StepConfig.Replicas, which
	// exists) run by PJRT's multi-device execute, which xla/device does
	// not do yet, so > 1 is refused, and 0 trains on the first device
	// (cmd/supflow warns when there are more).
	Devices int `yaml:"devices"`
}

// maxDevices is what Devices may be until multi-device execution lands.
const maxDevices = 1

// Validate reports every field of c out of range, each a *field.Error
// named by its key and wrapping ErrConfig.
func (c Config) Validate() error {
	k := field.NewChecker(ErrConfig)
	if c.Backend != "" {
		k.OneOf("backend", c.Backend, BackendCPU, BackendXLA)
	}
	if c.Devices < 0 || c.Devices > maxDevices {
		k.Add("devices", c.Devices, "0 (all) or 1: training on more than one device is not implemented yet (it needs the R-replica program run by PJRT's multi-device execute)")
	}
	return k.Err()
}

// DefaultConfig is the CPU backend on all devices.
func DefaultConfig() Config { return Config{Backend: BackendCPU} }
