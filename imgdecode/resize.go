package imgdecode

import "math"

// precisionBits is the fixed-point precision of the filter weights, as in
// PIL's 8-bit resampler, so results match Image.resize to the rounding.
const precisionBits = 32 - 8 - 2

// half rounds a fixed-point sum to the nearest byte.
const half = 1 << (precisionBits - 1)

// kernel holds, for each output position o, the first input index start[o]
// and the fixed-point weights w[off[o]:off[o+1]] of the inputs it averages,
// in flat slices: three allocations per axis, not one per output.
type kernel struct {
	start, off []int
	w          []int32
}

// taps returns the weights of output o.
func (k *kernel) taps(o int) []int32 { return k.w[k.off[o]:k.off[o+1]] }

// bilinearKernel builds the antialiased triangle filter from in to out
// samples: when shrinking, its support widens with the scale so that every
// input contributes, which is what makes PIL's BILINEAR antialiased.
func bilinearKernel(in, out int) kernel {
	scale := float64(in) / float64(out)
	filterScale := max(scale, 1)
	support := filterScale // the triangle's support is 1 at unit scale
	perOut := int(math.Ceil(support))*2 + 1
	k := kernel{start: make([]int, out), off: make([]int, out+1), w: make([]int32, 0, out*perOut)}
	taps := make([]float64, 0, perOut)
	for o := range out {
		center := (float64(o) + 0.5) * scale
		lo := max(int(center-support+0.5), 0)
		hi := min(int(center+support+0.5), in)
		taps = taps[:0]
		var sum float64
		for i := lo; i < hi; i++ {
			t := max(1-math.Abs((float64(i)-center+0.5)/filterScale), 0)
			taps = append(taps, t)
			sum += t
		}
		for _, t := range taps {
			if sum != 0 {
				t /= sum
			}
			k.w = append(k.w, int32(math.Floor(t*(1<<precisionBits)+0.5)))
		}
		k.start[o], k.off[o+1] = lo, len(k.w)
	}
	return k
}

func clip8(v int32) byte {
	v >>= precisionBits
	switch {
	case v < 0:
		return 0
	case v > 255:
		return 255
	}
	return byte(v)
}

// resizeBilinear resamples m to w x h, horizontally then vertically as PIL
// does, skipping a pass whose size does not change.
func resizeBilinear(m Image, w, h int) Image {
	if m.Width != w {
		m = resizeRows(m, w)
	}
	if m.Height != h {
		m = resizeCols(m, h)
	}
	return m
}

func resizeRows(m Image, w int) Image {
	c := m.Channels
	k := bilinearKernel(m.Width, w)
	out := make([]byte, w*m.Height*c)
	inStride, outStride := m.Width*c, w*c
	for y := range m.Height {
		row := m.Pix[y*inStride : (y+1)*inStride]
		dst := out[y*outStride : (y+1)*outStride]
		if c == 3 {
			for x := range w {
				ws := k.taps(x)
				p := row[k.start[x]*3:][:len(ws)*3]
				r, g, b := int32(half), int32(half), int32(half)
				for j, wt := range ws {
					q := p[j*3 : j*3+3 : j*3+3]
					r += int32(q[0]) * wt
					g += int32(q[1]) * wt
					b += int32(q[2]) * wt
				}
				d := dst[x*3 : x*3+3 : x*3+3]
				d[0], d[1], d[2] = clip8(r), clip8(g), clip8(b)
			}
			continue
		}
		for x := range w { // one channel
			ws := k.taps(x)
			p := row[k.start[x]:][:len(ws)]
			acc := int32(half)
			for j, wt := range ws {
				acc += int32(p[j]) * wt
			}
			dst[x] = clip8(acc)
		}
	}
	return Image{Width: w, Height: m.Height, Channels: c, Pix: out}
}

func resizeCols(m Image, h int) Image {
	k := bilinearKernel(m.Height, h)
	stride := m.Width * m.Channels
	out := make([]byte, h*stride)
	acc := make([]int32, stride)
	for y := range h {
		for i := range acc {
			acc[i] = half
		}
		for j, wt := range k.taps(y) {
			row := m.Pix[(k.start[y]+j)*stride:][:stride]
			acc := acc[:len(row)]
			for i, v := range row {
				acc[i] += int32(v) * wt
			}
		}
		dst := out[y*stride : (y+1)*stride]
		for i, v := range acc {
			dst[i] = clip8(v)
		}
	}
	return Image{Width: m.Width, Height: h, Channels: m.Channels, Pix: out}
}
