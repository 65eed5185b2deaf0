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
	// Protocol is how the linear classifier is trained: ProtocolFrozen
	// (default) or ProtocolSupContrast.
	Protocol string `yaml:"protocol"`
}

// Linear evaluation protocols.
const (
	// ProtocolFrozen fits the classifier on the train split's fixed
	// centre-crop features, standardised.
	ProtocolFrozen = "frozen"
	// ProtocolSupContrast is SupContrast's main_linear.py: every step
	// encodes a fresh random view of each sample (RandomResizedCrop and
	// horizontal flip by the augment section's scale, ratio and flip_p, no
	// colour jitter or grayscale), features not standardised.
	ProtocolSupContrast = "supcontrast"
)

// DefaultSettings returns the defaults of every field: probe's
// DefaultConfig and DefaultKNNConfig's k.
func DefaultSettings() Settings {
	return Settings{Probe: probe.DefaultConfig(), KNNK: probe.DefaultKNNConfig().K, Protocol: ProtocolFrozen}
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
	k.OneOf("protocol", s.Protocol, ProtocolFrozen, ProtocolSupContrast)
	return k.Err()
}
