//go:build cgo

package main

import (
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
)

// writeFolder writes a synthetic JPEG ImageFolder for the end-to-end run:
// dir/<split>/class<k>/<i>.jpg, perClass images of w x h per class in
// split train and a quarter as many in val. A class is a hue and a stripe
// frequency, each image shifted, rotated and noised at random, so that
// views of one class look alike and the run learns something.
func writeFolder(dir string, classes, perClass, w, h int) error {
	rng := rand.New(rand.NewPCG(7, 13))
	for _, split := range []struct {
		name string
		n    int
	}{{"train", perClass}, {"val", max(1, perClass/4)}} {
		for k := range classes {
			d := filepath.Join(dir, split.name, fmt.Sprintf("class%02d", k))
			if err := os.MkdirAll(d, 0o755); err != nil {
				return err
			}
			for i := range split.n {
				if err := writeImage(filepath.Join(d, fmt.Sprintf("%05d.jpg", i)), rng, k, classes, w, h); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func writeImage(path string, rng *rand.Rand, class, classes, w, h int) error {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	hue := 2 * math.Pi * float64(class) / float64(classes)
	freq := 0.02 + 0.01*float64(class%4)
	angle, phase := rng.Float64()*math.Pi, rng.Float64()*2*math.Pi
	ca, sa := math.Cos(angle), math.Sin(angle)
	for y := range h {
		for x := range w {
			s := 0.5 + 0.5*math.Sin(freq*(ca*float64(x)+sa*float64(y))*2*math.Pi+phase)
			px := func(off float64) uint8 {
				v := 255 * (0.15 + 0.7*s*(0.5+0.5*math.Cos(hue+off)) + 0.1*rng.Float64())
				return uint8(min(255, max(0, v)))
			}
			img.Set(x, y, color.RGBA{px(0), px(2 * math.Pi / 3), px(4 * math.Pi / 3), 255})
		}
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := jpeg.Encode(f, img, &jpeg.Options{Quality: 90}); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
