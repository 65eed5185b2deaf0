package messages

// DeadLetter is one message that failed permanently, as the dead-letter
// stream holds it: the original payload, or its first bytes when the whole
// would not fit max_payload next to the headers, and the headers the bus
// set.
type DeadLetter struct {
	Payload     []byte
	SourceTopic string // MetaSourceTopic
	Reason      string // MetaReason
	Handler     string // MetaHandler
	// Size is the original payload's length (MetaPayloadSize): more than
	// len(Payload) when the dead letter holds only its first bytes. Zero
	// means len(Payload).
	Size int
}

// Truncated reports whether the dead letter holds only the first bytes of
// the original payload.
func (d DeadLetter) Truncated() bool { return d.Size > len(d.Payload) }

// Samples identifies the samples a dead letter of any pipeline edge was
// about (one, or those of a batch); ok is false for a payload that does not
// decode as its topic's type. A truncated payload cannot be decoded whole:
// it is identified from its first fields (header, epoch, run id and sample
// ids, which every type puts before anything of variable length), and ok is
// false only if those are cut short or invalid.
func (d DeadLetter) Samples() (run string, epoch uint32, ids []uint64, ok bool) {
	var t, batch msgType
	switch d.SourceTopic {
	case TopicDecodeTasks:
		t, batch = typeDecodeTask, typeDecodeTaskBatch
	case TopicImages:
		t, batch = typeImage, typeImageBatch
	case TopicViews:
		t, batch = typeViewGroup, typeViewGroupBatch
	default:
		return "", 0, nil, false
	}
	if d.Truncated() {
		run, epoch, ids, err := samplesOf(d.Payload, t, batch)
		return run, epoch, ids, err == nil
	}
	switch t {
	case typeDecodeTask:
		if ms, err := UnmarshalDecodeTasks(d.Payload); err == nil {
			return ms[0].RunID, ms[0].Epoch, idsOf(ms, func(m DecodeTask) uint64 { return m.SampleID }), true
		}
	case typeImage:
		if ms, err := UnmarshalImages(d.Payload); err == nil {
			return ms[0].RunID, ms[0].Epoch, idsOf(ms, func(m Image) uint64 { return m.SampleID }), true
		}
	case typeViewGroup:
		if ms, err := UnmarshalViewGroups(d.Payload); err == nil {
			return ms[0].RunID, ms[0].Epoch, idsOf(ms, func(m ViewGroup) uint64 { return m.SampleID }), true
		}
	}
	return "", 0, nil, false
}

func idsOf[M any](ms []M, id func(M) uint64) []uint64 {
	out := make([]uint64, len(ms))
	for i, m := range ms {
		out[i] = id(m)
	}
	return out
}
