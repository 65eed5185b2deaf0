package evaluate

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/supflow/supflow/engine"
	"github.com/supflow/supflow/messages"
	"github.com/supflow/supflow/probe"
	"github.com/supflow/supflow/transform"
)

// meanEncoder encodes an image as (mean of the left half, mean of the right
// half): enough to separate the synthetic classes below.
type meanEncoder struct{ calls int }

func (e *meanEncoder) Encode(_ context.Context, im engine.Images) ([]float32, int, error) {
	e.calls++
	size := im.Height * im.Width * im.Channels
	out := make([]float32, 0, 2*im.N)
	for i := range im.N {
		var l, r float32
		for y := range im.Height {
			for x := range im.Width {
				v := float32(im.Pixels[i*size+(y*im.Width+x)*im.Channels])
				if x < im.Width/2 {
					l += v
				} else {
					r += v
				}
			}
		}
		out = append(out, l/float32(size), r/float32(size))
	}
	return out, 2, nil
}

// loader serves loadImage's images, each task on its own.
var loader = Planned(func(chunk []messages.DecodeTask) []messages.DecodeTask { return chunk }, loadImage)

// loadImage serves 16x12 images of two classes (bright left or right
// half); key "bad" is corrupt and "flaky" fails transiently.
func loadImage(ctx context.Context, t messages.DecodeTask) (messages.Image, error) {
	switch t.Key {
	case "bad":
		return messages.Image{}, messages.Permanent(errors.New("corrupt"))
	case "flaky":
		return messages.Image{}, errors.New("connection reset")
	}
	h, w := 12, 16
	px := make([]byte, h*w)
	for y := range h {
		for x := range w {
			if (x < w/2) == (t.Label == 0) {
				px[y*w+x] = byte(200 + int(t.SampleID)%50)
			} else {
				px[y*w+x] = byte(int(t.SampleID) % 40)
			}
		}
	}
	return messages.Image{SampleID: t.SampleID, Label: t.Label, Height: uint32(h), Width: uint32(w), Channels: 1, Pixels: px}, nil
}

func testTasks(n int, extra ...string) []messages.DecodeTask {
	var out []messages.DecodeTask
	for i := range n {
		out = append(out, messages.DecodeTask{SampleID: uint64(i), Key: fmt.Sprintf("k%d", i), Label: int32(i % 2)})
	}
	for _, k := range extra {
		out = append(out, messages.DecodeTask{Key: k})
	}
	return out
}

func cfg() Scoring {
	return Scoring{Size: 8, Channels: 1, Workers: 3, ChunkSize: 7, Classes: 2,
		Probe: probe.Config{Epochs: 30, BatchSize: 16, Standardize: true}, KNN: probe.KNNConfig{K: 5}}
}

func TestEvaluateSeparableClasses(t *testing.T) {
	enc := &meanEncoder{}
	res, err := Evaluate(context.Background(), cfg(), testTasks(60, "bad"), testTasks(30), loader, enc)
	if err != nil {
		t.Fatal(err)
	}
	if res.Linear.Top1 < 0.99 || res.KNN.Top1 < 0.99 {
		t.Errorf("linear %.3f, kNN %.3f", res.Linear.Top1, res.KNN.Top1)
	}
	if res.Train != 60 || res.Test != 30 || len(res.Skipped) != 1 || res.Skipped[0].Key != "bad" {
		t.Errorf("train %d test %d skipped %+v", res.Train, res.Test, res.Skipped)
	}
	if enc.calls != 9+5 { // ceil(61/7) + ceil(30/7)
		t.Errorf("encoder called %d times", enc.calls)
	}
}

func TestTransientLoadErrorStops(t *testing.T) {
	_, _, err := Extract(context.Background(), cfg(), testTasks(20, "flaky"), loader, &meanEncoder{})
	if err == nil || !errors.Is(err, err) || errors.Is(err, messages.ErrPermanent) {
		t.Fatalf("err = %v", err)
	}
}

func TestBadInput(t *testing.T) {
	c := cfg()
	if _, _, err := Extract(context.Background(), c, nil, loader, &meanEncoder{}); !errors.Is(err, ErrInput) {
		t.Errorf("no tasks: %v", err)
	}
	if _, _, err := Extract(context.Background(), c, testTasks(0, "bad"), loader, &meanEncoder{}); !errors.Is(err, ErrInput) {
		t.Errorf("all corrupt: %v", err)
	}
	c.Channels = 3
	if _, _, err := Extract(context.Background(), c, testTasks(3), loader, &meanEncoder{}); !errors.Is(err, ErrInput) {
		t.Errorf("channel mismatch: %v", err)
	}
}

// TestEvaluateSupContrastProtocol: with SupContrast's protocol the
// classifier trains on random crops (no flip here: the synthetic classes
// are left or right halves) and still separates the classes; the result
// says which protocol trained it; the same seed gives the same score.
func TestEvaluateSupContrastProtocol(t *testing.T) {
	c := cfg()
	zero := 0.0
	c.Protocol, c.Seed = ProtocolSupContrast, 7
	c.Augment = transform.Config{Scale: [2]float64{0.6, 1}, FlipP: &zero}
	c.Probe.Standardize = true // ignored by this protocol
	res, err := Evaluate(context.Background(), c, testTasks(60, "bad"), testTasks(30), loader, &meanEncoder{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Protocol != ProtocolSupContrast || res.Linear.Top1 < 0.95 || res.Train != 60 {
		t.Errorf("protocol %q, linear %.3f, %d train samples", res.Protocol, res.Linear.Top1, res.Train)
	}
	again, err := Evaluate(context.Background(), c, testTasks(60, "bad"), testTasks(30), loader, &meanEncoder{})
	if err != nil {
		t.Fatal(err)
	}
	if again.Linear.Loss != res.Linear.Loss {
		t.Errorf("same seed, test loss %v then %v", res.Linear.Loss, again.Linear.Loss)
	}
	frozen, err := Evaluate(context.Background(), cfg(), testTasks(60), testTasks(30), loader, &meanEncoder{})
	if err != nil {
		t.Fatal(err)
	}
	if frozen.Protocol != ProtocolFrozen || frozen.Linear.Loss == res.Linear.Loss {
		t.Errorf("default protocol %q, loss %v (supcontrast %v)", frozen.Protocol, frozen.Linear.Loss, res.Linear.Loss)
	}
	c.Protocol = "main_linear"
	if _, err := Evaluate(context.Background(), c, testTasks(4), testTasks(4), loader, &meanEncoder{}); !errors.Is(err, ErrInput) {
		t.Errorf("unknown protocol: %v", err)
	}
}
