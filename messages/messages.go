// Package messages defines what travels on each edge of the supflow pipeline:
// the Go types, the binary wire layout (see docs/messages.md), the topic
// names and the metadata keys. It imports only the standard library so every
// stage, and any non-Go producer, can speak it.
package messages

import (
	"cmp"
	"fmt"
	"strings"
)

// Topics, one JetStream stream per edge. Names avoid '.', '*' and '>' so a
// stream may be named after its topic.
const (
	TopicDecodeTasks = "supflow_decode_tasks" // feeder -> decode: DecodeTask
	TopicImages      = "supflow_images"       // decode -> augment: Image
	TopicViews       = "supflow_views"        // augment -> train: ViewGroup
	TopicEvents      = "supflow_events"       // control events: Event
	TopicDeadLetter  = "supflow_dead_letter"  // messages that failed permanently
)

// Metadata keys (NATS headers) that the bus sets on a dead-lettered message,
// next to the original payload and the original metadata.
const (
	MetaReason      = "supflow_reason"       // the error text
	MetaSourceTopic = "supflow_source_topic" // topic the message was consumed from
	MetaHandler     = "supflow_handler"      // handler that gave up on it
	MetaDeliveries  = "supflow_deliveries"   // delivery attempts, decimal
	// MetaPayloadSize is set on a dead letter whose payload was cut to fit
	// the server's max_payload: the original payload's length, decimal.
	// The dead letter keeps the payload's first bytes, where every message
	// type has the fields that name its sample (see DeadLetter.Sample).
	MetaPayloadSize = "supflow_payload_size"
)

// DecodeTask asks the decode stage to fetch and decode one object.
type DecodeTask struct {
	RunID    string // identifies one pipeline run; stages ignore other runs
	Epoch    uint32
	SampleID uint64 // index of the sample in the manifest split
	Key      string // object key in the dataset bucket
	Label    int32  // class index; -1 when unlabelled
	Split    string // "train", "test", ...
	// Length, when not 0, says Key is a shard (dataset.Entry.Shard) and the
	// image is its Length bytes at Offset (version 4); 0 fetches the whole
	// object at Key, and then Offset must be 0.
	Offset uint64
	Length uint32
}

// ComparePlace orders tasks by where their bytes are: by object key, then
// offset, so that the members of one shard come together in shard order
// (what a ranged GET of neighbours needs).
func ComparePlace(a, b DecodeTask) int {
	return cmp.Or(strings.Compare(a.Key, b.Key), cmp.Compare(a.Offset, b.Offset))
}

// Image is one decoded image, pixels row-major HWC uint8.
type Image struct {
	RunID    string
	Epoch    uint32
	SampleID uint64
	Label    int32
	Split    string
	Height   uint32
	Width    uint32
	Channels uint8  // 1 (gray) or 3 (RGB)
	Pixels   []byte // len == Height*Width*Channels
}

// ViewGroup holds the n_views augmented views of one sample, each of the same
// size, pixels row-major HWC uint8, views concatenated.
type ViewGroup struct {
	RunID    string
	Epoch    uint32
	SampleID uint64
	Label    int32
	Split    string
	NViews   uint8
	Height   uint32
	Width    uint32
	Channels uint8
	Pixels   []byte // len == NViews*Height*Width*Channels
}

// EventKind tells what a control Event announces.
type EventKind uint8

const (
	EventEpochStart   EventKind = 1 // the feeder starts publishing an epoch (Count = samples)
	EventEpochEnd     EventKind = 2 // the feeder published every task of an epoch (Count = samples)
	EventPretrainDone EventKind = 3 // the trainer finished; Ref names the checkpoint key
	EventEvalDone     EventKind = 4 // the evaluator finished; Ref names the report key
	EventEpochTrained EventKind = 5 // the trainer finished an epoch (Count = samples trained)
	// EventTrainerStarted: a trainer starts training at Epoch (after its
	// checkpoint's, when resuming). Views of Epoch that a trainer before
	// it stepped after that checkpoint are gone: the feeder feeds the
	// epoch again (stages/feeder).
	EventTrainerStarted EventKind = 6
)

func (k EventKind) String() string {
	switch k {
	case EventEpochStart:
		return "epoch_start"
	case EventEpochEnd:
		return "epoch_end"
	case EventPretrainDone:
		return "pretrain_done"
	case EventEvalDone:
		return "eval_done"
	case EventEpochTrained:
		return "epoch_trained"
	case EventTrainerStarted:
		return "trainer_started"
	}
	return fmt.Sprintf("event_kind_%d", uint8(k))
}

// Event is a control message on TopicEvents.
type Event struct {
	RunID string
	Kind  EventKind
	Epoch uint32
	Count uint64 // samples in the epoch, where the kind has one
	// Ref is the object key the event refers to (checkpoint, report); in
	// EpochStart and EpochEnd, the id of the feeder that sent it.
	Ref  string
	Info string // free text for humans (e.g. a summary line)
	// Scores are named measurements for programs to read (EvalDone: the
	// Score* names below), in the order the producer gave them; names are
	// unique and values finite. An event with scores travels in wire
	// format version 2, one without in version 1 (docs/messages.md).
	Scores []Score
}

// Score is one named measurement carried by an Event.
type Score struct {
	Name  string  // 1..MaxScoreNameLen bytes of UTF-8
	Value float64 // finite
}

// Names of the scores EventEvalDone carries: accuracies in [0, 1] on the
// test split.
const (
	ScoreLinearTop1 = "linear_top1" // linear probe, top-1
	ScoreLinearTop5 = "linear_top5" // linear probe, top-5
	ScoreKNNTop1    = "knn_top1"    // kNN classifier, top-1
)

// Score returns the value of the score named name, and whether e has it.
func (e Event) Score(name string) (float64, bool) {
	for _, s := range e.Scores {
		if s.Name == name {
			return s.Value, true
		}
	}
	return 0, false
}
