// Package decode is the pipeline stage between the feeder and augment: for
// each messages.DecodeTask it fetches the object from the dataset bucket,
// decodes it with imgdecode under the configured limits and returns a
// messages.Image carrying the task's ids, label and split.
//
// It classifies failures for the bus: a fetch error is transient (a plain
// error, retried) unless Config.IsNotFound says the object is missing; a
// missing, oversized or undecodable object is permanent
// (messages.ErrPermanent) and names the key and the reason.
//
// It imports only messages and imgdecode; the object store is injected as a
// Getter, and the bus mounts Handle. A decoded-image cache (decoded tensors
// written back to S3 for later epochs) does not exist yet.
package decode
