// Package routes mounts the data plane's stages on the bus: the one
// definition of the decode, augment and fused decode+augment routes that
// cmd/supflow runs and bench/data measures. The stages themselves know
// nothing of the bus; a route names its consumer, its topics, the codec
// of its messages and how a sample is dead-lettered alone.
package routes

import (
	"github.com/supflow/supflow/bus"
	"github.com/supflow/supflow/messages"
	"github.com/supflow/supflow/stages/augment"
	"github.com/supflow/supflow/stages/decode"
)

// Decode is the decode stage: decode task batches in, image batches out;
// the members of a shard close together in a batch are fetched with one
// ranged GET (decode.Stage.Plan). Messages of runs other than runID are
// acknowledged and skipped.
func Decode(runID string, st *decode.Stage, workers int) bus.Route {
	return bus.HandleBatch("decode", messages.TopicDecodeTasks, messages.TopicImages,
		st.UnmarshalTasks, messages.AppendImages, decode.MarshalTask,
		messages.OfRun(runID, taskRun, st.HandleTask)).
		Workers(workers)
}

// Augment is the augment stage: image batches in, view group batches out.
func Augment(runID string, st *augment.Stage, workers int) bus.Route {
	return bus.HandleBatch("augment", messages.TopicImages, messages.TopicViews,
		messages.UnmarshalImages, messages.AppendViewGroups, messages.MarshalImage,
		messages.OfRun(runID, func(m messages.Image) string { return m.RunID }, st.Handle)).
		Workers(workers).
		WithoutOutputID() // the trainer de-duplicates views by (epoch, sample id)
}

// Fused is `supflow decode --augment`: decode tasks in, views out, each
// sample decoded then augmented in this process, so that its image never
// crosses the bus. It consumes as the decode stage does (the same durable
// consumer: a fused worker and a decode worker share the tasks), and a bad
// image dead-letters its task alone, which names its key.
func Fused(runID string, dec *decode.Stage, aug *augment.Stage, workers int) bus.Route {
	return bus.HandleBatch("decode", messages.TopicDecodeTasks, messages.TopicViews,
		dec.UnmarshalTasks, messages.AppendViewGroups, decode.MarshalTask,
		messages.OfRun(runID, taskRun, messages.Then(dec.HandleTask, aug.Handle))).
		Workers(workers).
		WithoutOutputID()
}

func taskRun(t decode.Task) string { return t.RunID }
