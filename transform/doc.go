// Package transform owns the image augmentation ops of SupCon training (the
// library; the pipeline stage that applies them is stages/augment) and the
// random policy that chooses their parameters: torchvision 0.14's
// functional resized_crop, hflip, adjust_brightness/contrast/saturation/hue,
// rgb_to_grayscale and normalize, reproduced on the tensor path, plus the
// RandomResizedCrop, RandomHorizontalFlip, RandomApply(ColorJitter) and
// RandomGrayscale draws of SupContrast's training transform.
//
// Images enter as uint8 HWC (Pixels, as decoded images travel), are worked on
// as float32 planar [C,H,W] in [0,1] (Image) and leave as uint8 HWC after one
// final rounding. The crop and resize is always the first op, so it reads the
// uint8 pixels directly and the conversion to float is fused into its first
// pass.
//
// The random parameters of a view depend only on (run seed, epoch, sample id,
// view index), never on which worker draws them or in which order.
//
// Config carries the YAML keys of pipeline.yaml's augment section; the config
// package composes it (through the augment stage's Config) rather than
// declaring the settings again.
//
// The package does no I/O and imports only the standard library and
// config/field (the key-named errors of Validate); it must not import
// messages, bus, store or any stage.
package transform
