package dataset

import (
	"context"
	"errors"
	"fmt"
	"image"
	"io"
)

// Sample is one image read from a source.
type Sample struct {
	Split string
	Label int
	// ID is unique within the split and becomes the object's file name
	// stem: one valid key segment.
	ID string
	// Image is *image.Gray for 1-channel sources, *image.NRGBA (opaque)
	// for 3-channel ones; nil when Refused is set.
	Image image.Image
	// Refused, when set, says why the image was not read: it is over a
	// limit of ReadOptions (ErrRefused). Ingest skips and counts it.
	Refused error
}

// ErrRefused wraps the reason of Sample.Refused: an image over a limit.
var ErrRefused = errors.New("dataset: image refused")

// ReadOptions bound what Source.Samples reads. The zero value reads
// everything and bounds nothing; Ingest passes its Options' limits.
type ReadOptions struct {
	// Limit is how many samples of each split are read, and which
	// (Select); the zero value reads all.
	Limit Selection
	// Mix passes each split's samples in a pseudo-random order fixed by
	// their names (mixOrder) instead of source order, after Limit's
	// selection, which it does not change. A sharded ingest asks for it,
	// so that a shard's neighbours are not all of one class; idx and
	// CIFAR then read their file once per maxMixBytes of records.
	Mix bool
	// MaxPixels refuses an image whose width*height, read from its header
	// before any pixel memory is allocated, is over it; 0 = no limit.
	MaxPixels int64
	// MaxFileBytes refuses a file larger than this, unread (sources of
	// many images in one file, idx and CIFAR, hold fixed-size records and
	// ignore it); 0 = no limit.
	MaxFileBytes int64
	// Skip, when set, receives each entry of the source's tree left out
	// (an ImageFolder's; the other sources have none): a file that is not
	// an image or does not decode, a link, a hidden or nested entry.
	Skip func(Skip)
}

// Source reads the samples of a data set in a fixed order.
type Source interface {
	// Name says what the data set is ("mnist", "cifar10", ...).
	Name() string
	// Classes returns the class names in label order.
	Classes() []string
	// Channels is 1 or 3: what every Sample.Image holds.
	Channels() int
	// Samples calls fn for each sample, split by split, within opts (in
	// source order unless opts.Mix): an image over a limit is passed with
	// Refused set. It stops at the first error from fn or ctx.
	Samples(ctx context.Context, opts ReadOptions, fn func(Sample) error) error
	// Stamp writes what identifies the files Samples reads without
	// reading them (names, sizes, modification times): a source whose
	// stamp is unchanged reads the same samples. Ingest keeps a data set
	// built from the same stamp and options (Report.Unchanged).
	Stamp(ctx context.Context, w io.Writer) error
}

// Open opens the source of kind ("mnist", "idx", "cifar10", "cifar100" or
// "imagefolder", pipeline.yaml's dataset.source) at path. name is recorded
// for an idx source; channels (1 or 3) is what an imagefolder source
// converts its images to (the others have theirs).
func Open(kind, path, name string, channels int) (Source, error) {
	switch kind {
	case "mnist":
		return OpenIDX(path, "mnist", []string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"})
	case "idx":
		return OpenIDX(path, name, nil)
	case "cifar10", "cifar100":
		return OpenCIFAR(path)
	case "imagefolder":
		return OpenImageFolder(path, channels)
	case SourceS3:
		return nil, fmt.Errorf("dataset: source %q is read by Index (images already in the bucket), not Open", kind)
	}
	return nil, fmt.Errorf("dataset: source %q: want mnist, idx, cifar10, cifar100 or imagefolder", kind)
}
