//go:build !cgo || nolibjpeg

package imgdecode

// scaledJPEG is nil without libjpeg: every JPEG takes the pure-Go path.
var scaledJPEG func(data []byte, w, h, denom int, gray bool) (Image, bool)
