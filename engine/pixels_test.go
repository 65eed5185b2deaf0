package engine

import (
	"context"
	"errors"
	"slices"
	"testing"
)

// TestChunks: every image once, in order, chunk at a time, the last chunk
// padded with zero images to the full size; fn's error and a cancelled
// context stop it.
func TestChunks(t *testing.T) {
	const size = 2 // 1x2 gray images
	im := Images{N: 5, Height: 1, Width: 2, Channels: 1, Pixels: []uint8{1, 1, 2, 2, 3, 3, 4, 4, 5, 5}}
	type call struct {
		lo, n int
		px    []uint8
	}
	var got []call
	err := im.Chunks(context.Background(), 2, func(lo, n int, px []uint8) error {
		got = append(got, call{lo, n, slices.Clone(px)})
		return nil
	})
	want := []call{{0, 2, []uint8{1, 1, 2, 2}}, {2, 2, []uint8{3, 3, 4, 4}}, {4, 1, []uint8{5, 5, 0, 0}}}
	if err != nil || len(got) != len(want) {
		t.Fatalf("Chunks = %v, %v calls; want %d", err, got, len(want))
	}
	for i, c := range got {
		if c.lo != want[i].lo || c.n != want[i].n || len(c.px) != 2*size || !slices.Equal(c.px, want[i].px) {
			t.Errorf("call %d = %+v, want %+v", i, c, want[i])
		}
	}

	boom := errors.New("boom")
	calls := 0
	if err := im.Chunks(context.Background(), 2, func(int, int, []uint8) error { calls++; return boom }); !errors.Is(err, boom) || calls != 1 {
		t.Errorf("fn's error: %v after %d calls, want boom after 1", err, calls)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := im.Chunks(ctx, 2, func(int, int, []uint8) error { t.Error("called after cancel"); return nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}
