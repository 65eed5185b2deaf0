package main

import (
	"context"
	"flag"
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/supflow/supflow/config"
)

func commands() map[string]command {
	return map[string]command{
		"version": {summary: "print the version", run: runVersion},
		"config":  {summary: "print the effective configuration (`config keys` lists every key)", run: runConfig},
		"run": {summary: "everything in one process: ingest, feed, decode, augment, train, evaluate (embedded NATS and S3 by default)",
			flags: func(fs *flag.FlagSet, o *options) {
				fs.BoolVar(&o.resume, "resume", false, "continue from the run's last checkpoint")
			}, run: runAll},
		"ingest": {summary: "upload dataset.source into the bucket with a manifest (idempotent)", run: runIngest},
		"feed": {summary: "publish the epochs' decode tasks, one epoch after the trainer finished the previous",
			flags: func(fs *flag.FlagSet, o *options) {
				fs.IntVar(&o.startEpoch, "start-epoch", 1, "first epoch to feed (when the trainer resumes)")
			}, run: runFeed},
		"decode":  {summary: "run the decode stage: fetch and decode images", run: runWorker("decode")},
		"augment": {summary: "run the augment stage: paired random views", run: runWorker("augment")},
		"train": {summary: "run the train stage: SupCon pretraining, checkpoints to S3",
			flags: func(fs *flag.FlagSet, o *options) {
				fs.BoolVar(&o.resume, "resume", false, "continue from the run's last checkpoint")
			}, run: runTrain},
		"evaluate": {summary: "linear probe and kNN on a frozen encoder; writes report.json and report.html",
			flags: func(fs *flag.FlagSet, o *options) {
				fs.StringVar(&o.checkpoint, "checkpoint", "", "checkpoint object key (default: the run's pretrain-done event)")
				fs.BoolVar(&o.wait, "wait", false, "wait for the run's pretraining to finish")
			}, run: runEvaluate},
		"report": {summary: "re-render the run's report.html from its report.json in the bucket",
			flags: func(fs *flag.FlagSet, o *options) {
				fs.StringVar(&o.outDir, "out", "", "output directory (default <work_dir>/<run_id>)")
			}, run: runReport},
	}
}

func runVersion(_ context.Context, e *env) error {
	rev := ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				rev = " " + s.Value
			}
		}
	}
	fmt.Fprintf(e.stdout, "supflow %s%s %s %s/%s\n", version, rev, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return nil
}

func runConfig(_ context.Context, e *env) error {
	if len(e.args) > 0 && e.args[0] == "keys" {
		for _, k := range config.Keys() {
			fmt.Fprintf(e.stdout, "%-28s %s\n", k, config.EnvName(k))
		}
		return nil
	}
	b, err := e.cfg.YAML()
	if err != nil {
		return err
	}
	_, err = e.stdout.Write(b)
	return err
}
