// Package evaluate is the evaluate stage: it freezes a pretrained encoder,
// extracts features of the train and test splits through the decode path
// (no random augmentation: a center crop resized to the training view size),
// trains a linear classifier on the train features and scores it on the
// test features (top-1, top-5, per-class accuracy, confusion matrix), plus a
// kNN classifier.
//
// The package knows nothing of transport or storage: cmd/supflow passes the
// decode stage's handler as the Loader and the trainer as the Encoder. The
// train stage's kNN monitor reuses Extract.
package evaluate
