package main

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/supflow/supflow/config"
	"github.com/supflow/supflow/dataset"
	"github.com/supflow/supflow/engine"
	"github.com/supflow/supflow/stages/evaluate"
	"github.com/supflow/supflow/stages/train"
	"github.com/supflow/supflow/xla"
	"github.com/supflow/supflow/xla/trainer"
)

// openRunner loads the plugin for backend xla: openDevice, a variable for
// tests (which run the programs on the evaluator instead).
var openRunner = openDevice

// engineAPI is what the stages take of a trainer, on either backend
// (engine.CPU, xla/trainer.Engine).
type engineAPI interface {
	train.Engine
	evaluate.Engine
	evaluate.Projector
	LabelClasses() int
}

var (
	_ engineAPI = (*engine.CPU)(nil)
	_ engineAPI = (*trainer.Engine)(nil)
)

// newEngine builds the trainer pipeline.yaml describes for data set d on
// train.backend, registering its release with s. A backend that cannot
// start (no cgo, a missing or failing plugin) is a usage error naming the
// plugin and the cause: there is no fallback to the CPU. The plugin is
// loaded once per process (s.runner), whose engines (`supflow run`'s
// trainer and evaluation) share it: a second client would claim the
// device's memory again.
func newEngine(cfg *config.Config, getenv func(string) string, s *services, d dataset.Dataset) (engineAPI, error) {
	m := cfg.Model
	m.InChannels = d.Info.Channels
	ec := engine.Config{
		Model: m, Train: cfg.Train.EngineConfig(), Classes: len(d.Classes),
		Mean: d.Info.Mean, Std: d.Info.Std, Seed: cfg.Run.Seed,
	}
	if cfg.Train.Backend.Backend != trainer.BackendXLA {
		tr, err := engine.New(ec)
		if err != nil {
			return nil, usageError{err}
		}
		return tr, nil
	}
	// Check the config before loading a plugin.
	if _, err := engine.NewCore(ec); err != nil {
		return nil, usageError{err}
	}
	if s.runner == nil {
		plugin, err := pluginPath(cfg, getenv)
		if err != nil {
			return nil, err
		}
		r, err := openRunner(plugin)
		if err != nil {
			return nil, usageError{fmt.Errorf("train.backend xla: %w", err)}
		}
		s.runner = r
		s.closers = append(s.closers, r.Close)
		logDevices(s.log, r)
	}
	tr, err := trainer.New(ec, s.runner, cfg.Train.Backend.Options()...)
	if err != nil {
		return nil, usageError{err}
	}
	s.closers = append(s.closers, tr.Close)
	return tr, nil
}

// pluginPath is train.pjrt_plugin, else SUPFLOW_PJRT_PLUGIN, for backend
// xla: a usage error when neither is set, the path is not a file or this
// binary cannot load plugins (no cgo).
func pluginPath(cfg *config.Config, getenv func(string) string) (string, error) {
	path := cmp.Or(cfg.Train.Backend.Plugin, getenv("SUPFLOW_PJRT_PLUGIN"))
	if path == "" {
		return "", usageError{errors.New("train.backend xla: no PJRT plugin: set train.pjrt_plugin or SUPFLOW_PJRT_PLUGIN")}
	}
	if fi, err := os.Stat(path); err != nil {
		return "", usageError{fmt.Errorf("train.backend xla: PJRT plugin: %w", err)}
	} else if !fi.Mode().IsRegular() {
		return "", usageError{fmt.Errorf("train.backend xla: PJRT plugin %q is not a file", path)}
	}
	if !withCgo {
		return "", usageError{fmt.Errorf("train.backend xla: PJRT plugin %q: %w", path, errNoCgo)}
	}
	return path, nil
}

// checkBackend refuses (exit 2), before anything starts, a backend xla
// whose plugin cannot be found or loaded by this binary (pluginPath).
// Loading it (newEngine) can still fail: that error names the plugin and
// the cause too.
func checkBackend(e *env) error {
	if e.cfg.Train.Backend.Backend != trainer.BackendXLA {
		return nil
	}
	_, err := pluginPath(e.cfg, e.getenv)
	return err
}

// logDevices says which plugin and devices backend xla runs on.
func logDevices(log *slog.Logger, r xla.Runner) {
	if d, ok := r.(interface{ Describe() string }); ok {
		log.Info("train.backend xla", "device", d.Describe())
	}
}
