package imgdecode

import "math"

// precisionBits is the fixed-point precision of the filter weights, as in
// PIL's 8-bit resampler, so results match Image.resize to the rounding.
const precisionBits = 32 - 8 - 2

// kernel holds, for each output position, the first input index and the
// fixed-point weights of the inputs it averages.
type kernel struct {
	start   []int
	weights [][]int32
}

// bilinearKernel builds the antialiased triangle filter from in to out
// samples: when shrinking, its support widens with the scale so that every
// input contributes, which is what makes PIL's BILINEAR antialiased.
func bilinearKernel(in, out int) kernel {
	scale := float64(in) / float64(out)
	filterScale := max(scale, 1)
	support := filterScale // the triangle's support is 1 at unit scale
	k := kernel{start: make([]int, out), weights: make([][]int32, out)}
	taps := make([]float64, 0, int(math.Ceil(support))*2+1)
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
		w := make([]int32, len(taps))
		for j, t := range taps {
			if sum != 0 {
				t /= sum
			}
			w[j] = int32(math.Floor(t*(1<<precisionBits) + 0.5))
		}
		k.start[o], k.weights[o] = lo, w
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
		for x := range w {
			base := k.start[x] * c
			for ch := range c {
				acc := int32(1 << (precisionBits - 1))
				for j, wt := range k.weights[x] {
					acc += int32(row[base+j*c+ch]) * wt
				}
				dst[x*c+ch] = clip8(acc)
			}
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
			acc[i] = 1 << (precisionBits - 1)
		}
		for j, wt := range k.weights[y] {
			row := m.Pix[(k.start[y]+j)*stride:][:stride]
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
