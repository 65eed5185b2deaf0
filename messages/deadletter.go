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

// Sample identifies the sample a dead letter of any pipeline edge was
// about; ok is false for a payload that does not decode as its topic's type.
// A truncated payload cannot be decoded whole: it is identified from its
// first fields (header, epoch, sample id and run id, which every type puts
// before anything of variable length), and ok is false only if those are
// cut short or invalid.
func (d DeadLetter) Sample() (run string, epoch uint32, id uint64, ok bool) {
	var t msgType
	switch d.SourceTopic {
	case TopicDecodeTasks:
		t = typeDecodeTask
	case TopicImages:
		t = typeImage
	case TopicViews:
		t = typeViewGroup
	default:
		return "", 0, 0, false
	}
	if d.Truncated() {
		run, epoch, id, err := sampleOf(d.Payload, t)
		return run, epoch, id, err == nil
	}
	switch t {
	case typeDecodeTask:
		if m, err := UnmarshalDecodeTask(d.Payload); err == nil {
			return m.RunID, m.Epoch, m.SampleID, true
		}
	case typeImage:
		if m, err := UnmarshalImage(d.Payload); err == nil {
			return m.RunID, m.Epoch, m.SampleID, true
		}
	case typeViewGroup:
		if m, err := UnmarshalViewGroup(d.Payload); err == nil {
			return m.RunID, m.Epoch, m.SampleID, true
		}
	}
	return "", 0, 0, false
}
