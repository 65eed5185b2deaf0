package config

import (
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"

	"github.com/supflow/supflow/config/field"
	"github.com/supflow/supflow/engine"
	"github.com/supflow/supflow/stages/feeder"
	"github.com/supflow/supflow/xla/trainer"
)

// FieldError names the offending key and what it allows. Errors of the
// sections owned by packages are theirs, re-keyed under the section: every
// one wraps ErrInvalid and the owning package's sentinel.
type FieldError = field.Error

// redacted stands for a value that may hold a secret in an error.
const redacted = "<redacted>"

var (
	runID     = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`)
	prefixRe  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*(/[A-Za-z0-9][A-Za-z0-9_.-]*)*$`)
	maxLimits = 1 << 30
	// maxShardBytes bounds dataset.shard_bytes: 4 GiB.
	maxShardBytes int64 = 4 << 30
)

// Validate checks every key and returns all problems, each naming its key:
// this package's sections, the packages' sections through their Validate,
// and the checks across sections.
func (c *Config) Validate() error {
	k := field.NewChecker(ErrInvalid)
	if !runID.MatchString(c.Run.ID) {
		k.Add("run.id", fmt.Sprintf("%q", c.Run.ID), "1-64 letters, digits, '_' or '-'")
	}
	if c.Run.WorkDir == "" {
		k.Add("run.work_dir", `""`, "a directory path")
	}

	if !prefixRe.MatchString(c.Dataset.Prefix) || strings.Contains(c.Dataset.Prefix, "..") {
		k.Add("dataset.prefix", fmt.Sprintf("%q", c.Dataset.Prefix), "a relative key prefix without '..' (e.g. mnist)")
	}
	k.OneOf("dataset.source", c.Dataset.Source, "mnist", "idx", "cifar10", "cifar100", "imagefolder", "s3")
	k.OneOf("dataset.format", c.Dataset.Format, "png", "jpeg")
	k.IntIn("dataset.limit_train", c.Dataset.LimitTrain, 0, maxLimits)
	k.IntIn("dataset.limit_test", c.Dataset.LimitTest, 0, maxLimits)
	// A shard is built in memory before its upload.
	k.Int64In("dataset.shard_bytes", c.Dataset.ShardBytes, 0, maxShardBytes)
	switch d := c.Dataset; {
	case d.Source == "s3":
		// Images used in place: a key prefix of store.bucket inside the
		// data set prefix, so that every manifest key lies under
		// dataset.prefix, the one rule Load and decode check keys by.
		if p := d.Path; p != "" && (!prefixRe.MatchString(p) || strings.Contains(p, "..") || p != d.Prefix && !strings.HasPrefix(p, d.Prefix+"/")) {
			k.Add("dataset.path", fmt.Sprintf("%q", p), fmt.Sprintf("for source s3, a key prefix in store.bucket equal to dataset.prefix %q or under it (e.g. %s/images; not an s3:// URL), or empty for dataset.prefix", d.Prefix, d.Prefix))
		}
		if l := d.List; l != "" && (!prefixRe.MatchString(l) || strings.Contains(l, "..") || !strings.HasSuffix(strings.ToLower(l), ".jsonl") && !strings.HasSuffix(strings.ToLower(l), ".csv")) {
			k.Add("dataset.list", fmt.Sprintf("%q", l), "the key of a .jsonl or .csv list in store.bucket, or empty")
		}
		if d.ShardBytes != 0 {
			k.Add("dataset.shard_bytes", fmt.Sprint(d.ShardBytes), "0 for source s3 (images used in place are not repacked)")
		}
	case d.List != "":
		k.Add("dataset.list", fmt.Sprintf("%q", d.List), "empty unless dataset.source is s3")
	case d.Source != "mnist" && d.Path == "":
		k.Add("dataset.path", `""`, "the source directory or file for source "+d.Source)
	}
	for key, v := range map[string]string{"dataset.train_split": c.Dataset.TrainSplit, "dataset.test_split": c.Dataset.TestSplit} {
		if !prefixRe.MatchString(v) || strings.Contains(v, "/") {
			k.Add(key, fmt.Sprintf("%q", v), "a split name such as train or test")
		}
	}
	if c.Dataset.TestSplit == c.Dataset.TrainSplit {
		// The probe would be scored on the images it was trained on.
		k.Add("dataset.test_split", fmt.Sprintf("%q", c.Dataset.TestSplit), "a split other than dataset.train_split")
	}

	k.Include("store", c.Store.Validate())

	k.Include("bus", c.Bus.Validate())

	k.IntIn("feeder.epochs", c.Feeder.Epochs, 0, 100000)
	k.IntIn("feeder.shard_run", c.Feeder.ShardRun, 1, feeder.MaxShardRun)

	k.Include("decode", c.Decode.Validate())

	// The augment section checks itself; the views of one sample must also
	// fit one bus message.
	a := c.Augment
	augErr := a.Validate()
	k.Include("augment", augErr)
	viewBytes := a.NViews * a.Size * a.Size * 3
	if augErr == nil && viewBytes+1024 > c.Bus.MaxPayload {
		k.Add("augment.size", a.Size, fmt.Sprintf("views of one sample (%d bytes for %d views) to fit bus.max_payload %d", viewBytes, a.NViews, c.Bus.MaxPayload))
	}

	k.Include("model", c.Model.Validate())

	k.Include("train", c.Train.Validate())
	if c.Model.DType == engine.BFloat16 && c.Train.Backend.Backend != trainer.BackendXLA {
		k.Add("model.dtype", c.Model.DType, "float32 or float64 on train.backend "+c.Train.Backend.Backend+" (bfloat16 runs on train.backend xla only)")
	}
	// The trainer may hold this many view groups unacknowledged (its
	// consumer's window, cmd/supflow's topology); a views stream that
	// cannot store them all fills with messages only the trainer can
	// free, and after a burst of redeliveries (a NATS restart) augment
	// and the trainer wait on each other for good.
	// The same in bytes: a batch whose views outgrow the stream never
	// completes, with augment waiting for room the trainer holds.
	window := c.Bus.TrainPending(c.Train.Stage.BatchSize)
	if c.Bus.MaxMsgs < int64(window) {
		k.Add("bus.stream_max_msgs", c.Bus.MaxMsgs, fmt.Sprintf(
			"at least %d (2 x train.batch_size + bus.batch + bus.max_ack_pending: the view messages the trainer may hold unacknowledged, at one sample each)", window))
	}
	if need := int64(window) * int64(viewBytes); augErr == nil && c.Bus.MaxBytes < need {
		k.Add("bus.stream_max_bytes", c.Bus.MaxBytes, fmt.Sprintf(
			"at least %d (the views of the %d samples the trainer may hold unacknowledged, %d bytes each)", need, window, viewBytes))
	}

	k.Include("evaluate", c.Evaluate.Validate())

	if a := c.Metrics.Addr; a != "" {
		if err := hostPort(a, false); err != "" {
			k.Add("metrics.addr", fmt.Sprintf("%q", a), "a listen address host:port, e.g. 127.0.0.1:9090 or :9090 ("+err+"), or empty for none")
		}
	}

	k.OneOf("log.format", c.Log.Format, "text", "json")
	k.OneOf("log.level", c.Log.Level, "debug", "info", "warn", "error")
	return k.Err()
}

// hostRe is a host name or an IPv4 address; IPv6 addresses are checked
// with net.ParseIP.
var hostRe = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$`)

// hostPort checks the syntax of a host:port address, without any lookup:
// a numeric port in [0, 65535] and a host name, an IP address or (unless
// needHost) nothing. It returns what is wrong, or "".
func hostPort(addr string, needHost bool) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "not host:port"
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || port == "" || n > 65535 {
		return "the port is not a number in [0, 65535]"
	}
	switch {
	case host == "" && needHost:
		return "no host"
	case host == "", hostRe.MatchString(host), net.ParseIP(host) != nil:
		return ""
	}
	return "the host is neither a name nor an IP address"
}
