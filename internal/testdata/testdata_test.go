package testdata_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/supflow/supflow/internal/testdata"
	"github.com/supflow/supflow/safetensors"
)

// folders are the fixture folders the tests read.
var folders = []string{"supcon", "resnet", "augment"}

// TestRepoFixtures checks that Dir points into the repository (unless
// SUPFLOW_TESTDATA overrides it) and that every folder holds fixtures.
func TestRepoFixtures(t *testing.T) {
	for _, name := range folders {
		dir := testdata.Dir(t, name)
		if os.Getenv("SUPFLOW_TESTDATA") == "" && !strings.HasSuffix(dir, filepath.Join("testdata", name)) {
			t.Errorf("Dir(%q) = %s, want the repository's testdata/%s", name, dir, name)
		}
		files, err := filepath.Glob(filepath.Join(dir, "*.json"))
		if err != nil || len(files) == 0 {
			t.Errorf("%s: no JSON fixtures (%v)", dir, err)
		}
	}
}

// TestSharedFixturesFormat compares the repository's fixture set with the
// shared reference set (../shared/testdata or $SUPFLOW_SHARED_TESTDATA)
// where that exists: every shared file is present in the repository under
// the same name; every JSON field of the shared file exists in the
// repository's file with the same kind (object, array of the same length,
// string, number, bool, null) and the same names, ids, ops and tensor
// names; every safetensors file holds the same tensor names with the same
// dtypes and shapes. It proves the committed files have the shared format
// and case list, not their values: the inputs come from different seeds.
// The values are checked by the fixture tests of loss, model, optim,
// augment and safetensors, which run over both sets (testdata.ForEach), and
// by testdata/gen/compare_shared.py, which feeds the shared inputs through
// the generators.
func TestSharedFixturesFormat(t *testing.T) {
	for _, name := range folders {
		t.Run(name, func(t *testing.T) {
			shared, ok := testdata.SharedDir(t, name)
			if !ok {
				t.Skipf("shared reference fixtures not found at %s; nothing to compare with", shared)
			}
			repo := testdata.Dir(t, name)
			entries, err := os.ReadDir(shared)
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for _, e := range entries {
				file := e.Name()
				switch filepath.Ext(file) {
				case ".json":
					compareJSON(t, filepath.Join(shared, file), filepath.Join(repo, file))
				case ".safetensors":
					compareTensors(t, filepath.Join(shared, file), filepath.Join(repo, file))
				default:
					continue
				}
				n++
			}
			if n == 0 {
				t.Fatalf("%s: no fixture files", shared)
			}
		})
	}
}

// identity holds the fields whose values name things (cases, tensors,
// ops): they must be equal, not only of the same kind.
var identity = map[string]bool{"name": true, "id": true, "op": true, "input": true, "output": true, "tensor": true, "tensors_file": true, "model": true}

func compareJSON(t *testing.T, sharedPath, repoPath string) {
	t.Helper()
	load := func(p string) any {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var v any
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		return v
	}
	for _, d := range sameShape(filepath.Base(repoPath), load(sharedPath), load(repoPath), "$") {
		t.Error(d)
	}
}

// sameShape lists where got lacks a field of want or has a different kind
// or length there, or a different value in an identity field.
func sameShape(file string, want, got any, path string) []string {
	kind := func(v any) string { return fmt.Sprintf("%T", v) }
	if kind(want) != kind(got) {
		return []string{fmt.Sprintf("%s %s: %s, shared has %s", file, path, kind(got), kind(want))}
	}
	var diffs []string
	switch w := want.(type) {
	case map[string]any:
		g := got.(map[string]any)
		for k, wv := range w {
			gv, ok := g[k]
			if !ok {
				diffs = append(diffs, fmt.Sprintf("%s %s: field %q missing", file, path, k))
				continue
			}
			if identity[k] && fmt.Sprint(wv) != fmt.Sprint(gv) {
				diffs = append(diffs, fmt.Sprintf("%s %s.%s = %v, shared has %v", file, path, k, gv, wv))
				continue
			}
			diffs = append(diffs, sameShape(file, wv, gv, path+"."+k)...)
		}
	case []any:
		g := got.([]any)
		if len(g) != len(w) {
			return []string{fmt.Sprintf("%s %s: %d entries, shared has %d", file, path, len(g), len(w))}
		}
		for i := range w {
			diffs = append(diffs, sameShape(file, w[i], g[i], fmt.Sprintf("%s[%d]", path, i))...)
		}
	}
	return diffs
}

func compareTensors(t *testing.T, sharedPath, repoPath string) {
	t.Helper()
	want, err := safetensors.ReadFile(sharedPath)
	if err != nil {
		t.Fatal(err)
	}
	got, err := safetensors.ReadFile(repoPath)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Base(repoPath)
	if len(got.Tensors) != len(want.Tensors) {
		t.Errorf("%s: %d tensors, shared has %d", file, len(got.Tensors), len(want.Tensors))
	}
	for name, w := range want.Tensors {
		g, ok := got.Tensors[name]
		if !ok {
			t.Errorf("%s: tensor %s missing", file, name)
			continue
		}
		if g.DType != w.DType || !slices.Equal(g.Shape, w.Shape) {
			t.Errorf("%s: %s is %s %v, shared has %s %v", file, name, g.DType, g.Shape, w.DType, w.Shape)
		}
	}
}
