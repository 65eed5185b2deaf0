package engine

import (
	"context"
	"fmt"

	"gorgonia.org/tensor"
)

// Images is a set of same-size uint8 images, row-major HWC, back to back.
type Images struct {
	N, Height, Width, Channels int
	Pixels                     []uint8
}

// fill writes the batch's views, normalized, into dst [rows,C,H,W]; row r is
// view r/Size of sample r%Size, the order of b.Pixels.
func (t *CPU) fill(dst *tensor.Dense, b Batch) error {
	return t.normalize(dst, b.Pixels, b.Size*b.Views, b.Height, b.Width, b.Channels)
}

func (t *CPU) normalize(dst *tensor.Dense, px []uint8, rows, h, w, c int) error {
	scale := make([]float64, c)
	shift := make([]float64, c)
	for k := range c {
		scale[k] = 1 / (255 * t.cfg.Std[k])
		shift[k] = -t.cfg.Mean[k] / t.cfg.Std[k]
	}
	switch d := dst.Data().(type) {
	case []float32:
		toNCHW(d, px, rows, h, w, c, scale, shift)
	case []float64:
		toNCHW(d, px, rows, h, w, c, scale, shift)
	default:
		return fmt.Errorf("engine: input dtype %T", d)
	}
	return nil
}

func toNCHW[T float32 | float64](dst []T, px []uint8, rows, h, w, c int, scale, shift []float64) {
	plane := h * w
	for r := range rows {
		src := px[r*plane*c : (r+1)*plane*c]
		out := dst[r*plane*c : (r+1)*plane*c]
		for k := range c {
			o := out[k*plane : (k+1)*plane]
			sc, sh := scale[k], shift[k]
			for i := range plane {
				o[i] = T(float64(src[i*c+k])*sc + sh)
			}
		}
	}
}

// EncodeChunk is the batch size Encode runs at, in every backend: fixed,
// so that one graph serves any number of images (the last chunk is
// padded).
const EncodeChunk = 128

// Encode returns the encoder features [N, d] of images in eval mode (running
// batch-norm statistics, no update), as float32 rows. Training mode is
// restored by the next Step.
func (t *CPU) Encode(ctx context.Context, im Images) ([]float32, int, error) {
	f, d, _, _, err := t.forwardFrozen(ctx, im, false)
	return f, d, err
}

// Project is Encode with, beside the features, the projection head's
// L2-normalised output [N, p] (SupConResNet's forward: the vectors the
// contrastive loss compares).
func (t *CPU) Project(ctx context.Context, im Images) (features []float32, d int, proj []float32, p int, err error) {
	return t.forwardFrozen(ctx, im, true)
}

// forwardFrozen runs the model in eval mode, 128 images at a time.
func (t *CPU) forwardFrozen(ctx context.Context, im Images, head bool) ([]float32, int, []float32, int, error) {
	if err := t.CheckImages(im); err != nil {
		return nil, 0, nil, 0, err
	}
	d := t.model.EncoderDim()
	out := make([]float32, im.N*d)
	var p int
	var proj []float32
	if head {
		p = t.model.Config().FeatDim
		proj = make([]float32, im.N*p)
	}
	t.model.SetTraining(false)
	chunk := min(EncodeChunk, im.N)
	key := graphKey{rows: chunk, h: im.Height, w: im.Width}
	buf, ok := t.encode[key]
	if !ok {
		buf = &encodeBuf{input: tensor.New(tensor.Of(t.dt), tensor.WithShape(chunk, im.Channels, im.Height, im.Width))}
		t.encode[key] = buf
	}
	err := im.Chunks(ctx, chunk, func(lo, n int, src []uint8) error {
		if err := t.normalize(buf.input, src, chunk, im.Height, im.Width, im.Channels); err != nil {
			return err
		}
		res, err := t.model.Forward(buf.input)
		if err != nil {
			return fmt.Errorf("engine: encode: %w", err)
		}
		rows(out[lo*d:(lo+n)*d], res.Encoder)
		if head {
			rows(proj[lo*p:(lo+n)*p], res.Output)
		}
		return nil
	})
	if err != nil {
		return nil, 0, nil, 0, err
	}
	return out, d, proj, p, nil
}

// Chunks calls fn for the images chunk at a time, in order, with the
// first image's index, the count n and the pixels of exactly chunk images:
// the last chunk's missing images are zeros, so a backend's program or
// graph for one shape serves every chunk. It stops at ctx's end or fn's
// first error.
func (im Images) Chunks(ctx context.Context, chunk int, fn func(lo, n int, px []uint8) error) error {
	size := im.Height * im.Width * im.Channels
	var padded []uint8
	for lo := 0; lo < im.N; lo += chunk {
		if err := ctx.Err(); err != nil {
			return err
		}
		n := min(chunk, im.N-lo)
		src := im.Pixels[lo*size : (lo+n)*size]
		if n < chunk {
			padded = make([]uint8, chunk*size)
			copy(padded, src)
			src = padded
		}
		if err := fn(lo, n, src); err != nil {
			return err
		}
	}
	return nil
}

// rows copies the first len(dst) values of x into dst as float32.
func rows(dst []float32, x *tensor.Dense) {
	switch f := x.Data().(type) {
	case []float32:
		copy(dst, f)
	case []float64:
		for i := range dst {
			dst[i] = float32(f[i])
		}
	}
}
