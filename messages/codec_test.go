package messages

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
)

func sampleTask() DecodeTask {
	return DecodeTask{RunID: "run-1", Epoch: 3, SampleID: 42, Key: "mnist/train/00042.png", Label: 7, Split: "train"}
}

func sampleImage() Image {
	return Image{RunID: "run-1", Epoch: 3, SampleID: 42, Label: -1, Split: "test",
		Height: 2, Width: 3, Channels: 3, Pixels: bytes.Repeat([]byte{1, 2, 3}, 6)}
}

func sampleViews() ViewGroup {
	return ViewGroup{RunID: "run-1", Epoch: 1, SampleID: 9, Label: 4, Split: "train",
		NViews: 2, Height: 2, Width: 2, Channels: 1, Pixels: []byte{1, 2, 3, 4, 5, 6, 7, 8}}
}

func sampleEvent() Event {
	return Event{RunID: "run-1", Kind: EventPretrainDone, Epoch: 10, Count: 60000, Ref: "ckpt/run-1/final.safetensors", Info: "loss 4.1"}
}

// sampleEvalEvent has scores, so it travels in version 2.
func sampleEvalEvent() Event {
	return Event{RunID: "run-1", Kind: EventEvalDone, Ref: "runs/run-1/report.html",
		Info:   "linear_top1=0.9712 knn_top1=0.9650",
		Scores: []Score{{ScoreLinearTop1, 0.9712}, {ScoreLinearTop5, 0.9991}, {ScoreKNNTop1, 0.965}}}
}

// allSentinels lists the errors every codec failure must wrap one of.
var allSentinels = []error{ErrMagic, ErrVersion, ErrType, ErrTruncated, ErrTrailing, ErrTooLarge, ErrInvalid}

func wrapsSentinel(err error) bool {
	for _, s := range allSentinels {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

func mustMarshal[M any](t testing.TB, marshal func(M) ([]byte, error), m M) []byte {
	t.Helper()
	b, err := marshal(m)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	return b
}

func TestRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"DecodeTask", func(t *testing.T) {
			in := sampleTask()
			got, err := UnmarshalDecodeTask(mustMarshal(t, MarshalDecodeTask, in))
			if err != nil || got != in {
				t.Fatalf("got %+v, %v; want %+v", got, err, in)
			}
		}},
		{"Image", func(t *testing.T) {
			in := sampleImage()
			got, err := UnmarshalImage(mustMarshal(t, MarshalImage, in))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got.Pixels, in.Pixels) {
				t.Fatalf("pixels %v, want %v", got.Pixels, in.Pixels)
			}
			if !reflect.DeepEqual(got, in) {
				t.Fatalf("got %+v, want %+v", got, in)
			}
		}},
		{"ViewGroup", func(t *testing.T) {
			in := sampleViews()
			got, err := UnmarshalViewGroup(mustMarshal(t, MarshalViewGroup, in))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got.Pixels, in.Pixels) {
				t.Fatalf("pixels %v, want %v", got.Pixels, in.Pixels)
			}
			if !reflect.DeepEqual(got, in) {
				t.Fatalf("got %+v, want %+v", got, in)
			}
		}},
		{"Event", func(t *testing.T) {
			in := sampleEvent()
			got, err := UnmarshalEvent(mustMarshal(t, MarshalEvent, in))
			if err != nil || !reflect.DeepEqual(got, in) {
				t.Fatalf("got %+v, %v; want %+v", got, err, in)
			}
		}},
		{"EventWithScores", func(t *testing.T) {
			in := sampleEvalEvent()
			got, err := UnmarshalEvent(mustMarshal(t, MarshalEvent, in))
			if err != nil || !reflect.DeepEqual(got, in) {
				t.Fatalf("got %+v, %v; want %+v", got, err, in)
			}
			if v, ok := got.Score(ScoreLinearTop5); !ok || v != 0.9991 {
				t.Fatalf("Score(%s) = %v, %v", ScoreLinearTop5, v, ok)
			}
			if _, ok := got.Score("nope"); ok {
				t.Fatal("Score of a missing name reported ok")
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, tt.run)
	}
}

// v1EventBytes is sampleEvent as the version 1 codec (before scores) wrote
// it, byte for byte: this build must keep reading it.
var v1EventBytes = []byte("SF\x01\x04\x03\n\x00\x00\x00`\xea\x00\x00\x00\x00\x00\x00" +
	"\x05\x00run-1\x1c\x00ckpt/run-1/final.safetensors\b\x00loss 4.1")

// TestEventVersions: an event without scores is written as version 1, the
// layout older readers know (unchanged bytes); one with scores as version 2;
// both kinds decode when mixed on one stream, in order.
func TestEventVersions(t *testing.T) {
	if got := mustMarshal(t, MarshalEvent, sampleEvent()); !bytes.Equal(got, v1EventBytes) {
		t.Fatalf("event without scores:\n got %x\nwant %x (version 1 as before)", got, v1EventBytes)
	}
	if b := mustMarshal(t, MarshalEvent, sampleEvalEvent()); b[2] != 2 {
		t.Fatalf("event with scores written as version %d, want 2", b[2])
	}
	for name, marshal := range map[string]func() []byte{
		"DecodeTask": func() []byte { return mustMarshal(t, MarshalDecodeTask, sampleTask()) },
		"Image":      func() []byte { return mustMarshal(t, MarshalImage, sampleImage()) },
		"ViewGroup":  func() []byte { return mustMarshal(t, MarshalViewGroup, sampleViews()) },
	} {
		if b := marshal(); b[2] != 1 {
			t.Errorf("%s written as version %d, want 1 (its layout did not change)", name, b[2])
		}
	}

	// One stream, as bus.Events reads it: old and new events interleaved.
	noScores := sampleEvent()
	trained := Event{RunID: "run-1", Kind: EventEpochTrained, Epoch: 3, Count: 50000}
	resumed := Event{RunID: "run-1", Kind: EventTrainerStarted, Epoch: 4}
	eval := sampleEvalEvent()
	zero := Event{RunID: "run-2", Kind: EventEvalDone, Scores: []Score{{ScoreKNNTop1, 0}}}
	want := []Event{trained, resumed, eval, noScores, zero, eval}
	stream := [][]byte{
		mustMarshal(t, MarshalEvent, trained),
		mustMarshal(t, MarshalEvent, resumed),
		mustMarshal(t, MarshalEvent, eval),
		bytes.Clone(v1EventBytes), // written by a build before version 2
		mustMarshal(t, MarshalEvent, zero),
		mustMarshal(t, MarshalEvent, eval),
	}
	for i, b := range stream {
		got, err := UnmarshalEvent(b)
		if err != nil {
			t.Fatalf("message %d (version %d): %v", i, b[2], err)
		}
		if !reflect.DeepEqual(got, want[i]) {
			t.Fatalf("message %d (version %d): got %+v, want %+v", i, b[2], got, want[i])
		}
		if again := mustMarshal(t, MarshalEvent, got); !bytes.Equal(again, b) {
			t.Fatalf("message %d does not re-encode to the same bytes:\n in %x\nout %x", i, b, again)
		}
	}
}

func TestUnmarshalPixelsAliasInput(t *testing.T) {
	b := mustMarshal(t, MarshalImage, sampleImage())
	img, err := UnmarshalImage(b)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)-1] = 99
	if img.Pixels[len(img.Pixels)-1] != 99 {
		t.Fatal("Pixels do not alias the input buffer")
	}
	if cap(img.Pixels) != len(img.Pixels) {
		t.Fatalf("cap %d > len %d: an append could overwrite the input", cap(img.Pixels), len(img.Pixels))
	}
}

func TestUnmarshalErrors(t *testing.T) {
	task := mustMarshal(t, MarshalDecodeTask, sampleTask())
	img := mustMarshal(t, MarshalImage, sampleImage())
	views := mustMarshal(t, MarshalViewGroup, sampleViews())
	ev := mustMarshal(t, MarshalEvent, sampleEvent())
	evs := mustMarshal(t, MarshalEvent, sampleEvalEvent())
	// Offsets from the end of evs: the last score is name str, value f64;
	// the count byte precedes the three scores.
	lastValue := len(evs) - 8
	scoresCount := len(evs) - 3*(2+8) - len(ScoreLinearTop1) - len(ScoreLinearTop5) - len(ScoreKNNTop1) - 1

	edit := func(b []byte, f func([]byte) []byte) []byte { return f(bytes.Clone(b)) }
	// Offsets in the Image layout (docs/messages.md).
	const imgHeight, imgChannels, imgRunIDLen = 20, 28, 29
	pixLenOff := len(img) - len(sampleImage().Pixels) - 4

	tests := []struct {
		name      string
		unmarshal func([]byte) error
		in        []byte
		want      error
	}{
		{"empty", unmarshalTask, nil, ErrTruncated},
		{"short header", unmarshalTask, []byte("SF"), ErrTruncated},
		{"bad magic", unmarshalTask, edit(task, func(b []byte) []byte { b[0] = 'X'; return b }), ErrMagic},
		{"json", unmarshalEvent, []byte(`{"run_id":"x"}`), ErrMagic},
		{"future version", unmarshalTask, edit(task, func(b []byte) []byte { b[2] = 2; return b }), ErrVersion},
		{"version zero", unmarshalImage, edit(img, func(b []byte) []byte { b[2] = 0; return b }), ErrVersion},
		{"image as task", unmarshalTask, img, ErrType},
		{"views as image", unmarshalImage, views, ErrType},
		{"task as event", unmarshalEvent, task, ErrType},
		{"truncated task", unmarshalTask, task[:len(task)-1], ErrTruncated},
		{"truncated pixels", unmarshalImage, img[:len(img)-1], ErrTruncated},
		{"truncated event", unmarshalEvent, ev[:10], ErrTruncated},
		{"trailing task", unmarshalTask, append(bytes.Clone(task), 0), ErrTrailing},
		{"trailing views", unmarshalViews, append(bytes.Clone(views), 1, 2), ErrTrailing},
		{"pixel length mismatch", unmarshalImage, edit(img, func(b []byte) []byte {
			binary.LittleEndian.PutUint32(b[pixLenOff:], 17)
			return b[:len(b)-1]
		}), ErrInvalid},
		{"height mismatch", unmarshalImage, edit(img, func(b []byte) []byte {
			binary.LittleEndian.PutUint32(b[imgHeight:], 3)
			return b
		}), ErrInvalid},
		{"absurd height", unmarshalImage, edit(img, func(b []byte) []byte {
			binary.LittleEndian.PutUint32(b[imgHeight:], 1<<31)
			return b
		}), ErrTooLarge},
		{"absurd pixel length", unmarshalImage, edit(img, func(b []byte) []byte {
			binary.LittleEndian.PutUint32(b[pixLenOff:], 1<<31)
			return b
		}), ErrTooLarge},
		{"bad channels", unmarshalImage, edit(img, func(b []byte) []byte { b[imgChannels] = 2; return b }), ErrInvalid},
		{"run id too long", unmarshalImage, edit(img, func(b []byte) []byte {
			binary.LittleEndian.PutUint16(b[imgRunIDLen:], MaxRunIDLen+1)
			return b
		}), ErrTooLarge},
		{"zero views", unmarshalViews, edit(views, func(b []byte) []byte { b[20] = 0; return b }), ErrInvalid},
		{"unknown event kind", unmarshalEvent, edit(ev, func(b []byte) []byte { b[4] = 200; return b }), ErrInvalid},
		{"event version 3", unmarshalEvent, edit(evs, func(b []byte) []byte { b[2] = 3; return b }), ErrVersion},
		{"task version 2", unmarshalTask, edit(task, func(b []byte) []byte { b[2] = 2; return b }), ErrVersion},
		{"views version 2", unmarshalViews, edit(views, func(b []byte) []byte { b[2] = 2; return b }), ErrVersion},
		{"scores in a version 1 event", unmarshalEvent, edit(evs, func(b []byte) []byte { b[2] = 1; return b }), ErrTrailing},
		{"version 2 event without scores", unmarshalEvent, edit(ev, func(b []byte) []byte { b[2] = 2; return b }), ErrTruncated},
		{"version 2 event, zero scores", unmarshalEvent, edit(ev, func(b []byte) []byte { b[2] = 2; return append(b, 0) }), ErrInvalid},
		{"too many scores", unmarshalEvent, edit(evs, func(b []byte) []byte { b[scoresCount] = MaxScores + 1; return b }), ErrTooLarge},
		{"score count past the end", unmarshalEvent, edit(evs, func(b []byte) []byte { b[scoresCount] = 4; return b }), ErrTruncated},
		{"truncated score", unmarshalEvent, evs[:len(evs)-1], ErrTruncated},
		{"trailing score bytes", unmarshalEvent, append(bytes.Clone(evs), 0), ErrTrailing},
		{"NaN score", unmarshalEvent, edit(evs, func(b []byte) []byte {
			binary.LittleEndian.PutUint64(b[lastValue:], math.Float64bits(math.NaN()))
			return b
		}), ErrInvalid},
		{"infinite score", unmarshalEvent, edit(evs, func(b []byte) []byte {
			binary.LittleEndian.PutUint64(b[lastValue:], math.Float64bits(math.Inf(-1)))
			return b
		}), ErrInvalid},
		{"duplicate score name", unmarshalEvent, edit(evs, func(b []byte) []byte {
			// knn_top1 -> linear_top1 would change lengths; rename the second
			// score (linear_top5) to linear_top1 instead.
			i := bytes.Index(b, []byte(ScoreLinearTop5))
			copy(b[i:], ScoreLinearTop1)
			return b
		}), ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.unmarshal(tt.in)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestMarshalRejectsInvalid(t *testing.T) {
	tests := []struct {
		name    string
		marshal func() error
		want    error
	}{
		{"task without run id", func() error { m := sampleTask(); m.RunID = ""; return marshalErr(MarshalDecodeTask(m)) }, ErrInvalid},
		{"task without key", func() error { m := sampleTask(); m.Key = ""; return marshalErr(MarshalDecodeTask(m)) }, ErrInvalid},
		{"task key too long", func() error {
			m := sampleTask()
			m.Key = strings.Repeat("k", MaxKeyLen+1)
			return marshalErr(MarshalDecodeTask(m))
		}, ErrTooLarge},
		{"task bad label", func() error { m := sampleTask(); m.Label = -2; return marshalErr(MarshalDecodeTask(m)) }, ErrInvalid},
		{"task invalid utf8", func() error { m := sampleTask(); m.Split = "\xff"; return marshalErr(MarshalDecodeTask(m)) }, ErrInvalid},
		{"image short pixels", func() error { m := sampleImage(); m.Pixels = m.Pixels[1:]; return marshalErr(MarshalImage(m)) }, ErrInvalid},
		{"image zero width", func() error { m := sampleImage(); m.Width = 0; return marshalErr(MarshalImage(m)) }, ErrTooLarge},
		{"image huge", func() error {
			m := sampleImage()
			m.Height, m.Width = MaxSide, MaxSide
			return marshalErr(MarshalImage(m))
		}, ErrTooLarge},
		{"views too many", func() error { m := sampleViews(); m.NViews = MaxViews + 1; return marshalErr(MarshalViewGroup(m)) }, ErrInvalid},
		{"views one missing", func() error { m := sampleViews(); m.NViews = 3; return marshalErr(MarshalViewGroup(m)) }, ErrInvalid},
		{"event kind zero", func() error { m := sampleEvent(); m.Kind = 0; return marshalErr(MarshalEvent(m)) }, ErrInvalid},
		{"event with too many scores", func() error {
			m := sampleEvalEvent()
			m.Scores = nil
			for i := range MaxScores + 1 {
				m.Scores = append(m.Scores, Score{Name: fmt.Sprintf("s%d", i), Value: 1})
			}
			return marshalErr(MarshalEvent(m))
		}, ErrTooLarge},
		{"event score without name", func() error {
			m := sampleEvalEvent()
			m.Scores[1].Name = ""
			return marshalErr(MarshalEvent(m))
		}, ErrInvalid},
		{"event score name too long", func() error {
			m := sampleEvalEvent()
			m.Scores[0].Name = strings.Repeat("n", MaxScoreNameLen+1)
			return marshalErr(MarshalEvent(m))
		}, ErrTooLarge},
		{"event NaN score", func() error {
			m := sampleEvalEvent()
			m.Scores[2].Value = math.NaN()
			return marshalErr(MarshalEvent(m))
		}, ErrInvalid},
		{"event infinite score", func() error {
			m := sampleEvalEvent()
			m.Scores[0].Value = math.Inf(1)
			return marshalErr(MarshalEvent(m))
		}, ErrInvalid},
		{"event duplicate score", func() error {
			m := sampleEvalEvent()
			m.Scores[2].Name = m.Scores[0].Name
			return marshalErr(MarshalEvent(m))
		}, ErrInvalid},
		{"event info too long", func() error {
			m := sampleEvent()
			m.Info = strings.Repeat("i", MaxInfoLen+1)
			return marshalErr(MarshalEvent(m))
		}, ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.marshal(); !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

// TestViewGroupOverhead pins the wire cost of the common training message:
// 32x32x3 views with a UUID run id must stay within 5% of the raw pixels.
func TestViewGroupOverhead(t *testing.T) {
	for _, nviews := range []uint8{1, 2, 4} {
		raw := int(nviews) * 32 * 32 * 3
		m := ViewGroup{RunID: "0b5c3f3e-6a43-4d55-9c8e-2f0f3b1d7a11", Epoch: 199, SampleID: 49999, Label: 9,
			Split: "train", NViews: nviews, Height: 32, Width: 32, Channels: 3, Pixels: make([]byte, raw)}
		b := mustMarshal(t, MarshalViewGroup, m)
		if ratio := float64(len(b)) / float64(raw); ratio > 1.05 {
			t.Errorf("%d views: %d bytes on the wire for %d raw (%.3fx > 1.05x)", nviews, len(b), raw, ratio)
		}
	}
}

func TestEventKindString(t *testing.T) {
	if got := EventPretrainDone.String(); got != "pretrain_done" {
		t.Fatalf("got %q", got)
	}
	if got := EventTrainerStarted.String(); got != "trainer_started" {
		t.Fatalf("got %q", got)
	}
	if got := EventKind(99).String(); got != "event_kind_99" {
		t.Fatalf("got %q", got)
	}
}

func TestErrorMarkers(t *testing.T) {
	base := errors.New("boom")
	tests := []struct {
		name     string
		err      error
		sentinel error
	}{
		{"permanent", Permanent(base), ErrPermanent},
		{"permanent twice", Permanent(Permanent(base)), ErrPermanent},
		{"skip", Skip(base), ErrSkip},
		{"skip nil", Skip(nil), ErrSkip},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !errors.Is(tt.err, tt.sentinel) {
				t.Fatalf("%v does not wrap %v", tt.err, tt.sentinel)
			}
			if tt.err != ErrSkip && !errors.Is(tt.err, base) {
				t.Fatalf("%v lost the cause", tt.err)
			}
		})
	}
	if Permanent(nil) != nil {
		t.Fatal("Permanent(nil) != nil")
	}
}

func marshalErr(_ []byte, err error) error { return err }

func unmarshalTask(b []byte) error  { _, err := UnmarshalDecodeTask(b); return err }
func unmarshalImage(b []byte) error { _, err := UnmarshalImage(b); return err }
func unmarshalViews(b []byte) error { _, err := UnmarshalViewGroup(b); return err }
func unmarshalEvent(b []byte) error { _, err := UnmarshalEvent(b); return err }

// TestComparePlace: tasks order by key, then offset.
func TestComparePlace(t *testing.T) {
	for _, tc := range []struct {
		a, b DecodeTask
		want int
	}{
		{DecodeTask{Key: "s0", Offset: 512}, DecodeTask{Key: "s0", Offset: 1024}, -1},
		{DecodeTask{Key: "s1", Offset: 0}, DecodeTask{Key: "s0", Offset: 1024}, 1},
		{DecodeTask{Key: "s0", Offset: 512, SampleID: 1}, DecodeTask{Key: "s0", Offset: 512, SampleID: 2}, 0},
	} {
		if got := ComparePlace(tc.a, tc.b); got != tc.want {
			t.Errorf("ComparePlace(%+v, %+v) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}
