package dataset

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"math"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/supflow/supflow/imgdecode"
	"github.com/supflow/supflow/internal/storetest"
	"github.com/supflow/supflow/store"
)

// countingBucket is a real client that counts the calls that read an
// object's body or write one: what a re-run of an unchanged index must not
// make beyond its list file and the stored report and info.
type countingBucket struct {
	*store.Client
	gets, getMaxes, puts atomic.Int64
}

func (c *countingBucket) Get(ctx context.Context, key string) ([]byte, error) {
	c.gets.Add(1)
	return c.Client.Get(ctx, key)
}

func (c *countingBucket) GetMax(ctx context.Context, key string, max int64) ([]byte, error) {
	c.getMaxes.Add(1)
	return c.Client.GetMax(ctx, key, max)
}

func (c *countingBucket) Put(ctx context.Context, key string, data []byte, opts store.PutOptions) error {
	c.puts.Add(1)
	return c.Client.Put(ctx, key, data, opts)
}

// testImage encodes a w x h RGB image whose pixels depend on seed, as PNG
// or JPEG.
func testImage(t testing.TB, seed, w, h int, format string) []byte {
	t.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			v := uint8(seed*31 + x*17 + y*5)
			img.Set(x, y, color.NRGBA{v, 255 - v, uint8(seed * 50), 255})
		}
	}
	var b bytes.Buffer
	var err error
	if format == "jpeg" {
		err = jpeg.Encode(&b, img, &jpeg.Options{Quality: 95})
	} else {
		err = png.Encode(&b, img)
	}
	if err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func putAll(t testing.TB, c *store.Client, objs map[string][]byte) {
	t.Helper()
	for k, b := range objs {
		if err := c.Put(t.Context(), k, b, store.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
}

func keysOf(t testing.TB, c *store.Client, prefix string) []string {
	t.Helper()
	objs, err := c.List(t.Context(), prefix)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, o := range objs {
		out = append(out, o.Key)
	}
	return out
}

// imageFolderBucket uploads an ImageFolder tree as it is, with the
// objects an index must skip, refuse or ignore around it, and returns the
// keys it should index (in manifest order).
func imageFolderBucket(t testing.TB, c *store.Client) []string {
	var want []string
	objs := map[string][]byte{}
	add := func(key string, b []byte, indexed bool) {
		objs[key] = b
		if indexed {
			want = append(want, key)
		}
	}
	for i := range 6 {
		add(fmt.Sprintf("own/photos/train/cat/%d.png", i), testImage(t, i, 8, 8, "png"), true)
	}
	for i := range 6 {
		add(fmt.Sprintf("own/photos/train/dog/%d.JPG", i), testImage(t, 10+i, 8, 8, "jpeg"), true)
	}
	add("own/photos/test/bird/c.png", testImage(t, 20, 8, 8, "png"), true) // a class only the test split has
	add("own/photos/test/cat/a.jpeg", testImage(t, 21, 8, 8, "jpeg"), true)
	add("own/photos/test/dog/b.png", testImage(t, 22, 8, 8, "png"), true)
	slices.Sort(want)
	// Skipped: not images by extension, hidden, nested elsewhere.
	add("own/photos/train/cat/notes.txt", []byte("a cat"), false)
	add("own/photos/README.md", []byte("photos"), false)
	add("own/photos/train/cat/.hidden.png", testImage(t, 30, 8, 8, "png"), false)
	add("own/photos/.DS_Store", []byte{0}, false)
	add("own/photos/train/.thumbs/x.png", testImage(t, 31, 8, 8, "png"), false)
	add("own/photos/train/cat/deeper/x.png", testImage(t, 32, 8, 8, "png"), false)
	add("own/photos/top.png", testImage(t, 33, 8, 8, "png"), false)
	// Refused: empty (from its listed size), corrupt (found in the sample).
	add("own/photos/train/cat/empty.png", []byte{}, false)
	add("own/photos/train/dog/corrupt.png", []byte("\x89PNG\r\n\x1a\nnot really"), false)
	// Outside the path.
	add("own/photosX/train/cat/z.png", testImage(t, 34, 8, 8, "png"), false)
	add("own/other/train/cat/z.png", testImage(t, 35, 8, 8, "png"), false)
	putAll(t, c, objs)
	return want
}

func TestIndexImageFolderEmbedded(t *testing.T) { testIndexImageFolder(t, storetest.New(t)) }

func TestIntegrationIndexImageFolderMinIO(t *testing.T) {
	testIndexImageFolder(t, storetest.MinIO(t, "index"))
}

// testIndexImageFolder indexes an ImageFolder tree uploaded as it is: the
// manifest points at the original objects, splits and classes come from
// the first two levels, everything else is skipped and counted, the
// statistics come from the sample, and a second run finds it unchanged
// without reading an image or writing anything.
func testIndexImageFolder(t *testing.T, c *store.Client) {
	ctx := t.Context()
	want := imageFolderBucket(t, c)
	before := keysOf(t, c, "")
	b := &countingBucket{Client: c}
	rep, err := Index(ctx, b, IndexOptions{Path: "own/photos", Prefix: "own", Concurrency: 3})
	if err != nil {
		t.Fatal(err)
	}
	wantSkipped := IndexSkipped{Extension: 2, Hidden: 3, Layout: 2}
	if rep.Unchanged || rep.Layout != LayoutImageFolder || rep.Listed != 24 || rep.Images != len(want) || rep.Skipped != wantSkipped ||
		rep.Refused != 2 || rep.Sampled != 13 {
		t.Fatalf("report %+v", rep)
	}
	refused := map[string]string{}
	for _, r := range rep.RefusedKeys {
		refused[r.Key] = r.Reason
	}
	if !strings.Contains(refused["own/photos/train/cat/empty.png"], "empty") ||
		!strings.Contains(refused["own/photos/train/dog/corrupt.png"], "corrupt") {
		t.Errorf("refusals %v", rep.RefusedKeys)
	}
	wantCounts := map[string]map[string]int{"train": {"cat": 6, "dog": 6}, "test": {"bird": 1, "cat": 1, "dog": 1}}
	if fmt.Sprint(rep.Counts) != fmt.Sprint(wantCounts) {
		t.Errorf("counts %v, want %v", rep.Counts, wantCounts)
	}

	// Only the four data set files were written, and every entry is the
	// original object.
	after := keysOf(t, c, "")
	added := slices.DeleteFunc(slices.Clone(after), func(k string) bool { return slices.Contains(before, k) })
	if want := []string{"own/classes.json", "own/info.json", "own/ingest-report.json", "own/manifest.jsonl"}; !slices.Equal(added, want) {
		t.Fatalf("index wrote %v, want only %v", added, want)
	}
	d, err := Load(ctx, c, "own")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(d.Classes, []string{"bird", "cat", "dog"}) {
		t.Fatalf("classes %v", d.Classes)
	}
	var keys []string
	for _, e := range d.Entries {
		keys = append(keys, e.Key)
		st, err := c.Stat(ctx, e.Key)
		if err != nil || st.Size != e.Size || e.SHA256 != "" || d.Classes[e.Label] != strings.Split(e.Key, "/")[3] ||
			e.Split != strings.Split(e.Key, "/")[2] {
			t.Errorf("entry %+v: object %+v, %v", e, st, err)
		}
	}
	slices.Sort(keys)
	if !slices.Equal(keys, want) {
		t.Fatalf("manifest keys\n %v\nwant\n %v", keys, want)
	}

	// The statistics are those of the 12 decodable train images, as decode
	// outputs them.
	dec, _ := imgdecode.New(imgdecode.Config{})
	var sum, sumSq [3]float64
	var n float64
	for _, e := range d.Split("train") {
		raw, _ := c.Get(ctx, e.Key)
		img, err := dec.Decode(raw)
		if err != nil {
			t.Fatal(err)
		}
		for i, v := range img.Pix {
			f := float64(v) / 255
			sum[i%3] += f
			sumSq[i%3] += f * f
		}
		n += float64(img.Width * img.Height)
	}
	in := d.Info
	for ch := range 3 {
		m := sum[ch] / n
		s := math.Sqrt(sumSq[ch]/n - m*m)
		if math.Abs(in.Mean[ch]-m) > 1e-9 || math.Abs(in.Std[ch]-s) > 1e-6 {
			t.Errorf("channel %d: mean/std %v/%v, want %v/%v", ch, in.Mean[ch], in.Std[ch], m, s)
		}
	}
	if in.Source != SourceS3 || in.Format != "mixed" || in.Channels != 3 || in.Height != 8 || in.Width != 8 || in.Sampled != 12 ||
		in.Classes != 3 || in.Counts["train"] != 12 || in.Counts["test"] != 3 || in.Fingerprint != rep.Fingerprint || in.StatsSplit != "train" {
		t.Errorf("info %+v", in)
	}
	raw, err := c.Get(ctx, ReportKey("own"))
	if err != nil {
		t.Fatal(err)
	}
	var stored IndexReport
	if err := json.Unmarshal(raw, &stored); err != nil || stored.Images != rep.Images || stored.Skipped != wantSkipped || stored.Fingerprint != rep.Fingerprint {
		t.Fatalf("stored report %+v, %v", stored, err)
	}

	// A re-run lists, compares, and reads no image and writes nothing.
	b.gets.Store(0)
	b.getMaxes.Store(0)
	b.puts.Store(0)
	again, err := Index(ctx, b, IndexOptions{Path: "own/photos", Prefix: "own", Concurrency: 3})
	if err != nil {
		t.Fatal(err)
	}
	if !again.Unchanged || again.Images != rep.Images || again.Fingerprint != rep.Fingerprint {
		t.Fatalf("re-run report %+v", again)
	}
	if g, gm, p := b.gets.Load(), b.getMaxes.Load(), b.puts.Load(); g != 2 || gm != 0 || p != 0 {
		t.Fatalf("re-run made %d Get (want 2: report and info), %d GetMax (want 0), %d Put (want 0)", g, gm, p)
	}
	// Other options index again.
	limited, err := Index(ctx, b, IndexOptions{Path: "own/photos", Prefix: "own", Limit: Selection{PerSplit: map[string]int{"train": 2, "test": 2}}})
	if err != nil || limited.Unchanged || limited.Counts["train"]["cat"] != 1 || limited.Counts["train"]["dog"] != 1 || limited.Images != 4 {
		t.Fatalf("limited re-index %+v, %v", limited, err)
	}
	// So does a changed listing: a new image, and one rewritten in place.
	putAll(t, c, map[string][]byte{
		"own/photos/train/dog/new.png": testImage(t, 40, 8, 8, "png"),
		"own/photos/train/cat/0.png":   testImage(t, 41, 8, 8, "png"),
	})
	third, err := Index(ctx, b, IndexOptions{Path: "own/photos", Prefix: "own"})
	if err != nil || third.Unchanged || third.Images != len(want)+1 || third.Fingerprint == rep.Fingerprint {
		t.Fatalf("index after a change: %+v, %v", third, err)
	}
	if again, err := Index(ctx, b, IndexOptions{Path: "own/photos", Prefix: "own", Force: true}); err != nil || again.Unchanged {
		t.Fatalf("forced index: unchanged %v, %v", again.Unchanged, err)
	}
}

// TestIndexList indexes from list files: JSONL with integer labels (sorted
// by value) found under the path, and CSV with a header, quoted fields and
// a default split named by IndexOptions.List.
func TestIndexList(t *testing.T) {
	c := storetest.New(t)
	ctx := t.Context()
	objs := map[string][]byte{}
	var lines []string
	for i := range 12 {
		key := fmt.Sprintf("flat/img%02d.png", i)
		objs[key] = testImage(t, i, 6, 4, "png")
		split := "train"
		if i >= 9 {
			split = "test"
		}
		label := []int{0, 1, 2, 10}[i%4]
		lines = append(lines, fmt.Sprintf(`{"key":%q,"label":%d,"split":%q}`, key, label, split))
	}
	objs["flat/notes.txt"] = []byte("x")
	lines = append(lines, `{"key":"flat/notes.txt","label":"0"}`, "") // skipped by extension; a blank line
	objs["flat/"+ListJSONLFile] = []byte(strings.Join(lines, "\n"))
	putAll(t, c, objs)

	rep, err := Index(ctx, c, IndexOptions{Path: "flat", Prefix: "flat", Decode: imgdecode.Config{Gray: true}})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Layout != LayoutList || rep.List != "flat/list.jsonl" || rep.Images != 12 || rep.Skipped.Extension != 1 || rep.Listed != 13 {
		t.Fatalf("report %+v", rep)
	}
	d, err := Load(ctx, c, "flat")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(d.Classes, []string{"0", "1", "2", "10"}) || d.Info.Channels != 1 || d.Info.Height != 4 || d.Info.Width != 6 {
		t.Fatalf("classes %v info %+v", d.Classes, d.Info)
	}
	for i, e := range d.Entries { // list order
		if e.Key != fmt.Sprintf("flat/img%02d.png", i) || e.Label != int32(i%4) || e.Class != d.Classes[i%4] || (e.Split == "test") != (i >= 9) {
			t.Errorf("entry %d: %+v", i, e)
		}
	}

	// CSV, named by List, anywhere in the bucket; no split column: all
	// train except rows that give one.
	csvList := "key,label,split\n" +
		"flat/img00.png,\"cats, big\",\n" +
		"flat/img01.png,dogs\n" +
		"\"flat/img02.png\",dogs,test\n" +
		"flat/img03.png,\"cats, big\",test\n"
	putAll(t, c, map[string][]byte{"lists/v1.csv": []byte(csvList)})
	rep, err = Index(ctx, c, IndexOptions{Path: "flat", Prefix: "flat", List: "lists/v1.csv"})
	if err != nil {
		t.Fatal(err)
	}
	d, err = Load(ctx, c, "flat")
	if err != nil {
		t.Fatal(err)
	}
	if rep.List != "lists/v1.csv" || !slices.Equal(d.Classes, []string{"cats, big", "dogs"}) || len(d.Split("train")) != 2 || len(d.Split("test")) != 2 ||
		d.Entries[1].Class != "dogs" || d.Entries[1].Split != "train" {
		t.Fatalf("csv: report %+v, data set %+v", rep, d)
	}
}

// TestIndexRefuses: a list row outside the indexed path (or unclean, or
// missing, or repeated) stops the index naming its line, before anything
// is written; so do a path outside the data set prefix and two lists.
func TestIndexRefuses(t *testing.T) {
	c := storetest.New(t)
	ctx := t.Context()
	putAll(t, c, map[string][]byte{
		"ds/imgs/a.png":       testImage(t, 1, 4, 4, "png"),
		"ds/imgs/b.png":       testImage(t, 2, 4, 4, "png"),
		"ds/secret/c.png":     testImage(t, 3, 4, 4, "png"),
		"two/list.csv":        []byte("two/a.png,x\n"),
		"two/list.jsonl":      []byte(`{"key":"two/a.png","label":"x"}`),
		"two/a.png":           testImage(t, 4, 4, 4, "png"),
		"runs/r/last.png":     testImage(t, 5, 4, 4, "png"),
		"ds/imgs/empty/x.txt": []byte("x"),
	})
	row := func(key string) string { return fmt.Sprintf(`{"key":%q,"label":"a"}`, key) }
	for _, tc := range []struct {
		name, list string
		want       string
		invalidKey bool
	}{
		{"outside the path", row("ds/imgs/a.png") + "\n" + row("ds/secret/c.png"), `line 2: store: invalid object key: "ds/secret/c.png" is outside the indexed path "ds/imgs/"`, true},
		{"outside the bucket prefix", row("runs/r/last.png"), "line 1", true},
		{"dot dot", row("ds/imgs/../secret/c.png"), `line 1`, true},
		{"absolute", row("/ds/imgs/a.png"), "absolute", true},
		{"missing", row("ds/imgs/zz.png"), `line 1: no object "ds/imgs/zz.png"`, false},
		{"repeated", row("ds/imgs/a.png") + "\n" + row("ds/imgs/b.png") + "\n" + row("ds/imgs/a.png"), "line 3: key \"ds/imgs/a.png\" repeats line 1", false},
		{"bad label", `{"key":"ds/imgs/a.png","label":-1}`, "line 1: label -1", false},
		{"bad split", `{"key":"ds/imgs/a.png","label":"a","split":"a/b"}`, "split", false},
		{"unknown field", `{"key":"ds/imgs/a.png","label":"a","sha256":""}`, "unknown field", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			putAll(t, c, map[string][]byte{"lists/l.jsonl": []byte(tc.list)})
			_, err := Index(ctx, c, IndexOptions{Path: "ds/imgs", Prefix: "ds", List: "lists/l.jsonl"})
			if !errors.Is(err, ErrSource) || !strings.Contains(err.Error(), tc.want) || errors.Is(err, store.ErrInvalidKey) != tc.invalidKey {
				t.Fatalf("Index = %v; want ErrSource containing %q (ErrInvalidKey %v)", err, tc.want, tc.invalidKey)
			}
			if ok, _ := c.Exists(ctx, ManifestKey("ds")); ok {
				t.Fatal("a refused index wrote a manifest")
			}
		})
	}
	if _, err := Index(ctx, c, IndexOptions{Path: "ds/imgs", Prefix: "other"}); !errors.Is(err, ErrSource) || !strings.Contains(err.Error(), "not the data set prefix") {
		t.Errorf("path outside the prefix: %v", err)
	}
	if _, err := Index(ctx, c, IndexOptions{Path: "dsX", Prefix: "ds"}); !errors.Is(err, ErrSource) {
		t.Errorf("path beside the prefix: %v", err)
	}
	if _, err := Index(ctx, c, IndexOptions{Path: "two", Prefix: "two"}); err == nil || !strings.Contains(err.Error(), "keep one list") {
		t.Errorf("two lists: %v", err)
	}
	if _, err := Index(ctx, c, IndexOptions{Path: "ds/imgs/empty", Prefix: "ds"}); !errors.Is(err, ErrSource) || !strings.Contains(err.Error(), "no images") {
		t.Errorf("no images: %v", err)
	}
}

// TestIndexedKeysStayUnderPrefix: whatever a bucket holds under the
// indexed path, every manifest key lies under the data set prefix, so Load
// (and decode, which checks keys by the same rule) accept the manifest;
// the rule needs no exception for indexed data.
func TestIndexedKeysStayUnderPrefix(t *testing.T) {
	c := storetest.New(t)
	ctx := t.Context()
	putAll(t, c, map[string][]byte{
		"p/q/train/a/1.png": testImage(t, 1, 4, 4, "png"),
		"p/q/train/b/2.png": testImage(t, 2, 4, 4, "png"),
		"pX/train/a/3.png":  testImage(t, 3, 4, 4, "png"),
	})
	rep, err := Index(ctx, c, IndexOptions{Path: "p/q", Prefix: "p"})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range rep.Entries {
		if err := UnderPrefix(e.Key, "p"); err != nil || !strings.HasPrefix(e.Key, "p/q/") {
			t.Errorf("entry %s: %v", e.Key, err)
		}
	}
	if _, err := Load(ctx, c, "p"); err != nil {
		t.Fatal(err)
	}
}

func TestPickSample(t *testing.T) {
	var cands []candidate
	for i := range 30 {
		cands = append(cands, candidate{split: "train", class: fmt.Sprint(i % 3)})
	}
	cands = append(cands, candidate{split: "test", class: "0"})
	got := pickSample(cands, "train", 6)
	perClass := map[string]int{}
	for _, i := range got {
		if cands[i].split != "train" {
			t.Fatalf("sampled %d of split %s", i, cands[i].split)
		}
		perClass[cands[i].class]++
	}
	if len(got) != 6 || perClass["0"] != 2 || perClass["1"] != 2 || perClass["2"] != 2 {
		t.Fatalf("sample %v: per class %v", got, perClass)
	}
	// Spread over each class, not its first images: class 0 is 0, 3, ..., 27.
	if !slices.Contains(got, 15) || !slices.Contains(got, 0) {
		t.Errorf("sample %v is not spread over the classes' images", got)
	}
	if all := pickSample(cands, "train", 100); len(all) != 30 {
		t.Errorf("a sample larger than the split has %d images", len(all))
	}
}

// FuzzListCandidates feeds any bytes as a list file, JSONL and CSV, against
// a small listing: it never panics, and whatever it accepts names only
// listed images under the path, with clean splits and class names.
func FuzzListCandidates(f *testing.F) {
	f.Add([]byte(`{"key":"p/a.png","label":"cat","split":"train"}` + "\n" + `{"key":"p/b.jpg","label":3}`))
	f.Add([]byte("key,label,split\np/a.png,cat,train\n\"p/b.jpg\",\"dogs, big\"\n"))
	f.Add([]byte(`{"key":"p/../q/c.png","label":"x"}`))
	f.Add([]byte("p/a.png,\x00,train\n"))
	objs := []object{{"p/a.png", 10}, {"p/b.jpg", 20}, {"p/.h.png", 5}, {"p/n.txt", 1}, {"q/c.png", 3}}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, name := range []string{"l.jsonl", "l.csv"} {
			var sk IndexSkipped
			cands, _, err := listCandidates(b, name, objs, "p/", "train", &sk)
			if err != nil {
				if !errors.Is(err, ErrSource) {
					t.Fatalf("%s: error %v does not wrap ErrSource", name, err)
				}
				continue
			}
			for _, c := range cands {
				if !strings.HasPrefix(c.obj.key, "p/") || store.ValidKey(c.obj.key) != nil || checkSplit(c.split) != nil || checkClass(c.class) != nil {
					t.Fatalf("%s: accepted %+v", name, c)
				}
			}
		}
	})
}
