package dataset

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// ingestVersion names what Ingest writes for a source and its options; a
// change to that (encoding, layout, statistics) changes it, so a data set
// an older supflow wrote is ingested again instead of reused.
const ingestVersion = "ingest/1"

// ingestFingerprint identifies a local ingest: the source's files (Stamp:
// names, sizes, modification times; no image is read) and every option
// that shapes the data set.
func ingestFingerprint(ctx context.Context, src Source, opts Options) (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "%s %q %d %q\n", ingestVersion, src.Name(), src.Channels(), src.Classes())
	if err := src.Stamp(ctx, h); err != nil {
		return "", fmt.Errorf("dataset: ingest: %w", err)
	}
	fmt.Fprintf(h, "%q %q %d %v %d %q %d %d %d %d\n", opts.Prefix, opts.Format, opts.JPEGQuality, opts.Limit.PerSplit, opts.Limit.Seed,
		opts.StatsSplit, opts.MaxPixels, opts.MaxObjectBytes, opts.MaxFileBytes, opts.ShardBytes)
	return hex.EncodeToString(h.Sum(nil)), nil
}

// stampFile writes the name, size and modification time of a file.
func stampFile(w io.Writer, path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrSource, err)
	}
	fmt.Fprintf(w, "%q %d %d\n", filepath.Base(path), fi.Size(), fi.ModTime().UnixNano())
	return nil
}

// stampTree writes every entry under fsys's root: its path and type, and
// for a regular file its size, modification time and permissions (a file
// made unreadable is left out by Samples). An entry that cannot be read is
// written as such, so that it counts as a change once it can.
func stampTree(ctx context.Context, w io.Writer, fsys fs.FS) error {
	return fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if cerr := ctx.Err(); cerr != nil {
			return cerr
		}
		if err != nil {
			fmt.Fprintf(w, "%q unreadable\n", p)
			return nil
		}
		if !d.Type().IsRegular() {
			fmt.Fprintf(w, "%q %v\n", p, d.Type())
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			fmt.Fprintf(w, "%q gone\n", p)
			return nil
		}
		fmt.Fprintf(w, "%q %d %d %v\n", p, fi.Size(), fi.ModTime().UnixNano(), fi.Mode().Perm())
		return nil
	})
}

// storedReport returns the raw report under prefix when the data set there
// was built with fingerprint: info.json and the report both carry it (Index
// and Ingest write info.json first and the report last, so a build
// interrupted between them never matches) and the manifest exists.
func storedReport(ctx context.Context, b Bucket, prefix, fingerprint string) ([]byte, bool) {
	raw, err := b.Get(ctx, ReportKey(prefix))
	if err != nil {
		return nil, false
	}
	var rep struct {
		Fingerprint string `json:"fingerprint"`
	}
	if json.Unmarshal(raw, &rep) != nil || rep.Fingerprint != fingerprint {
		return nil, false
	}
	rawInfo, err := b.Get(ctx, InfoKey(prefix))
	if err != nil {
		return nil, false
	}
	info, err := ReadInfo(bytes.NewReader(rawInfo))
	if err != nil || info.Fingerprint != fingerprint {
		return nil, false
	}
	if _, err := b.Stat(ctx, ManifestKey(prefix)); err != nil {
		return nil, false
	}
	return raw, true
}
