package messages

// DeadLetter is one message that failed permanently, as the dead-letter
// stream holds it: the original payload and the headers the bus set.
type DeadLetter struct {
	Payload     []byte
	SourceTopic string // MetaSourceTopic
	Reason      string // MetaReason
	Handler     string // MetaHandler
}

// Sample identifies the sample a dead letter of any pipeline edge was
// about; ok is false for a payload that does not decode as its topic's type.
func (d DeadLetter) Sample() (run string, epoch uint32, id uint64, ok bool) {
	switch d.SourceTopic {
	case TopicDecodeTasks:
		if t, err := UnmarshalDecodeTask(d.Payload); err == nil {
			return t.RunID, t.Epoch, t.SampleID, true
		}
	case TopicImages:
		if m, err := UnmarshalImage(d.Payload); err == nil {
			return m.RunID, m.Epoch, m.SampleID, true
		}
	case TopicViews:
		if m, err := UnmarshalViewGroup(d.Payload); err == nil {
			return m.RunID, m.Epoch, m.SampleID, true
		}
	}
	return "", 0, 0, false
}
