// Package npy writes NumPy's .npy format (version 1.0): the magic
// "\x93NUMPY", a header dict giving the dtype, order and shape, padded
// with spaces and a newline to a multiple of 64 bytes, then the
// little-endian elements in C order. numpy.load and most array libraries
// read it. It imports only the standard library.
package npy

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
)

// ErrShape is returned when the data does not fill the shape exactly.
var ErrShape = errors.New("npy: data does not match shape")

// Element types this package writes.
type element interface{ float32 | int64 }

// Write writes data, prod(shape) elements in C order, as one .npy array.
func Write[T element](w io.Writer, shape []int, data []T) error {
	n := 1
	for _, d := range shape {
		if d < 0 {
			return fmt.Errorf("%w: negative dimension in %v", ErrShape, shape)
		}
		n *= d
	}
	if n != len(data) {
		return fmt.Errorf("%w: %d elements for shape %v", ErrShape, len(data), shape)
	}
	var descr string
	var size int
	switch any(data).(type) {
	case []float32:
		descr, size = "<f4", 4
	default:
		descr, size = "<i8", 8
	}
	dims := make([]string, len(shape))
	for i, d := range shape {
		dims[i] = strconv.Itoa(d)
	}
	tuple := strings.Join(dims, ", ")
	if len(shape) == 1 {
		tuple += ","
	}
	header := fmt.Sprintf("{'descr': '%s', 'fortran_order': False, 'shape': (%s), }", descr, tuple)
	// magic (6) + version (2) + header length (2) + header + '\n' is a
	// multiple of 64.
	pad := 63 - (10+len(header))%64
	var buf bytes.Buffer
	buf.WriteString("\x93NUMPY\x01\x00")
	hl := len(header) + pad + 1
	if hl > math.MaxUint16 {
		return fmt.Errorf("%w: %d dimensions make the header too long", ErrShape, len(shape))
	}
	_ = binary.Write(&buf, binary.LittleEndian, uint16(hl))
	buf.WriteString(header)
	buf.WriteString(strings.Repeat(" ", pad))
	buf.WriteByte('\n')
	body := make([]byte, len(data)*size)
	switch d := any(data).(type) {
	case []float32:
		for i, v := range d {
			binary.LittleEndian.PutUint32(body[4*i:], math.Float32bits(v))
		}
	case []int64:
		for i, v := range d {
			binary.LittleEndian.PutUint64(body[8*i:], uint64(v))
		}
	}
	buf.Write(body)
	_, err := w.Write(buf.Bytes())
	return err
}

// WriteFile writes one array to path (mode 0644).
func WriteFile[T element](path string, shape []int, data []T) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if err := Write(f, shape, data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
