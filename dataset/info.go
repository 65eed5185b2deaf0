package dataset

import (
	"encoding/json"
	"fmt"
	"io"
	"path"
)

// File names under a data set prefix.
const (
	ManifestFile = "manifest.jsonl"
	ClassesFile  = "classes.json"
	InfoFile     = "info.json"
	// ReportFile is the report of the ingest or index that made the data
	// set (Report or IndexReport as JSON).
	ReportFile = "ingest-report.json"
)

// ManifestKey, ClassesKey, InfoKey and ReportKey return the keys of the
// data set files under prefix ("" for the bucket root).
func ManifestKey(prefix string) string { return path.Join(prefix, ManifestFile) }
func ClassesKey(prefix string) string  { return path.Join(prefix, ClassesFile) }
func InfoKey(prefix string) string     { return path.Join(prefix, InfoFile) }
func ReportKey(prefix string) string   { return path.Join(prefix, ReportFile) }

// Info describes a data set as a whole: what the decoder and trainer need
// before they see an image.
type Info struct {
	Source string `json:"source"` // "mnist", "cifar10", "imagefolder", "s3", ...
	// Format is the stored image format, "png" or "jpeg"; for source s3
	// (images used where they are) the one format of every entry by file
	// extension ("png", "jpeg", "gif", "webp"), or "mixed".
	Format string `json:"format"`
	// Height and Width are the image size, 0 when images differ; for
	// source s3 as decode outputs the sampled images (after
	// decode.resize_shorter and EXIF orientation).
	Height   int `json:"height"`
	Width    int `json:"width"`
	Channels int `json:"channels"` // 1 (gray) or 3 (RGB)
	// Mean and Std are per channel, on pixel values scaled to [0, 1],
	// computed over StatsSplit: all of its images, or Sampled of them.
	Mean       []float64      `json:"mean"`
	Std        []float64      `json:"std"`
	StatsSplit string         `json:"stats_split"`
	Counts     map[string]int `json:"counts"` // images per split
	Classes    int            `json:"classes"`
	// Sampled, when not 0, is how many images of StatsSplit Mean, Std,
	// Height and Width come from: Index decodes a bounded sample
	// (IndexOptions.Sample) instead of reading every image.
	Sampled int `json:"sampled,omitempty"`
	// Fingerprint identifies what Index built the data set from (the
	// listing's keys, sizes and ETags, the list file, the options): a
	// re-run that computes the same one leaves the data set as it is.
	Fingerprint string `json:"fingerprint,omitempty"`
}

// Validate checks that Info is usable for normalization.
func (in Info) Validate() error {
	switch {
	case in.Channels != 1 && in.Channels != 3:
		return fmt.Errorf("%w: channels %d is not 1 or 3", ErrInfo, in.Channels)
	case len(in.Mean) != in.Channels || len(in.Std) != in.Channels:
		return fmt.Errorf("%w: mean/std have %d/%d values for %d channels", ErrInfo, len(in.Mean), len(in.Std), in.Channels)
	case in.Height < 0 || in.Width < 0 || in.Classes < 0 || in.Sampled < 0:
		return fmt.Errorf("%w: negative size or class count", ErrInfo)
	}
	for c := range in.Std {
		if !(in.Std[c] > 0) || !(in.Mean[c] >= 0 && in.Mean[c] <= 1) {
			return fmt.Errorf("%w: channel %d has mean %v std %v", ErrInfo, c, in.Mean[c], in.Std[c])
		}
	}
	return nil
}

// ReadInfo decodes and validates info.json.
func ReadInfo(r io.Reader) (Info, error) {
	var in Info
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return Info{}, fmt.Errorf("%w: %w", ErrInfo, err)
	}
	return in, in.Validate()
}

// ReadClasses decodes classes.json: a JSON array of class names in label
// order, non-empty and unique.
func ReadClasses(r io.Reader) ([]string, error) {
	var names []string
	if err := json.NewDecoder(r).Decode(&names); err != nil {
		return nil, fmt.Errorf("dataset: classes: %w", err)
	}
	seen := make(map[string]bool, len(names))
	for i, n := range names {
		if n == "" || seen[n] {
			return nil, fmt.Errorf("dataset: classes: name %d %q is empty or repeated", i, n)
		}
		seen[n] = true
	}
	return names, nil
}

// marshalIndent gives the small JSON files a stable, readable form.
func marshalIndent(v any) ([]byte, error) {
	b, err := json.MarshalIndent(v, "", "  ")
	return append(b, '\n'), err
}
