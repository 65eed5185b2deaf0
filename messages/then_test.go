package messages

import (
	"context"
	"errors"
	"testing"
)

func TestThen(t *testing.T) {
	bad := Permanent(errors.New("corrupt"))
	decode := func(_ context.Context, task DecodeTask) (Image, error) {
		if task.Key == "bad" {
			return Image{}, bad
		}
		return Image{SampleID: task.SampleID, Pixels: []byte{1}}, nil
	}
	augment := func(_ context.Context, img Image) (ViewGroup, error) {
		if img.SampleID == 7 {
			return ViewGroup{}, errors.New("transient")
		}
		return ViewGroup{SampleID: img.SampleID, Pixels: append(img.Pixels, 2)}, nil
	}
	h := Then(decode, augment)
	for _, c := range []struct {
		name      string
		task      DecodeTask
		want      []byte
		permanent bool
		fails     bool
	}{
		{"both run", DecodeTask{SampleID: 1}, []byte{1, 2}, false, false},
		{"first fails, marking kept", DecodeTask{Key: "bad"}, nil, true, true},
		{"second fails", DecodeTask{SampleID: 7}, nil, false, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			vg, err := h(t.Context(), c.task)
			if (err != nil) != c.fails || errors.Is(err, ErrPermanent) != c.permanent {
				t.Fatalf("error %v, want failure %v, permanent %v", err, c.fails, c.permanent)
			}
			if string(vg.Pixels) != string(c.want) {
				t.Fatalf("pixels %v, want %v", vg.Pixels, c.want)
			}
		})
	}
}
