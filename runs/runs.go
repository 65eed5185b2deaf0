// Package runs names the objects a pipeline run leaves in the bucket, all
// under runs/<run id>/: checkpoints, the pretraining curves and the report.
// Every stage and command that reads or writes them takes the keys from
// here. It imports only the standard library.
package runs

import "path"

// Names of a run's objects, relative to Key(run, "").
const (
	Curves     = "pretrain.json" // report.Curves written by the train stage
	ReportJSON = "report.json"
	ReportHTML = "report.html"
	Last       = "last" // the latest checkpoint, rewritten after each save
)

// Key is the key of object name of run.
func Key(run, name string) string { return path.Join("runs", run, name) }

// Checkpoints is the folder of run's checkpoints: a checkpoint key read
// from the bus must lie under it.
func Checkpoints(run string) string { return Key(run, "checkpoints") }

// Checkpoint is the key of run's checkpoint name ("last", "epoch-3").
func Checkpoint(run, name string) string {
	return path.Join(Checkpoints(run), name+".safetensors")
}
