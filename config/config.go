// Package config defines pipeline.yaml: every knob of a supflow run, its
// defaults, strict loading (unknown or repeated keys, wrong types, decimal
// numbers for integer settings and a second YAML document are errors
// naming the key, line and column, never quoting the file; the file is a
// regular file of at most MaxFileBytes), overrides from SUPFLOW_*
// environment variables (CheckEnv refuses the unknown ones) and --set
// flags, and validation that names the key and its allowed range.
//
// Each setting is declared once, by the package that uses it. A section
// owned by packages is their Config types, embedded as they are:
//
//   - decode: Decode, stages/decode.Config inline (imgdecode.Config
//     inline in it) beside augment
//   - augment: stages/augment.Config (transform.Config inline)
//   - model: engine.ModelConfig (model.Config inline, plus the engine's dtype)
//   - train: Train, flat in the file but spanning packages, inline:
//     engine.TrainConfig (method; optim.Schedule, optim.Config and
//     loss.SupConConfig inline) and stages/train.Config (its kNN monitor's
//     knn_k and knn_temperature from probe.KNNConfig), plus threads
//   - evaluate: stages/evaluate.Settings (probe.Config inline, plus knn_k and protocol)
//   - store: Store, store.Config inline beside embedded
//   - bus: Bus, bus.Config and bus.Limits inline beside embedded
//
// Their YAML tags are the section's keys, their DefaultConfig (or
// DefaultModelConfig, DefaultTrainConfig, DefaultSettings, DefaultLimits)
// gives Default's values, and their Validate, whose errors name the keys
// and wrap the package's sentinel (config/field), is what Validate reports
// under the section's prefix. Fields that are not settings (a run id, a
// data-derived channel count, a secret) are tagged "-". Only what spans
// packages or sections is checked here: bus.stream_max_msgs and
// bus.stream_max_bytes against the views train.batch_size holds, augment's
// views against bus.max_payload, the train schedule's warm-up against the
// stage's epochs (Train.EngineConfig), and
// the store's and bus's own rules for this file (no credentials in a URL,
// an address unless embedded). The reflection behind Keys, EnvName's
// variables and Set follows the YAML tags, ",inline" structs included, and
// skips fields tagged "-".
//
// The run, dataset, feeder, metrics and log sections, train.threads,
// store.embedded, bus.embedded and decode.augment are declared here: only
// cmd/supflow reads them, to set up its process (which data set to ingest
// and feed, where reports go, how many epochs to feed, where to serve
// metrics, how to log, how many OpenBLAS threads, whether to run S3 and
// NATS in process, whether decode workers also augment). No
// library has a Config for them; run.id and run.seed reach the packages as
// fields tagged "-" (the augment stage's seed, the feeder's run id).
//
// Secrets never live here: S3 and NATS credentials come from the
// environment or from files the config names (see docs/operations.md).
package config

import (
	"errors"
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/supflow/supflow/bus"
	"github.com/supflow/supflow/config/field"
	"github.com/supflow/supflow/engine"
	"github.com/supflow/supflow/stages/augment"
	"github.com/supflow/supflow/stages/decode"
	"github.com/supflow/supflow/stages/evaluate"
	"github.com/supflow/supflow/stages/train"
	"github.com/supflow/supflow/store"
	"github.com/supflow/supflow/xla/trainer"
)

// ErrInvalid wraps every validation and parse failure.
var ErrInvalid = errors.New("config: invalid")

// Config is the whole pipeline.yaml.
type Config struct {
	Run      Run                `yaml:"run"`
	Dataset  Dataset            `yaml:"dataset"`
	Store    Store              `yaml:"store"`
	Bus      Bus                `yaml:"bus"`
	Feeder   Feeder             `yaml:"feeder"`
	Decode   Decode             `yaml:"decode"`   // owned by stages/decode, but for augment (Decode)
	Augment  augment.Config     `yaml:"augment"`  // owned by stages/augment (and the transform library)
	Model    engine.ModelConfig `yaml:"model"`    // owned by engine (the network's keys by model)
	Train    Train              `yaml:"train"`    // engine's and stages/train's keys, inline (Train)
	Evaluate evaluate.Settings  `yaml:"evaluate"` // owned by stages/evaluate (its keys by probe)
	Metrics  Metrics            `yaml:"metrics"`
	Log      Log                `yaml:"log"`
}

// Run identifies one pipeline run.
type Run struct {
	ID      string `yaml:"id"`       // names the run's checkpoints, reports and messages
	Seed    int64  `yaml:"seed"`     // root of every random stream (shuffle, augment, init)
	WorkDir string `yaml:"work_dir"` // local directory for reports and embedded servers' data
}

// Dataset says where the images are and how ingest lays them out.
type Dataset struct {
	Name       string `yaml:"name"`        // human name shown in reports
	Prefix     string `yaml:"prefix"`      // key prefix in the bucket: <prefix>/manifest.jsonl
	Source     string `yaml:"source"`      // what `supflow ingest` reads: mnist, idx, cifar10, cifar100, imagefolder, s3 (images already in the bucket)
	Path       string `yaml:"path"`        // source directory or file; empty for mnist (bundled Go module); for s3 a key prefix, prefix or under it (empty = prefix)
	List       string `yaml:"list"`        // s3 only: key of a CSV or JSONL list of key,label[,split]; empty = <path>/list.jsonl or list.csv if present, else <path>/<split>/<class>/<file>
	Format     string `yaml:"format"`      // stored image format: png or jpeg
	ShardBytes int64  `yaml:"shard_bytes"` // ingest packs the images into tar shards of about this many bytes (0 = one object per image)
	LimitTrain int    `yaml:"limit_train"` // cap on train images ingested, fed and evaluated, class-stratified by run.seed (dataset.Take: of a sharded split one stretch; 0 = all)
	LimitTest  int    `yaml:"limit_test"`  // cap on test images ingested and evaluated, class-stratified by run.seed (dataset.Take: of a sharded split one stretch; 0 = all)
	TrainSplit string `yaml:"train_split"` // split pretraining reads
	TestSplit  string `yaml:"test_split"`  // split the linear probe scores
}

// Store is pipeline.yaml's store section: the S3 endpoint's settings
// (store.Config, whose keys sit inline: endpoint, bucket, region, secure,
// ca_file) and embedded, cmd/supflow's choice to run an S3 endpoint in
// process instead (supflow run), which reads only bucket. Credentials come
// from SUPFLOW_S3_ACCESS_KEY / SUPFLOW_S3_SECRET_KEY or the AWS_*
// variables, never from this file: store.Config's credential fields are not
// keys.
type Store struct {
	Embedded     bool `yaml:"embedded"`
	store.Config `yaml:",inline"`
}

// Validate checks the section by store.Config's rules, but for the
// credentials (cmd/supflow adds them from the environment when it
// connects), plus this file's own: the endpoint is host:port (store.secure
// selects HTTPS), required unless embedded. An embedded store reads only
// bucket, and endpoint when set.
func (s Store) Validate() error {
	c := s.Config
	c.AllowAnonymous = true
	ep := strings.TrimSpace(s.Endpoint)
	ownEndpoint := ep == "" || strings.Contains(ep, "://") && !strings.Contains(ep, "@")
	k := field.NewChecker(ErrInvalid)
	k.Include("", without(c.Validate(), func(e *field.Error) bool {
		return e.Key == "endpoint" && ownEndpoint || s.Embedded && e.Key != "bucket" && e.Key != "endpoint"
	}))
	switch {
	case ep == "" && !s.Embedded:
		k.Add("endpoint", `""`, "host:port of the S3 server when store.embedded is false")
	case ep != "" && ownEndpoint:
		k.Add("endpoint", fmt.Sprintf("%q", s.Endpoint), "host:port without a scheme (use store.secure for HTTPS)")
	case strings.ContainsAny(ep, "#") && !strings.Contains(ep, "@"):
		// store.Config takes a URL and ignores its fragment; this file
		// takes host:port only.
		k.Add("endpoint", fmt.Sprintf("%q", s.Endpoint), "host:port without a path or fragment")
	}
	return k.Err()
}

// without returns the field errors of err that drop does not pick, joined
// (nil if none).
func without(err error, drop func(*field.Error) bool) error {
	var keep []error
	for _, e := range field.List(err) {
		if !drop(e) {
			keep = append(keep, e)
		}
	}
	return errors.Join(keep...)
}

// Decode is pipeline.yaml's decode section: the decode stage's settings
// (stages/decode.Config, whose keys sit inline: workers, max_pixels,
// max_object_bytes, resize_shorter, gray, cache) and augment, cmd/supflow's
// choice of the process layout, which no stage reads.
type Decode struct {
	// Augment makes each decode worker also augment: `supflow run` and
	// `supflow decode` mount one fused route (decode tasks in, view groups
	// out, the stages chained by messages.Then) instead of decode's, so a
	// decoded image never crosses the images edge: at 224 px that saves
	// 8-10% of the pipeline's CPU (docs/benchmarks.md, "Fused decode and
	// augment workers"); at 28-32 px it changes nothing measurable. A
	// fused worker has decode.workers handler slots, each doing both;
	// augment.workers is then unused. `supflow decode --augment` sets it.
	Augment       bool `yaml:"augment"`
	decode.Config `yaml:",inline"`
}

// Bus is pipeline.yaml's bus section: the NATS connection's settings
// (bus.Config, whose keys sit inline: url, creds_file, nkey_file, ca_file,
// cert_file, key_file), the bus's limits (bus.Limits, inline: ack_wait,
// max_deliver, max_ack_pending, max_payload, stream_max_msgs,
// stream_max_bytes, batch, replicas, storage) and embedded,
// cmd/supflow's choice to run nats-server in process instead (supflow run),
// which reads only the limits. Credentials come from SUPFLOW_NATS_USER /
// SUPFLOW_NATS_PASSWORD / SUPFLOW_NATS_TOKEN or the files named here, never
// from this file: bus.Config's secret fields are not keys.
type Bus struct {
	Embedded   bool `yaml:"embedded"`
	bus.Config `yaml:",inline"`
	bus.Limits `yaml:",inline"`
}

// Validate checks the section by bus.Config's and bus.Limits' rules, plus
// this file's own: the URL carries no credentials and is required unless
// embedded. An embedded bus reads only the limits, and url when set.
func (b Bus) Validate() error {
	url := strings.TrimSpace(b.URL)
	ownURL := url == "" || strings.Contains(url, "@")
	k := field.NewChecker(ErrInvalid)
	k.Include("", without(b.Config.Validate(), func(e *field.Error) bool {
		return e.Key == "url" && ownURL || b.Embedded && e.Key != "url"
	}))
	switch {
	case url == "" && !b.Embedded:
		k.Add("url", `""`, "a nats:// URL when bus.embedded is false")
	case strings.Contains(url, "@"):
		k.Add("url", redacted, "a URL without credentials (they come from SUPFLOW_NATS_USER / SUPFLOW_NATS_PASSWORD, SUPFLOW_NATS_TOKEN, bus.nkey_file or bus.creds_file)")
	}
	k.Include("", b.Limits.Validate())
	return k.Err()
}

// Feeder paces epochs into the decode stage (cmd/supflow's: it computes
// stages/feeder.Config's epoch range from it).
type Feeder struct {
	Epochs int `yaml:"epochs"` // 0 = train.epochs
	// ShardRun is stages/feeder.Config.ShardRun: how many consecutive
	// members of a shard a sharded data set's order keeps together (1 = a
	// full shuffle; docs/operations.md, "Sharded data sets").
	ShardRun int `yaml:"shard_run"`
}

// Train is pipeline.yaml's train section. It is flat in the file, but its
// keys come from two packages, inline: the engine's (method, the schedule,
// the optimizer and the loss: engine.TrainConfig) and the train stage's
// (batch_size, epochs, checkpoint_every, log_every and the kNN monitor's knn_*:
// stages/train.Config), the backend's (backend, pjrt_plugin, devices,
// sync_bn: xla/trainer.Config), plus threads, which is cmd/supflow's.
type Train struct {
	Engine  engine.TrainConfig `yaml:",inline"`
	Stage   train.Config       `yaml:",inline"`
	Backend trainer.Config     `yaml:",inline"`
	// Threads is the number of OpenBLAS threads cmd/supflow sets at start,
	// in [0, 1024]; 0 = 1 unless OPENBLAS_NUM_THREADS is set.
	Threads int `yaml:"threads"`
}

// maxThreads bounds Train.Threads.
const maxThreads = 1024

// EngineConfig is the engine's part of the section with the schedule's
// length and batch size (not keys of their own) taken from the stage's
// epochs and batch_size.
func (t Train) EngineConfig() engine.TrainConfig {
	e := t.Engine
	e.Schedule.Epochs, e.Schedule.BatchSize = t.Stage.Epochs, t.Stage.BatchSize
	return e
}

// Validate reports the section's errors, each named by its key: the
// stage's and the engine's (with the schedule as EngineConfig gives it, so
// that warm_epochs is checked against epochs), and threads.
func (t Train) Validate() error {
	k := field.NewChecker(ErrInvalid)
	stageErr := t.Stage.Validate()
	k.Include("", stageErr)
	e := t.Engine
	if stageErr == nil {
		// Otherwise the schedule would report a bad epochs or batch_size
		// again, under the limits it puts on them.
		e = t.EngineConfig()
	}
	k.Include("", e.Validate())
	k.Include("", t.Backend.Validate())
	if d := t.Backend.Devices; d > 1 && t.Stage.BatchSize%d != 0 {
		// Each device takes batch_size/devices samples of a full batch.
		k.Add("devices", d, fmt.Sprintf("a divisor of train.batch_size %d", t.Stage.BatchSize))
	}
	k.IntIn("threads", t.Threads, 0, maxThreads)
	return k.Err()
}

// Metrics configures the Prometheus endpoint.
type Metrics struct {
	Addr string `yaml:"addr"` // listen address for /metrics; empty = off
}

// Log configures logging.
type Log struct {
	Format string `yaml:"format"` // text or json
	Level  string `yaml:"level"`  // debug, info, warn, error
}

// Load reads path (empty = defaults only), applies SUPFLOW_* environment
// overrides and then the key=value sets, and validates the result. The file
// must be a regular file of at most MaxFileBytes holding one YAML document;
// errors name the key, line and column, never the file's text. Unknown
// SUPFLOW_* variables are CheckEnv's: env can only look names up.
func Load(path string, env func(string) (string, bool), sets []string) (*Config, error) {
	cfg := Default()
	if path != "" {
		b, err := readFile(path)
		if err != nil {
			return nil, err
		}
		if err := cfg.decode(b); err != nil {
			return nil, fmt.Errorf("%w: %q: %w", ErrInvalid, path, err)
		}
		keepDefaults(cfg, Default())
	}
	if env != nil {
		if err := applyEnv(cfg, env); err != nil {
			return nil, err
		}
	}
	for _, kv := range sets {
		if err := Set(cfg, kv); err != nil {
			return nil, err
		}
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// YAML renders the effective configuration.
func (c *Config) YAML() ([]byte, error) { return yaml.Marshal(c) }
