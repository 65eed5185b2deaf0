package imgdecode

import "encoding/binary"

// exifOrientation returns the EXIF Orientation (1..8) of a JPEG, or 1 when
// there is none or it cannot be read. It walks the marker segments before
// the first scan and reads only IFD0 of an APP1 "Exif" segment; every read
// is bounds-checked, and a segment is at most 64 KiB, so a hostile EXIF
// costs no allocation and no more than one pass over the header.
func exifOrientation(data []byte) int {
	i := 2 // after SOI
	for i+4 <= len(data) {
		if data[i] != 0xFF {
			return 1
		}
		marker := data[i+1]
		switch {
		case marker == 0xFF: // fill byte
			i++
			continue
		case marker == 0xD8 || (marker >= 0xD0 && marker <= 0xD7) || marker == 0x01:
			i += 2 // segments without a length
			continue
		case marker == 0xDA || marker == 0xD9: // start of scan, end of image
			return 1
		}
		n := int(binary.BigEndian.Uint16(data[i+2:]))
		if n < 2 || i+2+n > len(data) {
			return 1
		}
		seg := data[i+4 : i+2+n]
		if marker == 0xE1 && len(seg) >= 6 && string(seg[:6]) == "Exif\x00\x00" {
			if o := tiffOrientation(seg[6:]); o != 0 {
				return o
			}
		}
		i += 2 + n
	}
	return 1
}

// tiffOrientation reads tag 0x0112 from IFD0 of a TIFF structure; 0 when
// absent or malformed.
func tiffOrientation(t []byte) int {
	if len(t) < 8 {
		return 0
	}
	var bo binary.ByteOrder
	switch string(t[:4]) {
	case "II*\x00":
		bo = binary.LittleEndian
	case "MM\x00*":
		bo = binary.BigEndian
	default:
		return 0
	}
	off := uint64(bo.Uint32(t[4:]))
	if off+2 > uint64(len(t)) {
		return 0
	}
	count := uint64(bo.Uint16(t[off:]))
	entries := off + 2
	for k := range count {
		e := entries + 12*k
		if e+12 > uint64(len(t)) {
			return 0
		}
		if bo.Uint16(t[e:]) != 0x0112 {
			continue
		}
		var v uint32
		switch bo.Uint16(t[e+2:]) {
		case 3: // SHORT
			v = uint32(bo.Uint16(t[e+8:]))
		case 4: // LONG, written by a few tools
			v = bo.Uint32(t[e+8:])
		default:
			return 0
		}
		if v < 1 || v > 8 {
			return 0
		}
		return int(v)
	}
	return 0
}

// orientImage applies EXIF orientation o, turning the stored pixels into the
// upright image, as PIL's ImageOps.exif_transpose does.
func orientImage(m Image, o int) Image {
	if o <= 1 || o > 8 {
		return m
	}
	w, h, c := m.Width, m.Height, m.Channels
	ow, oh := w, h
	if o >= 5 {
		ow, oh = h, w
	}
	out := make([]byte, len(m.Pix))
	// src maps an output pixel to the stored pixel it shows.
	var src func(x, y int) (int, int)
	switch o {
	case 2: // mirror horizontally
		src = func(x, y int) (int, int) { return w - 1 - x, y }
	case 3: // rotate 180
		src = func(x, y int) (int, int) { return w - 1 - x, h - 1 - y }
	case 4: // mirror vertically
		src = func(x, y int) (int, int) { return x, h - 1 - y }
	case 5: // transpose
		src = func(x, y int) (int, int) { return y, x }
	case 6: // rotate 90 clockwise
		src = func(x, y int) (int, int) { return y, h - 1 - x }
	case 7: // transverse
		src = func(x, y int) (int, int) { return w - 1 - y, h - 1 - x }
	case 8: // rotate 90 counter-clockwise
		src = func(x, y int) (int, int) { return w - 1 - y, x }
	}
	i := 0
	for y := range oh {
		for x := range ow {
			sx, sy := src(x, y)
			s := (sy*w + sx) * c
			copy(out[i:i+c], m.Pix[s:s+c])
			i += c
		}
	}
	return Image{Width: ow, Height: oh, Channels: c, Pix: out}
}
