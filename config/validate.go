package config

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
)

// FieldError names the offending key and what it allows.
type FieldError struct {
	Key   string
	Value any
	Want  string
}

func (e *FieldError) Error() string {
	return fmt.Sprintf("%s = %v: want %s", e.Key, e.Value, e.Want)
}

func (e *FieldError) Unwrap() error { return ErrInvalid }

type checker struct{ errs []error }

func (c *checker) add(key string, v any, want string) {
	c.errs = append(c.errs, &FieldError{Key: key, Value: v, Want: want})
}

func (c *checker) intIn(key string, v, lo, hi int) {
	if v < lo || v > hi {
		c.add(key, v, fmt.Sprintf("an integer in [%d, %d]", lo, hi))
	}
}

func (c *checker) floatIn(key string, v, lo, hi float64) {
	if !(v >= lo && v <= hi) { // also rejects NaN
		c.add(key, v, fmt.Sprintf("a number in [%g, %g]", lo, hi))
	}
}

func (c *checker) oneOf(key, v string, allowed ...string) {
	if !slices.Contains(allowed, v) {
		c.add(key, fmt.Sprintf("%q", v), "one of "+strings.Join(allowed, ", "))
	}
}

// redacted stands for a value that may hold a secret in an error.
const redacted = "<redacted>"

var (
	runID     = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`)
	prefixRe  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*(/[A-Za-z0-9][A-Za-z0-9_.-]*)*$`)
	bucketRe  = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)
	maxLimits = 1 << 30
)

// Validate checks every field and returns all problems, each naming its key.
func (c *Config) Validate() error {
	var k checker
	if !runID.MatchString(c.Run.ID) {
		k.add("run.id", fmt.Sprintf("%q", c.Run.ID), "1-64 letters, digits, '_' or '-'")
	}
	if c.Run.WorkDir == "" {
		k.add("run.work_dir", `""`, "a directory path")
	}

	if !prefixRe.MatchString(c.Dataset.Prefix) || strings.Contains(c.Dataset.Prefix, "..") {
		k.add("dataset.prefix", fmt.Sprintf("%q", c.Dataset.Prefix), "a relative key prefix without '..' (e.g. mnist)")
	}
	k.oneOf("dataset.source", c.Dataset.Source, "mnist", "idx", "cifar10", "cifar100", "imagefolder")
	k.oneOf("dataset.format", c.Dataset.Format, "png", "jpeg")
	k.intIn("dataset.limit_train", c.Dataset.LimitTrain, 0, maxLimits)
	k.intIn("dataset.limit_test", c.Dataset.LimitTest, 0, maxLimits)
	if c.Dataset.Source != "mnist" && c.Dataset.Path == "" {
		k.add("dataset.path", `""`, "the source directory or file for source "+c.Dataset.Source)
	}
	for key, v := range map[string]string{"dataset.train_split": c.Dataset.TrainSplit, "dataset.test_split": c.Dataset.TestSplit} {
		if !prefixRe.MatchString(v) || strings.Contains(v, "/") {
			k.add(key, fmt.Sprintf("%q", v), "a split name such as train or test")
		}
	}

	if !bucketRe.MatchString(c.Store.Bucket) {
		k.add("store.bucket", fmt.Sprintf("%q", c.Store.Bucket), "an S3 bucket name (3-63 lowercase letters, digits, '.', '-')")
	}
	if !c.Store.Embedded && c.Store.Endpoint == "" {
		k.add("store.endpoint", `""`, "host:port of the S3 server when store.embedded is false")
	}
	// Credentials never come from this file: a URL carrying them is refused
	// without being echoed.
	switch {
	case strings.Contains(c.Store.Endpoint, "@"):
		k.add("store.endpoint", redacted, "host:port without credentials (they come from SUPFLOW_S3_ACCESS_KEY / SUPFLOW_S3_SECRET_KEY)")
	case strings.Contains(c.Store.Endpoint, "://"):
		k.add("store.endpoint", fmt.Sprintf("%q", c.Store.Endpoint), "host:port without a scheme (use store.secure for HTTPS)")
	}

	if !c.Bus.Embedded && c.Bus.URL == "" {
		k.add("bus.url", `""`, "a nats:// URL when bus.embedded is false")
	}
	if strings.Contains(c.Bus.URL, "@") {
		k.add("bus.url", redacted, "a URL without credentials (they come from SUPFLOW_NATS_USER / SUPFLOW_NATS_PASSWORD, SUPFLOW_NATS_TOKEN, bus.nkey_file or bus.creds_file)")
	}
	if d := time.Duration(c.Bus.AckWait); d < time.Second || d > time.Hour {
		k.add("bus.ack_wait", d, "a duration in [1s, 1h]")
	}
	k.intIn("bus.max_deliver", c.Bus.MaxDeliver, 1, 1000)
	k.intIn("bus.max_ack_pending", c.Bus.MaxAckPending, 1, 10000)
	k.intIn("bus.max_payload", c.Bus.MaxPayload, 64<<10, 64<<20)
	k.intIn("bus.stream_max_msgs", c.Bus.StreamMaxMsgs, 16, 10_000_000)

	k.intIn("feeder.epochs", c.Feeder.Epochs, 0, 100000)

	k.intIn("decode.workers", c.Decode.Workers, 1, 256)
	k.intIn("decode.max_pixels", c.Decode.MaxPixels, 1, 1<<31-1)
	k.intIn("decode.max_object_bytes", c.Decode.MaxObjectBytes, 1, 1<<31-1)
	k.intIn("decode.resize_shorter", c.Decode.ResizeShorter, 0, 65535)

	a := c.Augment
	k.intIn("augment.workers", a.Workers, 1, 256)
	k.intIn("augment.size", a.Size, 4, 1024)
	k.intIn("augment.n_views", a.NViews, 2, 16)
	if !(a.Scale[0] > 0 && a.Scale[0] <= a.Scale[1] && a.Scale[1] <= 1) {
		k.add("augment.scale", a.Scale, "[lo, hi] with 0 < lo <= hi <= 1")
	}
	if !(a.Ratio[0] > 0 && a.Ratio[0] <= a.Ratio[1]) {
		k.add("augment.ratio", a.Ratio, "[lo, hi] with 0 < lo <= hi")
	}
	k.floatIn("augment.flip_p", a.FlipP, 0, 1)
	k.floatIn("augment.jitter_p", a.JitterP, 0, 1)
	k.floatIn("augment.grayscale_p", a.GrayscaleP, 0, 1)
	k.floatIn("augment.brightness", a.Brightness, 0, 1)
	k.floatIn("augment.contrast", a.Contrast, 0, 1)
	k.floatIn("augment.saturation", a.Saturation, 0, 1)
	k.floatIn("augment.hue", a.Hue, 0, 0.5)
	viewBytes := a.NViews * a.Size * a.Size * 3
	if a.Size >= 4 && a.NViews >= 2 && viewBytes+1024 > c.Bus.MaxPayload {
		k.add("augment.size", a.Size, fmt.Sprintf("views of one sample (%d bytes for %d views) to fit bus.max_payload %d", viewBytes, a.NViews, c.Bus.MaxPayload))
	}

	m := c.Model
	k.oneOf("model.arch", m.Arch, "resnet18", "resnet34", "resnet50", "resnet101")
	k.oneOf("model.stem", m.Stem, "cifar", "imagenet")
	k.oneOf("model.head", m.Head, "mlp", "linear")
	k.oneOf("model.dtype", m.DType, "float32", "float64")
	k.intIn("model.feat_dim", m.FeatDim, 1, 65536)
	for key, list := range map[string][]int{"model.widths": m.Widths, "model.blocks": m.Blocks} {
		if len(list) != 0 && len(list) != 4 {
			k.add(key, list, "empty (the arch's default) or 4 positive integers, one per stage")
		}
		for _, v := range list {
			if v < 1 || v > 4096 {
				k.add(key, list, "4 integers in [1, 4096]")
				break
			}
		}
	}

	t := c.Train
	k.oneOf("train.method", t.Method, "supcon", "simclr", "ce")
	k.intIn("train.batch_size", t.BatchSize, 2, 65536)
	// The trainer may hold this many view groups unacknowledged (its
	// consumer's window, cmd/supflow's topology); a views stream that
	// cannot store them all fills with messages only the trainer can
	// free, and after a burst of redeliveries (a NATS restart) augment
	// and the trainer wait on each other for good.
	if window := 2*t.BatchSize + c.Bus.MaxAckPending; c.Bus.StreamMaxMsgs < window {
		k.add("bus.stream_max_msgs", c.Bus.StreamMaxMsgs, fmt.Sprintf(
			"at least %d (2 x train.batch_size + bus.max_ack_pending: the views the trainer may hold unacknowledged)", window))
	}
	k.intIn("train.epochs", t.Epochs, 1, 100000)
	k.floatIn("train.lr", t.LR, 1e-8, 100)
	k.floatIn("train.momentum", t.Momentum, 0, 0.9999)
	k.floatIn("train.weight_decay", t.WeightDecay, 0, 1)
	k.oneOf("train.optimizer", t.Optimizer, "sgd", "lars")
	k.oneOf("train.schedule", t.Schedule, "cosine", "step")
	if t.Warm || t.BatchSize > 256 { // SupContrast forces warm-up above batch 256
		k.intIn("train.warm_epochs", t.WarmEpochs, 1, t.Epochs)
	}
	k.floatIn("train.temperature", t.Temperature, 1e-4, 100)
	k.floatIn("train.base_temperature", t.BaseTemperature, 1e-4, 100)
	k.intIn("train.checkpoint_every", t.CheckpointEvery, 1, 100000)
	k.intIn("train.knn_every", t.KNNEvery, 0, 100000)
	k.intIn("train.knn_samples", t.KNNSamples, 1, maxLimits)
	k.intIn("train.knn_k", t.KNNK, 1, 10000)
	k.floatIn("train.knn_temperature", t.KNNTemperature, 1e-4, 100)
	k.intIn("train.threads", t.Threads, 0, 1024)

	e := c.Evaluate
	k.intIn("evaluate.epochs", e.Epochs, 1, 10000)
	k.intIn("evaluate.batch_size", e.BatchSize, 1, 65536)
	k.floatIn("evaluate.lr", e.LR, 1e-8, 100)
	k.floatIn("evaluate.momentum", e.Momentum, 0, 0.9999)
	k.floatIn("evaluate.weight_decay", e.WeightDecay, 0, 1)
	k.oneOf("evaluate.schedule", e.Schedule, "cosine", "step")
	k.intIn("evaluate.knn_k", e.KNNK, 1, 10000)

	k.oneOf("log.format", c.Log.Format, "text", "json")
	k.oneOf("log.level", c.Log.Level, "debug", "info", "warn", "error")
	return errors.Join(k.errs...)
}
