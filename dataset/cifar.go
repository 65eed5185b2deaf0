package dataset

import (
	"bufio"
	"context"
	"fmt"
	"image"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// CIFAR image geometry: 32x32, three 1024-byte colour planes (R, G, B).
const (
	cifarSide   = 32
	cifarPlane  = cifarSide * cifarSide
	cifarPixels = 3 * cifarPlane
)

// cifarLayout describes one of the two binary variants.
type cifarLayout struct {
	name        string
	labelBytes  int // 1 (CIFAR-10) or 2 (CIFAR-100: coarse, fine)
	classes     int
	namesFile   string
	splitsFiles [][2]string // {split, file} in ingest order
}

var cifarLayouts = []cifarLayout{
	{"cifar10", 1, 10, "batches.meta.txt", [][2]string{
		{"train", "data_batch_1.bin"}, {"train", "data_batch_2.bin"}, {"train", "data_batch_3.bin"},
		{"train", "data_batch_4.bin"}, {"train", "data_batch_5.bin"}, {"test", "test_batch.bin"},
	}},
	{"cifar100", 2, 100, "fine_label_names.txt", [][2]string{{"train", "train.bin"}, {"test", "test.bin"}}},
}

// CIFAR reads the CIFAR-10 or CIFAR-100 binary version (the "-bin"
// archives); CIFAR-100 samples carry the fine label.
type CIFAR struct {
	dir     string
	layout  cifarLayout
	classes []string
}

// OpenCIFAR detects the variant from the file names in dir: test_batch.bin
// means CIFAR-10, test.bin CIFAR-100. Class names come from batches.meta.txt
// or fine_label_names.txt when present, else "0", "1", ...
func OpenCIFAR(dir string) (*CIFAR, error) {
	for _, l := range cifarLayouts {
		last := l.splitsFiles[len(l.splitsFiles)-1][1]
		if _, err := os.Stat(filepath.Join(dir, last)); err != nil {
			continue
		}
		for _, sf := range l.splitsFiles {
			if _, err := os.Stat(filepath.Join(dir, sf[1])); err != nil {
				return nil, fmt.Errorf("%w: %s: %s is missing", ErrSource, l.name, sf[1])
			}
		}
		names, err := readNames(filepath.Join(dir, l.namesFile), l.classes)
		if err != nil {
			return nil, err
		}
		return &CIFAR{dir: dir, layout: l, classes: names}, nil
	}
	return nil, fmt.Errorf("%w: no CIFAR binary files (test_batch.bin or test.bin) in %s", ErrSource, dir)
}

// readNames reads one class name per line, ignoring blank lines; a missing
// file gives numeric names.
func readNames(path string, n int) ([]string, error) {
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		names := make([]string, n)
		for i := range names {
			names[i] = strconv.Itoa(i)
		}
		return names, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSource, err)
	}
	var names []string
	for line := range strings.Lines(string(b)) {
		if line = strings.TrimSpace(line); line != "" {
			names = append(names, line)
		}
	}
	if len(names) != n {
		return nil, fmt.Errorf("%w: %s has %d names, want %d", ErrSource, path, len(names), n)
	}
	return names, nil
}

func (c *CIFAR) Name() string      { return c.layout.name }
func (c *CIFAR) Classes() []string { return c.classes }
func (c *CIFAR) Channels() int     { return 3 }

// Stamp writes the names, sizes and modification times of the data files
// (the class names are part of the ingest's fingerprint already).
func (c *CIFAR) Stamp(_ context.Context, w io.Writer) error {
	for _, sf := range c.layout.splitsFiles {
		if err := stampFile(w, filepath.Join(c.dir, sf[1])); err != nil {
			return err
		}
	}
	return nil
}

// Samples reads each split's records in file order, or with opts.Mix in
// mixOrder's order of their IDs (inOrder: the split's files are read once
// per maxMixBytes of records); a sample's ID is its position in its split
// either way. A first pass reads the labels of the split, for Select to
// choose from when there is a limit.
func (c *CIFAR) Samples(ctx context.Context, opts ReadOptions, fn func(Sample) error) error {
	var splits []string
	for _, sf := range c.layout.splitsFiles {
		if !slices.Contains(splits, sf[0]) {
			splits = append(splits, sf[0])
		}
	}
	recLen := c.layout.labelBytes + cifarPixels
	id := func(i int) string { return fmt.Sprintf("%05d", i) }
	for _, split := range splits {
		scan := func(last int, each func(i int, rec []byte) error) error { return c.scan(ctx, split, last, each) }
		var labels []int
		err := scan(math.MaxInt, func(_ int, rec []byte) error {
			labels = append(labels, c.label(rec))
			return nil
		})
		if err != nil {
			return err
		}
		err = inOrder(opts.order(split, labels, id), recLen, maxMixBytes, scan, func(i int, rec []byte) error {
			planes := rec[c.layout.labelBytes:]
			img := image.NewNRGBA(image.Rect(0, 0, cifarSide, cifarSide))
			for p := range cifarPlane {
				img.Pix[4*p] = planes[p]
				img.Pix[4*p+1] = planes[cifarPlane+p]
				img.Pix[4*p+2] = planes[2*cifarPlane+p]
				img.Pix[4*p+3] = 0xff
			}
			return fn(Sample{Split: split, Label: c.label(rec), ID: id(i), Image: img})
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// label is a record's label: CIFAR-100's fine label is the last label byte.
func (c *CIFAR) label(rec []byte) int { return int(rec[c.layout.labelBytes-1]) }

// scan passes the records of split's files, in order, through position
// last in the split to fn (rec, reused between calls, holds the label
// bytes then the colour planes); it checks every label it reads.
func (c *CIFAR) scan(ctx context.Context, split string, last int, fn func(i int, rec []byte) error) error {
	recLen := c.layout.labelBytes + cifarPixels
	rec := make([]byte, recLen)
	i := 0
	for _, sf := range c.layout.splitsFiles {
		if sf[0] != split || i > last {
			continue
		}
		err := func() error {
			path := filepath.Join(c.dir, sf[1])
			f, err := os.Open(path)
			if err != nil {
				return fmt.Errorf("%w: %w", ErrSource, err)
			}
			defer f.Close()
			st, err := f.Stat()
			if err != nil {
				return fmt.Errorf("%w: %w", ErrSource, err)
			}
			if st.Size()%int64(recLen) != 0 {
				return fmt.Errorf("%w: %s: size %d is not a multiple of the %d-byte record", ErrSource, path, st.Size(), recLen)
			}
			r := bufio.NewReaderSize(f, 1<<16)
			for n := 0; i <= last; n, i = n+1, i+1 {
				if err := ctx.Err(); err != nil {
					return err
				}
				if _, err := io.ReadFull(r, rec); err == io.EOF {
					return nil
				} else if err != nil {
					return fmt.Errorf("%w: %s: record %d: %w", ErrSource, path, n, err)
				}
				if l := c.label(rec); l >= len(c.classes) {
					return fmt.Errorf("%w: %s: record %d: label %d out of %d classes", ErrSource, path, n, l, len(c.classes))
				}
				if err := fn(i, rec); err != nil {
					return err
				}
			}
			return nil
		}()
		if err != nil {
			return err
		}
	}
	return nil
}
