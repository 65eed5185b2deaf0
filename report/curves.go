package report

import (
	"os"
	"path/filepath"
	"time"
)

// Curves is what pretraining leaves for the report (runs.Curves in the
// bucket): the per-step curve, the kNN monitor's scores and the totals the
// throughput is computed from. The train stage rewrites it after every
// checkpoint and reads it back when it resumes.
type Curves struct {
	Arch     string     `json:"arch"`
	Params   int64      `json:"params"`
	Points   []Point    `json:"points"`
	KNN      []KNNPoint `json:"knn"`
	Samples  int64      `json:"samples"`
	Seconds  float64    `json:"seconds"`
	Finished time.Time  `json:"finished"`
}

// WriteFile writes b to path atomically (a reader sees the old file or the
// new one, never half), readable by everyone: reports are for reading.
func WriteFile(path string, b []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil { // CreateTemp makes 0600
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
