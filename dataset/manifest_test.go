package dataset

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/supflow/supflow/store"
)

const sha = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

// scanAll collects the entries of a manifest.
func scanAll(r io.Reader) ([]Entry, error) {
	var out []Entry
	err := ScanManifest(r, func(e Entry) error {
		out = append(out, e)
		return nil
	})
	return out, err
}

func TestScanManifest(t *testing.T) {
	good := `{"key":"train/cat/1.png","label":0,"class":"cat","split":"train","size":10,"sha256":"` + sha + `"}`
	tests := []struct {
		name    string
		in      string
		n       int
		wantErr string // substring; "" means success
	}{
		{"empty", "", 0, ""},
		{"two lines", good + "\n" + good + "\n", 2, ""},
		{"no final newline", good, 1, ""},
		{"blank line", good + "\n\n" + good, 0, "line 2"},
		{"unknown field", strings.Replace(good, `"size"`, `"sighs":1,"size"`, 1), 0, "unknown field"},
		{"missing field", strings.Replace(good, `"label":0,`, ``, 1), 0, `missing field "label"`},
		{"null field", strings.Replace(good, `"key":"train/cat/1.png"`, `"key":null`, 1), 0, `missing field "key"`},
		{"dotdot key", strings.Replace(good, "train/cat", "train/../cat", 1), 0, "invalid object key"},
		{"absolute key", strings.Replace(good, `"train/cat`, `"/train/cat`, 1), 0, "absolute"},
		{"backslash key", strings.Replace(good, "train/cat", `train\\cat`, 1), 0, "backslash"},
		{"bad sha", strings.Replace(good, sha, "xyz", 1), 0, "sha256"},
		{"upper sha", strings.Replace(good, sha, strings.ToUpper(sha), 1), 0, "lower-case"},
		{"no sha", strings.Replace(good, `,"sha256":"`+sha+`"`, ``, 1), 1, ""},              // an entry indexed in place
		{"empty sha", strings.Replace(good, `"sha256":"`+sha+`"`, `"sha256":""`, 1), 1, ""}, // the same, written out
		{"short sha", strings.Replace(good, sha, sha[:63], 1), 0, "64 hex digits"},
		{"negative label", strings.Replace(good, `"label":0`, `"label":-1`, 1), 0, "negative"},
		{"trailing data", good + ` {}`, 0, "trailing"},
		{"not json", good + "\nnope\n", 0, "line 2"},
		{"wrong type", strings.Replace(good, `"size":10`, `"size":"10"`, 1), 0, "line 1"},
		{"too long", strings.Repeat("x", maxLine+1), 0, "longer than"},
		{"shard member", strings.Replace(good, `"size":10`, `"size":10,"shard":"shards/train-000000.tar","offset":512`, 1), 1, ""},
		{"offset without shard", strings.Replace(good, `"size":10`, `"size":10,"offset":512`, 1), 0, "without a shard"},
		{"empty member", strings.Replace(good, `"size":10`, `"size":0,"shard":"s.tar","offset":512`, 1), 0, "shard member of 0 bytes"},
		{"negative offset", strings.Replace(good, `"size":10`, `"size":10,"shard":"s.tar","offset":-1`, 1), 0, "at offset -1"},
		{"bad shard key", strings.Replace(good, `"size":10`, `"size":10,"shard":"../s.tar","offset":512`, 1), 0, "shard: store: invalid object key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := scanAll(strings.NewReader(tt.in))
			if tt.wantErr == "" {
				if err != nil || len(got) != tt.n {
					t.Fatalf("ScanManifest gave %d entries, %v; want %d", len(got), err, tt.n)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, ErrManifest) {
				t.Fatalf("ScanManifest error = %v, want ErrManifest containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestManifestRoundTrip(t *testing.T) {
	in := []Entry{
		{Key: "train/0/00.png", Label: 0, Class: "0", Split: "train", Size: 1, SHA256: sha},
		{Key: "test/zèbre/a b.jpg", Label: 7, Class: "zèbre", Split: "test", Size: 1 << 40, SHA256: sha},
		{Key: "photos/test/cat/IMG_1.JPG", Label: 1, Class: "cat", Split: "test", Size: 5}, // indexed in place: no sha256
	}
	var buf bytes.Buffer
	if err := WriteManifest(&buf, in); err != nil {
		t.Fatal(err)
	}
	if lines := strings.Split(buf.String(), "\n"); strings.Contains(lines[2], "sha256") || !strings.Contains(lines[1], `"sha256":"`+sha+`"`) {
		t.Fatalf("sha256 should be written when set and omitted when empty:\n%s", buf.String())
	}
	out, err := scanAll(&buf)
	if err != nil || !reflect.DeepEqual(in, out) {
		t.Fatalf("round trip = %+v, %v", out, err)
	}
	bad := append(in, Entry{Key: "../x"})
	if err := WriteManifest(&bytes.Buffer{}, bad); !errors.Is(err, store.ErrInvalidKey) {
		t.Fatalf("WriteManifest(bad) = %v, want ErrInvalidKey", err)
	}
}

// FuzzScanManifest checks that no input panics and that whatever parses
// survives a write and a second read unchanged.
func FuzzScanManifest(f *testing.F) {
	f.Add([]byte(`{"key":"train/cat/1.png","label":0,"class":"cat","split":"train","size":10,"sha256":"` + sha + `"}` + "\n"))
	f.Add([]byte(`{"key":"photos/train/cat/1.jpg","label":0,"class":"cat","split":"train","size":10}` + "\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, err := scanAll(bytes.NewReader(data))
		if err != nil {
			return
		}
		var buf bytes.Buffer
		if err := WriteManifest(&buf, entries); err != nil {
			t.Fatalf("parsed entries do not write back: %v", err)
		}
		again, err := scanAll(&buf)
		if err != nil || !reflect.DeepEqual(entries, again) {
			t.Fatalf("re-read = %+v, %v; want %+v", again, err, entries)
		}
	})
}
