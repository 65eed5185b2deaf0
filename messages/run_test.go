package messages

import (
	"context"
	"errors"
	"testing"
)

func TestOfRunSkipsOtherRuns(t *testing.T) {
	calls := 0
	h := OfRun("a", func(t DecodeTask) string { return t.RunID }, func(_ context.Context, t DecodeTask) (Image, error) {
		calls++
		return Image{RunID: t.RunID}, nil
	})
	if im, err := h(t.Context(), DecodeTask{RunID: "a"}); err != nil || im.RunID != "a" {
		t.Fatalf("own run: %+v, %v", im, err)
	}
	if _, err := h(t.Context(), DecodeTask{RunID: "b"}); !errors.Is(err, ErrSkip) {
		t.Fatalf("other run: %v, want ErrSkip", err)
	}
	if calls != 1 {
		t.Fatalf("handler called %d times, want 1", calls)
	}
}
