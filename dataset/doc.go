// Package dataset owns the on-bucket layout of a data set and the ingest
// that produces it: the manifest (manifest.jsonl, one Entry per image), the
// class list (classes.json), the info file (info.json: image size, channels,
// counts per split and the per-channel mean and std the trainer normalizes
// with), the readers for ImageFolder, idx (MNIST) and CIFAR binary
// sources, and Index, which makes a data set of images already in the
// bucket without copying them.
//
// Layout under a prefix:
//
//	<prefix>/manifest.jsonl
//	<prefix>/classes.json
//	<prefix>/info.json
//	<prefix>/<split>/<class>/<id>.png (or .jpg)   (Ingest)
//	<prefix>/ingest-report.json                  (Ingest: Report; Index: IndexReport)
//
// Index (dataset.source s3) lists a key prefix under the data set prefix
// (dataset.path) in the ImageFolder layout or from a list file, points the
// manifest at the existing objects (sizes from the listing, no sha256),
// reads only a bounded sample for info.json's statistics, and stores a
// fingerprint of the listing so that a re-run with nothing changed writes
// and reads nothing. The images lie under the data set prefix, so the rule
// that every manifest key does (UnderPrefix, checked by Load and by decode)
// holds for them unchanged.
//
// Ingest stores a fingerprint too, of the source's files (Source.Stamp:
// names, sizes, modification times) and its options, so that a re-run of
// an unchanged source reads no image.
//
// Ingest keeps only images the decode stage will take: an image over
// Options.MaxPixels (decode.max_pixels; by default imgdecode's, the same
// as decode's) is refused from its header, one whose encoded object is
// over Options.MaxObjectBytes after encoding, a source file over
// Options.MaxFileBytes unread; refused images are counted
// (Report.Refused), logged, and left out of the manifest, the counts and
// the mean and std. Files are streamed, never read whole. Nothing an
// ImageFolder tree holds stops an ingest: files that are empty or do not
// decode, bad names, links, special, hidden and nested entries and other
// files are left out (ReadOptions.Skip), counted by kind and named in the
// report. Images are converted as decode converts them (imgdecode.Convert,
// EXIF orientation applied), so what is stored is upright.
//
// A sharded ingest (Options.ShardBytes) reads each split in a mixed order
// (ReadOptions.Mix, mixOrder: fixed by the images' names, after the
// limit's selection), so that the feeder's runs of shard neighbours are
// not runs of one class; sources of fixed-size records reorder them in
// bounded windows (inOrder).
//
// Every limit on a split is class-stratified and seeded, to the same
// per-class quotas: at ingest and index (Selection, per split) it is cut by
// Select, a seeded scatter; later on the manifest (Dataset.Take and
// Table.Take: the feeder, the evaluation, the kNN monitor) a loose split is
// cut by Select too, a sharded one by selectStretch, one stretch of shard
// neighbours, which decode fetches in a few ranged GETs.
//
// It imports store for its types and its key rule (store.ValidKey,
// store.ErrInvalidKey), never a Client (it reaches a bucket through the
// small Bucket interface), messages for the decode task an Entry becomes
// (Entry.Task), and imgdecode for the pixel limit it shares with decode
// and its pixel conversion;
// it must not import bus or any stage.
package dataset
