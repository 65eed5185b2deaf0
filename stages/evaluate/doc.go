// Package evaluate is the evaluate stage: it freezes a pretrained encoder,
// extracts features of the train and test splits through the decode path
// (no random augmentation: a center crop resized to the training view size),
// trains a linear classifier on the train features and scores it on the
// test features (top-1, top-5, per-class accuracy, confusion matrix), plus a
// kNN classifier.
//
// Stage evaluates one checkpoint of a run: it reads the checkpoint named by
// the run's PretrainDone event (WaitCheckpoint) or given by the user,
// scores it, writes report.json and report.html (package report) to the
// bucket and the work directory, with the train stage's curves, and
// publishes EvalDone. Monitor is the train stage's kNN monitor on the same
// feature path. Embed is that path itself, with each row's sample id, key
// and label (and, asked, the projection head's output): Extract, what the
// probes score, is built on it, and `supflow embed` writes it to files
// (EmbedCheckpoint, Embedding.Write).
//
// Images are loaded a chunk at a time, in shard order (by key, then
// offset), through a Loader: cmd/supflow passes the decode stage's planned
// path (Planned(dec.Plan, dec.HandleTask)), so that a sharded data set's
// neighbours in a chunk share one ranged GET, or their decoded shard's, as
// in training.
//
// The package knows nothing of transport: cmd/supflow passes that Loader,
// the engine as the Encoder and the S3 client and bus events through small
// interfaces. It must not import bus or another stage.
package evaluate
