package messages

import (
	"slices"
	"strings"
	"testing"
)

// TestDeadLetterSampleOfTruncatedPayload: a dead letter cut to fit
// max_payload still names its samples as long as it keeps the fields up to
// the run id (a batch's: up to its sample ids), for every type of every
// pipeline edge, single and batched, and names none when it does not; an
// untruncated payload is identified only if it decodes.
func TestDeadLetterSampleOfTruncatedPayload(t *testing.T) {
	long := strings.Repeat("r", MaxRunIDLen)
	task, img, views := sampleTask(), sampleImage(), sampleViews()
	task.RunID, img.RunID, views.RunID = long, long, long
	tasks, imgs, groups := batchOf(task, MaxBatch), batchOf(img, MaxBatch), batchOf(views, MaxBatch)
	batchEnd := 4 + 4 + 2 + 2 + MaxRunIDLen + 8*MaxBatch
	for _, c := range []struct {
		topic   string
		payload []byte
		epoch   uint32
		ids     []uint64
		idEnd   int // bytes up to the end of the run id (batch: sample ids)
	}{
		{TopicDecodeTasks, mustMarshal(t, MarshalDecodeTask, task), task.Epoch, []uint64{task.SampleID}, 20 + 2 + MaxRunIDLen},
		{TopicImages, mustMarshal(t, MarshalImage, img), img.Epoch, []uint64{img.SampleID}, 29 + 2 + MaxRunIDLen},
		{TopicViews, mustMarshal(t, MarshalViewGroup, views), views.Epoch, []uint64{views.SampleID}, 30 + 2 + MaxRunIDLen},
		{TopicDecodeTasks, mustMarshal(t, MarshalDecodeTasks, tasks), task.Epoch, batchIDs(tasks, func(m DecodeTask) uint64 { return m.SampleID }), batchEnd},
		{TopicImages, mustMarshal(t, MarshalImages, imgs), img.Epoch, batchIDs(imgs, func(m Image) uint64 { return m.SampleID }), batchEnd},
		{TopicViews, mustMarshal(t, MarshalViewGroups, groups), views.Epoch, batchIDs(groups, func(m ViewGroup) uint64 { return m.SampleID }), batchEnd},
	} {
		if c.idEnd > MaxSampleOf {
			t.Fatalf("%s: the run id ends at %d, past MaxSampleOf %d", c.topic, c.idEnd, MaxSampleOf)
		}
		for n := 0; n <= len(c.payload); n++ {
			d := DeadLetter{Payload: c.payload[:n], SourceTopic: c.topic, Size: len(c.payload)}
			run, epoch, ids, ok := d.Samples()
			if want := n >= c.idEnd; ok != want || ok && (run != long || epoch != c.epoch || !slices.Equal(ids, c.ids)) {
				t.Fatalf("%s cut to %d of %d bytes: Samples() = %.8q.., %d, %d ids, %v; want ok %v", c.topic, n, len(c.payload), run, epoch, len(ids), ok, want)
			}
		}
		// Not truncated: it must decode whole.
		d := DeadLetter{Payload: append(append([]byte(nil), c.payload...), 0), SourceTopic: c.topic}
		if _, _, _, ok := d.Samples(); ok {
			t.Errorf("%s with a trailing byte, not truncated: Samples() ok", c.topic)
		}
		if _, _, ids, ok := (DeadLetter{Payload: c.payload, SourceTopic: c.topic}).Samples(); !ok || !slices.Equal(ids, c.ids) {
			t.Errorf("%s: Samples() of the whole payload: %d ids, ok %v", c.topic, len(ids), ok)
		}
	}
	// A truncated prefix must still be a valid one.
	bad := mustMarshal(t, MarshalDecodeTask, sampleTask())
	bad[20], bad[21] = 0, 0 // empty run id
	if _, _, _, ok := (DeadLetter{Payload: bad[:30], SourceTopic: TopicDecodeTasks, Size: 1 << 20}).Samples(); ok {
		t.Error("truncated task with an empty run id identified")
	}
	if _, _, _, ok := (DeadLetter{Payload: bad, SourceTopic: TopicEvents, Size: 1 << 20}).Samples(); ok {
		t.Error("dead letter of another topic identified")
	}
}
