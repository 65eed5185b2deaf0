package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"runtime"
	"runtime/debug"
	"text/tabwriter"

	"github.com/supflow/supflow/bus"
	"github.com/supflow/supflow/config"
)

func commands() map[string]command {
	return map[string]command{
		"version": {summary: "print the version", run: runVersion},
		"config":  {summary: "print the effective configuration (`config keys` lists every key)", args: []string{"keys"}, run: runConfig},
		"run": {summary: "everything in one process: ingest, feed, decode, augment, train, evaluate (embedded NATS and S3 by default)",
			flags: func(fs *flag.FlagSet, o *options) {
				fs.BoolVar(&o.resume, "resume", false, "continue from the run's last checkpoint")
			}, check: all(checkBackend, checkTrainMemory), run: runAll, tensors: true},
		"ingest": {summary: "make the data set: upload a local dataset.source, or index images already in the bucket (source s3); idempotent",
			flags: func(fs *flag.FlagSet, o *options) {
				fs.BoolVar(&o.force, "force", false, "read every image again even when the source and settings are unchanged since the last ingest")
			}, run: runIngest},
		"feed": {summary: "publish the epochs' decode tasks, one epoch after the trainer finished the previous",
			flags: func(fs *flag.FlagSet, o *options) {
				fs.IntVar(&o.startEpoch, "start-epoch", 1, "first epoch to feed (when the trainer resumes)")
			}, check: checkFeed, run: runFeed},
		"decode": {summary: "run the decode stage: fetch and decode images",
			flags: func(fs *flag.FlagSet, o *options) {
				fs.Var(keyFlag{"decode.augment", &o.sets}, "augment", "also augment here and publish views, no images edge: for large images (sets decode.augment; docs/operations.md)")
			}, check: externalBus, run: runWorker("decode")},
		"augment": {summary: "run the augment stage: paired random views", check: externalBus, run: runWorker("augment")},
		"train": {summary: "run the train stage: SupCon pretraining, checkpoints to S3",
			flags: func(fs *flag.FlagSet, o *options) {
				fs.BoolVar(&o.resume, "resume", false, "continue from the run's last checkpoint")
			}, check: all(externalBus, checkBackend, checkTrainMemory), run: runTrain, tensors: true},
		"evaluate": {summary: "linear probe and kNN on a frozen encoder; writes report.json and report.html",
			flags: func(fs *flag.FlagSet, o *options) {
				fs.StringVar(&o.checkpoint, "checkpoint", "", "checkpoint object key (default: the run's pretrain-done event)")
				fs.BoolVar(&o.wait, "wait", false, "wait for the run's pretraining to finish")
			}, check: all(evaluateBus, checkBackend, func(e *env) error { return checkMemory(e, false) }), run: runEvaluate, tensors: true},
		"embed": {summary: "write a checkpoint's frozen encoder features of a split (safetensors and .npy, with sample ids, keys and labels)",
			flags: func(fs *flag.FlagSet, o *options) {
				fs.StringVar(&o.checkpoint, "checkpoint", "", "checkpoint object key (default: the run's last checkpoint)")
				fs.StringVar(&o.split, "split", "", "split to embed (default dataset.test_split)")
				fs.IntVar(&o.limit, "limit", 0, "embed the split's first N samples (0 = all)")
				fs.BoolVar(&o.head, "head", false, "also write the projection head's normalised outputs (projections)")
				fs.StringVar(&o.outDir, "out", "", "output directory (default <work_dir>/<run_id>/embeddings/<split>)")
			}, check: all(checkBackend, func(e *env) error { return checkMemory(e, false) }), run: runEmbed, tensors: true},
		"export": {summary: "write a checkpoint's encoder alone (no head, no optimizer state) as a PyTorch state_dict in safetensors",
			flags: func(fs *flag.FlagSet, o *options) {
				fs.StringVar(&o.checkpoint, "checkpoint", "", "checkpoint object key (default: the run's last checkpoint)")
				fs.StringVar(&o.outFile, "out", "", "file to write (required)")
			}, run: runExport, tensors: true},
		"status": {summary: "print each pipeline edge's stream depth and consumer state (external NATS)", run: runStatus},
		"report": {summary: "re-render the run's report.html from its report.json in the bucket",
			flags: func(fs *flag.FlagSet, o *options) {
				fs.StringVar(&o.outDir, "out", "", "output directory (default <work_dir>/<run_id>)")
			}, run: runReport},
	}
}

// all runs checks in order and returns the first error.
func all(checks ...func(*env) error) func(*env) error {
	return func(e *env) error {
		for _, c := range checks {
			if err := c(e); err != nil {
				return err
			}
		}
		return nil
	}
}

// externalBus refuses the embedded bus for a single-stage command: the
// stages of separate processes meet on one NATS server, while an embedded
// one would be private to this process (supflow run's is shared by the
// stages it runs), so the stage would wait for messages that never come.
func externalBus(e *env) error {
	if e.cfg.Bus.Embedded {
		return usageError{errors.New("this stage talks to the others over an external NATS server, and bus.embedded is true: " +
			"an embedded bus lives inside `supflow run`, private to it; set bus.embedded false and bus.url, or run `supflow run`")}
	}
	return nil
}

// evaluateBus: evaluate reads the pretrain-done event from the bus unless
// --checkpoint names the checkpoint.
func evaluateBus(e *env) error {
	if e.opts.checkpoint != "" {
		return nil
	}
	if err := externalBus(e); err != nil {
		return usageError{fmt.Errorf("evaluate without --checkpoint waits for the run's pretrain-done event: %w", err)}
	}
	return nil
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

// runStatus prints each pipeline edge's stream and consumer state: where
// messages wait, and how many a stage holds unacknowledged.
func runStatus(ctx context.Context, e *env) error {
	if e.cfg.Bus.Embedded {
		return usageError{errors.New("status reads an external NATS server (bus.embedded is true: the embedded one lives inside `supflow run`)")}
	}
	bc := e.cfg.Bus.Config.WithEnv(e.getenv)
	bc.Name = "supflow-status"
	b, err := bus.Connect(ctx, bc, e.log)
	if err != nil {
		return err
	}
	defer b.Close()
	edges, err := b.Status(ctx, topology(e.cfg, nil))
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "stream\tstorage\tstored/max\tconsumer\tundelivered\tunacked/window\tredelivered\twaiting\tack_wait")
	for _, s := range edges {
		switch {
		case s.Missing != "" && s.Storage == bus.StorageMemory:
			fmt.Fprintf(w, "%s\t%s\t%s missing (a NATS restart loses memory streams; the stages create them again)\t%s\t\t\t\t\t\n", s.Topic, s.Storage, s.Missing, s.Consumer)
		case s.Missing != "":
			fmt.Fprintf(w, "%s\t%s\t%s missing (not provisioned)\t%s\t\t\t\t\t\n", s.Topic, s.Storage, s.Missing, s.Consumer)
		default:
			fmt.Fprintf(w, "%s\t%s\t%d/%d\t%s\t%d\t%d/%d\t%d\t%d\t%v\n", s.Topic, s.Storage, s.Messages, s.MaxMsgs, s.Consumer,
				s.Undelivered, s.Unacked, s.MaxAckPending, s.Redelivered, s.Waiting, s.AckWait)
		}
	}
	return w.Flush()
}
