package imgdecode

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"hash/crc32"
	"io"
	"math"
	"sync"
)

// image/png allocates a zlib inflater (about 43 KB, zeroed) and an image
// for every file: for the 32x32 and 28x28 PNGs of CIFAR- and MNIST-sized
// data sets that was nearly all of decode's allocation, and allocating and
// collecting it took about a quarter of the CPU of a pipeline of 28x28
// images (docs/benchmarks.md, "PNG decode without per-image
// allocation"). decodePNG decodes the PNGs
// such data sets hold (8 bits per sample, gray, gray+alpha, RGB or RGBA,
// not interlaced, no transparency chunk) with inflaters and row buffers
// reused across images, straight into the output pixels. Anything else,
// and any file it finds fault with, goes to image/png, which then decides:
// what decodePNG decodes is exactly what image/png accepts, in the same
// pixels (FuzzPNGFast checks both).

// pngState is what one decodePNG reuses.
type pngState struct {
	zr   io.ReadCloser // a zlib reader, reset for each image
	in   chunkReader
	idat [][]byte // the IDAT chunks' data
	raw  []byte   // the filtered rows
	one  [1]byte  // for the read that must find the stream's end
}

var pngStates sync.Pool

// maxPooledRaw bounds the row buffer kept for the next image: larger ones
// (photos) are left to the collector rather than held by the pool.
const maxPooledRaw = 1 << 20

// PNG colour types decodePNG takes, with their bytes per pixel.
var pngBytesPerPixel = map[byte]int{0: 1, 2: 3, 4: 2, 6: 4}

// decodePNG decodes data (a PNG whose header was read and checked) into
// pixels, 1 channel when gray, else 3; ok is false when image/png must
// decode it instead.
func decodePNG(data []byte, gray bool) (img Image, ok bool) {
	st, _ := pngStates.Get().(*pngState)
	if st == nil {
		st = &pngState{}
	}
	defer func() {
		if cap(st.raw) > maxPooledRaw {
			st.raw = nil
		}
		clear(st.idat)
		st.idat, st.in = st.idat[:0], chunkReader{}
		pngStates.Put(st)
	}()
	w, h, bpp, idat, ok := pngLayout(data, st.idat[:0])
	if !ok {
		return Image{}, false
	}
	st.idat = idat
	st.in = chunkReader{chunks: idat}
	var err error
	if st.zr == nil {
		st.zr, err = zlib.NewReader(&st.in)
	} else {
		err = st.zr.(zlib.Resetter).Reset(&st.in, nil)
	}
	if err != nil {
		return Image{}, false
	}
	stride := w * bpp
	n := h * (1 + stride)
	if cap(st.raw) < n {
		st.raw = make([]byte, n)
	}
	raw := st.raw[:n]
	if _, err := io.ReadFull(st.zr, raw); err != nil {
		return Image{}, false
	}
	// The stream must end here, its checksum right, with no data left in
	// the IDAT chunks (image/png refuses or ignores such data).
	if m, err := st.zr.Read(st.one[:]); m != 0 || err != io.EOF || st.in.left() != 0 {
		return Image{}, false
	}
	if !unfilter(raw, stride, bpp) {
		return Image{}, false
	}
	return pngPixels(raw, w, h, bpp, gray), true
}

// pngLayout reads the chunks of data: ok only when the header is one
// decodePNG takes (readIHDR) and the chunks are in the plainest valid
// order (IHDR; chunks other than PLTE and tRNS; one run of IDAT; chunks
// other than those; IEND), every checksum right. It appends the IDAT
// chunks' data to idat.
func pngLayout(data []byte, idat [][]byte) (w, h, bpp int, _ [][]byte, ok bool) {
	w, h, bpp, rest, ok := readIHDR(data)
	if !ok {
		return 0, 0, 0, nil, false
	}
	seenIDAT, afterIDAT := false, false
	for {
		var typ, body []byte
		if typ, body, rest, ok = nextChunk(rest); !ok {
			return 0, 0, 0, nil, false
		}
		switch string(typ) {
		case "IDAT":
			if afterIDAT {
				return 0, 0, 0, nil, false
			}
			seenIDAT = true
			idat = append(idat, body)
		case "IEND":
			return w, h, bpp, idat, seenIDAT
		case "IHDR", "PLTE", "tRNS":
			return 0, 0, 0, nil, false
		default:
			afterIDAT = seenIDAT
		}
	}
}

// readIHDR reads the signature and IHDR chunk of a PNG decodePNG takes
// (8 bits per sample, gray, gray+alpha, RGB or RGBA, not interlaced) and
// returns its size, bytes per pixel and the chunks after IHDR; ok is false
// for anything else, checksum included. image/png's DecodeConfig accepts
// every header it accepts, with the same size: decode reads a PNG's size
// here instead, which saves DecodeConfig's allocations per image.
func readIHDR(data []byte) (w, h, bpp int, rest []byte, ok bool) {
	const sig = "\x89PNG\r\n\x1a\n"
	if !bytes.HasPrefix(data, []byte(sig)) {
		return 0, 0, 0, nil, false
	}
	typ, body, rest, ok := nextChunk(data[len(sig):])
	if !ok || string(typ) != "IHDR" || len(body) != 13 || body[8] != 8 || body[10] != 0 || body[11] != 0 || body[12] != 0 {
		return 0, 0, 0, nil, false
	}
	if bpp, ok = pngBytesPerPixel[body[9]]; !ok {
		return 0, 0, 0, nil, false
	}
	w, h = int(int32(binary.BigEndian.Uint32(body))), int(int32(binary.BigEndian.Uint32(body[4:])))
	// image/png refuses sizes whose 8 bytes a pixel overflow an int.
	if w <= 0 || h <= 0 || int64(w)*int64(h) > math.MaxInt/8 {
		return 0, 0, 0, nil, false
	}
	return w, h, bpp, rest, true
}

// nextChunk splits the first chunk off data: its type and body, and what
// follows; ok is false if it is cut short or its checksum is wrong.
func nextChunk(data []byte) (typ, body, rest []byte, ok bool) {
	if len(data) < 12 {
		return nil, nil, nil, false
	}
	length := binary.BigEndian.Uint32(data)
	if length > 0x7fffffff || uint64(length) > uint64(len(data)-12) {
		return nil, nil, nil, false
	}
	if crc32.ChecksumIEEE(data[4:8+length]) != binary.BigEndian.Uint32(data[8+length:]) {
		return nil, nil, nil, false
	}
	return data[4:8], data[8 : 8+length], data[12+length:], true
}

// chunkReader reads the IDAT chunks' data as one stream; it is an
// io.ByteReader, so the inflater reads no further than its stream.
type chunkReader struct {
	chunks [][]byte
}

// more drops the chunks read to their end and says whether a byte is left.
func (c *chunkReader) more() bool {
	for len(c.chunks) > 0 && len(c.chunks[0]) == 0 {
		c.chunks = c.chunks[1:]
	}
	return len(c.chunks) > 0
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if !c.more() {
		return 0, io.EOF
	}
	n := copy(p, c.chunks[0])
	c.chunks[0] = c.chunks[0][n:]
	return n, nil
}

func (c *chunkReader) ReadByte() (byte, error) {
	if !c.more() {
		return 0, io.EOF
	}
	b := c.chunks[0][0]
	c.chunks[0] = c.chunks[0][1:]
	return b, nil
}

// left counts the bytes not read yet.
func (c *chunkReader) left() int {
	n := 0
	for _, ch := range c.chunks {
		n += len(ch)
	}
	return n
}

// unfilter undoes the PNG row filters in place: raw holds rows of a
// filter byte and stride bytes; false for a filter type over 4.
func unfilter(raw []byte, stride, bpp int) bool {
	var prev []byte
	for off := 0; off < len(raw); off += 1 + stride {
		ft, row := raw[off], raw[off+1:off+1+stride]
		switch ft {
		case 0:
		case 1: // Sub
			for i := bpp; i < stride; i++ {
				row[i] += row[i-bpp]
			}
		case 2: // Up
			for i := range prev {
				row[i] += prev[i]
			}
		case 3: // Average
			for i := range stride {
				var left, up int
				if i >= bpp {
					left = int(row[i-bpp])
				}
				if prev != nil {
					up = int(prev[i])
				}
				row[i] += byte((left + up) / 2)
			}
		case 4: // Paeth
			for i := range stride {
				var a, b, c int
				if i >= bpp {
					a = int(row[i-bpp])
				}
				if prev != nil {
					b = int(prev[i])
					if i >= bpp {
						c = int(prev[i-bpp])
					}
				}
				row[i] += paeth(a, b, c)
			}
		default:
			return false
		}
		prev = row
	}
	return true
}

// paeth is the PNG Paeth predictor of a (left), b (up) and c (up-left).
func paeth(a, b, c int) byte {
	p := a + b - c
	pa, pb, pc := abs(p-a), abs(p-b), abs(p-c)
	switch {
	case pa <= pb && pa <= pc:
		return byte(a)
	case pb <= pc:
		return byte(b)
	}
	return byte(c)
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// pngPixels converts the unfiltered rows as toPixels converts image/png's
// image: gray+alpha and RGBA lose the alpha, and gray output from colour
// is luma.
func pngPixels(raw []byte, w, h, bpp int, gray bool) Image {
	stride := w * bpp
	if gray && bpp == 1 {
		pix := make([]byte, w*h)
		for y := range h {
			copy(pix[y*w:], raw[y*(1+stride)+1:][:stride])
		}
		return Image{Width: w, Height: h, Channels: 1, Pix: pix}
	}
	rgb := make([]byte, 3*w*h)
	for y := range h {
		row, dst := raw[y*(1+stride)+1:][:stride], rgb[3*w*y:][:3*w]
		switch bpp {
		case 1, 2: // gray, gray+alpha
			for x := range w {
				v := row[bpp*x]
				dst[3*x], dst[3*x+1], dst[3*x+2] = v, v, v
			}
		case 3:
			copy(dst, row)
		case 4:
			for x := range w {
				dst[3*x], dst[3*x+1], dst[3*x+2] = row[4*x], row[4*x+1], row[4*x+2]
			}
		}
	}
	if gray {
		return Image{Width: w, Height: h, Channels: 1, Pix: luma(rgb)}
	}
	return Image{Width: w, Height: h, Channels: 3, Pix: rgb}
}
