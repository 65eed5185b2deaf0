package report

import (
	"bytes"
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

// Files are a report rendered: report.json and report.html.
type Files struct {
	JSON, HTML []byte
	HTMLPath   string // absolute path of the local report.html
}

// Save renders rep and writes report.json and report.html into dir
// (created if missing), each atomically.
func Save(dir string, rep *Report) (Files, error) {
	var js, html bytes.Buffer
	if err := WriteJSON(&js, rep); err != nil {
		return Files{}, err
	}
	if err := WriteHTML(&html, rep); err != nil {
		return Files{}, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Files{}, err
	}
	f := Files{JSON: js.Bytes(), HTML: html.Bytes()}
	if err := WriteFile(filepath.Join(dir, "report.json"), f.JSON); err != nil {
		return Files{}, err
	}
	path := filepath.Join(dir, "report.html")
	if err := WriteFile(path, f.HTML); err != nil {
		return Files{}, err
	}
	abs, err := filepath.Abs(path)
	f.HTMLPath = abs
	return f, err
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
