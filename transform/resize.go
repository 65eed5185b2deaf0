package transform

import (
	"fmt"
	"math"
)

// Resizer crops and resizes with torchvision 0.14's bilinear filters. Its own
// kernel rather than disintegration/imaging: imaging's resize is not
// PyTorch's antialias filter (support and weight normalisation differ) and
// allocates a new image per call, while a Resizer reuses its weight tables
// and intermediate buffer. The zero value is ready to use; a Resizer is not
// safe for concurrent use.
type Resizer struct {
	x, y axis
	tmp  []float32 // vertical pass output, [out height][crop width][C]
}

// axis holds the taps of a 1-D resize: output i is the sum over j of
// w[off[i]+j] * in[start[i]+j] for j < off[i+1]-off[i].
type axis struct {
	start []int
	off   []int
	w     []float32
}

// set computes the taps for n input samples to m outputs, in float64, once
// per call rather than per row.
func (a *axis) set(n, m int, antialias bool) {
	a.start, a.off, a.w = a.start[:0], append(a.off[:0], 0), a.w[:0]
	scale := float64(n) / float64(m)
	if !antialias {
		// interpolate(mode="bilinear", align_corners=False).
		for i := 0; i < m; i++ {
			src := max(scale*(float64(i)+0.5)-0.5, 0)
			i0 := int(src)
			l1 := src - float64(i0)
			a.start = append(a.start, i0)
			if i0 < n-1 {
				a.w = append(a.w, float32(1-l1), float32(l1))
			} else {
				a.w = append(a.w, 1)
			}
			a.off = append(a.off, len(a.w))
		}
		return
	}
	// _upsample_bilinear2d_aa: a triangle filter stretched by the scale when
	// downsampling, weights normalised to sum to one.
	support, inv := 1.0, 1.0
	if scale >= 1 {
		support, inv = scale, 1/scale
	}
	tri := func(j int, center float64) float64 {
		return max(0, 1-math.Abs((float64(j)-center+0.5)*inv))
	}
	for i := 0; i < m; i++ {
		center := scale * (float64(i) + 0.5)
		lo := max(int(center-support+0.5), 0)
		hi := min(int(center+support+0.5), n)
		// The tap nearest the center has weight >= 1/2, so total > 0.
		total := 0.0
		for j := lo; j < hi; j++ {
			total += tri(j, center)
		}
		for j := lo; j < hi; j++ {
			a.w = append(a.w, float32(tri(j, center)/total))
		}
		a.start = append(a.start, lo)
		a.off = append(a.off, len(a.w))
	}
}

// ResizedCrop writes into dst the box b of src resized to height x width, as
// torchvision's F.resized_crop(img, top, left, h, w, [height, width],
// BILINEAR, antialias) on to_tensor(src). antialias=true is what PIL inputs
// get (and SupContrast uses); false is the tensor default of torchvision 0.14.
//
// The vertical pass runs first, where PyTorch runs the horizontal one: it
// reads whole rows of bytes, which axpy vectorises, and it leaves the
// horizontal pass height rows instead of the crop's. On a photo cropped to
// 224 that moves most of the work into the vectorised loop. The order
// changes only the float rounding (about 1e-7).
func (r *Resizer) ResizedCrop(dst *Image, src Pixels, b Box, height, width int, antialias bool) error {
	if err := src.Validate(); err != nil {
		return err
	}
	if err := b.within(src.H, src.W); err != nil {
		return err
	}
	if height <= 0 || width <= 0 || height > MaxSide || width > MaxSide {
		return fmt.Errorf("%w: output size %dx%d, want sides in [1, %d]", ErrParam, height, width, MaxSide)
	}
	r.x.set(b.Width, width, antialias)
	r.y.set(b.Height, height, antialias)
	if n := height * b.Width * src.C; cap(r.tmp) < n {
		r.tmp = make([]float32, n)
	} else {
		r.tmp = r.tmp[:n]
	}
	r.vertical(src, b, height)
	dst.Reset(src.C, height, width)
	if src.C == 3 {
		r.horizontal3(dst, b.Width)
	} else {
		r.horizontal1(dst, b.Width)
	}
	return nil
}

// vertical resizes the columns of the crop into r.tmp, converting bytes to
// floats: each output row is a weighted sum of whole input rows, with the
// 1/255 of to_tensor folded into the weights.
func (r *Resizer) vertical(src Pixels, b Box, height int) {
	n := b.Width * src.C
	for oy := 0; oy < height; oy++ {
		out := r.tmp[oy*n : (oy+1)*n]
		clear(out)
		for j, w := range r.y.w[r.y.off[oy]:r.y.off[oy+1]] {
			first := ((b.Top+r.y.start[oy]+j)*src.W + b.Left) * src.C
			axpy(out, src.Pix[first:first+n], w/255)
		}
	}
}

// horizontal3 resizes the rows of r.tmp, RGB, into the planes of dst.
func (r *Resizer) horizontal3(dst *Image, cropW int) {
	width, height := dst.W, dst.H
	plane := height * width
	t0, t1, t2 := dst.Pix[:plane], dst.Pix[plane:2*plane], dst.Pix[2*plane:3*plane]
	for y := 0; y < height; y++ {
		row := r.tmp[y*cropW*3 : (y+1)*cropW*3]
		o := y * width
		for x := 0; x < width; x++ {
			ws := r.x.w[r.x.off[x]:r.x.off[x+1]]
			p := row[r.x.start[x]*3:]
			// Even and odd taps go to separate sums: one chain of
			// dependent additions per channel would stall on add latency.
			var a0, a1, a2, b0, b1, b2 float32
			for len(ws) >= 2 && len(p) >= 6 {
				w, v := ws[0], ws[1]
				a0 += w * p[0]
				a1 += w * p[1]
				a2 += w * p[2]
				b0 += v * p[3]
				b1 += v * p[4]
				b2 += v * p[5]
				ws, p = ws[2:], p[6:]
			}
			if len(ws) == 1 && len(p) >= 3 {
				w := ws[0]
				a0 += w * p[0]
				a1 += w * p[1]
				a2 += w * p[2]
			}
			t0[o+x], t1[o+x], t2[o+x] = a0+b0, a1+b1, a2+b2
		}
	}
}

// horizontal1 is horizontal3 for one channel.
func (r *Resizer) horizontal1(dst *Image, cropW int) {
	width := dst.W
	for y := 0; y < dst.H; y++ {
		row := r.tmp[y*cropW : (y+1)*cropW]
		out := dst.Pix[y*width : (y+1)*width]
		for x := range out {
			ws := r.x.w[r.x.off[x]:r.x.off[x+1]]
			p := row[r.x.start[x]:]
			p = p[:len(ws)]
			var s float32
			for j, w := range ws {
				s += w * p[j]
			}
			out[x] = s
		}
	}
}

// axpyGeneric is axpy without vector instructions.
func axpyGeneric(acc []float32, row []byte, w float32) {
	acc = acc[:len(row)]
	for i, v := range row {
		acc[i] += w * float32(v)
	}
}
