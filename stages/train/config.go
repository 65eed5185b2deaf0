package train

import (
	"github.com/supflow/supflow/config/field"
	"github.com/supflow/supflow/probe"
)

// Bounds of Config fields.
const (
	minBatch   = 2 // a contrastive batch needs a second sample
	maxBatch   = 65536
	maxEpochs  = 100000
	maxSamples = 1 << 30
)

// Config configures pretraining. Its settings are the train stage's keys of
// pipeline.yaml's train section (batch_size, epochs, checkpoint_every,
// log_every and the kNN monitor's knn_*, drop_last), which sit there inline beside the engine's
// (engine.TrainConfig); the fields tagged "-" are not keys: cmd/supflow
// fills them from the run, the data set and the other sections. The
// settings' zero values are usable: New fills them from DefaultConfig.
type Config struct {
	RunID string `yaml:"-"`
	Arch  string `yaml:"-"` // recorded in the curves
	// BatchSize is the number of samples per optimizer step, in
	// [2, 65536]; default 256. Each brings Views views.
	BatchSize int `yaml:"batch_size"`
	// DropLast leaves out each epoch's last batch when it is short (as
	// PyTorch's DataLoader drop_last): its samples are acknowledged
	// unstepped, and an epoch has floor(size/batch_size) steps, which the
	// learning-rate schedule counts. Default false: the short batch is
	// stepped (SupCon and SimCLR step on one-class and one-sample
	// batches as SupContrast does).
	DropLast bool `yaml:"drop_last"`
	// Epochs is the last epoch (1-based, inclusive), in [1, 100000];
	// default 100. The learning-rate schedule spans it.
	Epochs int `yaml:"epochs"`
	// CheckpointEvery is the number of epochs between checkpoints, in
	// [1, 100000]; default 10. The last epoch is always saved.
	CheckpointEvery int `yaml:"checkpoint_every"`
	// LogEvery is the number of optimizer steps between the trainer's
	// `step` log lines (the first step is always logged), in
	// [1, 2^30]; default 10. The curves, metrics and progress line
	// record every step whatever it is.
	LogEvery int `yaml:"log_every"`
	// Monitor configures the kNN monitor (Deps.Monitor).
	Monitor MonitorConfig `yaml:",inline"`

	Views    int  `yaml:"-"` // views per sample (augment.n_views)
	Size     int  `yaml:"-"` // views are Size x Size (augment.size)
	Channels int  `yaml:"-"` // 1 or 3, the data set's
	Resume   bool `yaml:"-"` // continue from the run's last checkpoint, if there is one
	// Classes, when > 0, is the number of classes labels must lie in: a
	// view group labelled outside [0, Classes) is dead-lettered, never
	// stepped (it would stop a ce trainer). 0 checks no label, for a
	// method that ignores them; cmd passes the engine's LabelClasses().
	Classes int `yaml:"-"`
}

// MonitorConfig is the kNN monitor's part of the train section (its knn_*
// keys): how often it runs, on how many held-out samples, and the kNN
// classifier it scores with. The stage reads only Every; cmd/supflow builds
// Deps.Monitor (stages/evaluate.NewMonitor) from the rest.
type MonitorConfig struct {
	// Every is the number of epochs between runs of Deps.Monitor (and it
	// runs after the last epoch), in [0, 100000]; 0, the default, is never.
	Every int `yaml:"knn_every"`
	// Samples is the size of the monitor's memory bank, a class-stratified
	// seeded selection of the train split (dataset.Take: of a sharded
	// split one stretch of shard neighbours; its queries are half as many
	// test samples, chosen the same way), in
	// [1, 2^30]; default 1000.
	Samples int `yaml:"knn_samples"`
	// KNN is the classifier: knn_k and knn_temperature (probe.KNNConfig).
	// The evaluate stage's kNN score uses the same temperature.
	KNN probe.KNNConfig `yaml:",inline"`
}

// DefaultConfig returns the defaults of every setting: batches of 256,
// 100 epochs, a checkpoint every 10, a step log line every 10 steps, the
// monitor off (1000 samples, probe.DefaultKNNConfig when turned on).
func DefaultConfig() Config {
	return Config{BatchSize: 256, Epochs: 100, CheckpointEvery: 10, LogEvery: 10,
		Monitor: MonitorConfig{Samples: 1000, KNN: probe.DefaultKNNConfig()}}
}

// setDefaults fills the unset settings from DefaultConfig (Monitor.Every
// 0 is a setting: off).
func (c *Config) setDefaults() {
	d := DefaultConfig()
	if c.BatchSize == 0 {
		c.BatchSize = d.BatchSize
	}
	if c.Epochs == 0 {
		c.Epochs = d.Epochs
	}
	if c.CheckpointEvery == 0 {
		c.CheckpointEvery = d.CheckpointEvery
	}
	if c.LogEvery == 0 {
		c.LogEvery = d.LogEvery
	}
	if c.Monitor.Samples == 0 {
		c.Monitor.Samples = d.Monitor.Samples
	}
	c.Monitor.KNN.SetDefaults()
}

// Validate reports every setting of c out of range, each a *field.Error
// (config/field) named by its key in the train section and wrapping
// ErrConfig (and probe.ErrInvalidConfig for knn_k and knn_temperature). It
// checks c as given: a zero batch size, epoch count, checkpoint interval or
// monitor setting is refused (New fills them first). The fields that are
// not keys are New's to check.
func (c Config) Validate() error {
	k := field.NewChecker(ErrConfig)
	k.IntIn("batch_size", c.BatchSize, minBatch, maxBatch)
	k.IntIn("epochs", c.Epochs, 1, maxEpochs)
	k.IntIn("checkpoint_every", c.CheckpointEvery, 1, maxEpochs)
	k.IntIn("log_every", c.LogEvery, 1, maxSamples)
	k.IntIn("knn_every", c.Monitor.Every, 0, maxEpochs)
	k.IntIn("knn_samples", c.Monitor.Samples, 1, maxSamples)
	k.Include("", c.Monitor.KNN.Validate())
	return k.Err()
}
