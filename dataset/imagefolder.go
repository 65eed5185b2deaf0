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
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	_ "golang.org/x/image/webp"

	"github.com/supflow/supflow/imgdecode"
	"github.com/supflow/supflow/store"
)

// imageExts are the file extensions an ImageFolder reads (any case): the
// formats decode reads. A file named otherwise is left out as SkipExtension.
var imageExts = map[string]bool{".png": true, ".jpg": true, ".jpeg": true, ".gif": true, ".webp": true}

// Kinds of Skip: why an ImageFolder left an entry of its tree out.
const (
	SkipEmpty       = "empty"        // a zero-byte image file
	SkipUndecodable = "undecodable"  // not an image of a known format, truncated or corrupt
	SkipUnreadable  = "unreadable"   // a file or class directory that cannot be opened or read
	SkipName        = "name"         // not valid UTF-8, a control character, or no valid object key
	SkipDuplicate   = "duplicate"    // another file of the class has the same name stem
	SkipSymlink     = "symlink"      // never followed
	SkipSpecial     = "special"      // a FIFO, socket or device
	SkipHidden      = "hidden"       // a name starting with '.'
	SkipNested      = "nested"       // a directory inside a class directory, not read
	SkipLayout      = "layout"       // a file outside <split>/<class>/
	SkipNoExtension = "no_extension" // a file name without an extension
	SkipExtension   = "extension"    // an extension other than .png, .jpg, .jpeg, .gif, .webp
)

// Skip is one entry of a source's tree left out, and why; ReadOptions.Skip
// receives them.
type Skip struct {
	// Path is relative to the source directory, Go-quoted (without the
	// quotes) when not valid UTF-8 or holding a control character.
	Path   string `json:"path"`
	Kind   string `json:"kind"`
	Reason string `json:"reason"`
}

// ImageFolder reads dir/<split>/<class>/<file>: every subdirectory of dir
// is a split, every subdirectory of a split a class. Classes are the sorted
// union of class names over all splits (the torchvision convention), so a
// class missing from one split keeps its label. Whatever else the tree
// holds (symbolic links, FIFOs, hidden entries, nested directories, other
// files, bad names, files that do not decode) is left out and reported
// (Skip), never read through, and every read goes through an os.Root, so
// even a link swapped in while ingesting cannot make it read outside dir.
type ImageFolder struct {
	dir      string
	fsys     fs.FS // dir, confined by os.Root
	channels int
	splits   []string
	classes  []string
	skipped  []Skip // at the split and class levels, found by OpenImageFolder
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
	f := &ImageFolder{dir: dir, fsys: root.FS(), channels: channels}
	des, err := fs.ReadDir(f.fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSource, err)
	}
	f.splits = f.subdirs(des, "")
	if len(f.splits) == 0 {
		return nil, fmt.Errorf("%w: %s has no split directories (want <split>/<class>/<image>)", ErrSource, dir)
	}
	for _, s := range f.splits {
		des, err := fs.ReadDir(f.fsys, s)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrSource, err)
		}
		f.classes = append(f.classes, f.subdirs(des, s)...)
	}
	slices.Sort(f.classes)
	f.classes = slices.Compact(f.classes)
	if len(f.classes) == 0 {
		return nil, fmt.Errorf("%w: %s has no class directories", ErrSource, dir)
	}
	return f, nil
}

// subdirs returns the names of the directories of des, in dir ("" for the
// root), that can be splits or classes, and records what else is there.
func (f *ImageFolder) subdirs(des []fs.DirEntry, dir string) []string {
	var out []string
	for _, de := range des {
		p := path.Join(dir, de.Name())
		if s, bad := entrySkip(de, p); bad {
			f.skipped = append(f.skipped, s)
		} else if de.IsDir() {
			out = append(out, de.Name())
		} else {
			where := "a split"
			if dir == "" {
				where = "the top directory"
			}
			f.skipped = append(f.skipped, Skip{printablePath(p), SkipLayout, "a file in " + where + ", not in <split>/<class>/"})
		}
	}
	return out
}

// entrySkip says whether a directory entry is left out whatever its level,
// and why: a bad name, hidden, a symbolic link or a special file.
func entrySkip(de fs.DirEntry, p string) (Skip, bool) {
	name := de.Name()
	switch {
	case badName(name) != "":
		return Skip{printablePath(p), SkipName, badName(name)}, true
	case strings.HasPrefix(name, "."):
		return Skip{printablePath(p), SkipHidden, "hidden (its name starts with '.')"}, true
	case de.Type()&fs.ModeSymlink != 0:
		return Skip{printablePath(p), SkipSymlink, "a symbolic link (never followed)"}, true
	case !de.IsDir() && !de.Type().IsRegular():
		return Skip{printablePath(p), SkipSpecial, "not a regular file (" + de.Type().String() + ")"}, true
	}
	return Skip{}, false
}

// badName says why a file or directory name cannot name an object ("" if
// it can): stages fetch keys store.ValidKey accepts, and logs and reports
// must not carry control characters.
func badName(name string) string {
	switch {
	case !utf8.ValidString(name):
		return "the name is not valid UTF-8"
	case strings.ContainsFunc(name, unicode.IsControl):
		return "the name holds a control character"
	}
	if err := store.ValidKey(name); err != nil {
		return err.Error()
	}
	return ""
}

// printablePath is p, or its Go quoting without the quotes when p is not
// valid UTF-8 or holds a control character.
func printablePath(p string) string {
	if utf8.ValidString(p) && !strings.ContainsFunc(p, unicode.IsControl) {
		return p
	}
	q := strconv.Quote(p)
	return q[1 : len(q)-1]
}

func (f *ImageFolder) Name() string      { return "imagefolder" }
func (f *ImageFolder) Classes() []string { return f.classes }
func (f *ImageFolder) Channels() int     { return f.channels }

// Stamp writes every entry of the tree (stampTree): a file added, removed,
// rewritten or renamed changes it.
func (f *ImageFolder) Stamp(ctx context.Context, w io.Writer) error {
	return stampTree(ctx, w, f.fsys)
}

// Samples reads split by split, class by class, files in name order, or
// with opts.Mix each split's files in mixOrder's order of their
// <class>/<stem> names. With a limit, the split's files are chosen by
// Select (class-stratified, seeded) from their names, before any is read. A
// file over opts.MaxFileBytes is refused unread, an image over
// opts.MaxPixels from its header; the rest of a file is streamed, never
// read whole. Each entry left out goes to opts.Skip: those at the split and
// class levels first, then those inside each class directory, and each
// image file that does not decode.
func (f *ImageFolder) Samples(ctx context.Context, opts ReadOptions, fn func(Sample) error) error {
	skip := opts.Skip
	if skip == nil {
		skip = func(Skip) {}
	}
	for _, s := range f.skipped {
		skip(s)
	}
	type file struct {
		label int
		name  string
	}
	for _, split := range f.splits {
		var files []file
		var labels []int
		for label, class := range f.classes {
			for _, name := range f.imageFiles(path.Join(split, class), skip) {
				files = append(files, file{label, name})
				labels = append(labels, label)
			}
		}
		stem := func(i int) string { return strings.TrimSuffix(files[i].name, path.Ext(files[i].name)) }
		order := opts.order(split, labels, func(i int) string { return f.classes[files[i].label] + "/" + stem(i) })
		for _, i := range order {
			if err := ctx.Err(); err != nil {
				return err
			}
			label := files[i].label
			p := path.Join(split, f.classes[label], files[i].name)
			img, refused, err := decodeFile(f.fsys, p, f.channels, opts)
			var bad *badFile
			if errors.As(err, &bad) {
				skip(Skip{printablePath(p), bad.kind, bad.reason.Error()})
				continue
			}
			if err != nil {
				return fmt.Errorf("%w (in %s)", err, f.dir)
			}
			if err := fn(Sample{Split: split, Label: label, ID: stem(i), Image: img, Refused: refused}); err != nil {
				return err
			}
		}
	}
	return nil
}

// imageFiles lists the image files of a class directory in name order
// (none if the class is absent from this split) and passes what else it
// holds to skip. A file whose name stem another file of the class has
// already is left out (SkipDuplicate): the stem becomes the object name.
func (f *ImageFolder) imageFiles(dir string, skip func(Skip)) []string {
	des, err := fs.ReadDir(f.fsys, dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		skip(Skip{printablePath(dir), SkipUnreadable, err.Error()})
		return nil
	}
	var out []string
	seen := map[string]string{}
	for _, de := range des {
		name, p := de.Name(), path.Join(dir, de.Name())
		ext := path.Ext(name)
		stem := strings.TrimSuffix(name, ext)
		if s, bad := entrySkip(de, p); bad {
			skip(s)
			continue
		}
		switch {
		case de.IsDir():
			skip(Skip{printablePath(p), SkipNested, "a directory inside a class directory (not read)"})
		case ext == "" || stem == "":
			skip(Skip{printablePath(p), SkipNoExtension, "no file extension"})
		case !imageExts[strings.ToLower(ext)]:
			skip(Skip{printablePath(p), SkipExtension, "extension " + ext + " is not .png, .jpg, .jpeg, .gif or .webp"})
		case seen[stem] != "":
			skip(Skip{printablePath(p), SkipDuplicate, "the same name as " + seen[stem] + " but for the extension"})
		default:
			seen[stem] = name
			out = append(out, name)
		}
	}
	return out
}

// badFile is a file left out because it cannot be read or decoded; it
// wraps ErrSource and the reason.
type badFile struct {
	name   string
	kind   string // SkipEmpty, SkipUnreadable or SkipUndecodable
	reason error
}

func (b *badFile) Error() string   { return fmt.Sprintf("%v: %s: %v", ErrSource, b.name, b.reason) }
func (b *badFile) Unwrap() []error { return []error{ErrSource, b.reason} }

// exifHead is how much of a JPEG is read for its EXIF orientation.
const exifHead = 132 << 10

// decodeFile decodes one image and converts it to channels (1: *image.Gray,
// 3: *image.NRGBA) as decode would (imgdecode.Convert: its RGB or luma
// conversion, EXIF orientation applied, so that what is stored is upright).
// A file over opts.MaxFileBytes is refused from its size, unread, and an
// image over opts.MaxPixels from its header: refused (wrapping ErrRefused)
// says so. Otherwise the file is decoded as it is read, never held whole;
// what follows the image's end is not read. err is a *badFile (wrapping
// ErrSource) for a file that cannot be read or decoded.
func decodeFile(fsys fs.FS, name string, channels int, opts ReadOptions) (img image.Image, refused, err error) {
	bad := func(kind string, err error) (image.Image, error, error) {
		return nil, nil, &badFile{name, kind, err}
	}
	f, err := fsys.Open(name)
	if err != nil {
		return bad(SkipUnreadable, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return bad(SkipUnreadable, err)
	}
	if st.Size() == 0 {
		return bad(SkipEmpty, errors.New("empty file"))
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
		return bad(SkipUnreadable, errors.New("not seekable"))
	}
	br := bufio.NewReaderSize(io.LimitReader(sr, limit), exifHead)
	head, err := br.Peek(exifHead)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, bufio.ErrBufferFull) {
		return bad(SkipUnreadable, err)
	}
	orientation := imgdecode.Orientation(head)
	cfg, _, err := image.DecodeConfig(br)
	if err != nil {
		return bad(SkipUndecodable, err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return bad(SkipUndecodable, fmt.Errorf("%dx%d pixels", cfg.Width, cfg.Height))
	}
	if opts.MaxPixels > 0 && int64(cfg.Width)*int64(cfg.Height) > opts.MaxPixels {
		return nil, fmt.Errorf("%w: %s: %dx%d is over %d pixels", ErrRefused, name, cfg.Width, cfg.Height, opts.MaxPixels), nil
	}
	if _, err := sr.Seek(0, io.SeekStart); err != nil {
		return bad(SkipUnreadable, err)
	}
	m, format, err := image.Decode(bufio.NewReader(io.LimitReader(sr, limit)))
	if err != nil {
		return bad(SkipUndecodable, err)
	}
	return pixelsImage(imgdecode.Convert(m, format, channels == 1, orientation)), nil, nil
}

// pixelsImage wraps decoded pixels as *image.Gray (1 channel) or opaque
// *image.NRGBA (3), what a Sample holds.
func pixelsImage(m imgdecode.Image) image.Image {
	r := image.Rect(0, 0, m.Width, m.Height)
	if m.Channels == 1 {
		return &image.Gray{Pix: m.Pix, Stride: m.Width, Rect: r}
	}
	out := image.NewNRGBA(r)
	for i, j := 0, 0; i < len(m.Pix); i, j = i+3, j+4 {
		out.Pix[j], out.Pix[j+1], out.Pix[j+2], out.Pix[j+3] = m.Pix[i], m.Pix[i+1], m.Pix[i+2], 0xff
	}
	return out
}
