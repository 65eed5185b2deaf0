package transform

import (
	"fmt"
	"math"
)

// Params are the random choices for one view, in the order torchvision draws
// them.
type Params struct {
	Box      Box    // RandomResizedCrop box
	Flip     bool   // RandomHorizontalFlip fired
	Jittered bool   // RandomApply(ColorJitter) fired; Jitter is then set
	Jitter   Jitter // the ColorJitter draw
	Gray     bool   // RandomGrayscale fired
}

// Augmenter makes the views of SupContrast's training transform. It holds
// scratch space reused from view to view, so producing a view allocates
// nothing beyond the growth of the caller's buffer. An Augmenter is not safe
// for concurrent use: give each worker goroutine its own.
type Augmenter struct {
	cfg Config // with defaults applied
	rs  Resizer
	img Image
}

// New returns an Augmenter for cfg with its unset fields defaulted, or an
// error wrapping ErrConfig that names each bad field by its YAML key.
func New(cfg Config) (*Augmenter, error) {
	cfg = cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return &Augmenter{cfg: cfg}, nil
}

// Config returns the configuration in use, defaults applied.
func (a *Augmenter) Config() Config { return a.cfg }

// DrawParams draws the parameters of view number view of an h x w image of
// the sample k. The result depends only on its arguments and the Config.
func (a *Augmenter) DrawParams(k Key, view, h, w int) Params {
	r := newRNG(k, view)
	c := &a.cfg
	var p Params
	p.Box = cropBox(&r, h, w, c.Scale, c.Ratio)
	p.Flip = r.float64() < *c.FlipP
	if r.float64() < *c.JitterP {
		p.Jittered = true
		p.Jitter = drawJitter(&r, c.Jitter)
	}
	p.Gray = r.float64() < *c.GrayP
	return p
}

// cropBox is RandomResizedCrop.get_params of torchvision 0.14: ten tries at
// a random area and log-uniform aspect ratio, then a central crop clipped to
// the ratio range.
func cropBox(r *rng, h, w int, scale, ratio [2]float64) Box {
	area := float64(h) * float64(w)
	logLo, logHi := math.Log(ratio[0]), math.Log(ratio[1])
	for range 10 {
		target := area * r.uniform(scale[0], scale[1])
		aspect := math.Exp(r.uniform(logLo, logHi))
		cw := int(math.RoundToEven(math.Sqrt(target * aspect)))
		ch := int(math.RoundToEven(math.Sqrt(target / aspect)))
		if 0 < cw && cw <= w && 0 < ch && ch <= h {
			top := r.intn(h - ch + 1)
			left := r.intn(w - cw + 1)
			return Box{Top: top, Left: left, Height: ch, Width: cw}
		}
	}
	cw, ch := w, h
	switch in := float64(w) / float64(h); {
	case in < ratio[0]:
		ch = max(1, int(math.RoundToEven(float64(cw)/ratio[0])))
	case in > ratio[1]:
		cw = max(1, int(math.RoundToEven(float64(ch)*ratio[1])))
	}
	return Box{Top: (h - ch) / 2, Left: (w - cw) / 2, Height: ch, Width: cw}
}

// drawJitter is ColorJitter.get_params: a random op order, then the
// brightness, contrast, saturation and hue factors; a zero strength draws
// nothing and yields the identity factor.
func drawJitter(r *rng, s JitterConfig) Jitter {
	j := Jitter{Order: [4]uint8{0, 1, 2, 3}, Brightness: 1, Contrast: 1, Saturation: 1}
	for i := 3; i > 0; i-- {
		k := r.intn(i + 1)
		j.Order[i], j.Order[k] = j.Order[k], j.Order[i]
	}
	factor := func(x float64) float32 {
		if x == 0 {
			return 1
		}
		return float32(r.uniform(max(0, 1-x), 1+x))
	}
	j.Brightness = factor(s.Brightness)
	j.Contrast = factor(s.Contrast)
	j.Saturation = factor(s.Saturation)
	if s.Hue != 0 {
		j.Hue = float32(r.uniform(-s.Hue, s.Hue))
	}
	return j
}

// Apply appends to dst the view of src made with p: crop and resize to
// Size x Size, flip, colour jitter, grayscale, one rounding to uint8. The
// view is HWC with src.C channels.
func (a *Augmenter) Apply(dst []byte, src Pixels, p Params) ([]byte, error) {
	if err := a.rs.ResizedCrop(&a.img, src, p.Box, a.cfg.Size, a.cfg.Size, *a.cfg.Antialias); err != nil {
		return dst, err
	}
	if p.Flip {
		hflip(&a.img)
	}
	if p.Jittered {
		if err := p.Jitter.Validate(); err != nil {
			return dst, err
		}
		jitter(&a.img, p.Jitter)
	}
	if p.Gray {
		grayscale(&a.img)
	}
	return a.img.appendBytes(dst), nil
}

// AppendViews appends the Config's NViews views of src for sample k to dst,
// views in order 0..NViews-1, each Size x Size x src.C bytes. On error dst
// is returned as it was given.
func (a *Augmenter) AppendViews(dst []byte, src Pixels, k Key) ([]byte, error) {
	if err := src.Validate(); err != nil {
		return dst, err
	}
	out := dst
	for v := 0; v < a.cfg.NViews; v++ {
		var err error
		if out, err = a.Apply(out, src, a.DrawParams(k, v, src.H, src.W)); err != nil {
			return dst, err
		}
	}
	return out, nil
}

// Clone returns an Augmenter with the same Config and its own scratch space,
// for another goroutine.
func (a *Augmenter) Clone() *Augmenter {
	return &Augmenter{cfg: a.cfg}
}
