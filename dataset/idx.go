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

func (x *IDX) Samples(ctx context.Context, opts ReadOptions, fn func(Sample) error) error {
	for _, s := range idxSplits {
		path, err := x.find(s.stem + "-images-idx3-ubyte")
		if err != nil {
			return err
		}
		if err := x.samples(ctx, path, s.split, opts.Limit, fn); err != nil {
			return err
		}
	}
	return nil
}

func (x *IDX) samples(ctx context.Context, path, split string, sel Selection, fn func(Sample) error) error {
	r, closeFn, err := openMaybeGzip(path)
	if err != nil {
		return err
	}
	defer closeFn()
	var hdr [4]uint32
	if err := binary.Read(r, binary.BigEndian, &hdr); err != nil {
		return fmt.Errorf("%w: %s: header: %w", ErrSource, path, err)
	}
	magic, count, rows, cols := hdr[0], hdr[1], hdr[2], hdr[3]
	labels := x.labels[split]
	switch {
	case magic != idxImagesMagic:
		return fmt.Errorf("%w: %s: magic %#x, want %#x (idx3 unsigned byte)", ErrSource, path, magic, idxImagesMagic)
	case rows == 0 || cols == 0 || uint64(rows)*uint64(cols) > maxIDXPixels:
		return fmt.Errorf("%w: %s: image size %dx%d out of range", ErrSource, path, rows, cols)
	case int(count) != len(labels):
		return fmt.Errorf("%w: %s: %d images but %d labels", ErrSource, path, count, len(labels))
	}
	ls := make([]int, len(labels))
	for i, l := range labels {
		ls[i] = int(l)
	}
	keep := sel.keep(split, ls)
	n := len(keep)
	for n > 0 && !keep[n-1] {
		n-- // nothing after the last kept image is read
	}
	width := len(strconv.Itoa(int(count) - 1))
	for i := range n {
		if err := ctx.Err(); err != nil {
			return err
		}
		img := image.NewGray(image.Rect(0, 0, int(cols), int(rows)))
		if _, err := io.ReadFull(r, img.Pix); err != nil {
			return fmt.Errorf("%w: %s: image %d: %w", ErrSource, path, i, err)
		}
		if !keep[i] {
			continue
		}
		s := Sample{Split: split, Label: int(labels[i]), ID: fmt.Sprintf("%0*d", width, i), Image: img}
		if err := fn(s); err != nil {
			return err
		}
	}
	return nil
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
