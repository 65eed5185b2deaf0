package dataset

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"image"
	_ "image/gif" // registered decoders: the formats an ImageFolder may hold
	_ "image/jpeg"
	_ "image/png"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
)

// imageExts are the file extensions an ImageFolder reads; other files
// (README, .DS_Store) are ignored.
var imageExts = map[string]bool{".png": true, ".jpg": true, ".jpeg": true, ".gif": true}

// ImageFolder reads dir/<split>/<class>/<file>: every subdirectory of dir
// is a split, every subdirectory of a split a class. Classes are the sorted
// union of class names over all splits (the torchvision convention), so a
// class missing from one split keeps its label. Symbolic links are skipped,
// and every read goes through an os.Root, so even a link swapped in while
// ingesting cannot make it read outside dir.
type ImageFolder struct {
	dir      string
	fsys     fs.FS // dir, confined by os.Root
	channels int
	splits   []string
	classes  []string
}

// OpenImageFolder lists the splits and classes of dir. channels is 1 (gray)
// or 3 (RGB, the default when 0): every image is converted to it.
func OpenImageFolder(dir string, channels int) (*ImageFolder, error) {
	if channels == 0 {
		channels = 3
	}
	if channels != 1 && channels != 3 {
		return nil, fmt.Errorf("%w: channels %d is not 1 or 3", ErrSource, channels)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSource, err)
	}
	fsys := root.FS()
	splits, err := subdirs(fsys, ".")
	if err != nil {
		return nil, err
	}
	if len(splits) == 0 {
		return nil, fmt.Errorf("%w: %s has no split directories (want <split>/<class>/<image>)", ErrSource, dir)
	}
	var classes []string
	for _, s := range splits {
		cs, err := subdirs(fsys, s)
		if err != nil {
			return nil, err
		}
		classes = append(classes, cs...)
	}
	slices.Sort(classes)
	classes = slices.Compact(classes)
	if len(classes) == 0 {
		return nil, fmt.Errorf("%w: %s has no class directories", ErrSource, dir)
	}
	return &ImageFolder{dir: dir, fsys: fsys, channels: channels, splits: splits, classes: classes}, nil
}

// subdirs returns the sorted names of the non-hidden directories in dir.
func subdirs(fsys fs.FS, dir string) ([]string, error) {
	des, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSource, err)
	}
	var out []string
	for _, de := range des {
		if de.IsDir() && !strings.HasPrefix(de.Name(), ".") {
			out = append(out, de.Name())
		}
	}
	return out, nil
}

func (f *ImageFolder) Name() string      { return "imagefolder" }
func (f *ImageFolder) Classes() []string { return f.classes }
func (f *ImageFolder) Channels() int     { return f.channels }

// Samples reads split by split, class by class, files in name order. With
// a limit, the split's files are chosen by Select (class-stratified,
// seeded) from their names, before any is read. A file over opts.MaxFileBytes is
// refused unread, an image over opts.MaxPixels from its header; the rest
// of a file is streamed, never read whole.
func (f *ImageFolder) Samples(ctx context.Context, opts ReadOptions, fn func(Sample) error) error {
	for _, split := range f.splits {
		files := make([][]string, len(f.classes))
		var labels []int
		for label, class := range f.classes {
			names, err := imageFiles(f.fsys, path.Join(split, class))
			if err != nil {
				return err
			}
			files[label] = names
			for range names {
				labels = append(labels, label)
			}
		}
		keep := opts.Limit.keep(split, labels)
		i := 0
		for label, names := range files {
			for _, name := range names {
				if i++; !keep[i-1] {
					continue
				}
				if err := ctx.Err(); err != nil {
					return err
				}
				img, refused, err := decodeFile(f.fsys, path.Join(split, f.classes[label], name), opts)
				if err != nil {
					return fmt.Errorf("%w (in %s)", err, f.dir)
				}
				s := Sample{Split: split, Label: label, ID: strings.TrimSuffix(name, path.Ext(name)), Refused: refused}
				if refused == nil {
					s.Image = toChannels(img, f.channels)
				}
				if err := fn(s); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// imageFiles lists the image files of a class directory in name order (none
// if the class is absent from this split); two files with the same stem are
// an error since the stem becomes the object name.
func imageFiles(fsys fs.FS, dir string) ([]string, error) {
	des, err := fs.ReadDir(fsys, dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSource, err)
	}
	var out []string
	seen := map[string]string{}
	for _, de := range des {
		name := de.Name()
		if !de.Type().IsRegular() || strings.HasPrefix(name, ".") || !imageExts[strings.ToLower(path.Ext(name))] {
			continue
		}
		stem := strings.TrimSuffix(name, path.Ext(name))
		if prev, dup := seen[stem]; dup {
			return nil, fmt.Errorf("%w: %s and %s in %s share the name %q", ErrSource, prev, name, dir, stem)
		}
		seen[stem] = name
		out = append(out, name)
	}
	return out, nil
}

// roundRobin keeps at most limit files in all, taking one per class in turn.
func roundRobin(files [][]string, limit int) [][]string {
	quota := make([]int, len(files))
	for taken, more := 0, true; taken < limit && more; {
		more = false
		for c := range files {
			if taken < limit && quota[c] < len(files[c]) {
				quota[c]++
				taken++
				more = true
			}
		}
	}
	out := make([][]string, len(files))
	for c := range files {
		out[c] = files[c][:quota[c]]
	}
	return out
}

// decodeFile decodes one image. A file over opts.MaxFileBytes is refused
// from its size, unread, and an image over opts.MaxPixels from its header:
// refused (wrapping ErrRefused) says so. Otherwise the file is decoded as
// it is read, never held whole; what follows the image's end is not read.
// err is a file that cannot be read or decoded.
func decodeFile(fsys fs.FS, name string, opts ReadOptions) (img image.Image, refused, err error) {
	f, err := fsys.Open(name)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrSource, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrSource, err)
	}
	limit := st.Size()
	if opts.MaxFileBytes > 0 {
		if st.Size() > opts.MaxFileBytes {
			return nil, fmt.Errorf("%w: %s: %d bytes, over the limit of %d", ErrRefused, name, st.Size(), opts.MaxFileBytes), nil
		}
		limit = opts.MaxFileBytes // a file growing meanwhile is still bounded
	}
	sr, ok := f.(io.ReadSeeker)
	if !ok {
		return nil, nil, fmt.Errorf("%w: %s: not seekable", ErrSource, name)
	}
	cfg, _, err := image.DecodeConfig(bufio.NewReader(io.LimitReader(sr, limit)))
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %s: %w", ErrSource, name, err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return nil, nil, fmt.Errorf("%w: %s: %dx%d pixels", ErrSource, name, cfg.Width, cfg.Height)
	}
	if opts.MaxPixels > 0 && int64(cfg.Width)*int64(cfg.Height) > opts.MaxPixels {
		return nil, fmt.Errorf("%w: %s: %dx%d is over %d pixels", ErrRefused, name, cfg.Width, cfg.Height, opts.MaxPixels), nil
	}
	if _, err := sr.Seek(0, io.SeekStart); err != nil {
		return nil, nil, fmt.Errorf("%w: %s: %w", ErrSource, name, err)
	}
	img, _, err = image.Decode(bufio.NewReader(io.LimitReader(sr, limit)))
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %s: %w", ErrSource, name, err)
	}
	return img, nil, nil
}
