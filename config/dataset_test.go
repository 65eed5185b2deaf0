package config

import (
	"errors"
	"strings"
	"testing"
)

// TestDatasetS3 checks dataset.source s3's keys: the indexed path is a key
// prefix inside dataset.prefix (or empty: the prefix itself), so that the
// manifest's keys satisfy the one prefix rule decode and Load check; a list
// is a .jsonl or .csv key, and only for s3.
func TestDatasetS3(t *testing.T) {
	for _, tc := range []struct {
		name string
		sets []string
		want string // "" = valid
	}{
		{"path empty", []string{"dataset.source=s3", "dataset.prefix=photos"}, ""},
		{"path is the prefix", []string{"dataset.source=s3", "dataset.prefix=photos", "dataset.path=photos"}, ""},
		{"path under the prefix", []string{"dataset.source=s3", "dataset.prefix=ds", "dataset.path=ds/photos/2024", "dataset.list=lists/train.CSV"}, ""},
		{"path outside the prefix", []string{"dataset.source=s3", "dataset.prefix=ds", "dataset.path=photos"}, `dataset.path = "photos": want for source s3, a key prefix in store.bucket equal to dataset.prefix "ds" or under it`},
		{"path beside the prefix", []string{"dataset.source=s3", "dataset.prefix=ds", "dataset.path=dsX/a"}, "dataset.path"},
		{"path traversal", []string{"dataset.source=s3", "dataset.prefix=ds", "dataset.path=ds/../runs"}, "dataset.path"},
		{"path as a URL", []string{"dataset.source=s3", "dataset.prefix=ds", "dataset.path=s3://other/ds"}, "not an s3:// URL"},
		{"list of another kind", []string{"dataset.source=s3", "dataset.list=lists/train.txt"}, "dataset.list"},
		{"list without s3", []string{"dataset.source=imagefolder", "dataset.path=/data", "dataset.list=l.csv"}, "dataset.list = \"l.csv\": want empty unless dataset.source is s3"},
		{"imagefolder still needs a path", []string{"dataset.source=imagefolder"}, "dataset.path"},
		{"shards", []string{"dataset.shard_bytes=134217728"}, ""},
		{"shards of s3", []string{"dataset.source=s3", "dataset.shard_bytes=1024"}, "dataset.shard_bytes = 1024: want 0 for source s3"},
		{"negative shards", []string{"dataset.shard_bytes=-1"}, "dataset.shard_bytes"},
		{"huge shards", []string{"dataset.shard_bytes=8589934592"}, "dataset.shard_bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load("", noEnv, tc.sets)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, ErrInvalid) || err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Load = %v, want ErrInvalid naming %q", err, tc.want)
			}
		})
	}
}
