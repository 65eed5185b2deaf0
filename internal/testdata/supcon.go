package testdata

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// SupConCase is one reference case of the supcon fixtures (the fields of
// testdata/supcon/README.md).
type SupConCase struct {
	Name            string        `json:"name"`
	Bsz             int           `json:"bsz"`
	NViews          int           `json:"n_views"`
	Dim             int           `json:"dim"`
	Temperature     float64       `json:"temperature"`
	BaseTemperature float64       `json:"base_temperature"`
	ContrastMode    string        `json:"contrast_mode"`
	Labels          []int         `json:"labels"`
	Mask            [][]float64   `json:"mask"`
	Features        [][][]float64 `json:"features"`
	Loss            float64       `json:"loss"`
	Grad            [][][]float64 `json:"grad"`
	LossFloat32     float64       `json:"loss_float32"`
	AnchorLosses    [][]float64   `json:"anchor_losses"`
	AnchorPositives [][]float64   `json:"anchor_num_positives"`
}

// SupConCases reads every case (*.json) of the supcon fixture folder dir;
// a folder without any fails the test.
func SupConCases(t testing.TB, dir string) []SupConCase {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("testdata: no supcon cases in %s: %v", dir, err)
	}
	cases := make([]SupConCase, 0, len(paths))
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var c SupConCase
		if err := json.Unmarshal(b, &c); err != nil {
			t.Fatalf("testdata: %s: %v", p, err)
		}
		cases = append(cases, c)
	}
	return cases
}

// ViewMajor flattens a [bsz][views][dim] array (a case's Features or Grad)
// into rows v*bsz+i, the layout the loss takes.
func ViewMajor(x [][][]float64) []float64 {
	bsz, views, dim := len(x), len(x[0]), len(x[0][0])
	out := make([]float64, 0, bsz*views*dim)
	for v := range views {
		for i := range bsz {
			out = append(out, x[i][v]...)
		}
	}
	return out
}

// FlatMask is the case's [bsz,bsz] mask row-major, nil when it has none.
func (c SupConCase) FlatMask() []float64 {
	if c.Mask == nil {
		return nil
	}
	var m []float64
	for _, row := range c.Mask {
		m = append(m, row...)
	}
	return m
}
