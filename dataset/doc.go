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
// Ingest keeps only images the decode stage will take: an image over
// Options.MaxPixels (decode.max_pixels; by default imgdecode's, the same
// as decode's) is refused from its header, one whose encoded object is
// over Options.MaxObjectBytes after encoding, a source file over
// Options.MaxFileBytes unread; refused images are counted
// (Report.Refused), logged, and left out of the manifest, the counts and
// the mean and std. Files are streamed, never read whole.
//
// It imports store for its types and its key rule (store.ValidKey,
// store.ErrInvalidKey), never a Client (it reaches a bucket through the
// small Bucket interface), messages for the decode task an Entry becomes
// (Entry.Task), and imgdecode for the pixel limit it shares with decode;
// it must not import bus or any stage.
package dataset
