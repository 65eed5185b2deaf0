// Package imgdecode turns encoded image bytes (JPEG, PNG, GIF, WebP) into
// row-major HWC uint8 pixels, RGB or single-channel gray, with the safety
// limits a service decoding untrusted objects needs: the format is sniffed
// from the content, the pixel count is checked from the header before any
// pixel memory is allocated, and every refusal wraps one of the package's
// sentinels (ErrEmpty, ErrFormat, ErrTooLarge, ErrCorrupt).
//
// What exists:
//   - Pure-Go decoding with the standard library and golang.org/x/image/webp;
//     GIF yields its first frame. Gray, CMYK, YCbCr, paletted, 16-bit and
//     alpha images become RGB as PIL's convert("RGB") does (alpha dropped,
//     16-bit samples keep their high byte).
//   - JPEG EXIF orientation (APP1 Exif, IFD0 tag 0x0112), parsed here with
//     bounds checks and applied as the 8 standard transforms. Other formats
//     are returned as stored.
//   - Resize-on-decode to a shorter side: antialiased bilinear with PIL's
//     coefficients and 22-bit fixed point, like Image.resize(BILINEAR).
//   - With cgo (unless built with the nolibjpeg tag), YCbCr and gray JPEGs
//     are decoded by libjpeg-turbo, about 3x faster than image/jpeg, and,
//     when resize-on-decode shrinks them enough, DCT-scaled (1/2, 1/4 or
//     1/8, like PIL's draft mode) before the final resize; the result stays
//     within 2/255 mean error of decode-then-resize. This links -ljpeg
//     (Debian libjpeg62-turbo-dev). Anything libjpeg rejects or warns about
//     is decoded again by the pure-Go path, which alone decides whether an
//     image is valid. Without cgo every image takes the pure-Go path.
//
// It imports only the standard library, golang.org/x/image and config/field
// (the key-named errors of Config.Validate): whether a refusal is permanent
// is for the caller to say (stages/decode marks every one with
// messages.Permanent).
package imgdecode
