package evaluate

import (
	"github.com/supflow/supflow/config/field"
	"github.com/supflow/supflow/probe"
)

// Settings is pipeline.yaml's evaluate section: how the linear probe
// trains (probe.Config, whose keys sit inline: epochs, batch_size, lr,
// momentum, weight_decay, schedule) and the kNN classifier's k. The kNN
// temperature is not a key here: the stage scores with the train section's
// knn_temperature, the kNN monitor's (see KNN). Settings feed Scoring's
// Probe and KNN, whose zero fields take probe's defaults.
type Settings struct {
	Probe probe.Config `yaml:",inline"`
	// KNNK is the kNN classifier's k (probe.KNNConfig.K), in [1, 10000];
	// default 200. Scoring lowers it to the train split's size.
	KNNK int `yaml:"knn_k"`
}

// DefaultSettings returns the defaults of every field: probe's
// DefaultConfig and DefaultKNNConfig's k.
func DefaultSettings() Settings {
	return Settings{Probe: probe.DefaultConfig(), KNNK: probe.DefaultKNNConfig().K}
}

// KNN is the kNN classifier the stage scores with: k from s and the given
// temperature (the train section's knn_temperature).
func (s Settings) KNN(temperature float64) probe.KNNConfig {
	return probe.KNNConfig{K: s.KNNK, Temperature: temperature}
}

// Validate reports every field of s out of range, each a *field.Error
// (config/field) named by its key in the evaluate section and wrapping
// ErrInput and probe.ErrInvalidConfig; the ranges are probe's. It checks s
// as given: a zero epoch count, batch size, rate, momentum or k is refused.
func (s Settings) Validate() error {
	k := field.NewChecker(ErrInput)
	k.Include("", s.Probe.Validate())
	knn := probe.DefaultKNNConfig()
	knn.K = s.KNNK
	k.Include("", knn.Validate())
	return k.Err()
}
