package messages

import (
	"bytes"
	"encoding/binary"
	"errors"
	"reflect"
	"testing"
)

// batchOf returns n copies of m with sample ids m's + 0..n-1 and labels
// 0..n-1 (id and label are set through the fields every type shares).
func batchOf[M any](m M, n int) []M {
	out := make([]M, n)
	for i := range out {
		v := reflect.ValueOf(&out[i]).Elem()
		v.Set(reflect.ValueOf(m))
		v.FieldByName("SampleID").SetUint(v.FieldByName("SampleID").Uint() + uint64(i))
		v.FieldByName("Label").SetInt(int64(i % 10))
	}
	return out
}

func batchIDs[M any](ms []M, id func(M) uint64) []uint64 { return idsOf(ms, id) }

// TestBatchRoundTrip: batches of every type and size decode to what was
// encoded; one sample is the single type, byte for byte; the Unmarshal*s
// functions read single and batched messages alike (mixed sizes on one
// stream).
func TestBatchRoundTrip(t *testing.T) {
	img2 := sampleImage()
	img2.Height, img2.Width, img2.Channels, img2.Pixels = 1, 2, 1, []byte{9, 8}
	for _, n := range []int{1, 2, 7, MaxBatch} {
		tasks := batchOf(sampleTask(), n)
		b := mustMarshal(t, MarshalDecodeTasks, tasks)
		if n == 1 && !bytes.Equal(b, mustMarshal(t, MarshalDecodeTask, tasks[0])) {
			t.Fatal("one task is not written as a DecodeTask")
		}
		if got, err := UnmarshalDecodeTasks(b); err != nil || !reflect.DeepEqual(got, tasks) {
			t.Fatalf("%d tasks: %v, equal %v", n, err, reflect.DeepEqual(got, tasks))
		}
		imgs := batchOf(sampleImage(), n)
		if n > 1 {
			imgs[1].Height, imgs[1].Width, imgs[1].Channels, imgs[1].Pixels = img2.Height, img2.Width, img2.Channels, img2.Pixels
		}
		b = mustMarshal(t, MarshalImages, imgs)
		if n == 1 && !bytes.Equal(b, mustMarshal(t, MarshalImage, imgs[0])) {
			t.Fatal("one image is not written as an Image")
		}
		if got, err := UnmarshalImages(b); err != nil || !reflect.DeepEqual(got, imgs) {
			t.Fatalf("%d images: %v", n, err)
		}
		groups := batchOf(sampleViews(), n)
		b = mustMarshal(t, MarshalViewGroups, groups)
		if n == 1 && !bytes.Equal(b, mustMarshal(t, MarshalViewGroup, groups[0])) {
			t.Fatal("one view group is not written as a ViewGroup")
		}
		got, err := UnmarshalViewGroups(b)
		if err != nil || !reflect.DeepEqual(got, groups) {
			t.Fatalf("%d view groups: %v", n, err)
		}
		if n > 1 && (b[2] != batchVersion || cap(got[0].Pixels) != len(got[0].Pixels)) {
			t.Fatalf("batch version %d, pixel capacity %d of %d", b[2], cap(got[0].Pixels), len(got[0].Pixels))
		}
	}
}

// TestBatchOverhead: a batch of two-view 32x32x3 groups costs per sample
// little more than its pixels.
func TestBatchOverhead(t *testing.T) {
	m := ViewGroup{RunID: "0f8fad5b-d9cb-469f-a165-70867728950e", Epoch: 1, Split: "train", NViews: 2,
		Height: 32, Width: 32, Channels: 3, Pixels: make([]byte, 2*32*32*3)}
	b := mustMarshal(t, MarshalViewGroups, batchOf(m, 64))
	if per := float64(len(b)) / 64 / float64(len(m.Pixels)); per > 1.005 {
		t.Fatalf("%d bytes for 64 samples: %.4fx the pixels", len(b), per)
	}
}

// TestBatchRejects: what a batch encoder or decoder refuses, each wrapping
// its sentinel; counts and lengths are checked before allocating.
func TestBatchRejects(t *testing.T) {
	tasks := batchOf(sampleTask(), 3)
	mixed := append([]DecodeTask(nil), tasks...)
	mixed[2].Epoch++
	groups := batchOf(sampleViews(), 2)
	groups[1].NViews, groups[1].Pixels = 1, groups[1].Pixels[:4]
	for name, c := range map[string]struct {
		err  error
		want error
	}{
		"empty":           {errOf(MarshalDecodeTasks(nil)), ErrTooLarge},
		"too many":        {errOf(MarshalDecodeTasks(batchOf(sampleTask(), MaxBatch+1))), ErrTooLarge},
		"mixed epochs":    {errOf(MarshalDecodeTasks(mixed)), ErrInvalid},
		"bad sample":      {errOf(MarshalDecodeTasks(append(tasks[:1:1], DecodeTask{RunID: "run-1"}))), ErrInvalid},
		"mixed shapes":    {errOf(MarshalViewGroups(groups)), ErrInvalid},
		"images too big":  {errOf(MarshalImages(batchOf(bigImage(), 3))), ErrTooLarge},
		"version 1 batch": {errOf(UnmarshalDecodeTasks(withByte(mustMarshal(t, MarshalDecodeTasks, tasks), 2, 1))), ErrVersion},
		"count 1":         {errOf(UnmarshalDecodeTasks(withU16(mustMarshal(t, MarshalDecodeTasks, tasks), 8, 1))), ErrInvalid},
		"count huge":      {errOf(UnmarshalDecodeTasks(withU16(mustMarshal(t, MarshalDecodeTasks, tasks), 8, 65535))), ErrInvalid},
		"ids cut short":   {errOf(UnmarshalDecodeTasks(withU16(mustMarshal(t, MarshalDecodeTasks, tasks), 8, 200))), ErrTruncated},
		"trailing":        {errOf(UnmarshalDecodeTasks(append(mustMarshal(t, MarshalDecodeTasks, tasks), 0))), ErrTrailing},
		"wrong type":      {errOf(UnmarshalImages(mustMarshal(t, MarshalDecodeTasks, tasks))), ErrType},
		"views uneven":    {errOf(UnmarshalViewGroups(unevenViews(t))), ErrInvalid},
	} {
		if !errors.Is(c.err, c.want) {
			t.Errorf("%s: %v, want %v", name, c.err, c.want)
		}
	}
}

func errOf[M any](_ M, err error) error { return err }

func bigImage() Image {
	return Image{RunID: "r", Epoch: 1, Height: 4096, Width: 4096, Channels: 3, Pixels: make([]byte, 4096*4096*3)}
}

func withByte(b []byte, off int, v byte) []byte { b[off] = v; return b }

func withU16(b []byte, off int, v uint16) []byte {
	binary.LittleEndian.PutUint16(b[off:], v)
	return b
}

// unevenViews is a batch of two whose pixel length is not a multiple of 2.
func unevenViews(t *testing.T) []byte {
	b := mustMarshal(t, MarshalViewGroups, batchOf(sampleViews(), 2))
	b = append(b, 0)
	n := binary.LittleEndian.Uint32(b[len(b)-1-16-4:])
	binary.LittleEndian.PutUint32(b[len(b)-1-16-4:], n+1)
	return b
}

// checkSamples: what Samples reads from a message's head is the number of
// samples its decoder returned (1 for bytes that do not decode).
func checkSamples(t *testing.T, b []byte, decoded int, err error) {
	t.Helper()
	if got := Samples(b); err == nil && got != decoded {
		t.Fatalf("Samples = %d, decoded %d", got, decoded)
	}
}

func FuzzUnmarshalDecodeTasks(f *testing.F) {
	f.Add(mustMarshal(f, MarshalDecodeTasks, batchOf(sampleTask(), 3)))
	f.Add(mustMarshal(f, MarshalDecodeTask, sampleTask()))
	members := batchOf(sampleTask(), 3)
	members[1].Offset, members[1].Length = 512, 100
	f.Add(mustMarshal(f, MarshalDecodeTasks, members))
	f.Add(mustMarshal(f, MarshalDecodeTask, members[1]))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := UnmarshalDecodeTasks(b)
		checkSamples(t, b, len(m), err)
		checkFuzz(t, b, err, func() ([]byte, error) { return MarshalDecodeTasks(m) })
	})
}

func FuzzUnmarshalImages(f *testing.F) {
	f.Add(mustMarshal(f, MarshalImages, batchOf(sampleImage(), 3)))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := UnmarshalImages(b)
		checkSamples(t, b, len(m), err)
		checkFuzz(t, b, err, func() ([]byte, error) { return MarshalImages(m) })
	})
}

func FuzzUnmarshalViewGroups(f *testing.F) {
	f.Add(mustMarshal(f, MarshalViewGroups, batchOf(sampleViews(), 3)))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := UnmarshalViewGroups(b)
		checkSamples(t, b, len(m), err)
		checkFuzz(t, b, err, func() ([]byte, error) { return MarshalViewGroups(m) })
	})
}

// TestShardMembers: a task with a shard member (Length > 0) travels as
// version 4, alone or in a batch, and decodes to what was encoded; tasks of
// whole objects keep versions 1 and 3 byte for byte; each message has one
// encoding, so a version 4 message without a member is refused.
func TestShardMembers(t *testing.T) {
	member := sampleTask()
	member.Key, member.Offset, member.Length = "shards/train-000000.tar", 1536, 2048
	b := mustMarshal(t, MarshalDecodeTask, member)
	if b[2] != shardVersion {
		t.Fatalf("member task written as version %d", b[2])
	}
	if got, err := UnmarshalDecodeTask(b); err != nil || got != member {
		t.Fatalf("member task = %+v, %v", got, err)
	}
	if b := mustMarshal(t, MarshalDecodeTask, sampleTask()); b[2] != 1 {
		t.Fatalf("whole-object task written as version %d", b[2])
	}
	// A batch mixing whole objects and members (mixed layouts on one run).
	tasks := batchOf(sampleTask(), 4)
	tasks[1].Offset, tasks[1].Length = 0, 10
	tasks[3].Key, tasks[3].Offset, tasks[3].Length = member.Key, 1<<40, 1
	bb := mustMarshal(t, MarshalDecodeTasks, tasks)
	if bb[2] != shardVersion {
		t.Fatalf("batch with members written as version %d", bb[2])
	}
	if got, err := UnmarshalDecodeTasks(bb); err != nil || !reflect.DeepEqual(got, tasks) {
		t.Fatalf("batch with members: %v, equal %v", err, reflect.DeepEqual(got, tasks))
	}
	if b := mustMarshal(t, MarshalDecodeTasks, batchOf(sampleTask(), 3)); b[2] != batchVersion {
		t.Fatalf("batch of whole objects written as version %d", b[2])
	}
	whole := func() []byte { return mustMarshal(t, MarshalDecodeTask, sampleTask()) }
	pair := batchOf(sampleTask(), 2)
	pair[1].Length = 1 // the last field of the message
	noMember := mustMarshal(t, MarshalDecodeTasks, pair)
	binary.BigEndian.PutUint32(noMember[len(noMember)-4:], 0)
	zeroed := mustMarshal(t, MarshalDecodeTask, member)
	binary.BigEndian.PutUint32(zeroed[len(zeroed)-4:], 0)
	offsetOnly := member
	offsetOnly.Length = 0
	for name, c := range map[string]struct{ err, want error }{
		"task version 2":          {errOf(UnmarshalDecodeTask(withByte(whole(), 2, 2))), ErrVersion},
		"task version 3":          {errOf(UnmarshalDecodeTask(withByte(whole(), 2, 3))), ErrVersion},
		"task version 5":          {errOf(UnmarshalDecodeTask(withByte(whole(), 2, 5))), ErrVersion},
		"v1 task with a member":   {errOf(UnmarshalDecodeTask(withByte(b, 2, 1))), ErrTrailing},
		"v4 task without member":  {errOf(UnmarshalDecodeTask(withByte(whole(), 2, shardVersion))), ErrTruncated},
		"v4 task of length 0":     {errOf(UnmarshalDecodeTask(zeroed)), ErrInvalid},
		"v4 batch without member": {errOf(UnmarshalDecodeTasks(noMember)), ErrInvalid},
		"offset without length":   {errOf(MarshalDecodeTask(offsetOnly)), ErrInvalid},
		"image batch version 4":   {errOf(UnmarshalImages(withByte(mustMarshal(t, MarshalImages, batchOf(sampleImage(), 2)), 2, shardVersion))), ErrVersion},
	} {
		if !errors.Is(c.err, c.want) {
			t.Errorf("%s: %v, want %v", name, c.err, c.want)
		}
	}
}
