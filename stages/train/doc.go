// Package train is the train stage. New resumes from the run's last
// checkpoint when asked; Run turns a stream of view groups into optimizer
// steps: it assembles batches of BatchSize samples x n_views views
// (view-major, as the SupCon loss expects), drops redelivered samples by
// (epoch, sample id), steps the engine, and acknowledges a message only
// after the step that used it completed. An epoch ends when every sample the
// feeder announced (EpochStart events) has been stepped or was dead-lettered
// upstream (the dead-letter stream); then the kNN monitor and the checkpoint
// run when due, the curves are written and EpochTrained is published.
// Checkpoints and curves go to the keys package runs names.
//
// What comes off the bus is checked at the edge before it reaches the
// engine: a view group of another shape than the configured one, or with a
// label outside [0, Config.Classes) when the method needs labels, is
// dead-lettered (Delivery.Reject) and counted as dropped; it never stops
// the trainer.
//
// The stage knows nothing of the transport: it takes deliveries on a
// channel and its store, events and dead letters through small interfaces,
// which cmd/supflow fills with the bus and the S3 client. It must not
// import bus or another stage.
package train
