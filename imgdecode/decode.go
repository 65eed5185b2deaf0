package imgdecode

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/gif"
	"image/jpeg"
	"image/png"

	"golang.org/x/image/webp"

	"github.com/supflow/supflow/config/field"
)

// DefaultMaxPixels is the pixel limit when Config.MaxPixels is 0: 50
// megapixels, about 150 MB of RGB per image in flight, below PIL's
// MAX_IMAGE_PIXELS (89,478,485, where PIL starts warning of a
// decompression bomb). It is the one default of the pipeline: the decode
// stage's (decode.max_pixels) and ingest's (dataset.Options.MaxPixels), so
// that ingest never keeps an image decode would refuse.
const DefaultMaxPixels = 50_000_000

// DefaultMaxObjectBytes is the one default size limit of an encoded image,
// larger than any photograph a training set holds: decode.max_object_bytes
// and ingest's dataset.Options.MaxObjectBytes.
const DefaultMaxObjectBytes = 64 << 20

// Errors returned by Decoder.Decode: every refusal wraps one of them. All
// describe the bytes, so retrying cannot change the outcome; a caller that
// classifies failures (stages/decode) marks them permanent.
var (
	ErrEmpty    = errors.New("imgdecode: empty input")
	ErrFormat   = errors.New("imgdecode: unknown image format")
	ErrTooLarge = errors.New("imgdecode: image exceeds the pixel limit")
	ErrCorrupt  = errors.New("imgdecode: corrupt or truncated image")
)

// ErrInvalidConfig is returned by New and Config.Validate.
var ErrInvalidConfig = errors.New("imgdecode: invalid config")

// Bounds of Config fields.
const (
	maxMaxPixels     = 1<<31 - 1 // about 6 GB of RGB
	maxResizeShorter = 1 << 14   // no training input is larger
)

// Config sets the limits and output form of a Decoder. The zero value is
// usable: RGB output, DefaultMaxPixels, no resize. The YAML tags are the
// keys of pipeline.yaml's decode section, whose Config (stages/decode)
// inlines this one.
type Config struct {
	// MaxPixels refuses images whose width*height, read from the header,
	// exceeds it, before pixel memory is allocated; the resized output is
	// held to the same limit. In [1, 2^31-1]; 0 means DefaultMaxPixels.
	MaxPixels int64 `yaml:"max_pixels"`
	// ResizeShorter, when > 0, resizes every image so its shorter side has
	// this length, keeping the aspect ratio (the longer side truncated, as
	// torchvision's Resize(int) does); smaller images are enlarged. In
	// [0, 16384].
	ResizeShorter int `yaml:"resize_shorter"`
	// Gray outputs one luma channel (ITU-R 601, as PIL's convert("L"))
	// instead of RGB.
	Gray bool `yaml:"gray"`
}

func (c *Config) setDefaults() {
	if c.MaxPixels == 0 {
		c.MaxPixels = DefaultMaxPixels
	}
}

// Validate reports every field of c out of range, each a *field.Error
// (config/field) named by its YAML key and wrapping ErrInvalidConfig. It
// checks c as given: a zero MaxPixels is refused (New defaults it first).
func (c Config) Validate() error {
	k := field.NewChecker(ErrInvalidConfig)
	k.Int64In("max_pixels", c.MaxPixels, 1, maxMaxPixels)
	k.IntIn("resize_shorter", c.ResizeShorter, 0, maxResizeShorter)
	return k.Err()
}

// Image is a decoded image: Pix holds Height rows of Width pixels of
// Channels (1 or 3) bytes each.
type Image struct {
	Width, Height, Channels int
	Pix                     []byte
}

// Decoder decodes images under one Config. It is safe for concurrent use.
type Decoder struct {
	cfg Config
	// fast is the libjpeg-turbo JPEG path, nil when built without it.
	fast func(data []byte, w, h, denom int, gray bool) (Image, bool)
}

// New returns a Decoder for cfg with its unset fields defaulted, or an error
// wrapping ErrInvalidConfig that names each bad field by its YAML key.
func New(cfg Config) (*Decoder, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	return &Decoder{cfg: cfg, fast: scaledJPEG}, nil
}

// format is a sniffed container format.
type format int

const (
	formatUnknown format = iota
	formatJPEG
	formatPNG
	formatGIF
	formatWebP
)

func (f format) String() string {
	return [...]string{"unknown", "jpeg", "png", "gif", "webp"}[f]
}

// sniff identifies the format from its magic bytes, ignoring any file name.
func sniff(data []byte) format {
	switch {
	case bytes.HasPrefix(data, []byte{0xFF, 0xD8, 0xFF}):
		return formatJPEG
	case bytes.HasPrefix(data, []byte("\x89PNG\r\n\x1a\n")):
		return formatPNG
	case bytes.HasPrefix(data, []byte("GIF87a")), bytes.HasPrefix(data, []byte("GIF89a")):
		return formatGIF
	case len(data) >= 12 && string(data[:4]) == "RIFF" && string(data[8:12]) == "WEBP":
		return formatWebP
	}
	return formatUnknown
}

type codec struct {
	config func(r *bytes.Reader) (image.Config, error)
	decode func(r *bytes.Reader) (image.Image, error)
}

func codecFor(f format) codec {
	switch f {
	case formatJPEG:
		return codec{func(r *bytes.Reader) (image.Config, error) { return jpeg.DecodeConfig(r) }, func(r *bytes.Reader) (image.Image, error) { return jpeg.Decode(r) }}
	case formatPNG:
		return codec{func(r *bytes.Reader) (image.Config, error) { return png.DecodeConfig(r) }, func(r *bytes.Reader) (image.Image, error) { return png.Decode(r) }}
	case formatGIF:
		// gif.Decode stops after the first frame.
		return codec{func(r *bytes.Reader) (image.Config, error) { return gif.DecodeConfig(r) }, func(r *bytes.Reader) (image.Image, error) { return gif.Decode(r) }}
	default:
		return codec{func(r *bytes.Reader) (image.Config, error) { return webp.DecodeConfig(r) }, func(r *bytes.Reader) (image.Image, error) { return webp.Decode(r) }}
	}
}

// Decode decodes data into pixels. Every failure wraps one of ErrEmpty,
// ErrFormat, ErrTooLarge or ErrCorrupt; Decode never panics on bad input. The returned Pix is newly allocated and owned by the
// caller.
func (d *Decoder) Decode(data []byte) (Image, error) {
	return d.decode(data, true)
}

func (d *Decoder) decode(data []byte, allowFast bool) (Image, error) {
	if len(data) == 0 {
		return Image{}, ErrEmpty
	}
	f := sniff(data)
	if f == formatUnknown {
		return Image{}, fmt.Errorf("%w: content starts with %q", ErrFormat, prefix(data))
	}
	c := codecFor(f)
	var hdr image.Config
	ok := false
	if f == formatPNG {
		hdr.Width, hdr.Height, _, _, ok = readIHDR(data)
	}
	if !ok {
		var err error
		if hdr, err = c.config(bytes.NewReader(data)); err != nil {
			return Image{}, fmt.Errorf("%w: %s header: %w", ErrCorrupt, f, err)
		}
	}
	if err := d.checkSize(hdr.Width, hdr.Height); err != nil {
		return Image{}, fmt.Errorf("%s: %w", f, err)
	}
	orient := 1
	if f == formatJPEG {
		orient = exifOrientation(data)
	}
	if f == formatJPEG && allowFast && d.fast != nil {
		if out, ok := d.fast(data, hdr.Width, hdr.Height, d.dctDenom(hdr.Width, hdr.Height), d.cfg.Gray); ok {
			return orientImage(d.resize(out), orient), nil
		}
	}
	if f == formatPNG {
		if out, ok := decodePNG(data, d.cfg.Gray); ok {
			return d.resize(out), nil
		}
	}
	decoded, err := safeDecode(c, data)
	if err != nil {
		return Image{}, fmt.Errorf("%w: %s: %w", ErrCorrupt, f, err)
	}
	return orientImage(d.resize(toPixels(decoded, d.cfg.Gray, f == formatWebP)), orient), nil
}

// safeDecode runs a standard decoder. They are meant not to panic, but they
// run on untrusted bytes in a long-lived service: a panic becomes an error.
func safeDecode(c codec, data []byte) (m image.Image, err error) {
	defer func() {
		if r := recover(); r != nil {
			m, err = nil, fmt.Errorf("decoder panicked: %v", r)
		}
	}()
	return c.decode(bytes.NewReader(data))
}

// checkSize refuses empty, oversized, or oversized-after-resize images.
func (d *Decoder) checkSize(w, h int) error {
	if w <= 0 || h <= 0 {
		return fmt.Errorf("%w: header gives %dx%d", ErrCorrupt, w, h)
	}
	if int64(w)*int64(h) > d.cfg.MaxPixels {
		return fmt.Errorf("%w: %dx%d is over %d pixels", ErrTooLarge, w, h, d.cfg.MaxPixels)
	}
	if d.cfg.ResizeShorter > 0 {
		rw, rh := shorterSide(w, h, d.cfg.ResizeShorter)
		if int64(rw)*int64(rh) > d.cfg.MaxPixels {
			return fmt.Errorf("%w: %dx%d resized to %dx%d is over %d pixels", ErrTooLarge, w, h, rw, rh, d.cfg.MaxPixels)
		}
	}
	return nil
}

func (d *Decoder) resize(img Image) Image {
	if d.cfg.ResizeShorter == 0 {
		return img
	}
	w, h := shorterSide(img.Width, img.Height, d.cfg.ResizeShorter)
	return resizeBilinear(img, w, h)
}

// dctDenom picks the DCT scaling 1/denom (denom 1, 2, 4 or 8, as PIL's
// draft mode) for a w x h JPEG: the largest that keeps the shorter side at
// least 1.5 times the resize target. The final antialiased resize then
// still shrinks by 1.5x or more, which smooths the blockiness of a scaled
// IDCT: on textured content, scaling right down to the target measured
// 3/255 mean error against decode-then-resize, and 1.5x kept it under 1.
func (d *Decoder) dctDenom(w, h int) int {
	if d.cfg.ResizeShorter == 0 {
		return 1
	}
	short := min(w, h)
	need := d.cfg.ResizeShorter * 3 / 2
	denom := 1
	for next := 2; next <= 8; next *= 2 {
		if (short+next-1)/next < need {
			break
		}
		denom = next
	}
	return denom
}

// shorterSide gives the size whose shorter side is s, as torchvision's
// Resize(s): the longer side is int(s * long / short).
func shorterSide(w, h, s int) (int, int) {
	if w <= h {
		return s, int(int64(s) * int64(h) / int64(w))
	}
	return int(int64(s) * int64(w) / int64(h)), s
}

// prefix returns the first bytes of data, for error messages.
func prefix(data []byte) []byte {
	const n = 8
	if len(data) > n {
		return data[:n]
	}
	return data
}

// Convert turns an image decoded elsewhere (by the standard library's or
// x/image's decoders, format as image.Decode names it) into the pixels
// Decode outputs for the same file, with no resize: the same RGB or luma
// conversion (alpha dropped, WebP's limited-range YCbCr) and EXIF
// orientation (Orientation) applied. Ingest stores what decode would see.
func Convert(m image.Image, format string, gray bool, orientation int) Image {
	return orientImage(toPixels(m, gray, format == formatWebP.String()), orientation)
}

// Orientation returns the EXIF orientation (1..8) of a JPEG from its
// leading bytes, which need to reach past its APP1 segment (cameras write
// it first, or after a JFIF APP0: within 2 x 64 KiB); 1 for another
// format, none, or one that cannot be read.
func Orientation(head []byte) int {
	if sniff(head) != formatJPEG {
		return 1
	}
	return exifOrientation(head)
}
