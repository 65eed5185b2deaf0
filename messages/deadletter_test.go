package messages

import (
	"strings"
	"testing"
)

// TestDeadLetterSampleOfTruncatedPayload: a dead letter cut to fit
// max_payload still names its sample as long as it keeps the fields up to
// the run id, for every type of every pipeline edge, and names none when
// it does not; an untruncated payload is identified only if it decodes.
func TestDeadLetterSampleOfTruncatedPayload(t *testing.T) {
	long := strings.Repeat("r", MaxRunIDLen)
	task, img, views := sampleTask(), sampleImage(), sampleViews()
	task.RunID, img.RunID, views.RunID = long, long, long
	for _, c := range []struct {
		topic   string
		payload []byte
		epoch   uint32
		id      uint64
		idEnd   int // bytes up to the end of the run id
	}{
		{TopicDecodeTasks, mustMarshal(t, MarshalDecodeTask, task), task.Epoch, task.SampleID, 20 + 2 + MaxRunIDLen},
		{TopicImages, mustMarshal(t, MarshalImage, img), img.Epoch, img.SampleID, 29 + 2 + MaxRunIDLen},
		{TopicViews, mustMarshal(t, MarshalViewGroup, views), views.Epoch, views.SampleID, 30 + 2 + MaxRunIDLen},
	} {
		if c.idEnd > MaxSampleOf {
			t.Fatalf("%s: the run id ends at %d, past MaxSampleOf %d", c.topic, c.idEnd, MaxSampleOf)
		}
		for n := 0; n <= len(c.payload); n++ {
			d := DeadLetter{Payload: c.payload[:n], SourceTopic: c.topic, Size: len(c.payload)}
			run, epoch, id, ok := d.Sample()
			if want := n >= c.idEnd; ok != want || ok && (run != long || epoch != c.epoch || id != c.id) {
				t.Fatalf("%s cut to %d of %d bytes: Sample() = %.8q.., %d, %d, %v; want ok %v", c.topic, n, len(c.payload), run, epoch, id, ok, want)
			}
		}
		// Not truncated: it must decode whole.
		d := DeadLetter{Payload: append(append([]byte(nil), c.payload...), 0), SourceTopic: c.topic}
		if _, _, _, ok := d.Sample(); ok {
			t.Errorf("%s with a trailing byte, not truncated: Sample() ok", c.topic)
		}
		if _, _, _, ok := (DeadLetter{Payload: c.payload, SourceTopic: c.topic}).Sample(); !ok {
			t.Errorf("%s: Sample() of the whole payload not ok", c.topic)
		}
	}
	// A truncated prefix must still be a valid one.
	bad := mustMarshal(t, MarshalDecodeTask, sampleTask())
	bad[20], bad[21] = 0, 0 // empty run id
	if _, _, _, ok := (DeadLetter{Payload: bad[:30], SourceTopic: TopicDecodeTasks, Size: 1 << 20}).Sample(); ok {
		t.Error("truncated task with an empty run id identified")
	}
	if _, _, _, ok := (DeadLetter{Payload: bad, SourceTopic: TopicEvents, Size: 1 << 20}).Sample(); ok {
		t.Error("dead letter of another topic identified")
	}
}
