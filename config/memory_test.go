package config

import (
	"errors"
	"strings"
	"testing"
)

// TestCheckMemory: validation accepted model.blocks=4096,4096,4096,4096,
// which then died of OOM (exit 2, the code of a bad configuration, after
// ingest had run). CheckMemory refuses it for a machine of any size with
// both figures and the keys to change, and accepts the defaults on a
// machine with a few GiB.
func TestCheckMemory(t *testing.T) {
	const machine = 16 << 30
	for _, tt := range []struct {
		sets  []string
		train bool
		ok    bool
		want  string
	}{
		{nil, true, true, ""},
		{nil, false, true, ""},
		{[]string{"model.blocks=4096,4096,4096,4096"}, true, false, "model: the trainer needs about "},
		{[]string{"model.blocks=4096,4096,4096,4096"}, false, false, "model: the evaluation needs about "},
		{[]string{"model.widths=4096,4096,4096,4096"}, true, false, "more than the 16.0 GiB of memory this machine has"},
		{[]string{"train.batch_size=65536", "augment.size=256", "bus.max_payload=8388608", "bus.stream_max_msgs=200000", "bus.stream_max_bytes=60000000000"}, true, false, "train.batch_size"},
		{[]string{"train.batch_size=65536", "augment.size=256", "bus.max_payload=8388608", "bus.stream_max_msgs=200000", "bus.stream_max_bytes=60000000000"}, false, true, ""},
	} {
		c, err := Load("", noEnv, tt.sets)
		if err != nil {
			t.Fatal(err)
		}
		est, err := c.CheckMemory(tt.train, machine)
		if tt.ok != (err == nil) || err != nil && (!errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("%v train=%v: estimate %s: %v, want %q", tt.sets, tt.train, Bytes(est.Total()), err, tt.want)
		}
		if _, err := c.CheckMemory(tt.train, 0); err != nil {
			t.Errorf("%v with the machine's memory unknown: %v", tt.sets, err)
		}
	}
	// The defaults, SupContrast's ResNet-18 on 256 x 2 views of 32 x 32,
	// peaked at 3854 MiB in 200 steps (docs/benchmarks.md).
	est, err := Default().TrainMemory()
	if err != nil || est.Total() < 3.5*(1<<30) || est.Total() > 4.5*(1<<30) {
		t.Errorf("the default configuration is estimated at %s (%v)", Bytes(est.Total()), err)
	}
}
