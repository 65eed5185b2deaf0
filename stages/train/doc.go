// Package train is the train stage: it turns a stream of view groups into
// optimizer steps. It assembles batches of BatchSize samples x n_views views
// (view-major, as the SupCon loss expects), drops redelivered samples by
// (epoch, sample id), steps the trainer, and acknowledges a message only
// after the step that used it completed. An epoch ends when every sample the
// feeder announced has been stepped or was dead-lettered upstream; then the
// epoch hook runs (checkpoint, kNN monitor, events).
//
// The stage knows nothing of the transport: cmd/supflow feeds it deliveries
// and control messages from the bus.
package train
