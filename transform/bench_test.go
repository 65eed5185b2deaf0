package transform

import (
	"fmt"
	"testing"
)

// BenchmarkViews measures the production path (draw, crop+resize, flip,
// jitter, grayscale, rounding) with SupContrast's policy. One op is one
// view, so allocs/op is allocations per view; pairs/s counts two views.
// Reference, torchvision 0.14 on one core of the development machine
// (2026-11-27, SupContrast's transform): 2393 pairs/s from
// 32x32 images, 69.8 pairs/s from 3.8 MP photos to 224x224.
func BenchmarkViews(b *testing.B) {
	for _, bc := range []struct {
		h, w, size int
		antialias  bool
	}{
		{32, 32, 32, true},
		{32, 32, 32, false},
		{816, 1224, 224, true}, // ~1 MP photo
		{816, 1224, 224, false},
		{1600, 2400, 224, true}, // 3.8 MP, the size of the torchvision figure above
	} {
		b.Run(fmt.Sprintf("%dx%d_to_%d_aa=%v", bc.h, bc.w, bc.size, bc.antialias), func(b *testing.B) {
			a := mustNew(b, Config{Size: bc.size, Antialias: &bc.antialias})
			src := testPixels(bc.h, bc.w, 3)
			dst := make([]byte, 0, bc.size*bc.size*3)
			// A full-image crop sizes the scratch space for every later view.
			if _, err := a.Apply(dst, src, Params{Box: Box{Height: src.H, Width: src.W}}); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				p := a.DrawParams(Key{Seed: 1, SampleID: uint64(i / 2)}, i%2, src.H, src.W)
				if _, err := a.Apply(dst[:0], src, p); err != nil {
					b.Fatal(err)
				}
				i++
			}
			b.ReportMetric(float64(b.N)/2/b.Elapsed().Seconds(), "pairs/s")
		})
	}
}
