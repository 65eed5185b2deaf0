package bus

import (
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/supflow/supflow/messages"
)

// FuzzDeadLetterFits checks deadLetterOf with payloads at and around the
// largest that fits next to its headers, any reason text and original
// metadata, and any max_payload: the dead letter never exceeds
// max_payload; a payload that fits is kept whole, one that does not is cut
// to a prefix with supflow_payload_size giving its length, keeping at least
// minDeadLetterPayload bytes when max_payload is a real server's (>= 4 KiB)
// so that the sample of a decode task is still named; only a max_payload
// too small for the headers alone is an error, and a permanent one.
func FuzzDeadLetterFits(f *testing.F) {
	f.Add(uint32(1<<20), int32(0), "bus: decode: decode input: messages: trailing bytes", "", "")
	f.Add(uint32(1<<20), int32(-1), strings.Repeat("é", 600), "x-trace", "abc")
	f.Add(uint32(1<<20), int32(1), "a\r\nb", "", "")
	f.Add(uint32(4096), int32(300), strings.Repeat("r", 2000), "k", strings.Repeat("v", 3000))
	f.Add(uint32(300), int32(10), "short", "", "")
	f.Add(uint32(64), int32(0), "", "", "")
	task, err := messages.MarshalDecodeTask(messages.DecodeTask{RunID: strings.Repeat("r", messages.MaxRunIDLen), Epoch: 7, SampleID: 99, Key: "k"})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, maxPayload uint32, delta int32, reason, key, value string) {
		maxPayload %= 2<<20 + 1
		if strings.ContainsAny(key+value, "\r\n:") || strings.TrimSpace(key) != key || key != "" && key[0] == '_' {
			t.Skip() // not a header a message can arrive with
		}
		msg := message.NewMessage("1f6e0b0e-3d2a-4a51-9a55-5c0f1c4c6a11", nil)
		msg.Metadata.Set(metaDelivered, "3")
		if key != "" {
			msg.Metadata.Set(key, value)
		}
		// Around the largest payload that fits whole.
		probe, err := deadLetterOf(msg, messages.TopicDecodeTasks, "decode", 3, errors.New(reason), 1<<40)
		if err != nil {
			t.Fatal(err)
		}
		fits := int(maxPayload) - headerSize(wireHeader(probe.UUID, probe.Metadata))
		n := max(0, min(fits+int(delta%4096), 3<<20))
		msg.Payload = append(append(make([]byte, 0, max(n, len(task))), task...), make([]byte, max(0, n-len(task)))...)[:n]

		dl, err := deadLetterOf(msg, messages.TopicDecodeTasks, "decode", 3, errors.New(reason), int64(maxPayload))
		if err != nil {
			if !errors.Is(err, messages.ErrPermanent) || !errors.Is(err, errDeadLetterSize) {
				t.Fatalf("error %v: want a permanent errDeadLetterSize", err)
			}
			if maxPayload >= 4096 {
				t.Fatalf("max_payload %d: %v", maxPayload, err)
			}
			return
		}
		if wire := len(dl.Payload) + headerSize(wireHeader(dl.UUID, dl.Metadata)); wire > int(maxPayload) {
			t.Fatalf("dead letter of %d bytes (headers included), max_payload %d", wire, maxPayload)
		}
		if string(dl.Payload) != string(msg.Payload[:len(dl.Payload)]) {
			t.Fatal("payload is not a prefix of the original")
		}
		if _, ok := dl.Metadata[metaDelivered]; ok {
			t.Fatal("internal metadata published")
		}
		size := dl.Metadata.Get(messages.MetaPayloadSize)
		if len(dl.Payload) == n {
			if size != "" {
				t.Fatalf("whole payload with %s %q", messages.MetaPayloadSize, size)
			}
			if n <= fits && (key != "" && dl.Metadata.Get(key) != value || dl.Metadata.Get(messages.MetaReason) != headerText(reason, maxReasonLen)) {
				t.Fatal("a dead letter that fits lost metadata or reason text")
			}
			return
		}
		if size != strconv.Itoa(n) {
			t.Fatalf("%d of %d bytes kept, %s %q", len(dl.Payload), n, messages.MetaPayloadSize, size)
		}
		if maxPayload >= 4096 {
			if len(dl.Payload) < min(n, minDeadLetterPayload) {
				t.Fatalf("kept %d of %d bytes with max_payload %d", len(dl.Payload), n, maxPayload)
			}
			d := messages.DeadLetter{Payload: dl.Payload, SourceTopic: messages.TopicDecodeTasks, Size: n}
			if run, epoch, ids, ok := d.Samples(); n >= len(task) && (!ok || epoch != 7 || len(ids) != 1 || ids[0] != 99 || len(run) != messages.MaxRunIDLen) {
				t.Fatalf("truncated dead letter of a task: Samples() = %d, %v, %v", epoch, ids, ok)
			}
		}
		if strings.ContainsAny(dl.Metadata.Get(messages.MetaReason), "\r\n") {
			t.Fatal("line break in the reason header")
		}
	})
}
