//go:build cgo

// Package device runs the programs of package xla on one device of a PJRT
// plugin (go-xla's pjrt: cgo, the plugin is dlopened at run time). It
// builds only with cgo; nothing but GPU tools imports it, so
// CGO_ENABLED=0 builds of everything else are unaffected.
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

// Close destroys the client.
func (d *Device) Close() error { return d.client.Destroy() }

// Executable is a compiled program.
type Executable struct {
	d    *Device
	exe  *pjrt.LoadedExecutable
	prog *xla.Program
}

// Compile compiles p (single-replica programs only).
func (d *Device) Compile(p *xla.Program) (*Executable, error) {
	exe, err := d.client.Compile().WithStableHLO(p.Text).Done()
	if err != nil {
		return nil, fmt.Errorf("%w: compile: %w", ErrRun, err)
	}
	return &Executable{d: d, exe: exe, prog: p}, nil
}

// Buffer is a value on the device.
type Buffer = pjrt.Buffer

// Upload copies v, converted to a's element type, to the device.
func (d *Device) Upload(a xla.Arg, v []float64) (*Buffer, error) {
	var b *Buffer
	var err error
	switch a.DType {
	case dtypes.Float64:
		b, err = upload(d.client, v, a.Shape, func(x float64) float64 { return x })
	case dtypes.Float32:
		b, err = upload(d.client, v, a.Shape, func(x float64) float32 { return float32(x) })
	case dtypes.Int32:
		b, err = upload(d.client, v, a.Shape, func(x float64) int32 { return int32(x) })
	case dtypes.Uint8:
		b, err = upload(d.client, v, a.Shape, func(x float64) uint8 { return uint8(x) })
	default:
		return nil, fmt.Errorf("%w: upload %s of %s", ErrRun, a.Name, a.DType)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: upload %s: %w", ErrRun, a.Name, err)
	}
	return b, nil
}

func upload[T dtypes.Supported](c *pjrt.Client, v []float64, shape []int, conv func(float64) T) (*Buffer, error) {
	flat := make([]T, len(v))
	for i, x := range v {
		flat[i] = conv(x)
	}
	if len(shape) == 0 {
		return pjrt.ScalarToBuffer(c, flat[0])
	}
	return pjrt.ArrayToBuffer(c, flat, shape...)
}

// Download copies b to the host as float64.
func Download(b *Buffer) ([]float64, error) {
	flat, _, err := b.ToFlatDataAndDimensions()
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
func (e *Executable) Run(in []*Buffer, donate []int) ([]*Buffer, error) {
	if len(in) != len(e.prog.Inputs) {
		return nil, fmt.Errorf("%w: %d inputs, program takes %d", ErrRun, len(in), len(e.prog.Inputs))
	}
	out, err := e.exe.Execute(in...).Donate(donate...).Done()
	if err != nil {
		return nil, fmt.Errorf("%w: execute: %w", ErrRun, err)
	}
	return out, nil
}

// StateIndices pairs each input that an output of the same name replaces
// (parameters, momentum, running statistics): ins[i] is replaced by
// outs[i].
func StateIndices(p *xla.Program) (ins, outs []int) {
	byName := make(map[string]int, len(p.Outputs))
	for i, a := range p.Outputs {
		byName[a.Name] = i
	}
	for i, a := range p.Inputs {
		if o, ok := byName[a.Name]; ok {
			ins, outs = append(ins, i), append(outs, o)
		}
	}
	return ins, outs
}
