package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func write(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "pipeline.yaml")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func noEnv(string) (string, bool) { return "", false }

func TestRepoPipelineYAMLIsValid(t *testing.T) {
	if _, err := Load("../pipeline.yaml", noEnv, nil); err != nil {
		t.Fatalf("pipeline.yaml: %v", err)
	}
}

func TestDefaultsValid(t *testing.T) {
	if err := Default().Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestLoadErrorsNameTheField(t *testing.T) {
	cases := []struct {
		name, yaml string
		sets       []string
		want       string
	}{
		{"unknown key", "train:\n  bogus: 1\n", nil, "bogus"},
		{"unknown section", "trainer:\n  epochs: 1\n", nil, "trainer"},
		{"wrong type", "train:\n  epochs: many\n", nil, "epochs"},
		{"bad duration", "bus:\n  ack_wait: soon\n", nil, "line 2, column 13: bus.ack_wait: want a duration (e.g. 30s, 2m), got a string"},
		{"duration without unit", "bus:\n  ack_wait: 60\n", nil, "line 2, column 13: bus.ack_wait: want a duration (e.g. 30s, 2m), got an integer"},
		{"range", "train:\n  batch_size: 1\n", nil, "train.batch_size"},
		{"enum", "model:\n  arch: vgg\n", nil, "model.arch = \"vgg\": want one of resnet18"},
		{"negative lr", "train:\n  lr: -1\n", nil, "train.lr"},
		{"widths length", "model:\n  widths: [8, 16]\n", nil, "model.widths"},
		{"scale order", "augment:\n  scale: [0.9, 0.2]\n", nil, "augment.scale"},
		{"payload too small for views", "augment:\n  size: 512\n", nil, "bus.max_payload"},
		{"stream smaller than the trainer's window", "bus:\n  stream_max_msgs: 100\n  batch: 1\n", nil, "bus.stream_max_msgs = 100: want at least 577"},
		{"stream bytes smaller than the trainer's views", "augment:\n  size: 224\ntrain:\n  batch_size: 2048\nbus:\n  stream_max_msgs: 5000\n", nil,
			"bus.stream_max_bytes = 1073741824: want at least 1329463296 (the views of the 4416 samples"},
		{"external without url", "bus:\n  embedded: false\n", nil, "bus.url"},
		{"prefix traversal", "dataset:\n  prefix: ../etc\n", nil, "dataset.prefix"},
		{"set unknown", "", []string{"train.nope=1"}, `unknown key "train.nope"`},
		{"set malformed", "", []string{"train.epochs"}, "key=value"},
		{"set wrong type", "", []string{"train.epochs=x"}, "train.epochs"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := ""
			if tc.yaml != "" {
				path = write(t, tc.yaml)
			}
			_, err := Load(path, noEnv, tc.sets)
			if err == nil {
				t.Fatal("no error")
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error %v does not wrap ErrInvalid", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
		})
	}
}

func TestMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"), noEnv, nil)
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "nope.yaml") {
		t.Fatalf("err = %v", err)
	}
}

func TestOverridesApplyInOrder(t *testing.T) {
	path := write(t, "train:\n  epochs: 5\n  batch_size: 64\nbus:\n  ack_wait: 10s\n")
	env := map[string]string{"SUPFLOW_TRAIN_EPOCHS": "7", "SUPFLOW_MODEL_WIDTHS": "8,16,32,64", "SUPFLOW_AUGMENT_SCALE": "0.3,1"}
	cfg, err := Load(path, func(k string) (string, bool) { v, ok := env[k]; return v, ok }, []string{"train.epochs=9"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Train.Stage.Epochs != 9 || cfg.Train.Stage.BatchSize != 64 {
		t.Errorf("train = %+v", cfg.Train)
	}
	if cfg.Bus.AckWait != 10*time.Second {
		t.Errorf("ack_wait = %v", cfg.Bus.AckWait)
	}
	if len(cfg.Model.Widths) != 4 || cfg.Model.Widths[3] != 64 || cfg.Augment.Scale[0] != 0.3 {
		t.Errorf("model.widths = %v, augment.scale = %v", cfg.Model.Widths, cfg.Augment.Scale)
	}
}

func TestKeysAndEnvNames(t *testing.T) {
	keys := Keys()
	found := false
	for _, k := range keys {
		if k == "train.batch_size" {
			found = true
		}
	}
	if !found || EnvName("train.batch_size") != "SUPFLOW_TRAIN_BATCH_SIZE" {
		t.Fatalf("keys %v", keys)
	}
}

func FuzzLoad(f *testing.F) {
	f.Add("train:\n  epochs: 3\n")
	f.Add("model:\n  widths: [8, 16, 32, 64]\n")
	f.Add("bus:\n  ack_wait: 1m\n")
	f.Add("{")
	f.Fuzz(func(t *testing.T, body string) {
		p := filepath.Join(t.TempDir(), "p.yaml")
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		cfg, err := Load(p, noEnv, nil)
		if err == nil && cfg.Validate() != nil {
			t.Fatal("Load returned a config that does not validate")
		}
	})
}
