package augment

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
	tmp  []float32 // horizontal pass output, [C][crop height][out width]
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
// The horizontal pass runs first, as in PyTorch's antialiased kernel.
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
	if n := src.C * b.Height * width; cap(r.tmp) < n {
		r.tmp = make([]float32, n)
	} else {
		r.tmp = r.tmp[:n]
	}
	if src.C == 3 {
		r.horizontal3(src, b, width)
	} else {
		r.horizontal1(src, b, width)
	}
	dst.Reset(src.C, height, width)
	r.vertical(dst, src.C, b.Height)
	return nil
}

// toFloat maps a byte v to v/255, as to_tensor does.
var toFloat = func() (t [256]float32) {
	for i := range t {
		t[i] = float32(i) / 255
	}
	return t
}()

// horizontal3 resizes the rows of an RGB crop, converting bytes to floats.
func (r *Resizer) horizontal3(src Pixels, b Box, width int) {
	plane := b.Height * width
	t0, t1, t2 := r.tmp[:plane], r.tmp[plane:2*plane], r.tmp[2*plane:3*plane]
	for y := 0; y < b.Height; y++ {
		row := src.Pix[((b.Top+y)*src.W+b.Left)*3 : ((b.Top+y)*src.W+b.Left+b.Width)*3]
		o := y * width
		for x := 0; x < width; x++ {
			ws := r.x.w[r.x.off[x]:r.x.off[x+1]]
			p := row[r.x.start[x]*3:]
			// Even and odd taps go to separate sums: one chain of
			// dependent additions per channel would stall on add latency.
			var a0, a1, a2, b0, b1, b2 float32
			for len(ws) >= 2 && len(p) >= 6 {
				w, v := ws[0], ws[1]
				a0 += w * toFloat[p[0]]
				a1 += w * toFloat[p[1]]
				a2 += w * toFloat[p[2]]
				b0 += v * toFloat[p[3]]
				b1 += v * toFloat[p[4]]
				b2 += v * toFloat[p[5]]
				ws, p = ws[2:], p[6:]
			}
			if len(ws) == 1 && len(p) >= 3 {
				w := ws[0]
				a0 += w * toFloat[p[0]]
				a1 += w * toFloat[p[1]]
				a2 += w * toFloat[p[2]]
			}
			s0, s1, s2 := a0+b0, a1+b1, a2+b2
			t0[o+x], t1[o+x], t2[o+x] = s0, s1, s2
		}
	}
}

// horizontal1 is horizontal3 for one channel.
func (r *Resizer) horizontal1(src Pixels, b Box, width int) {
	for y := 0; y < b.Height; y++ {
		row := src.Pix[(b.Top+y)*src.W+b.Left : (b.Top+y)*src.W+b.Left+b.Width]
		out := r.tmp[y*width : (y+1)*width]
		for x := range out {
			ws := r.x.w[r.x.off[x]:r.x.off[x+1]]
			p := row[r.x.start[x]:]
			p = p[:len(ws)]
			var s float32
			for j, w := range ws {
				s += w * toFloat[p[j]]
			}
			out[x] = s
		}
	}
}

// vertical resizes the columns of the intermediate into dst, one output row
// at a time as a weighted sum of whole input rows (contiguous reads).
func (r *Resizer) vertical(dst *Image, channels, cropH int) {
	width, height := dst.W, dst.H
	for c := 0; c < channels; c++ {
		in := r.tmp[c*cropH*width : (c+1)*cropH*width]
		for oy := 0; oy < height; oy++ {
			out := dst.Pix[(c*height+oy)*width : (c*height+oy+1)*width]
			ws := r.y.w[r.y.off[oy]:r.y.off[oy+1]]
			base := r.y.start[oy] * width
			row := in[base : base+width]
			w := ws[0]
			for x, v := range row {
				out[x] = w * v
			}
			for j := 1; j < len(ws); j++ {
				row := in[base+j*width : base+(j+1)*width]
				w := ws[j]
				for x, v := range row {
					out[x] += w * v
				}
			}
		}
	}
}
