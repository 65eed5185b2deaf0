//go:build cgo

// Package device runs the programs of package xla on one device of a PJRT
// plugin (go-xla's pjrt: cgo, the plugin is dlopened at run time). It
// builds only with cgo: cmd/supflow imports it in cgo builds only (a
// CGO_ENABLED=0 supflow refuses train.backend xla), bench/gpu always.
package device

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/gomlx/go-xla/pkg/pjrt"
	"github.com/gomlx/go-xla/pkg/types/dtypes"

	"github.com/supflow/supflow/xla"
)

var (
	// ErrPlugin reports a PJRT plugin that cannot be loaded or started;
	// the message names the path and the cause. There is no fallback.
	ErrPlugin = errors.New("xla/device: PJRT plugin")
	// ErrRun reports a failed compilation, transfer or execution.
	ErrRun = errors.New("xla/device: run")
)

// Device is a PJRT client on a plugin; programs run on its first device.
// It is an xla.Runner.
type Device struct {
	plugin *pjrt.Plugin
	client *pjrt.Client
}

// Open loads the plugin at path (a file, made absolute: go-xla searches
// only for names it knows) and starts a client with the plugin's create
// options (for the CUDA plugin e.g. "preallocate": false), which may be nil.
func Open(path string, options map[string]any) (*Device, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("%w %q: %w", ErrPlugin, path, err)
	}
	if _, err := os.Stat(abs); err != nil {
		return nil, fmt.Errorf("%w %q: %w", ErrPlugin, abs, err)
	}
	plugin, err := pjrt.GetPlugin(abs)
	if err != nil {
		return nil, fmt.Errorf("%w %q: load: %w", ErrPlugin, abs, err)
	}
	client, err := plugin.NewClient(options)
	if err != nil {
		return nil, fmt.Errorf("%w %q: client: %w", ErrPlugin, abs, err)
	}
	return &Device{plugin: plugin, client: client}, nil
}

// Describe names the plugin, its PJRT version, the platform and the
// devices.
func (d *Device) Describe() string {
	major, minor := d.plugin.Version()
	var devs []string
	for _, dev := range d.client.AddressableDevices() {
		desc := fmt.Sprintf("#%d", dev.LocalHardwareID())
		if dd, err := dev.GetDescription(); err == nil {
			desc += " " + dd.DebugString()
		}
		devs = append(devs, desc)
	}
	return fmt.Sprintf("plugin %s PJRT %d.%d platform %s %s, %d devices: %s", d.plugin.Path(), major, minor,
		d.client.Platform(), d.client.PlatformVersion(), len(devs), strings.Join(devs, "; "))
}

var _ xla.Runner = (*Device)(nil)

// Devices counts the client's addressable devices; programs run on the
// first.
func (d *Device) Devices() int { return len(d.client.AddressableDevices()) }

// Close destroys the client.
func (d *Device) Close() error { return d.client.Destroy() }

// Executable is a compiled program.
type Executable struct {
	exe  *pjrt.LoadedExecutable
	prog *xla.Program
}

// Compile compiles p (single-replica programs only).
func (d *Device) Compile(p *xla.Program) (xla.Executable, error) {
	exe, err := d.client.Compile().WithStableHLO(p.Text).Done()
	if err != nil {
		return nil, fmt.Errorf("%w: compile: %w", ErrRun, err)
	}
	return &Executable{exe: exe, prog: p}, nil
}

// Buffer is a value on the device.
type Buffer struct{ b *pjrt.Buffer }

// Upload copies flat to the device as a's element type: a slice of that
// type, or []float64, converted.
func (d *Device) Upload(a xla.Arg, flat any) (xla.Buffer, error) {
	var b *pjrt.Buffer
	var err error
	switch a.DType {
	case dtypes.Float64:
		b, err = upload[float64](d.client, flat, a.Shape)
	case dtypes.Float32:
		b, err = upload[float32](d.client, flat, a.Shape)
	case dtypes.Int32:
		b, err = upload[int32](d.client, flat, a.Shape)
	case dtypes.Uint8:
		b, err = upload[uint8](d.client, flat, a.Shape)
	default:
		err = fmt.Errorf("element type %s", a.DType)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: upload %s: %w", ErrRun, a.Name, err)
	}
	return &Buffer{b: b}, nil
}

func upload[T float64 | float32 | int32 | uint8](c *pjrt.Client, flat any, shape []int) (*pjrt.Buffer, error) {
	v, ok := flat.([]T)
	if !ok {
		f, ok := flat.([]float64)
		if !ok {
			return nil, fmt.Errorf("values of type %T", flat)
		}
		v = make([]T, len(f))
		for i, x := range f {
			v[i] = T(x)
		}
	}
	if len(shape) == 0 {
		if len(v) != 1 {
			return nil, fmt.Errorf("%d values for a scalar", len(v))
		}
		return pjrt.ScalarToBuffer(c, v[0])
	}
	return pjrt.ArrayToBuffer(c, v, shape...)
}

// Download copies the buffer to the host as float64.
func (b *Buffer) Download() ([]float64, error) {
	flat, _, err := b.b.ToFlatDataAndDimensions()
	if err != nil {
		return nil, fmt.Errorf("%w: download: %w", ErrRun, err)
	}
	switch f := flat.(type) {
	case []float64:
		return f, nil
	case []float32:
		return widen(f), nil
	case []int32:
		return widen(f), nil
	}
	return nil, fmt.Errorf("%w: download of %T", ErrRun, flat)
}

// Free destroys the buffer.
func (b *Buffer) Free() error { return b.b.Destroy() }

func widen[T float32 | int32](v []T) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}

// Run executes the program on in (one buffer per input, in Inputs order),
// donating the inputs whose index is in donate: their buffers are invalid
// afterwards (the outputs of the same name replace them).
func (e *Executable) Run(in []xla.Buffer, donate []int) ([]xla.Buffer, error) {
	if len(in) != len(e.prog.Inputs) {
		return nil, fmt.Errorf("%w: %d inputs, program takes %d", ErrRun, len(in), len(e.prog.Inputs))
	}
	args := make([]*pjrt.Buffer, len(in))
	for i, b := range in {
		bb, ok := b.(*Buffer)
		if !ok {
			return nil, fmt.Errorf("%w: input %d is a %T, not this device's", ErrRun, i, b)
		}
		args[i] = bb.b
	}
	out, err := e.exe.Execute(args...).Donate(donate...).Done()
	if err != nil {
		return nil, fmt.Errorf("%w: execute: %w", ErrRun, err)
	}
	res := make([]xla.Buffer, len(out))
	for i, b := range out {
		res[i] = &Buffer{b: b}
	}
	return res, nil
}
