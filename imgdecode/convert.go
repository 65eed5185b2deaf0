package imgdecode

import (
	"image"
	"image/color"
)

// toPixels converts a decoded image to packed HWC bytes, RGB or luma. The
// common decoder outputs have direct paths; anything else goes through
// color.NRGBA64, which drops alpha without premultiplying it in. studio says
// that YCbCr samples are BT.601 limited range (16..235), as in VP8, rather
// than JFIF full range; x/image/webp returns them as image.YCbCr regardless.
func toPixels(m image.Image, gray, studio bool) Image {
	b := m.Bounds()
	w, h := b.Dx(), b.Dy()
	if gray {
		switch m := m.(type) {
		case *image.Gray:
			return copyGray(m)
		case *image.YCbCr:
			if !studio {
				return yPlane(m)
			}
		case *image.NYCbCrA:
			if !studio {
				return yPlane(&m.YCbCr)
			}
		}
		rgb := toPixels(m, false, studio)
		return Image{Width: w, Height: h, Channels: 1, Pix: luma(rgb.Pix)}
	}
	out := Image{Width: w, Height: h, Channels: 3, Pix: make([]byte, 3*w*h)}
	switch m := m.(type) {
	case *image.YCbCr:
		ycbcrToRGB(m, out.Pix, studio)
	case *image.NYCbCrA:
		ycbcrToRGB(&m.YCbCr, out.Pix, studio)
	case *image.Gray:
		forRows(b, func(y int, dst []byte) {
			row := m.Pix[m.PixOffset(b.Min.X, y):]
			for x := range w {
				v := row[x]
				dst[3*x], dst[3*x+1], dst[3*x+2] = v, v, v
			}
		}, out.Pix)
	case *image.Gray16:
		forRows(b, func(y int, dst []byte) {
			row := m.Pix[m.PixOffset(b.Min.X, y):]
			for x := range w {
				v := row[2*x] // big-endian: the high byte
				dst[3*x], dst[3*x+1], dst[3*x+2] = v, v, v
			}
		}, out.Pix)
	case *image.NRGBA:
		forRows(b, func(y int, dst []byte) {
			row := m.Pix[m.PixOffset(b.Min.X, y):]
			for x := range w {
				dst[3*x], dst[3*x+1], dst[3*x+2] = row[4*x], row[4*x+1], row[4*x+2]
			}
		}, out.Pix)
	case *image.RGBA:
		forRows(b, func(y int, dst []byte) {
			row := m.Pix[m.PixOffset(b.Min.X, y):]
			for x := range w {
				r, g, bl, a := row[4*x], row[4*x+1], row[4*x+2], row[4*x+3]
				if a != 0xFF {
					r, g, bl = unpremul(r, a), unpremul(g, a), unpremul(bl, a)
				}
				dst[3*x], dst[3*x+1], dst[3*x+2] = r, g, bl
			}
		}, out.Pix)
	case *image.NRGBA64: // 16-bit PNG with alpha: keep the high bytes
		forRows(b, func(y int, dst []byte) {
			row := m.Pix[m.PixOffset(b.Min.X, y):]
			for x := range w {
				dst[3*x], dst[3*x+1], dst[3*x+2] = row[8*x], row[8*x+2], row[8*x+4]
			}
		}, out.Pix)
	case *image.RGBA64: // 16-bit PNG without alpha (opaque), or premultiplied
		forRows(b, func(y int, dst []byte) {
			row := m.Pix[m.PixOffset(b.Min.X, y):]
			for x := range w {
				p := row[8*x : 8*x+8]
				r, g, bl, a := be16(p), be16(p[2:]), be16(p[4:]), be16(p[6:])
				if a != 0xFFFF { // as color.NRGBA64Model
					r, g, bl = unpremul16(r, a), unpremul16(g, a), unpremul16(bl, a)
				}
				dst[3*x], dst[3*x+1], dst[3*x+2] = byte(r>>8), byte(g>>8), byte(bl>>8)
			}
		}, out.Pix)
	case *image.CMYK:
		forRows(b, func(y int, dst []byte) {
			row := m.Pix[m.PixOffset(b.Min.X, y):]
			for x := range w {
				dst[3*x], dst[3*x+1], dst[3*x+2] = color.CMYKToRGB(row[4*x], row[4*x+1], row[4*x+2], row[4*x+3])
			}
		}, out.Pix)
	case *image.Paletted:
		var lut [256][3]byte
		for i, c := range m.Palette {
			n := color.NRGBAModel.Convert(c).(color.NRGBA)
			lut[i] = [3]byte{n.R, n.G, n.B}
		}
		forRows(b, func(y int, dst []byte) {
			row := m.Pix[m.PixOffset(b.Min.X, y):]
			for x := range w {
				c := lut[row[x]]
				dst[3*x], dst[3*x+1], dst[3*x+2] = c[0], c[1], c[2]
			}
		}, out.Pix)
	default:
		// At boxes each pixel in an interface: slow, and an allocation per
		// pixel, so the decoders' usual outputs have cases above.
		forRows(b, func(y int, dst []byte) {
			for x := range w {
				c := color.NRGBA64Model.Convert(m.At(b.Min.X+x, y)).(color.NRGBA64)
				dst[3*x], dst[3*x+1], dst[3*x+2] = byte(c.R>>8), byte(c.G>>8), byte(c.B>>8)
			}
		}, out.Pix)
	}
	return out
}

// forRows calls fn for each row y of b with that row's slice of the packed
// RGB output.
func forRows(b image.Rectangle, fn func(y int, dst []byte), pix []byte) {
	stride := 3 * b.Dx()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		i := (y - b.Min.Y) * stride
		fn(y, pix[i:i+stride])
	}
}

// unpremul undoes alpha premultiplication of one 8-bit sample, rounding.
func unpremul(v, a byte) byte {
	if a == 0 {
		return 0
	}
	return byte((uint32(v)*0xFF + uint32(a)/2) / uint32(a))
}

func be16(p []byte) uint32 { return uint32(p[0])<<8 | uint32(p[1]) }

// unpremul16 undoes alpha premultiplication of one 16-bit sample as
// color.NRGBA64Model does (truncating).
func unpremul16(v, a uint32) uint32 {
	if a == 0 {
		return 0
	}
	return v * 0xFFFF / a
}

func ycbcrToRGB(m *image.YCbCr, dst []byte, studio bool) {
	conv := color.YCbCrToRGB
	if studio {
		conv = studioToRGB
	}
	b := m.Rect
	i := 0
	for y := b.Min.Y; y < b.Max.Y; y++ {
		yi := m.YOffset(b.Min.X, y)
		for x := b.Min.X; x < b.Max.X; x++ {
			ci := m.COffset(x, y)
			dst[i], dst[i+1], dst[i+2] = conv(m.Y[yi], m.Cb[ci], m.Cr[ci])
			yi++
			i += 3
		}
	}
}

// BT.601 limited-range YCbCr to RGB in 16.16 fixed point:
// R = 1.164(Y-16) + 1.596(Cr-128), G = 1.164(Y-16) - 0.392(Cb-128) -
// 0.813(Cr-128), B = 1.164(Y-16) + 2.017(Cb-128).
const (
	studioY  = 76309  // 1.164384 * 65536
	studioRV = 104597 // 1.596027 * 65536
	studioGU = 25675  // 0.391762 * 65536
	studioGV = 53279  // 0.812968 * 65536
	studioBU = 132201 // 2.017232 * 65536
)

func studioToRGB(y, cb, cr uint8) (uint8, uint8, uint8) {
	yy := (int32(y)-16)*studioY + 1<<15
	u, v := int32(cb)-128, int32(cr)-128
	return clampFix(yy + studioRV*v), clampFix(yy - studioGU*u - studioGV*v), clampFix(yy + studioBU*u)
}

func clampFix(v int32) uint8 {
	v >>= 16
	switch {
	case v < 0:
		return 0
	case v > 255:
		return 255
	}
	return uint8(v)
}

func copyGray(m *image.Gray) Image {
	b := m.Rect
	w, h := b.Dx(), b.Dy()
	pix := make([]byte, w*h)
	for y := range h {
		copy(pix[y*w:(y+1)*w], m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):])
	}
	return Image{Width: w, Height: h, Channels: 1, Pix: pix}
}

// yPlane returns the luma plane, which is the ITU-R 601 gray of the image.
func yPlane(m *image.YCbCr) Image {
	b := m.Rect
	w, h := b.Dx(), b.Dy()
	pix := make([]byte, w*h)
	for y := range h {
		copy(pix[y*w:(y+1)*w], m.Y[m.YOffset(b.Min.X, b.Min.Y+y):])
	}
	return Image{Width: w, Height: h, Channels: 1, Pix: pix}
}

// luma maps packed RGB to gray with PIL's convert("L") weights.
func luma(rgb []byte) []byte {
	out := make([]byte, len(rgb)/3)
	for i := range out {
		r, g, b := uint32(rgb[3*i]), uint32(rgb[3*i+1]), uint32(rgb[3*i+2])
		out[i] = byte((19595*r + 38470*g + 7471*b + 1<<15) >> 16)
	}
	return out
}
