package dataset

import (
	"errors"
	"fmt"
	"image"
	"image/color"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func TestMixOrder(t *testing.T) {
	const n = 1000
	name := func(i int) string { return fmt.Sprintf("%04d", i) }
	all := make([]int, n)
	for i := range all {
		all[i] = i
	}
	got := mixOrder(all, name)
	switch {
	case !slices.Equal(slices.Sorted(slices.Values(got)), all):
		t.Fatal("not a permutation of the positions kept")
	case slices.IsSorted(got):
		t.Fatal("not mixed")
	case !slices.Equal(got, mixOrder(all, name)):
		t.Fatal("two calls gave two orders")
	}
	// A sample removed moves no other: the rest keep their relative order.
	without := slices.Delete(slices.Clone(all), 500, 501)
	want := slices.DeleteFunc(slices.Clone(got), func(i int) bool { return i == 500 })
	if !slices.Equal(mixOrder(without, name), want) {
		t.Fatal("removing sample 500 reordered the others")
	}
	// It depends on the names only, not on the positions.
	shifted := make([]int, n)
	for i := range shifted {
		shifted[i] = i + 7
	}
	back := mixOrder(shifted, func(i int) string { return name(i - 7) })
	for k := range back {
		back[k] -= 7
	}
	if !slices.Equal(back, got) {
		t.Fatal("the same names at other positions came out in another order")
	}
	// Pinned: data sets sharded before must re-ingest to the same shards.
	if got, want := mixOrder(all[:8], name), []int{5, 6, 3, 2, 4, 1, 0, 7}; !slices.Equal(got, want) {
		t.Fatalf("mixOrder of 0000..0007 = %v, want the pinned %v", got, want)
	}
}

func TestInOrder(t *testing.T) {
	const n, recLen = 95, 3
	var scans, read int
	scan := func(last int, fn func(int, []byte) error) error {
		scans++
		rec := make([]byte, recLen)
		for i := range last + 1 {
			read++
			rec[0], rec[1], rec[2] = byte(i), byte(i>>8), 0xee
			if err := fn(i, rec); err != nil {
				return err
			}
		}
		return nil
	}
	mixed := make([]int, n)
	for i := range mixed {
		mixed[i] = (i * 37) % n // a permutation: 37 and 95 are coprime
	}
	tests := []struct {
		name      string
		order     []int
		maxBytes  int
		scans     int
		readUpTo  int // records read by the scans, in all
		windowRec int
	}{
		{"ascending: one scan to the last", []int{3, 4, 10, 60}, 3, 1, 61, 0},
		{"mixed, one window", mixed, 1 << 20, 1, n, 0},
		{"mixed, windows of 10", mixed, 10*recLen + 2, 10, -1, 10},
		{"record over the budget: windows of 1", mixed[:5], 1, 5, -1, 1},
		{"empty", nil, 10, 0, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			scans, read = 0, 0
			var got []int
			err := inOrder(tt.order, recLen, tt.maxBytes, scan, func(i int, rec []byte) error {
				if int(rec[0])|int(rec[1])<<8 != i || rec[2] != 0xee {
					return fmt.Errorf("record %d holds %v", i, rec)
				}
				got = append(got, i)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tt.order) || scans != tt.scans || (tt.readUpTo >= 0 && read != tt.readUpTo) {
				t.Fatalf("got %v in %d scans reading %d records; want %v in %d scans", got, scans, read, tt.order, tt.scans)
			}
		})
	}
	errStop := errors.New("stop")
	for _, order := range [][]int{{1, 2}, {2, 1}} {
		if err := inOrder(order, recLen, 1<<10, scan, func(int, []byte) error { return errStop }); !errors.Is(err, errStop) {
			t.Fatalf("order %v: fn's error = %v", order, err)
		}
		failing := func(int, func(int, []byte) error) error { return errStop }
		if err := inOrder(order, recLen, 1<<10, failing, func(int, []byte) error { return nil }); !errors.Is(err, errStop) {
			t.Fatalf("order %v: scan's error = %v", order, err)
		}
	}
}

// TestSourcesMix reads each source with and without ReadOptions.Mix, whole
// and limited: Mix passes the same samples, split by split, in another
// order, the same on every read; a limit keeps the same samples either way.
func TestSourcesMix(t *testing.T) {
	idxDir, gzDir, cifarDir, folderDir := t.TempDir(), t.TempDir(), t.TempDir(), t.TempDir()
	for _, d := range []struct {
		dir string
		gz  bool
	}{{idxDir, false}, {gzDir, true}} {
		writeIDX(t, d.dir, "train", 60, 2, 2, d.gz)
		writeIDX(t, d.dir, "t10k", 20, 2, 2, d.gz)
	}
	writeCIFAR(t, cifarDir, 1, 10, []string{"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin", "test_batch.bin"}, 12)
	for c := range 5 {
		for i := range 8 {
			writePNG(t, filepath.Join(folderDir, "train", fmt.Sprint("class", c), fmt.Sprintf("%02d.png", i)), 2, 2, color.NRGBA{uint8(c), uint8(i), 1, 255})
		}
	}
	idx, err := OpenIDX(idxDir, "tiny", nil)
	if err != nil {
		t.Fatal(err)
	}
	gz, err := OpenIDX(gzDir, "tiny", nil)
	if err != nil {
		t.Fatal(err)
	}
	cifar, err := OpenCIFAR(cifarDir)
	if err != nil {
		t.Fatal(err)
	}
	folder, err := OpenImageFolder(folderDir, 3)
	if err != nil {
		t.Fatal(err)
	}
	read := func(t *testing.T, src Source, limit int, mix bool) (names []string, splits []string) {
		sel := Selection{PerSplit: map[string]int{"train": limit, "test": limit}, Seed: 5}
		err := src.Samples(t.Context(), ReadOptions{Limit: sel, Mix: mix}, func(s Sample) error {
			var px []byte
			switch m := s.Image.(type) {
			case *image.Gray:
				px = m.Pix[:1]
			case *image.NRGBA:
				px = m.Pix[:3]
			}
			names = append(names, fmt.Sprintf("%s/%d/%s/%x", s.Split, s.Label, s.ID, px))
			if len(splits) == 0 || splits[len(splits)-1] != s.Split {
				splits = append(splits, s.Split)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return names, splits
	}
	for _, tt := range []struct {
		name string
		src  Source
	}{{"idx", idx}, {"idx gzipped", gz}, {"cifar10", cifar}, {"imagefolder", folder}} {
		for _, limit := range []int{0, 15} {
			t.Run(fmt.Sprintf("%s limit %d", tt.name, limit), func(t *testing.T) {
				plain, plainSplits := read(t, tt.src, limit, false)
				mixed, mixedSplits := read(t, tt.src, limit, true)
				again, _ := read(t, tt.src, limit, true)
				switch {
				case len(plain) == 0:
					t.Fatal("no samples")
				case !slices.Equal(mixedSplits, plainSplits):
					t.Fatalf("splits %v mixed, %v plain: not split by split", mixedSplits, plainSplits)
				case !slices.Equal(slices.Sorted(slices.Values(mixed)), slices.Sorted(slices.Values(plain))):
					t.Fatalf("mixed samples %v, plain %v", mixed, plain)
				case slices.Equal(mixed, plain):
					t.Fatal("Mix kept source order")
				case !slices.Equal(mixed, again):
					t.Fatal("two mixed reads gave two orders")
				}
			})
		}
	}
}

// BenchmarkCIFARMix reads a CIFAR-10-sized source (50,000 train and 10,000
// test records, 184 MB) in source order and mixed (ReadOptions.Mix: the
// train batches read once per 64 MiB window), one after the other in each
// iteration, and reports both and their ratio.
func BenchmarkCIFARMix(b *testing.B) {
	dir := b.TempDir()
	files := []string{"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin", "test_batch.bin"}
	writeCIFAR(b, dir, 1, 10, files, 10000)
	src, err := OpenCIFAR(dir)
	if err != nil {
		b.Fatal(err)
	}
	var plain, mixed time.Duration
	for b.Loop() {
		for _, mix := range []bool{false, true} {
			start, n := time.Now(), 0
			err := src.Samples(b.Context(), ReadOptions{Mix: mix}, func(Sample) error {
				n++
				return nil
			})
			if err != nil || n != 60000 {
				b.Fatalf("%d samples, %v", n, err)
			}
			if mix {
				mixed += time.Since(start)
			} else {
				plain += time.Since(start)
			}
		}
	}
	b.ReportMetric(float64(plain.Milliseconds())/float64(b.N), "source_order_ms")
	b.ReportMetric(float64(mixed.Milliseconds())/float64(b.N), "mixed_ms")
	b.ReportMetric(float64(mixed)/float64(plain), "mixed/source_order")
}
