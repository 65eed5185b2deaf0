//go:build cgo && !nolibjpeg

package imgdecode

/*
#cgo LDFLAGS: -ljpeg
#include <stddef.h>
#include <stdio.h>
#include <setjmp.h>
#include <jpeglib.h>

// sf_err turns libjpeg's fatal errors into a longjmp back to sf_decode and
// counts warnings (corrupt or truncated data) instead of printing them.
typedef struct {
	struct jpeg_error_mgr pub;
	jmp_buf jump;
	int warnings;
} sf_err;

static void sf_error_exit(j_common_ptr c) { longjmp(((sf_err *)c->err)->jump, 1); }
static void sf_output_message(j_common_ptr c) {}
static void sf_emit_message(j_common_ptr c, int level) {
	if (level < 0) ((sf_err *)c->err)->warnings++;
}

// sf_decode decodes src scaled by 1/denom into out, expecting a w x h image
// scaled to ow x oh, as gray (1 channel) or RGB. It returns 0 on success and
// 1 on any error, warning, unexpected size or color space that needs the
// CMYK handling of the Go decoder.
static int sf_decode(const unsigned char *src, unsigned long n, int denom, int gray,
		int w, int h, int ow, int oh, unsigned char *out) {
	struct jpeg_decompress_struct d;
	sf_err e;
	d.err = jpeg_std_error(&e.pub);
	e.pub.error_exit = sf_error_exit;
	e.pub.output_message = sf_output_message;
	e.pub.emit_message = sf_emit_message;
	e.warnings = 0;
	if (setjmp(e.jump)) {
		jpeg_destroy_decompress(&d);
		return 1;
	}
	jpeg_create_decompress(&d);
	jpeg_mem_src(&d, src, n);
	jpeg_read_header(&d, TRUE);
	if ((int)d.image_width != w || (int)d.image_height != h ||
		(d.jpeg_color_space != JCS_YCbCr && d.jpeg_color_space != JCS_GRAYSCALE)) {
		jpeg_destroy_decompress(&d);
		return 1;
	}
	d.scale_num = 1;
	d.scale_denom = denom;
	d.out_color_space = gray ? JCS_GRAYSCALE : JCS_RGB;
	jpeg_start_decompress(&d);
	if ((int)d.output_width != ow || (int)d.output_height != oh) {
		jpeg_destroy_decompress(&d);
		return 1;
	}
	size_t stride = (size_t)ow * (gray ? 1 : 3);
	while (d.output_scanline < d.output_height) {
		JSAMPROW row = out + (size_t)d.output_scanline * stride;
		jpeg_read_scanlines(&d, &row, 1);
	}
	jpeg_finish_decompress(&d);
	jpeg_destroy_decompress(&d);
	return e.warnings ? 1 : 0;
}
*/
import "C"

import "unsafe"

// scaledJPEG decodes a w x h JPEG at 1/denom scale (denom 1, 2, 4 or 8)
// with libjpeg-turbo. It
// reports false, leaving the image to the Go decoder, for anything other
// than a clean YCbCr or gray JPEG.
func scaledJPEG(data []byte, w, h, denom int, gray bool) (Image, bool) {
	ow, oh := (w+denom-1)/denom, (h+denom-1)/denom // libjpeg rounds up
	c := 3
	g := C.int(0)
	if gray {
		c, g = 1, 1
	}
	pix := make([]byte, ow*oh*c)
	rc := C.sf_decode((*C.uchar)(unsafe.Pointer(&data[0])), C.ulong(len(data)), C.int(denom), g,
		C.int(w), C.int(h), C.int(ow), C.int(oh), (*C.uchar)(unsafe.Pointer(&pix[0])))
	if rc != 0 {
		return Image{}, false
	}
	return Image{Width: ow, Height: oh, Channels: c, Pix: pix}, true
}
