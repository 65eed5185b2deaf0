package transform

import (
	"errors"
	"fmt"
)

// Errors returned by the ops; each is wrapped with what was wrong.
var (
	ErrImage  = errors.New("transform: malformed image")
	ErrParam  = errors.New("transform: parameter out of range")
	ErrConfig = errors.New("transform: invalid config")
)

// MaxSide bounds image sides so that sizes never overflow; decoded images
// are far smaller.
const MaxSide = 1 << 16

// Pixels is a uint8 image, row-major HWC with C interleaved channels.
type Pixels struct {
	H, W, C int
	Pix     []byte // len H*W*C
}

// Validate reports whether p is a well-formed 1- or 3-channel image.
func (p Pixels) Validate() error {
	if p.H <= 0 || p.W <= 0 || p.H > MaxSide || p.W > MaxSide {
		return fmt.Errorf("%w: size %dx%d, want sides in [1, %d]", ErrImage, p.H, p.W, MaxSide)
	}
	if p.C != 1 && p.C != 3 {
		return fmt.Errorf("%w: %d channels, want 1 or 3", ErrImage, p.C)
	}
	if want := p.H * p.W * p.C; len(p.Pix) != want {
		return fmt.Errorf("%w: %d pixel bytes, want %d (%dx%dx%d)", ErrImage, len(p.Pix), want, p.H, p.W, p.C)
	}
	return nil
}

// Image is a float32 working image, planar: channel c, row y, column x is
// Pix[(c*H+y)*W+x]. Values are in [0,1] except after Normalize.
type Image struct {
	C, H, W int
	Pix     []float32
}

// Validate reports whether m is a well-formed 1- or 3-channel image.
func (m *Image) Validate() error {
	if m.H <= 0 || m.W <= 0 || m.H > MaxSide || m.W > MaxSide {
		return fmt.Errorf("%w: size %dx%d, want sides in [1, %d]", ErrImage, m.H, m.W, MaxSide)
	}
	if m.C != 1 && m.C != 3 {
		return fmt.Errorf("%w: %d channels, want 1 or 3", ErrImage, m.C)
	}
	if want := m.C * m.H * m.W; len(m.Pix) != want {
		return fmt.Errorf("%w: %d values, want %d (%dx%dx%d)", ErrImage, len(m.Pix), want, m.C, m.H, m.W)
	}
	return nil
}

// Reset sets the shape to [c,h,w], reusing the backing array when it is large
// enough. The pixel values are left unspecified.
func (m *Image) Reset(c, h, w int) {
	n := c * h * w
	if cap(m.Pix) < n {
		m.Pix = make([]float32, n)
	}
	m.C, m.H, m.W, m.Pix = c, h, w, m.Pix[:n]
}

// Load sets m to p converted to floats, x = v/255 (what to_tensor does).
func (m *Image) Load(p Pixels) error {
	if err := p.Validate(); err != nil {
		return err
	}
	m.Reset(p.C, p.H, p.W)
	plane := p.H * p.W
	for c := 0; c < p.C; c++ {
		out := m.Pix[c*plane : (c+1)*plane]
		for i := range out {
			out[i] = float32(p.Pix[i*p.C+c]) / 255
		}
	}
	return nil
}

// AppendBytes appends m as uint8 HWC to dst, each value clamped to [0,1] and
// rounded to the nearest multiple of 1/255. This is the only rounding of the
// pipeline. A malformed m gives an error and dst unchanged.
func (m *Image) AppendBytes(dst []byte) ([]byte, error) {
	if err := m.Validate(); err != nil {
		return dst, err
	}
	return m.appendBytes(dst), nil
}

func (m *Image) appendBytes(dst []byte) []byte {
	plane := m.H * m.W
	n := len(dst)
	dst = grow(dst, plane*m.C)
	out := dst[n:]
	for c := 0; c < m.C; c++ {
		in := m.Pix[c*plane : (c+1)*plane]
		for i, v := range in {
			out[i*m.C+c] = quantize(v)
		}
	}
	return dst
}

func quantize(v float32) byte {
	switch {
	case v <= 0:
		return 0
	case v >= 1:
		return 255
	}
	return byte(v*255 + 0.5)
}

// grow extends dst by n bytes, reallocating only when capacity is short.
func grow(dst []byte, n int) []byte {
	if cap(dst)-len(dst) >= n {
		return dst[:len(dst)+n]
	}
	out := make([]byte, len(dst)+n, 2*len(dst)+n)
	copy(out, dst)
	return out
}

// Box is a crop rectangle: rows Top..Top+Height-1, columns Left..Left+Width-1.
type Box struct {
	Top, Left, Height, Width int
}

// within reports an error unless b is non-empty and inside an h x w image.
func (b Box) within(h, w int) error {
	if b.Height <= 0 || b.Width <= 0 || b.Top < 0 || b.Left < 0 || b.Top > h-b.Height || b.Left > w-b.Width {
		return fmt.Errorf("%w: crop box %+v outside a %dx%d image", ErrParam, b, h, w)
	}
	return nil
}
