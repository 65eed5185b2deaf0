package dataset

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"unicode/utf8"

	"github.com/supflow/supflow/messages"
	"github.com/supflow/supflow/store"
)

// Sentinels; match them with errors.Is.
var (
	ErrManifest = errors.New("dataset: bad manifest")
	ErrSource   = errors.New("dataset: bad source")
	ErrInfo     = errors.New("dataset: bad info")
)

// maxLine bounds one manifest line; a real entry is a few hundred bytes.
const maxLine = 64 << 10

// Entry is one image of the data set, one line of manifest.jsonl.
type Entry struct {
	Key   string `json:"key"`   // object key, see store.ValidKey
	Label int32  `json:"label"` // class index into classes.json
	Class string `json:"class"` // class name, classes.json[Label]
	Split string `json:"split"` // "train", "test", ...
	Size  int64  `json:"size"`  // object size in bytes
	// SHA256 is the object's lower-case hex SHA-256, written by Ingest
	// (its re-runs compare it to skip unchanged uploads). It is optional:
	// empty, and then omitted from the line, for entries Index points at
	// objects already in the bucket, whose content is not read at index
	// time. Nothing downstream verifies it: decode fetches by key.
	SHA256 string `json:"sha256,omitempty"`
	// Shard, set by a sharded ingest (Options.ShardBytes), is the key of
	// the tar shard that holds the image as a member named Key less the
	// data set prefix: its Size bytes start at byte Offset of the shard.
	// Key is then the sample's name, not an object. Both are omitted for a
	// loose object, so manifests written before shards read unchanged.
	Shard  string `json:"shard,omitempty"`
	Offset int64  `json:"offset,omitempty"`
}

// Object is the key of the object that holds e's bytes: its shard, or
// its own key.
func (e Entry) Object() string {
	if e.Shard != "" {
		return e.Shard
	}
	return e.Key
}

// Task is the decode task that fetches e as sample id of runID's epoch
// (0 outside pretraining, e.g. for an evaluation).
func (e Entry) Task(runID string, epoch uint32, id uint64) messages.DecodeTask {
	t := messages.DecodeTask{RunID: runID, Epoch: epoch, SampleID: id, Key: e.Key, Label: e.Label, Split: e.Split}
	if e.Shard != "" {
		t.Key, t.Offset, t.Length = e.Shard, uint64(e.Offset), uint32(e.Size)
	}
	return t
}

// Validate checks one entry on its own.
func (e Entry) Validate() error {
	if err := store.ValidKey(e.Key); err != nil {
		return err
	}
	switch {
	case e.Label < 0:
		return fmt.Errorf("%w: label %d is negative", ErrManifest, e.Label)
	case e.Class == "":
		return fmt.Errorf("%w: empty class", ErrManifest)
	case e.Split == "" || strings.ContainsAny(e.Split, "/\\") || !utf8.ValidString(e.Split):
		return fmt.Errorf("%w: split %q is empty or not one path segment", ErrManifest, e.Split)
	case e.Size < 0:
		return fmt.Errorf("%w: size %d is negative", ErrManifest, e.Size)
	case e.Shard == "" && e.Offset != 0:
		return fmt.Errorf("%w: offset %d without a shard", ErrManifest, e.Offset)
	case e.Shard != "" && (e.Offset < 0 || e.Size < 1 || e.Size > math.MaxUint32):
		return fmt.Errorf("%w: shard member of %d bytes at offset %d", ErrManifest, e.Size, e.Offset)
	}
	if e.Shard != "" {
		if err := store.ValidKey(e.Shard); err != nil {
			return fmt.Errorf("shard: %w", err)
		}
	}
	switch {
	case e.SHA256 == "":
		return nil // not computed: an entry indexed in place
	case len(e.SHA256) != 64:
		return fmt.Errorf("%w: sha256 %q is not 64 hex digits", ErrManifest, e.SHA256)
	}
	for _, c := range []byte(e.SHA256) {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return fmt.Errorf("%w: sha256 %q is not lower-case hex", ErrManifest, e.SHA256)
		}
	}
	return nil
}

// UnderPrefix checks that key is a valid key (see store.ValidKey) inside
// the data set prefix ("" for the whole bucket); a refusal wraps
// store.ErrInvalidKey. A valid key has no ".." segment, so one that starts
// with the prefix cannot leave it, in a bucket or mapped onto a directory.
func UnderPrefix(key, prefix string) error {
	if err := store.ValidKey(key); err != nil {
		return err
	}
	if prefix = strings.TrimSuffix(prefix, "/"); prefix != "" && !strings.HasPrefix(key, prefix+"/") {
		return fmt.Errorf("%w: %q is outside the data set prefix %q", store.ErrInvalidKey, key, prefix)
	}
	return nil
}

// ScanManifest reads a manifest line by line, calling fn for each entry in
// order; it stops at the first bad line or fn error. Errors name the line.
// Blank lines are rejected: the writer never emits them.
func ScanManifest(r io.Reader, fn func(Entry) error) error {
	return scanManifest(r, false, fn)
}

// scanManifest is ScanManifest; with borrow, the strings of the entries
// fn gets may share the scanner's buffer and are valid only during the
// call: Load and LoadTable keep what they need, and a manifest's million
// lines then leave no garbage (that garbage set `supflow feed`'s peak).
func scanManifest(r io.Reader, borrow bool, fn func(Entry) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxLine)
	for n := 1; sc.Scan(); n++ {
		e, err := parseLine(sc.Bytes(), borrow)
		if err != nil {
			return fmt.Errorf("%w: line %d: %w", ErrManifest, n, err)
		}
		if err := fn(e); err != nil {
			return fmt.Errorf("dataset: manifest line %d: %w", n, err)
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return fmt.Errorf("%w: line longer than %d bytes", ErrManifest, maxLine)
		}
		return fmt.Errorf("dataset: read manifest: %w", err)
	}
	return nil
}

func parseLine(line []byte, borrow bool) (Entry, error) {
	e, ok := parseFast(line, borrow)
	if !ok {
		var err error
		if e, err = parseJSON(line); err != nil {
			return Entry{}, err
		}
	}
	return e, e.Validate()
}

// parseJSON decodes any line that is one JSON object with Entry's fields,
// its required ones present.
func parseJSON(line []byte) (Entry, error) {
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	var l manifestLine
	if err := dec.Decode(&l); err != nil {
		return Entry{}, err
	}
	if dec.More() {
		return Entry{}, errors.New("trailing data after the entry")
	}
	return l.entry()
}

// manifestLine is an Entry as decoded, its required fields pointers: nil
// for a field the line omits, which decoding into an Entry would silently
// leave at its zero value. One decode does both (a second one into a map
// to look for the fields cost as much as the first: seconds at ImageNet's
// 1.28M lines).
type manifestLine struct {
	Key    *string `json:"key"`
	Label  *int32  `json:"label"`
	Class  *string `json:"class"`
	Split  *string `json:"split"`
	Size   *int64  `json:"size"`
	SHA256 string  `json:"sha256"`
	Shard  string  `json:"shard"`
	Offset int64   `json:"offset"`
}

func (l manifestLine) entry() (Entry, error) {
	for _, f := range []struct {
		name    string
		present bool
	}{{"key", l.Key != nil}, {"label", l.Label != nil}, {"class", l.Class != nil}, {"split", l.Split != nil}, {"size", l.Size != nil}} {
		if !f.present {
			return Entry{}, fmt.Errorf("missing field %q", f.name)
		}
	}
	return Entry{Key: *l.Key, Label: *l.Label, Class: *l.Class, Split: *l.Split, Size: *l.Size,
		SHA256: l.SHA256, Shard: l.Shard, Offset: l.Offset}, nil
}

// WriteManifest writes entries as JSON lines, validating each. The output
// depends only on the entries, so re-running an ingest rewrites it byte for
// byte.
func WriteManifest(w io.Writer, entries []Entry) error {
	bw := bufio.NewWriter(w)
	for i, e := range entries {
		if err := e.Validate(); err != nil {
			return fmt.Errorf("dataset: manifest entry %d: %w", i, err)
		}
		b, err := json.Marshal(e)
		if err != nil {
			return fmt.Errorf("dataset: manifest entry %d: %w", i, err)
		}
		bw.Write(b)
		bw.WriteByte('\n')
	}
	return bw.Flush()
}
