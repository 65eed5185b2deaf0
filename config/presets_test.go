package config

import (
	"path/filepath"
	"slices"
	"testing"
)

// TestPresets loads and validates every file of configs/ (a new preset is
// picked up without a change here) and checks the recipe each one names:
// SupContrast's CIFAR hyper-parameters, the ImageNet stem at 224 for an
// ImageFolder of photos, RGB on a small network for the laptop preset.
func TestPresets(t *testing.T) {
	files, err := filepath.Glob("../configs/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	loaded := map[string]*Config{}
	for _, f := range files {
		c, err := Load(f, noEnv, nil)
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		names = append(names, filepath.Base(f))
		loaded[filepath.Base(f)] = c
	}
	if want := []string{"cifar10.yaml", "cifar100.yaml", "imagenet-folder.yaml", "small-rgb.yaml"}; !slices.Equal(names, want) {
		t.Fatalf("presets %v, want %v", names, want)
	}
	for _, name := range []string{"cifar10.yaml", "cifar100.yaml"} {
		c := loaded[name]
		e, s := c.Train.Engine, c.Train.Stage
		if c.Model.Arch != "resnet50" || c.Model.Stem != "cifar" || s.BatchSize != 1024 || e.Schedule.BaseLR != 0.5 ||
			e.Loss.Temperature != 0.1 || s.Epochs != 1000 || e.Schedule.Decay != "cosine" || !e.Schedule.Warm ||
			e.Schedule.WarmEpochs != 10 || e.Optim.Momentum != 0.9 || e.Optim.WeightDecay != 1e-4 ||
			c.Augment.Size != 32 || c.Decode.Gray || c.Dataset.Source != name[:len(name)-len(".yaml")] {
			t.Errorf("%s is not SupContrast's CIFAR recipe: %+v", name, c)
		}
	}
	if c := loaded["imagenet-folder.yaml"]; c.Model.Stem != "imagenet" || c.Model.Arch != "resnet50" || c.Augment.Size != 224 ||
		c.Dataset.Source != "imagefolder" || c.Decode.Gray {
		t.Errorf("imagenet-folder.yaml: stem %s arch %s size %d source %s gray %v", c.Model.Stem, c.Model.Arch, c.Augment.Size, c.Dataset.Source, c.Decode.Gray)
	}
	if c := loaded["small-rgb.yaml"]; c.Dataset.Source != "imagefolder" || c.Decode.Gray || *c.Augment.FlipP != 0.5 ||
		!c.Store.Embedded || !c.Bus.Embedded || c.Dataset.LimitTrain != 0 {
		t.Errorf("small-rgb.yaml: source %s gray %v flip %v embedded %v/%v limit %d", c.Dataset.Source, c.Decode.Gray, *c.Augment.FlipP,
			c.Store.Embedded, c.Bus.Embedded, c.Dataset.LimitTrain)
	}
}
