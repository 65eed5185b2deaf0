package dataset

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/supflow/supflow/imgdecode"
	"github.com/supflow/supflow/store"
)

// SourceS3 is dataset.source for images already in the bucket: Index, not
// Open, reads it.
const SourceS3 = "s3"

// Names of the list file Index looks for under the indexed path when
// IndexOptions.List is not set.
const (
	ListJSONLFile = "list.jsonl"
	ListCSVFile   = "list.csv"
)

// Layouts of an indexed path (IndexReport.Layout).
const (
	LayoutImageFolder = "imagefolder" // <path>/<split>/<class>/<file>
	LayoutList        = "list"        // the rows of a list file
)

// DefaultSample is how many images Index decodes, by default, for the mean,
// std and size in info.json.
const DefaultSample = 1000

// maxRefusalsReported bounds IndexReport.RefusedKeys; Refused counts all.
const maxRefusalsReported = 100

// maxClassName bounds a class name taken from a list file, in bytes.
const maxClassName = 256

// indexVersion changes when the same listing would index differently, so
// that a data set indexed by an older supflow is indexed again.
const indexVersion = "supflow-index/1"

// indexExts are the file extensions Index takes as images, compared in lower
// case: the formats decode reads (imgdecode sniffs the content; a file
// named otherwise is skipped unread).
var indexExts = map[string]string{".jpg": "jpeg", ".jpeg": "jpeg", ".png": "png", ".gif": "gif", ".webp": "webp"}

// IndexBucket is what Index needs from object storage; *store.Client has
// it.
type IndexBucket interface {
	Walk(ctx context.Context, prefix string, fn func(store.ObjectInfo) error) error
	Get(ctx context.Context, key string) ([]byte, error)
	GetMax(ctx context.Context, key string, max int64) ([]byte, error)
	Stat(ctx context.Context, key string) (store.ObjectInfo, error)
	Put(ctx context.Context, key string, data []byte, opts store.PutOptions) error
}

// IndexOptions tune Index. Path and Prefix place the data set; the zero
// value of the rest is usable.
type IndexOptions struct {
	// Path is the key prefix the images lie under ("" for the whole
	// bucket). It must be Prefix or lie under it, so that every manifest
	// key is under Prefix (what Load and decode's key check require) with
	// no rule of its own.
	Path string
	// Prefix is where manifest.jsonl, classes.json, info.json and
	// ingest-report.json go (dataset.prefix).
	Prefix string
	// List is the key of a list file (CSV or JSONL, by its extension; see
	// Index). Empty: <Path>/list.jsonl or <Path>/list.csv when the listing
	// has one (not both), else the ImageFolder layout.
	List string
	// DefaultSplit is the split of a list row that names none; default
	// "train".
	DefaultSplit string
	// StatsSplit is the split the mean and std are sampled from; default
	// "train", else the first split.
	StatsSplit string
	// Limit is which images of each split are indexed (Select); the zero
	// value keeps all.
	Limit Selection
	// Decode is how the sample is decoded: pass the decode section's
	// settings (max_pixels, resize_shorter, gray), so that the statistics
	// are of what decode outputs and a sampled image decode would refuse
	// is found. Gray gives 1 channel, else 3.
	Decode imgdecode.Config
	// MaxObjectBytes refuses, from its listed size, an object decode
	// would refuse (decode.max_object_bytes). Default
	// DefaultMaxObjectBytes.
	MaxObjectBytes int64
	// Sample is how many images of StatsSplit are read and decoded, spread
	// over the classes; default DefaultSample.
	Sample int
	// Concurrency is how many sampled images are fetched and decoded at
	// once; default 4. Each decode may hold about 12 bytes per pixel of
	// Decode.MaxPixels (docs/operations.md, Failures), as a decode worker
	// does.
	Concurrency int
	// Force indexes again even when the stored fingerprint matches.
	Force bool
	// Logger receives progress and refusals; nil discards.
	Logger *slog.Logger
}

func (o *IndexOptions) setDefaults() {
	o.Path = strings.TrimSuffix(o.Path, "/")
	o.Prefix = strings.TrimSuffix(o.Prefix, "/")
	if o.DefaultSplit == "" {
		o.DefaultSplit = "train"
	}
	if o.StatsSplit == "" {
		o.StatsSplit = "train"
	}
	if o.MaxObjectBytes == 0 {
		o.MaxObjectBytes = DefaultMaxObjectBytes
	}
	if o.Decode.MaxPixels == 0 {
		o.Decode.MaxPixels = DefaultMaxPixels
	}
	if o.Sample == 0 {
		o.Sample = DefaultSample
	}
	if o.Concurrency == 0 {
		o.Concurrency = 4
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

func (o IndexOptions) validate() error {
	for _, p := range []struct{ name, v string }{{"path", o.Path}, {"prefix", o.Prefix}, {"list", o.List}} {
		if p.v == "" {
			continue
		}
		if err := store.ValidKey(p.v); err != nil {
			return fmt.Errorf("%w: %s: %w", ErrSource, p.name, err)
		}
	}
	if o.Prefix != "" && o.Path != o.Prefix && !strings.HasPrefix(o.Path, o.Prefix+"/") {
		return fmt.Errorf("%w: path %q is not the data set prefix %q or under it", ErrSource, o.Path, o.Prefix)
	}
	for _, s := range []string{o.DefaultSplit, o.StatsSplit} {
		if err := checkSplit(s); err != nil {
			return err
		}
	}
	switch {
	case o.Limit.negative() || o.Concurrency < 0 || o.Sample < 0 || o.MaxObjectBytes < 0:
		return fmt.Errorf("%w: negative limit, sample, concurrency or object size", ErrSource)
	case o.List != "" && !strings.HasSuffix(strings.ToLower(o.List), ".jsonl") && !strings.HasSuffix(strings.ToLower(o.List), ".csv"):
		return fmt.Errorf("%w: list %q is neither .jsonl nor .csv", ErrSource, o.List)
	}
	if err := o.Decode.Validate(); err != nil {
		return fmt.Errorf("%w: decode: %w", ErrSource, err)
	}
	return nil
}

// IndexReport says what Index found and did; it is also written, as JSON,
// to <prefix>/ingest-report.json.
type IndexReport struct {
	Source string `json:"source"` // SourceS3
	Path   string `json:"path"`   // the indexed key prefix
	Prefix string `json:"prefix"` // where the data set files are
	Layout string `json:"layout"` // LayoutImageFolder or LayoutList
	List   string `json:"list,omitempty"`
	// Fingerprint identifies the listing and options the data set was
	// built from (Info.Fingerprint).
	Fingerprint string `json:"fingerprint"`
	// Unchanged says that this call found the data set already built from
	// the same listing and options: it listed Path (and read the list
	// file), compared, and read or wrote nothing else. The rest of the
	// report is the stored one, from the call that built it.
	Unchanged bool      `json:"unchanged"`
	Indexed   time.Time `json:"indexed"` // when the data set was built
	// Listed counts the objects under Path, but for the data set's own
	// files and the list file.
	Listed int `json:"listed"`
	// Images is the number of entries in the manifest.
	Images  int          `json:"images"`
	Skipped IndexSkipped `json:"skipped"`
	// Refused counts images left out because decode would refuse them:
	// from their listed size (empty, over MaxObjectBytes), or from the
	// sample (not decodable, over the pixel limit, gone). RefusedKeys
	// names the first of them, with the reason.
	Refused     int       `json:"refused"`
	RefusedKeys []Refusal `json:"refused_keys,omitempty"`
	// Sampled is how many images were read and decoded (refused ones
	// included); the rest were not read.
	Sampled int `json:"sampled"`
	// Counts is the number of images per split and class.
	Counts map[string]map[string]int `json:"counts"`
	Info   Info                      `json:"info"`

	// Entries is the manifest; not part of the JSON, nil when Unchanged.
	Entries []Entry `json:"-"`
}

// IndexSkipped counts the objects Index did not take, by reason.
type IndexSkipped struct {
	// Extension: not .jpg, .jpeg, .png, .gif or .webp (any case).
	Extension int `json:"extension"`
	// Hidden: a segment of the key under Path starts with '.'.
	Hidden int `json:"hidden"`
	// Layout: not <split>/<class>/<file> under Path (ImageFolder), e.g.
	// nested deeper or lying directly in a split.
	Layout int `json:"layout"`
	// InvalidKey: a key store.ValidKey refuses (an empty, "." or ".."
	// segment, a backslash, a control character), which no stage fetches;
	// a "directory marker" (a key ending in '/') is ignored, not counted.
	InvalidKey int `json:"invalid_key"`
}

// Refusal is one image left out of an indexed data set, and why.
type Refusal struct {
	Key    string `json:"key"`
	Reason string `json:"reason"`
}

// object is one listed object.
type object struct {
	key  string
	size int64
}

// candidate is an image the layout or the list names.
type candidate struct {
	obj          object
	split, class string
}

// Index makes a data set of images already in the bucket, used where they
// are: it lists opts.Path and writes manifest.jsonl (entries pointing at
// the existing keys, sizes from the listing, no sha256), classes.json,
// info.json and ingest-report.json under opts.Prefix, and copies nothing.
//
// The images are named either by the ImageFolder layout,
// <path>/<split>/<class>/<file> (splits and classes sorted by name; classes
// are the union over splits), or by a list file (opts.List, or
// <path>/list.jsonl or <path>/list.csv): JSON lines
// {"key": "<path>/...", "label": "cat", "split": "train"}, or CSV rows
// key,label[,split] with an optional header line key,label[,split]. A key is
// the object's full key and must lie under the path; label is the class
// name (a JSON string or integer); split is optional (opts.DefaultSplit).
// Classes are sorted by name, or numerically when every label is a
// non-negative integer. A list row naming a key outside the path, missing
// from the listing, or twice is an error naming its line.
//
// Objects that are not images by extension, hidden ones and, in the
// ImageFolder layout, ones at another depth are skipped and counted; an
// object decode would refuse from its listed size is left out. Only a
// sample of the stats split (opts.Sample images, spread over the classes)
// is read, to compute the mean, std and size for info.json: a sampled image
// decode refuses is left out and reported; any other bad image is found by
// decode and dead-lettered, as for every data set.
//
// Index is idempotent and cheap to repeat: when the listing (keys, sizes,
// ETags), the list file and the options give the fingerprint stored in
// both info.json and the report, it returns the stored report with
// Unchanged set, having read nothing else and written nothing.
func Index(ctx context.Context, b IndexBucket, opts IndexOptions) (IndexReport, error) {
	opts.setDefaults()
	if err := opts.validate(); err != nil {
		return IndexReport{}, err
	}
	own := map[string]bool{ManifestKey(opts.Prefix): true, ClassesKey(opts.Prefix): true,
		InfoKey(opts.Prefix): true, ReportKey(opts.Prefix): true}
	walkPrefix := ""
	if opts.Path != "" {
		walkPrefix = opts.Path + "/"
	}
	fp := sha256.New()
	var (
		objs       []object
		foundLists []string
	)
	err := b.Walk(ctx, walkPrefix, func(o store.ObjectInfo) error {
		if own[o.Key] || o.Key == opts.List {
			return nil
		}
		if opts.List == "" && (o.Key == walkPrefix+ListJSONLFile || o.Key == walkPrefix+ListCSVFile) {
			foundLists = append(foundLists, o.Key)
			return nil
		}
		fmt.Fprintf(fp, "%q %d %q\n", o.Key, o.Size, o.ETag)
		objs = append(objs, object{o.Key, o.Size})
		return nil
	})
	if err != nil {
		return IndexReport{}, fmt.Errorf("dataset: index: %w", err)
	}
	listKey := opts.List
	switch len(foundLists) {
	case 1:
		listKey = foundLists[0]
	case 2:
		return IndexReport{}, fmt.Errorf("%w: both %s and %s: keep one list", ErrSource, foundLists[0], foundLists[1])
	}
	var list []byte
	if listKey != "" {
		if list, err = b.Get(ctx, listKey); err != nil {
			return IndexReport{}, fmt.Errorf("dataset: index: list %s: %w", listKey, err)
		}
		sum := sha256.Sum256(list)
		fmt.Fprintf(fp, "list %q %x\n", listKey, sum)
	}
	fmt.Fprintf(fp, "%s %q %q %q %q %v %d %d %d %v %d %d\n", indexVersion, opts.Path, opts.Prefix, opts.DefaultSplit, opts.StatsSplit,
		opts.Limit.PerSplit, opts.Limit.Seed, opts.Decode.MaxPixels, opts.Decode.ResizeShorter, opts.Decode.Gray, opts.MaxObjectBytes, opts.Sample)
	fingerprint := hex.EncodeToString(fp.Sum(nil))

	if !opts.Force {
		var rep IndexReport
		if raw, ok := storedReport(ctx, b, opts.Prefix, fingerprint); ok && json.Unmarshal(raw, &rep) == nil {
			rep.Unchanged = true
			opts.Logger.InfoContext(ctx, "index unchanged", "path", opts.Path, "images", rep.Images, "fingerprint", fingerprint[:12])
			return rep, nil
		}
	}

	rep := IndexReport{Source: SourceS3, Path: opts.Path, Prefix: opts.Prefix, List: listKey,
		Fingerprint: fingerprint, Listed: len(objs), Indexed: time.Now().UTC().Truncate(time.Second)}
	var cands []candidate
	numeric := false
	if listKey == "" {
		rep.Layout = LayoutImageFolder
		cands = imageFolderCandidates(objs, walkPrefix, &rep.Skipped)
	} else {
		rep.Layout = LayoutList
		if cands, numeric, err = listCandidates(list, listKey, objs, walkPrefix, opts.DefaultSplit, &rep.Skipped); err != nil {
			return IndexReport{}, err
		}
	}
	if len(cands) == 0 {
		return IndexReport{}, fmt.Errorf("%w: no images under %q (listed %d objects, skipped %+v)", ErrSource, walkPrefix, len(objs), rep.Skipped)
	}
	classes := classNames(cands, numeric)
	label := make(map[string]int32, len(classes))
	for i, c := range classes {
		label[c] = int32(i)
	}
	if opts.Limit.Limited() {
		cands = limitCandidates(cands, opts.Limit)
	}

	// What decode refuses from the size alone is left out unread.
	refuse := func(key, reason string) {
		rep.Refused++
		if len(rep.RefusedKeys) < maxRefusalsReported {
			rep.RefusedKeys = append(rep.RefusedKeys, Refusal{key, reason})
		}
		opts.Logger.WarnContext(ctx, "image left out of the data set", "key", key, "reason", reason)
	}
	kept := cands[:0]
	for _, c := range cands {
		switch {
		case c.obj.size == 0:
			refuse(c.obj.key, "empty object")
		case c.obj.size > opts.MaxObjectBytes:
			refuse(c.obj.key, fmt.Sprintf("%d bytes, over the object limit of %d (decode.max_object_bytes)", c.obj.size, opts.MaxObjectBytes))
		default:
			kept = append(kept, c)
		}
	}
	cands = kept

	statsSplit := opts.StatsSplit
	if !slices.ContainsFunc(cands, func(c candidate) bool { return c.split == statsSplit }) {
		if len(cands) == 0 {
			return IndexReport{}, fmt.Errorf("%w: no image left under %q (%d refused)", ErrSource, walkPrefix, rep.Refused)
		}
		statsSplit = cands[0].split
	}
	channels := 3
	if opts.Decode.Gray {
		channels = 1
	}
	sample := pickSample(cands, statsSplit, opts.Sample)
	st, refusedSample, err := sampleStats(ctx, b, cands, sample, opts)
	if err != nil {
		return IndexReport{}, err
	}
	rep.Sampled = len(sample)
	drop := map[int]bool{}
	for _, r := range refusedSample {
		drop[r.idx] = true
		refuse(cands[r.idx].obj.key, r.reason)
	}
	if st.n == 0 {
		return IndexReport{}, fmt.Errorf("%w: none of the %d sampled images of split %s decodes (%d refused)", ErrSource, len(sample), statsSplit, rep.Refused)
	}

	rep.Counts = map[string]map[string]int{}
	info := Info{Source: SourceS3, Channels: channels, Counts: map[string]int{}, Classes: len(classes),
		Height: st.h, Width: st.w, StatsSplit: statsSplit, Sampled: len(sample) - len(refusedSample), Fingerprint: fingerprint}
	info.Mean, info.Std = st.meanStd(channels)
	for c := range info.Std {
		if info.Std[c] == 0 {
			return IndexReport{}, fmt.Errorf("%w: channel %d of the %d sampled images of split %s is constant", ErrSource, c, info.Sampled, statsSplit)
		}
	}
	for i, c := range cands {
		if drop[i] {
			continue
		}
		e := Entry{Key: c.obj.key, Label: label[c.class], Class: c.class, Split: c.split, Size: c.obj.size}
		if err := UnderPrefix(e.Key, opts.Prefix); err != nil {
			return IndexReport{}, fmt.Errorf("dataset: index: %w", err) // Path lies under Prefix: never
		}
		rep.Entries = append(rep.Entries, e)
		info.Counts[e.Split]++
		if rep.Counts[e.Split] == nil {
			rep.Counts[e.Split] = map[string]int{}
		}
		rep.Counts[e.Split][e.Class]++
		f := indexExts[strings.ToLower(path.Ext(e.Key))]
		switch info.Format {
		case "", f:
			info.Format = f
		default:
			info.Format = "mixed"
		}
	}
	rep.Images = len(rep.Entries)
	rep.Info = info
	if err := writeIndex(ctx, b, opts.Prefix, rep, classes); err != nil {
		return IndexReport{}, err
	}
	opts.Logger.InfoContext(ctx, "index done", "path", opts.Path, "layout", rep.Layout, "images", rep.Images, "sampled", rep.Sampled,
		"refused", rep.Refused, "skipped_extension", rep.Skipped.Extension, "skipped_hidden", rep.Skipped.Hidden,
		"skipped_layout", rep.Skipped.Layout, "skipped_invalid_key", rep.Skipped.InvalidKey)
	return rep, nil
}

// writeIndex writes info.json (with the fingerprint) first, then
// classes.json, the manifest and, last, the report (with it too).
func writeIndex(ctx context.Context, b IndexBucket, prefix string, rep IndexReport, classes []string) error {
	var manifest bytes.Buffer
	if err := WriteManifest(&manifest, rep.Entries); err != nil {
		return err
	}
	infoJSON, err := marshalIndent(rep.Info)
	if err != nil {
		return fmt.Errorf("dataset: info: %w", err)
	}
	classesJSON, err := marshalIndent(classes)
	if err != nil {
		return fmt.Errorf("dataset: classes: %w", err)
	}
	repJSON, err := marshalIndent(rep)
	if err != nil {
		return fmt.Errorf("dataset: report: %w", err)
	}
	for _, f := range []struct {
		key, ctype string
		data       []byte
	}{
		{InfoKey(prefix), "application/json", infoJSON},
		{ClassesKey(prefix), "application/json", classesJSON},
		{ManifestKey(prefix), "application/x-ndjson", manifest.Bytes()},
		{ReportKey(prefix), "application/json", repJSON},
	} {
		if err := b.Put(ctx, f.key, f.data, store.PutOptions{ContentType: f.ctype}); err != nil {
			return fmt.Errorf("dataset: put %s: %w", f.key, err)
		}
	}
	return nil
}

// skipReason says whether an object is not an image of the data set by its
// key alone (rel: the key under the indexed path), and counts why.
func skipReason(key, rel string, sk *IndexSkipped) bool {
	switch {
	case store.ValidKey(key) != nil:
		sk.InvalidKey++
	case rel == "" || strings.HasPrefix(rel, ".") || strings.Contains(rel, "/."):
		sk.Hidden++
	case indexExts[strings.ToLower(path.Ext(rel))] == "":
		sk.Extension++
	default:
		return false
	}
	return true
}

// imageFolderCandidates takes the objects at <split>/<class>/<file> under
// walkPrefix, in key order (split, then class, then file).
func imageFolderCandidates(objs []object, walkPrefix string, sk *IndexSkipped) []candidate {
	var out []candidate
	for _, o := range objs {
		if strings.HasSuffix(o.key, "/") {
			continue // a folder marker some tools create
		}
		rel := strings.TrimPrefix(o.key, walkPrefix)
		if skipReason(o.key, rel, sk) {
			continue
		}
		segs := strings.Split(rel, "/")
		if len(segs) != 3 {
			sk.Layout++
			continue
		}
		out = append(out, candidate{obj: o, split: segs[0], class: segs[1]})
	}
	return out
}

// listRow is one row of a list file.
type listRow struct {
	line              int
	key, label, split string
	splitSet          bool // false: the row names no split
}

// listCandidates reads a list file and checks its rows against the
// listing. numeric says that every label is a non-negative integer.
func listCandidates(list []byte, listKey string, objs []object, walkPrefix, defaultSplit string, sk *IndexSkipped) ([]candidate, bool, error) {
	var rows []listRow
	var err error
	if strings.HasSuffix(strings.ToLower(listKey), ".csv") {
		rows, err = parseListCSV(list)
	} else {
		rows, err = parseListJSONL(list)
	}
	if err != nil {
		return nil, false, fmt.Errorf("%w: list %s: %w", ErrSource, listKey, err)
	}
	listed := make(map[string]object, len(objs))
	for _, o := range objs {
		listed[o.key] = o
	}
	seen := make(map[string]int, len(rows))
	numeric := true
	var out []candidate
	for _, r := range rows {
		fail := func(format string, a ...any) error {
			return fmt.Errorf("%w: list %s line %d: %s", ErrSource, listKey, r.line, fmt.Sprintf(format, a...))
		}
		if err := store.ValidKey(r.key); err != nil {
			return nil, false, fmt.Errorf("%w: list %s line %d: %w", ErrSource, listKey, r.line, err)
		}
		if !strings.HasPrefix(r.key, walkPrefix) {
			return nil, false, fmt.Errorf("%w: list %s line %d: %w: %q is outside the indexed path %q",
				ErrSource, listKey, r.line, store.ErrInvalidKey, r.key, walkPrefix)
		}
		if prev, dup := seen[r.key]; dup {
			return nil, false, fail("key %q repeats line %d", r.key, prev)
		}
		seen[r.key] = r.line
		if skipReason(r.key, strings.TrimPrefix(r.key, walkPrefix), sk) {
			continue
		}
		o, ok := listed[r.key]
		if !ok {
			return nil, false, fail("no object %q under the indexed path", r.key)
		}
		if err := checkClass(r.label); err != nil {
			return nil, false, fail("%v", err)
		}
		split := r.split
		if !r.splitSet {
			split = defaultSplit
		}
		if err := checkSplit(split); err != nil {
			return nil, false, fail("%v", err)
		}
		numeric = numeric && canonicalUint(r.label)
		out = append(out, candidate{obj: o, split: split, class: r.label})
	}
	return out, numeric, nil
}

// parseListJSONL reads JSON lines {"key": ..., "label": ..., "split": ...};
// blank lines are ignored.
func parseListJSONL(b []byte) ([]listRow, error) {
	var rows []listRow
	for n, line := range bytes.Split(b, []byte("\n")) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		if len(line) > maxLine {
			return nil, fmt.Errorf("line %d: longer than %d bytes", n+1, maxLine)
		}
		var v struct {
			Key   *string         `json:"key"`
			Label json.RawMessage `json:"label"`
			Split *string         `json:"split"`
		}
		dec := json.NewDecoder(bytes.NewReader(line))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("line %d: %w", n+1, err)
		}
		if dec.More() {
			return nil, fmt.Errorf("line %d: trailing data after the row", n+1)
		}
		if v.Key == nil || v.Label == nil {
			return nil, fmt.Errorf("line %d: want key and label", n+1)
		}
		r := listRow{line: n + 1, key: *v.Key}
		var s string
		var i json.Number
		switch {
		case json.Unmarshal(v.Label, &s) == nil:
			r.label = s
		case json.Unmarshal(v.Label, &i) == nil && canonicalUint(i.String()):
			r.label = i.String()
		default:
			return nil, fmt.Errorf("line %d: label %s is not a string or a non-negative integer", n+1, v.Label)
		}
		if v.Split != nil {
			r.split, r.splitSet = *v.Split, true
		}
		rows = append(rows, r)
	}
	return rows, nil
}

// parseListCSV reads rows key,label[,split], after an optional header line
// naming those columns; fields may be quoted (RFC 4180).
func parseListCSV(b []byte) ([]listRow, error) {
	r := csv.NewReader(bytes.NewReader(b))
	r.FieldsPerRecord = -1 // checked below, with the line
	var rows []listRow
	for first := true; ; first = false {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			return rows, nil
		}
		if err != nil {
			return nil, err
		}
		line, _ := r.FieldPos(0)
		if first && len(rec) >= 2 && strings.EqualFold(strings.TrimSpace(rec[0]), "key") && strings.EqualFold(strings.TrimSpace(rec[1]), "label") &&
			(len(rec) == 2 || strings.EqualFold(strings.TrimSpace(rec[2]), "split")) {
			continue
		}
		if len(rec) != 2 && len(rec) != 3 {
			return nil, fmt.Errorf("line %d: %d fields, want key,label[,split]", line, len(rec))
		}
		row := listRow{line: line, key: rec[0], label: rec[1]}
		if len(rec) == 3 && rec[2] != "" {
			row.split, row.splitSet = rec[2], true
		}
		rows = append(rows, row)
	}
}

// checkSplit accepts a split name: one clean key segment, not hidden.
func checkSplit(s string) error {
	if s == "" || strings.HasPrefix(s, ".") || strings.Contains(s, "/") || store.ValidKey(s) != nil {
		return fmt.Errorf("%w: split %q is not one path segment", ErrSource, s)
	}
	return nil
}

// checkClass accepts a class name from a list: non-empty, valid UTF-8, no
// control character, at most maxClassName bytes.
func checkClass(c string) error {
	if c == "" || len(c) > maxClassName || !utf8.ValidString(c) || strings.ContainsFunc(c, unicode.IsControl) {
		return fmt.Errorf("label %q is empty, longer than %d bytes, or not printable UTF-8", c, maxClassName)
	}
	return nil
}

// canonicalUint says whether s is a non-negative decimal integer without
// leading zeros or sign.
func canonicalUint(s string) bool {
	if s == "" || len(s) > 1 && s[0] == '0' {
		return false
	}
	_, err := strconv.ParseUint(s, 10, 63)
	return err == nil
}

// classNames returns the classes, sorted by name, or by value when numeric.
func classNames(cands []candidate, numeric bool) []string {
	var out []string
	for _, c := range cands {
		out = append(out, c.class)
	}
	if numeric {
		slices.SortFunc(out, func(a, b string) int {
			x, _ := strconv.ParseUint(a, 10, 63)
			y, _ := strconv.ParseUint(b, 10, 63)
			return cmp.Compare(x, y)
		})
	} else {
		slices.Sort(out)
	}
	return slices.Compact(out)
}

// limitCandidates keeps the candidates sel selects in each split, in
// their order.
func limitCandidates(cands []candidate, sel Selection) []candidate {
	bySplit := map[string][]int{} // candidate indices
	for i, c := range cands {
		bySplit[c.split] = append(bySplit[c.split], i)
	}
	keep := make([]bool, len(cands))
	for split, idx := range bySplit {
		classes := map[string]int{}
		labels := make([]int, len(idx))
		for j, i := range idx {
			l, ok := classes[cands[i].class]
			if !ok {
				l = len(classes)
				classes[cands[i].class] = l
			}
			labels[j] = l
		}
		for j, k := range sel.keep(split, labels) {
			keep[idx[j]] = k
		}
	}
	var out []candidate
	for i, c := range cands {
		if keep[i] {
			out = append(out, c)
		}
	}
	return out
}

// pickSample returns the indices into cands of at most n images of split,
// spread over its classes (round-robin quotas) and, within a class, evenly
// over its images.
func pickSample(cands []candidate, split string, n int) []int {
	var classes []string
	byClass := map[string][]int{}
	for i, c := range cands {
		if c.split != split {
			continue
		}
		if byClass[c.class] == nil {
			classes = append(classes, c.class)
		}
		byClass[c.class] = append(byClass[c.class], i)
	}
	files := make([][]string, len(classes))
	for i, c := range classes {
		files[i] = make([]string, len(byClass[c]))
	}
	var out []int
	for i, f := range roundRobin(files, n) {
		idx := byClass[classes[i]]
		for j := range len(f) {
			out = append(out, idx[j*len(idx)/len(f)])
		}
	}
	slices.Sort(out)
	return out
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

// sampled is the outcome of the sample: exact integer sums, so the result
// does not depend on the order the workers finish in, and the common size
// (0 when sizes differ).
type sampled struct {
	stats // sums of the sampled pixels
	h, w  int
	sized bool
}

func (s *sampled) add(img imgdecode.Image) {
	for i, v := range img.Pix {
		c := i % img.Channels
		s.sum[c] += uint64(v)
		s.sumSq[c] += uint64(v) * uint64(v)
	}
	s.n += uint64(img.Width * img.Height)
	switch {
	case !s.sized:
		s.h, s.w, s.sized = img.Height, img.Width, true
	case s.h != img.Height || s.w != img.Width:
		s.h, s.w = 0, 0
	}
}

// sampleRefusal is a sampled image decode would refuse.
type sampleRefusal struct {
	idx    int
	reason string
}

// sampleStats fetches and decodes the sampled candidates, opts.Concurrency
// at a time, each through imgdecode under opts.Decode and fetched with
// opts.MaxObjectBytes: what decode would do. A missing, oversized or
// undecodable image is a refusal; any other failure (the store down past
// its retries) ends the index.
func sampleStats(ctx context.Context, b IndexBucket, cands []candidate, sample []int, opts IndexOptions) (sampled, []sampleRefusal, error) {
	dec, err := imgdecode.New(opts.Decode)
	if err != nil {
		return sampled{}, nil, fmt.Errorf("%w: %w", ErrSource, err)
	}
	imgs := make([]*imgdecode.Image, len(sample))
	reasons := make([]string, len(sample))
	err = parallel(ctx, len(sample), opts.Concurrency, func(ctx context.Context, j int) error {
		key := cands[sample[j]].obj.key
		data, err := b.GetMax(ctx, key, opts.MaxObjectBytes)
		switch {
		case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrTooLarge):
			reasons[j] = err.Error()
			return nil
		case err != nil:
			return fmt.Errorf("dataset: index: sample %s: %w", key, err)
		}
		img, err := dec.Decode(data)
		if err != nil {
			reasons[j] = err.Error()
			return nil
		}
		imgs[j] = &img
		return nil
	})
	if err != nil {
		return sampled{}, nil, err
	}
	var st sampled
	var refused []sampleRefusal
	for j, img := range imgs { // in sample order: the size and sums do not depend on timing
		if img == nil {
			refused = append(refused, sampleRefusal{sample[j], reasons[j]})
			continue
		}
		st.add(*img)
	}
	return st, refused, nil
}
