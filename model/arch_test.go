package model_test

import (
	"slices"
	"testing"

	"gorgonia.org/tensor"

	"github.com/supflow/supflow/model"
)

// TestArchParams checks that Arch names every parameter, in Params order,
// with its shape, for both block types and stems.
func TestArchParams(t *testing.T) {
	for _, cfg := range []model.Config{
		{Arch: "resnet18", Widths: []int{4, 8, 8, 16}},
		{Arch: "resnet50", Stem: "imagenet", Widths: []int{4, 8, 8, 16}, Blocks: []int{2, 1, 1, 1}, Head: "linear"},
	} {
		m, err := model.New(cfg, tensor.Float64, 1)
		if err != nil {
			t.Fatal(err)
		}
		a := m.Arch()
		type p struct {
			name  string
			shape []int
		}
		var got []p
		conv := func(c model.Conv) { got = append(got, p{c.Name + ".weight", []int{c.Out, c.In, c.Kernel, c.Kernel}}) }
		bn := func(b model.BatchNorm) {
			got = append(got, p{b.Name + ".weight", []int{b.Channels}}, p{b.Name + ".bias", []int{b.Channels}})
		}
		conv(a.Stem)
		bn(a.StemBN)
		for _, b := range a.Blocks {
			for i := range b.Convs {
				conv(b.Convs[i])
				bn(b.BNs[i])
			}
			if b.Shortcut != nil {
				conv(*b.Shortcut)
				bn(b.ShortcutBN)
			}
		}
		for _, l := range a.Head {
			got = append(got, p{l.Name + ".weight", []int{l.Out, l.In}}, p{l.Name + ".bias", []int{l.Out}})
		}
		want := m.ParamInfos()
		if len(got) != len(want) {
			t.Fatalf("%s: Arch has %d parameters, model %d", cfg.Arch, len(got), len(want))
		}
		for i := range got {
			if got[i].name != want[i].Name || !slices.Equal(got[i].shape, want[i].Shape) {
				t.Errorf("%s: parameter %d: Arch %s %v, model %s %v", cfg.Arch, i, got[i].name, got[i].shape, want[i].Name, want[i].Shape)
			}
		}
		if a.MaxPool != (cfg.Stem == "imagenet") {
			t.Errorf("%s: MaxPool %v for stem %q", cfg.Arch, a.MaxPool, cfg.Stem)
		}
	}
}
