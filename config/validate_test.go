package config

import (
	"errors"
	"strings"
	"testing"
)

// TestAddressesCheckedAtLoad: metrics.addr was not validated (a bad one
// failed the command with exit 1 once it listened, after other services
// had started), and a fragment in store.endpoint was ignored. Each form of
// address is now accepted or refused when the file is loaded.
func TestAddressesCheckedAtLoad(t *testing.T) {
	for _, tt := range []struct {
		key, value string
		ok         bool
	}{
		{"metrics.addr", "", true},
		{"metrics.addr", "127.0.0.1:9090", true},
		{"metrics.addr", ":9090", true},
		{"metrics.addr", "[::1]:9090", true},
		{"metrics.addr", "localhost:0", true},
		{"metrics.addr", "metrics.internal:65535", true},
		{"metrics.addr", "foo", false},
		{"metrics.addr", "9090", false},
		{"metrics.addr", ":http", false},
		{"metrics.addr", "127.0.0.1:65536", false},
		{"metrics.addr", "127.0.0.1:-1", false},
		{"metrics.addr", "127.0.0.1:", false},
		{"metrics.addr", "http://127.0.0.1:9090", false},
		{"metrics.addr", "127.0.0.1:9090/metrics", false},
		{"metrics.addr", "a b:9090", false},
		{"metrics.addr", "host\n:9090", false},
		{"store.endpoint", "minio:9000", true},
		{"store.endpoint", "minio:9000/bucket", false},
		{"store.endpoint", "minio:9000?x=1", false},
		{"store.endpoint", "minio:9000#x", false},
		{"store.endpoint", "http://minio:9000", false},
	} {
		sets := []string{tt.key + "=" + tt.value}
		if tt.key == "store.endpoint" {
			sets = append(sets, "store.embedded=false")
		}
		_, err := Load("", noEnv, sets)
		if tt.ok != (err == nil) || err != nil && (!errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.key)) {
			t.Errorf("%s=%q: %v, want ok=%v", tt.key, tt.value, err, tt.ok)
		}
	}
}

// TestSplitsDiffer: train_split equal to test_split was accepted, and the
// linear probe was scored on the images it was trained on.
func TestSplitsDiffer(t *testing.T) {
	_, err := Load("", noEnv, []string{"dataset.train_split=train", "dataset.test_split=train"})
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), `dataset.test_split = "train": want a split other than dataset.train_split`) {
		t.Errorf("err = %v", err)
	}
}

// TestBackendKeys: train.backend, train.devices (a divisor of
// train.batch_size) and a bfloat16 model are checked at load, each error naming its key; bfloat16 needs the xla
// backend.
func TestBackendKeys(t *testing.T) {
	for _, tt := range []struct {
		sets []string
		want string // "" = valid
	}{
		{[]string{"train.backend=cpu"}, ""},
		{[]string{"train.backend=xla", "train.pjrt_plugin=/x/pjrt.so", "train.devices=1"}, ""},
		{[]string{"train.backend=xla", "model.dtype=bfloat16"}, ""},
		{[]string{"train.backend=gpu"}, "train.backend"},
		{[]string{"train.backend=xla", "train.pjrt_plugin=/x/pjrt.so", "train.devices=2", "train.sync_bn=true", "train.batch_size=64"}, ""},
		{[]string{"train.devices=3", "train.batch_size=64"}, "train.devices = 3: want a divisor of train.batch_size 64"},
		{[]string{"train.devices=-1"}, "train.devices"},
		{[]string{"model.dtype=bfloat16"}, "model.dtype = bfloat16: want float32 or float64 on train.backend cpu"},
	} {
		_, err := Load("", noEnv, tt.sets)
		if tt.want == "" && err != nil || tt.want != "" && (!errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("%q: %v, want %q", tt.sets, err, tt.want)
		}
	}
}
