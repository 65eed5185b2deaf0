package transform

import (
	"fmt"
	"math"
)

// Grey weights of torchvision's rgb_to_grayscale, summed as (r*R + g*G) + b*B.
const (
	grayR = 0.2989
	grayG = 0.587
	grayB = 0.114
)

// clamp01 clamps to [0,1]. Plain comparisons: the min and max builtins
// order signed zeros and NaNs, which costs branches in the hot loops.
func clamp01(v float32) float32 {
	if v < 0 {
		return 0
	}
	if v > 1 {
		return 1
	}
	return v
}

// HFlip reverses the column order of m (F.hflip).
func HFlip(m *Image) error {
	if err := m.Validate(); err != nil {
		return err
	}
	hflip(m)
	return nil
}

func hflip(m *Image) {
	for r := 0; r < m.C*m.H; r++ {
		row := m.Pix[r*m.W : (r+1)*m.W]
		for i, j := 0, len(row)-1; i < j; i, j = i+1, j-1 {
			row[i], row[j] = row[j], row[i]
		}
	}
}

// AdjustBrightness sets m to clamp(f*m) (F.adjust_brightness); f >= 0.
func AdjustBrightness(m *Image, f float32) error {
	if !(f >= 0) {
		return fmt.Errorf("%w: brightness factor %v, want >= 0", ErrParam, f)
	}
	if err := m.Validate(); err != nil {
		return err
	}
	brightness(m, f)
	return nil
}

func brightness(m *Image, f float32) {
	for i, v := range m.Pix {
		m.Pix[i] = clamp01(f * v)
	}
}

// AdjustContrast blends m with the mean of its grey image, a single scalar:
// clamp(f*m + (1-f)*mean) (F.adjust_contrast); f >= 0.
func AdjustContrast(m *Image, f float32) error {
	if !(f >= 0) {
		return fmt.Errorf("%w: contrast factor %v, want >= 0", ErrParam, f)
	}
	if err := m.Validate(); err != nil {
		return err
	}
	contrast(m, f)
	return nil
}

func contrast(m *Image, f float32) {
	plane := m.H * m.W
	var sum float64
	if m.C == 3 {
		r, g, b := m.Pix[:plane], m.Pix[plane:2*plane], m.Pix[2*plane:3*plane]
		for i := range r {
			sum += float64((grayR*r[i] + grayG*g[i]) + grayB*b[i])
		}
	} else {
		for _, v := range m.Pix {
			sum += float64(v)
		}
	}
	off := (1 - f) * float32(sum/float64(plane))
	for i, v := range m.Pix {
		m.Pix[i] = clamp01(f*v + off)
	}
}

// AdjustSaturation blends each pixel with its grey value:
// clamp(f*m + (1-f)*gray) (F.adjust_saturation); f >= 0. A 1-channel image
// is left unchanged.
func AdjustSaturation(m *Image, f float32) error {
	if !(f >= 0) {
		return fmt.Errorf("%w: saturation factor %v, want >= 0", ErrParam, f)
	}
	if err := m.Validate(); err != nil {
		return err
	}
	saturation(m, f)
	return nil
}

func saturation(m *Image, f float32) {
	if m.C != 3 {
		return
	}
	plane := m.H * m.W
	r, g, b := m.Pix[:plane], m.Pix[plane:2*plane], m.Pix[2*plane:3*plane]
	for i := range r {
		off := (1 - f) * ((grayR*r[i] + grayG*g[i]) + grayB*b[i])
		r[i] = clamp01(f*r[i] + off)
		g[i] = clamp01(f*g[i] + off)
		b[i] = clamp01(f*b[i] + off)
	}
}

// RGBToGrayscale replaces every channel of m by the grey value (F.rgb_to_grayscale
// with num_output_channels equal to the input's, as RandomGrayscale asks). A
// 1-channel image is left unchanged, as torchvision does.
func RGBToGrayscale(m *Image) error {
	if err := m.Validate(); err != nil {
		return err
	}
	grayscale(m)
	return nil
}

func grayscale(m *Image) {
	if m.C != 3 {
		return
	}
	plane := m.H * m.W
	r, g, b := m.Pix[:plane], m.Pix[plane:2*plane], m.Pix[2*plane:3*plane]
	for i := range r {
		v := (grayR*r[i] + grayG*g[i]) + grayB*b[i]
		r[i], g[i], b[i] = v, v, v
	}
}

// AdjustHue rotates the hue of every pixel by f turns, f in [-0.5, 0.5],
// through torchvision's own RGB<->HSV conversion (F.adjust_hue, tensor
// path). A 1-channel image is left unchanged. The per-pixel arithmetic is
// float64.
func AdjustHue(m *Image, f float32) error {
	if !(f >= -0.5 && f <= 0.5) {
		return fmt.Errorf("%w: hue factor %v, want in [-0.5, 0.5]", ErrParam, f)
	}
	if err := m.Validate(); err != nil {
		return err
	}
	hue(m, f)
	return nil
}

func hue(m *Image, f float32) {
	if m.C != 3 {
		return
	}
	plane := m.H * m.W
	rs, gs, bs := m.Pix[:plane], m.Pix[plane:2*plane], m.Pix[2*plane:3*plane]
	shift6 := 6 * float64(f)
	for i := range rs {
		r, g, b := hueRotate(float64(rs[i]), float64(gs[i]), float64(bs[i]), shift6)
		rs[i], gs[i], bs[i] = float32(r), float32(g), float32(b)
	}
}

// hueRotate is _rgb2hsv, the hue shift and _hsv2rgb of torchvision 0.14 for
// one pixel, simplified: the rotation keeps the largest channel (v) and the
// smallest (v*(1-s) = min), so only the hue, in sixths of a turn, and the
// middle channel are computed. shift6 is the shift in sixths, 6*factor.
func hueRotate(r, g, b, shift6 float64) (float64, float64, float64) {
	maxc, minc := r, r
	if g > maxc {
		maxc = g
	}
	if b > maxc {
		maxc = b
	}
	if g < minc {
		minc = g
	}
	if b < minc {
		minc = b
	}
	cr := maxc - minc
	if cr == 0 { // grey: saturation 0, no hue to rotate
		return r, g, b
	}
	inv := 1 / cr
	var h float64 // in [-1, 5)
	switch maxc { // r wins ties, then g
	case r:
		h = (g - b) * inv
	case g:
		h = 2 + (b-r)*inv
	default:
		h = 4 + (r-g)*inv
	}
	h += shift6 + 6 // shift6 in [-3, 3]: h > 0, so int() floors
	i := int(h)
	f := h - float64(i)
	up := minc + cr*f   // torchvision's t = v*(1-s*(1-f))
	down := maxc - cr*f // torchvision's q = v*(1-s*f)
	switch i % 6 {
	case 0:
		return maxc, up, minc
	case 1:
		return down, maxc, minc
	case 2:
		return minc, maxc, up
	case 3:
		return minc, down, maxc
	case 4:
		return up, minc, maxc
	default:
		return maxc, minc, down
	}
}

// Jitter is one draw of ColorJitter: the order of the four ops and their
// factors.
type Jitter struct {
	// Order is a permutation of 0..3 (torchvision's fn_idx): 0 brightness,
	// 1 contrast, 2 saturation, 3 hue.
	Order      [4]uint8
	Brightness float32 // >= 0; 1 leaves the image unchanged
	Contrast   float32 // >= 0; 1 leaves the image unchanged
	Saturation float32 // >= 0; 1 leaves the image unchanged
	Hue        float32 // in [-0.5, 0.5]; 0 leaves the image unchanged
}

// Validate reports whether Order is a permutation and the factors in range.
func (j Jitter) Validate() error {
	var seen [4]bool
	for _, k := range j.Order {
		if k > 3 || seen[k] {
			return fmt.Errorf("%w: jitter order %v is not a permutation of 0..3", ErrParam, j.Order)
		}
		seen[k] = true
	}
	for _, f := range [...]struct {
		name string
		v    float32
	}{{"brightness", j.Brightness}, {"contrast", j.Contrast}, {"saturation", j.Saturation}} {
		if !(f.v >= 0) {
			return fmt.Errorf("%w: %s factor %v, want >= 0", ErrParam, f.name, f.v)
		}
	}
	if !(j.Hue >= -0.5 && j.Hue <= 0.5) {
		return fmt.Errorf("%w: hue factor %v, want in [-0.5, 0.5]", ErrParam, j.Hue)
	}
	return nil
}

// ColorJitter applies the four adjustments of j in j.Order, each on the
// previous result (ColorJitter.forward with fixed parameters). An op whose
// factor is its identity (1, or 0 for hue) is skipped, as ColorJitter skips
// an op whose strength is zero; only hue would differ, by rounding.
func ColorJitter(m *Image, j Jitter) error {
	if err := j.Validate(); err != nil {
		return err
	}
	if err := m.Validate(); err != nil {
		return err
	}
	jitter(m, j)
	return nil
}

func jitter(m *Image, j Jitter) {
	for _, k := range j.Order {
		switch k {
		case 0:
			if j.Brightness != 1 {
				brightness(m, j.Brightness)
			}
		case 1:
			if j.Contrast != 1 {
				contrast(m, j.Contrast)
			}
		case 2:
			if j.Saturation != 1 {
				saturation(m, j.Saturation)
			}
		case 3:
			if j.Hue != 0 {
				hue(m, j.Hue)
			}
		}
	}
}

// Normalize sets each channel c of m to (m[c]-mean[c])/std[c]
// (F.normalize); mean and std have one entry per channel, std non-zero.
func Normalize(m *Image, mean, std []float32) error {
	if err := m.Validate(); err != nil {
		return err
	}
	if len(mean) != m.C || len(std) != m.C {
		return fmt.Errorf("%w: normalize with %d means and %d stds on a %d-channel image", ErrParam, len(mean), len(std), m.C)
	}
	plane := m.H * m.W
	for c := 0; c < m.C; c++ {
		if std[c] == 0 || math.IsNaN(float64(std[c])) {
			return fmt.Errorf("%w: normalize std[%d] = %v", ErrParam, c, std[c])
		}
		mu, sd := mean[c], std[c]
		ch := m.Pix[c*plane : (c+1)*plane]
		for i, v := range ch {
			ch[i] = (v - mu) / sd
		}
	}
	return nil
}
