package main

import (
	"github.com/supflow/supflow/config"
	"github.com/supflow/supflow/internal/sysmem"
	"github.com/supflow/supflow/xla/trainer"
)

// machineMemory is the memory this process may use, in bytes (0 =
// unknown): the machine's, or its cgroup's limit when lower (a
// container's). A variable for tests.
var machineMemory = sysmem.Total

// memoryWarn is the fraction of machineMemory above which an estimate is
// worth a warning: the estimate is within 10% for the measured networks,
// and decode, augment and the embedded servers share the process in
// `supflow run`.
const memoryWarn = 0.8

// checkMemory refuses (exit 2) a model and batch whose estimated memory
// exceeds the machine's, for training (run, train) or evaluation
// (evaluate), and warns when the estimate comes close. Go's runtime ends a
// process that runs out of memory with "fatal error: runtime: out of
// memory" and exit code 2, which cannot be changed: this check is what
// keeps a configuration that cannot run from starting anything.
func checkMemory(e *env, train bool) error {
	limit := machineMemory()
	// With backend xla training happens in device memory: the host
	// holds a model and encodes, as for an evaluation.
	train = train && e.cfg.Train.Backend.Backend != trainer.BackendXLA
	est, err := e.cfg.CheckMemory(train, limit)
	if err != nil {
		return usageError{err}
	}
	if limit > 0 && est.Total() > memoryWarn*float64(limit) {
		e.log.Warn("the model may not fit in memory", "estimate", config.Bytes(est.Total()),
			"machine", config.Bytes(float64(limit)), "keys", "model.*, train.batch_size, augment.n_views, augment.size")
	}
	return nil
}

func checkTrainMemory(e *env) error { return checkMemory(e, true) }
