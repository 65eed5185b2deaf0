package messages

import (
	"bytes"
	"testing"
)

// Each fuzz target checks that Unmarshal never panics, that every failure
// wraps a sentinel, and that whatever decodes re-encodes to the same bytes
// (the layout is canonical). Seeds live in testdata/fuzz/<target>/.

func FuzzUnmarshalDecodeTask(f *testing.F) {
	f.Add(mustMarshal(f, MarshalDecodeTask, sampleTask()))
	member := sampleTask()
	member.Offset, member.Length = 512, 100
	f.Add(mustMarshal(f, MarshalDecodeTask, member))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := UnmarshalDecodeTask(b)
		checkFuzz(t, b, err, func() ([]byte, error) { return MarshalDecodeTask(m) })
	})
}

func FuzzUnmarshalImage(f *testing.F) {
	f.Add(mustMarshal(f, MarshalImage, sampleImage()))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := UnmarshalImage(b)
		checkFuzz(t, b, err, func() ([]byte, error) { return MarshalImage(m) })
	})
}

func FuzzUnmarshalViewGroup(f *testing.F) {
	f.Add(mustMarshal(f, MarshalViewGroup, sampleViews()))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := UnmarshalViewGroup(b)
		checkFuzz(t, b, err, func() ([]byte, error) { return MarshalViewGroup(m) })
	})
}

func FuzzUnmarshalEvent(f *testing.F) {
	f.Add(mustMarshal(f, MarshalEvent, sampleEvent()))     // version 1
	f.Add(mustMarshal(f, MarshalEvent, sampleEvalEvent())) // version 2, with scores
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := UnmarshalEvent(b)
		checkFuzz(t, b, err, func() ([]byte, error) { return MarshalEvent(m) })
	})
}

func checkFuzz(t *testing.T, in []byte, err error, remarshal func() ([]byte, error)) {
	t.Helper()
	if err != nil {
		if !wrapsSentinel(err) {
			t.Fatalf("error wraps no sentinel: %v", err)
		}
		return
	}
	out, err := remarshal()
	if err != nil {
		t.Fatalf("decoded message does not re-encode: %v", err)
	}
	if !bytes.Equal(in, out) {
		t.Fatalf("re-encoding differs:\n in %x\nout %x", in, out)
	}
}
