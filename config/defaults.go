package config

import (
	"time"

	"github.com/supflow/supflow/engine"
	"github.com/supflow/supflow/stages/augment"
	"github.com/supflow/supflow/stages/decode"
)

// Default returns the configuration every unset field falls back to:
// SupContrast's published hyper-parameters where they exist, and an
// all-embedded deployment. Sections owned by a package take that package's
// DefaultConfig.
func Default() *Config {
	return &Config{
		Run:     Run{ID: "supflow", Seed: 1, WorkDir: "out"},
		Dataset: Dataset{Name: "mnist", Prefix: "mnist", Source: "mnist", Format: "png", TrainSplit: "train", TestSplit: "test"},
		Store:   Store{Embedded: true, Bucket: "supflow", Region: "us-east-1"},
		Bus: Bus{
			Embedded: true, AckWait: Duration(60 * time.Second), MaxDeliver: 5, MaxAckPending: 64,
			MaxPayload: 1 << 20, StreamMaxMsgs: 4096,
		},
		Decode:  decode.DefaultConfig(),
		Augment: augment.DefaultConfig(),
		Model:   engine.DefaultModelConfig(),
		Train: Train{
			Method: "supcon", BatchSize: 256, Epochs: 100, LR: 0.05, Momentum: 0.9, WeightDecay: 1e-4,
			Optimizer: "sgd", Schedule: "cosine", WarmEpochs: 10, Temperature: 0.1, BaseTemperature: 0.07,
			CheckpointEvery: 10, KNNEvery: 0, KNNSamples: 1000, KNNK: 200, KNNTemperature: 0.1,
		},
		Evaluate: Evaluate{Epochs: 20, BatchSize: 256, LR: 0.1, Momentum: 0.9, Schedule: "cosine", KNNK: 200},
		Log:      Log{Format: "text", Level: "info"},
	}
}
