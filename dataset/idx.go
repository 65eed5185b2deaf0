package dataset

import (
	"bufio"
	"compress/gzip"
	"context"
	"encoding/binary"
	"fmt"
	"image"
	"io"
	"os"
	"path/filepath"
	"strconv"
)

// idx magic numbers: unsigned bytes, 3 dimensions (images) or 1 (labels).
const (
	idxImagesMagic = 0x00000803
	idxLabelsMagic = 0x00000801
	maxIDXPixels   = 1 << 20 // per image; MNIST has 784
)

// idxSplits maps a split to its file name stem, in ingest order.
var idxSplits = []struct{ split, stem string }{
	{"train", "train"},
	{"test", "t10k"},
}

// IDX reads MNIST-style idx files (MNIST, Fashion-MNIST): train-images-
// idx3-ubyte and train-labels-idx1-ubyte, t10k-* for the test split, each
// optionally gzipped.
type IDX struct {
	dir     string
	name    string
	classes []string
	labels  map[string][]byte // per split
}

// OpenIDX finds the idx files in dir and reads the labels. names gives the
// class names in label order; nil names the classes "0", "1", ... up to the
// largest label. name is the data set name recorded in info.json.
func OpenIDX(dir, name string, names []string) (*IDX, error) {
	x := &IDX{dir: dir, name: name, labels: map[string][]byte{}}
	maxLabel := -1
	for _, s := range idxSplits {
		path, err := x.find(s.stem + "-labels-idx1-ubyte")
		if err != nil {
			return nil, err
		}
		labels, err := readIDXLabels(path)
		if err != nil {
			return nil, err
		}
		for _, l := range labels {
			maxLabel = max(maxLabel, int(l))
		}
		x.labels[s.split] = labels
	}
	if names == nil {
		for i := 0; i <= maxLabel; i++ {
			names = append(names, strconv.Itoa(i))
		}
	} else if maxLabel >= len(names) {
		return nil, fmt.Errorf("%w: label %d but only %d class names", ErrSource, maxLabel, len(names))
	}
	x.classes = names
	return x, nil
}

func (x *IDX) Name() string      { return x.name }
func (x *IDX) Classes() []string { return x.classes }
func (x *IDX) Channels() int     { return 1 }

// find returns the path of stem or stem.gz in the directory.
func (x *IDX) find(stem string) (string, error) {
	for _, n := range []string{stem, stem + ".gz"} {
		p := filepath.Join(x.dir, n)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%w: neither %s nor %s.gz in %s", ErrSource, stem, stem, x.dir)
}

// Stamp writes the names, sizes and modification times of the four idx
// files.
func (x *IDX) Stamp(_ context.Context, w io.Writer) error {
	for _, s := range idxSplits {
		for _, kind := range []string{"-labels-idx1-ubyte", "-images-idx3-ubyte"} {
			p, err := x.find(s.stem + kind)
			if err != nil {
				return err
			}
			if err := stampFile(w, p); err != nil {
				return err
			}
		}
	}
	return nil
}

// Samples reads the train then the test images in file order, or with
// opts.Mix in mixOrder's order of their IDs (inOrder: the file is read
// once per maxMixBytes of images); a sample's ID is its position in its
// split either way. With a limit, Select chooses from the labels before
// any image is read, and nothing after the last one kept is read.
func (x *IDX) Samples(ctx context.Context, opts ReadOptions, fn func(Sample) error) error {
	for _, s := range idxSplits {
		path, err := x.find(s.stem + "-images-idx3-ubyte")
		if err != nil {
			return err
		}
		if err := x.samples(ctx, path, s.split, opts, fn); err != nil {
			return err
		}
	}
	return nil
}

func (x *IDX) samples(ctx context.Context, path, split string, opts ReadOptions, fn func(Sample) error) error {
	labels := x.labels[split]
	_, closeFn, rows, cols, err := openIDXImages(path, len(labels))
	if err != nil {
		return err
	}
	closeFn()
	ls := make([]int, len(labels))
	for i, l := range labels {
		ls[i] = int(l)
	}
	width := len(strconv.Itoa(len(labels) - 1))
	id := func(i int) string { return fmt.Sprintf("%0*d", width, i) }
	scan := func(last int, each func(i int, pix []byte) error) error {
		r, closeFn, _, _, err := openIDXImages(path, len(labels))
		if err != nil {
			return err
		}
		defer closeFn()
		pix := make([]byte, rows*cols)
		for i := range last + 1 {
			if err := ctx.Err(); err != nil {
				return err
			}
			if _, err := io.ReadFull(r, pix); err != nil {
				return fmt.Errorf("%w: %s: image %d: %w", ErrSource, path, i, err)
			}
			if err := each(i, pix); err != nil {
				return err
			}
		}
		return nil
	}
	return inOrder(opts.order(split, ls, id), rows*cols, maxMixBytes, scan, func(i int, pix []byte) error {
		img := image.NewGray(image.Rect(0, 0, cols, rows))
		copy(img.Pix, pix)
		return fn(Sample{Split: split, Label: ls[i], ID: id(i), Image: img})
	})
}

// openIDXImages opens an idx3 images file of count images and checks its
// header; r is past it.
func openIDXImages(path string, count int) (r io.Reader, closeFn func(), rows, cols int, err error) {
	r, closeFn, err = openMaybeGzip(path)
	if err != nil {
		return nil, nil, 0, 0, err
	}
	var hdr [4]uint32
	if err := binary.Read(r, binary.BigEndian, &hdr); err != nil {
		closeFn()
		return nil, nil, 0, 0, fmt.Errorf("%w: %s: header: %w", ErrSource, path, err)
	}
	magic, n, h, w := hdr[0], hdr[1], hdr[2], hdr[3]
	switch {
	case magic != idxImagesMagic:
		err = fmt.Errorf("%w: %s: magic %#x, want %#x (idx3 unsigned byte)", ErrSource, path, magic, idxImagesMagic)
	case h == 0 || w == 0 || uint64(h)*uint64(w) > maxIDXPixels:
		err = fmt.Errorf("%w: %s: image size %dx%d out of range", ErrSource, path, h, w)
	case int(n) != count:
		err = fmt.Errorf("%w: %s: %d images but %d labels", ErrSource, path, n, count)
	}
	if err != nil {
		closeFn()
		return nil, nil, 0, 0, err
	}
	return r, closeFn, int(h), int(w), nil
}

func readIDXLabels(path string) ([]byte, error) {
	r, closeFn, err := openMaybeGzip(path)
	if err != nil {
		return nil, err
	}
	defer closeFn()
	var hdr [2]uint32
	if err := binary.Read(r, binary.BigEndian, &hdr); err != nil {
		return nil, fmt.Errorf("%w: %s: header: %w", ErrSource, path, err)
	}
	if hdr[0] != idxLabelsMagic {
		return nil, fmt.Errorf("%w: %s: magic %#x, want %#x (idx1 unsigned byte)", ErrSource, path, hdr[0], idxLabelsMagic)
	}
	if hdr[1] > 1<<26 {
		return nil, fmt.Errorf("%w: %s: %d labels is implausible", ErrSource, path, hdr[1])
	}
	labels := make([]byte, hdr[1])
	if _, err := io.ReadFull(r, labels); err != nil {
		return nil, fmt.Errorf("%w: %s: labels: %w", ErrSource, path, err)
	}
	return labels, nil
}

// openMaybeGzip opens path, decompressing when it starts with the gzip
// magic (whatever its name).
func openMaybeGzip(path string) (io.Reader, func(), error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrSource, err)
	}
	br := bufio.NewReaderSize(f, 1<<16)
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			f.Close()
			return nil, nil, fmt.Errorf("%w: %s: %w", ErrSource, path, err)
		}
		return zr, func() { zr.Close(); f.Close() }, nil
	}
	return br, func() { f.Close() }, nil
}
