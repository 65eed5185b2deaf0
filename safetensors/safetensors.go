// Package safetensors reads and writes the safetensors format: an 8-byte
// little-endian header length, a JSON header naming each tensor's dtype,
// shape and byte range, then the raw little-endian tensor bytes. It is small
// enough to implement directly, and Debian ships no safetensors library for
// the PyTorch side either.
//
// Its [Tensor] is one file entry's raw bytes: a file-format concern. Typed
// values in memory are statedict.Tensor; package checkpoint converts
// between the two. It imports only the standard library.
package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
)

// DType is a safetensors element type name.
type DType string

// Element types supflow reads and writes.
const (
	F64 DType = "F64"
	F32 DType = "F32"
	I64 DType = "I64"
	I32 DType = "I32"
	U8  DType = "U8"
)

// Size returns the byte size of one element, or 0 for an unknown type.
func (d DType) Size() int {
	switch d {
	case F64, I64:
		return 8
	case F32, I32:
		return 4
	case U8:
		return 1
	}
	return 0
}

// maxHeader bounds the JSON header so a corrupt length cannot allocate
// gigabytes before the parse fails.
const maxHeader = 100 << 20

// ErrFormat is returned (wrapped) for any malformed file.
var ErrFormat = errors.New("safetensors: malformed file")

// Tensor is one named array: Data holds prod(Shape)*DType.Size() bytes.
type Tensor struct {
	DType DType
	Shape []int
	Data  []byte
}

// Len returns the number of elements.
func (t Tensor) Len() int {
	n := 1
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// File is a whole safetensors file held in memory.
type File struct {
	Tensors  map[string]Tensor
	Metadata map[string]string
}

// New returns an empty File.
func New() *File {
	return &File{Tensors: map[string]Tensor{}, Metadata: map[string]string{}}
}

type entry struct {
	DType   DType    `json:"dtype"`
	Shape   []int    `json:"shape"`
	Offsets [2]int64 `json:"data_offsets"`
}

// ReadFile reads a whole file.
func ReadFile(path string) (*File, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	f, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return f, nil
}

// Read reads a whole file from r.
func Read(r io.Reader) (*File, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	return Parse(b)
}

// Parse decodes b. Tensor data aliases b.
func Parse(b []byte) (*File, error) {
	if len(b) < 8 {
		return nil, fmt.Errorf("%w: %d bytes, shorter than the 8-byte header length", ErrFormat, len(b))
	}
	n := binary.LittleEndian.Uint64(b)
	if n > maxHeader || n > uint64(len(b)-8) {
		return nil, fmt.Errorf("%w: header length %d exceeds file size %d", ErrFormat, n, len(b))
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b[8:8+n], &raw); err != nil {
		return nil, fmt.Errorf("%w: header: %v", ErrFormat, err)
	}
	data := b[8+n:]
	f := New()
	for name, msg := range raw {
		if name == "__metadata__" {
			if err := json.Unmarshal(msg, &f.Metadata); err != nil {
				return nil, fmt.Errorf("%w: __metadata__: %v", ErrFormat, err)
			}
			continue
		}
		var e entry
		if err := json.Unmarshal(msg, &e); err != nil {
			return nil, fmt.Errorf("%w: tensor %q: %v", ErrFormat, name, err)
		}
		size := e.DType.Size()
		if size == 0 {
			return nil, fmt.Errorf("%w: tensor %q: unsupported dtype %q", ErrFormat, name, e.DType)
		}
		count := int64(1)
		for _, d := range e.Shape {
			if d < 0 || (d > 0 && count > math.MaxInt64/int64(d)) {
				return nil, fmt.Errorf("%w: tensor %q: bad shape %v", ErrFormat, name, e.Shape)
			}
			count *= int64(d)
		}
		lo, hi := e.Offsets[0], e.Offsets[1]
		if lo < 0 || hi < lo || hi > int64(len(data)) || hi-lo != count*int64(size) {
			return nil, fmt.Errorf("%w: tensor %q: offsets [%d,%d] do not fit shape %v of %s in %d data bytes",
				ErrFormat, name, lo, hi, e.Shape, e.DType, len(data))
		}
		f.Tensors[name] = Tensor{DType: e.DType, Shape: e.Shape, Data: data[lo:hi:hi]}
	}
	return f, nil
}

// Names returns the tensor names, sorted.
func (f *File) Names() []string {
	names := make([]string, 0, len(f.Tensors))
	for k := range f.Tensors {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

// Get returns the tensor called name or an error naming it.
func (f *File) Get(name string) (Tensor, error) {
	t, ok := f.Tensors[name]
	if !ok {
		return Tensor{}, fmt.Errorf("safetensors: no tensor %q", name)
	}
	return t, nil
}

// Float64s returns tensor name converted to float64, with its shape.
func (f *File) Float64s(name string) ([]float64, []int, error) {
	t, err := f.Get(name)
	if err != nil {
		return nil, nil, err
	}
	out := make([]float64, t.Len())
	for i := range out {
		out[i] = t.at(i)
	}
	return out, t.Shape, nil
}

// Float32s returns tensor name converted to float32, with its shape.
func (f *File) Float32s(name string) ([]float32, []int, error) {
	t, err := f.Get(name)
	if err != nil {
		return nil, nil, err
	}
	out := make([]float32, t.Len())
	for i := range out {
		out[i] = float32(t.at(i))
	}
	return out, t.Shape, nil
}

func (t Tensor) at(i int) float64 {
	le := binary.LittleEndian
	switch t.DType {
	case F64:
		return math.Float64frombits(le.Uint64(t.Data[8*i:]))
	case F32:
		return float64(math.Float32frombits(le.Uint32(t.Data[4*i:])))
	case I64:
		return float64(int64(le.Uint64(t.Data[8*i:])))
	case I32:
		return float64(int32(le.Uint32(t.Data[4*i:])))
	case U8:
		return float64(t.Data[i])
	}
	panic("safetensors: unsupported dtype " + string(t.DType))
}

// PutFloat64s stores values under name as F64.
func (f *File) PutFloat64s(name string, shape []int, v []float64) {
	b := make([]byte, 8*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint64(b[8*i:], math.Float64bits(x))
	}
	f.Tensors[name] = Tensor{DType: F64, Shape: append([]int(nil), shape...), Data: b}
}

// PutFloat32s stores values under name as F32.
func (f *File) PutFloat32s(name string, shape []int, v []float32) {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	f.Tensors[name] = Tensor{DType: F32, Shape: append([]int(nil), shape...), Data: b}
}

// PutInt64s stores values under name as I64.
func (f *File) PutInt64s(name string, shape []int, v []int64) {
	b := make([]byte, 8*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint64(b[8*i:], uint64(x))
	}
	f.Tensors[name] = Tensor{DType: I64, Shape: append([]int(nil), shape...), Data: b}
}

// WriteTo encodes f: tensors in name order, header padded with spaces to a
// multiple of 8 bytes as the reference implementation does.
func (f *File) WriteTo(w io.Writer) (int64, error) {
	header := map[string]any{}
	if len(f.Metadata) > 0 {
		header["__metadata__"] = f.Metadata
	}
	var off int64
	names := f.Names()
	for _, name := range names {
		t := f.Tensors[name]
		if t.DType.Size() == 0 || len(t.Data) != t.Len()*t.DType.Size() {
			return 0, fmt.Errorf("safetensors: tensor %q: %d bytes for shape %v of %s", name, len(t.Data), t.Shape, t.DType)
		}
		shape := t.Shape
		if shape == nil {
			shape = []int{}
		}
		header[name] = entry{DType: t.DType, Shape: shape, Offsets: [2]int64{off, off + int64(len(t.Data))}}
		off += int64(len(t.Data))
	}
	hj, err := json.Marshal(header)
	if err != nil {
		return 0, err
	}
	if pad := (8 - len(hj)%8) % 8; pad > 0 {
		hj = append(hj, bytes.Repeat([]byte{' '}, pad)...)
	}
	var total int64
	var lenb [8]byte
	binary.LittleEndian.PutUint64(lenb[:], uint64(len(hj)))
	for _, chunk := range [][]byte{lenb[:], hj} {
		n, err := w.Write(chunk)
		total += int64(n)
		if err != nil {
			return total, err
		}
	}
	for _, name := range names {
		n, err := w.Write(f.Tensors[name].Data)
		total += int64(n)
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// Bytes encodes f into memory.
func (f *File) Bytes() ([]byte, error) {
	var buf bytes.Buffer
	if _, err := f.WriteTo(&buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// WriteFile writes f to path atomically: a temporary file in the same
// folder, synced, then renamed over path, so a reader never sees half a file.
func (f *File) WriteFile(path string) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // no-op after a successful rename
	if _, err := f.WriteTo(tmp); err != nil {
		tmp.Close()
		return fmt.Errorf("safetensors: write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
