package config

import (
	"github.com/supflow/supflow/bus"
	"github.com/supflow/supflow/engine"
	"github.com/supflow/supflow/stages/augment"
	"github.com/supflow/supflow/stages/decode"
	"github.com/supflow/supflow/stages/evaluate"
	"github.com/supflow/supflow/stages/feeder"
	"github.com/supflow/supflow/stages/train"
	"github.com/supflow/supflow/store"
	"github.com/supflow/supflow/xla/trainer"
)

// Default returns the configuration every unset field falls back to:
// SupContrast's published hyper-parameters where they exist, and an
// all-embedded deployment. Sections owned by packages take their defaults
// (DefaultConfig and the like); the bucket's name, which no package
// chooses, is this deployment's.
func Default() *Config {
	return &Config{
		Run:      Run{ID: "supflow", Seed: 1, WorkDir: "out"},
		Dataset:  Dataset{Name: "mnist", Prefix: "mnist", Source: "mnist", Format: "png", TrainSplit: "train", TestSplit: "test"},
		Store:    Store{Embedded: true, Config: store.Config{Bucket: "supflow", Region: store.DefaultRegion}},
		Bus:      Bus{Embedded: true, Limits: bus.DefaultLimits()},
		Feeder:   Feeder{ShardRun: feeder.DefaultShardRun},
		Decode:   Decode{Config: decode.DefaultConfig()},
		Augment:  augment.DefaultConfig(),
		Model:    engine.DefaultModelConfig(),
		Train:    Train{Engine: engine.DefaultTrainConfig(), Stage: train.DefaultConfig(), Backend: trainer.DefaultConfig()},
		Evaluate: evaluate.DefaultSettings(),
		Log:      Log{Format: "text", Level: "info"},
	}
}
