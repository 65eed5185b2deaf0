// Package dataset owns the on-bucket layout of a data set and the ingest
// that produces it: the manifest (manifest.jsonl, one Entry per image), the
// class list (classes.json), the info file (info.json: image size, channels,
// counts per split and the per-channel mean and std the trainer normalizes
// with), and the readers for ImageFolder, idx (MNIST) and CIFAR binary
// sources.
//
// Layout under a prefix:
//
//	<prefix>/manifest.jsonl
//	<prefix>/classes.json
//	<prefix>/info.json
//	<prefix>/<split>/<class>/<id>.png (or .jpg)
//
// It imports store for its types and its key rule (store.ValidKey,
// store.ErrInvalidKey), never a Client (it reaches a bucket through the
// small Bucket interface), and messages for the decode task an Entry
// becomes (Entry.Task); it must not import bus or any stage.
package dataset
