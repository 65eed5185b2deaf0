//go:build cgo

// Package device runs the programs of package xla on one device of a PJRT
// plugin (go-xla's pjrt: cgo, the plugin is dlopened at run time, its
// function table widened for plugins newer than go-xla's header: compat.go). It
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

// Device is a PJRT client on a plugin; programs run on its first device,
// a data-parallel one (Program.Replicas = R) on its first R addressable
// devices. It is an xla.Runner.
//
// Replicated compilation and execution (R > 1) is untested on hardware:
// the machines this was written for have one GPU (docs/architecture.md).
type Device struct {
	path   string // the plugin's (go-xla's Path says "_preloaded_": loadPlugin)
	plugin *pjrt.Plugin
	client *pjrt.Client
}

// Open loads the plugin at path (a file, made absolute) with its function
// table widened for go-xla (loadPlugin) and starts a client with the
// plugin's create options (for the CUDA plugin e.g. "preallocate": false),
// which may be nil.
func Open(path string, options map[string]any) (*Device, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("%w %q: %w", ErrPlugin, path, err)
	}
	if _, err := os.Stat(abs); err != nil {
		return nil, fmt.Errorf("%w %q: %w", ErrPlugin, abs, err)
	}
	plugin, err := loadPlugin(abs)
	if err != nil {
		return nil, fmt.Errorf("%w %q: load: %w", ErrPlugin, abs, err)
	}
	client, err := plugin.NewClient(options)
	if err != nil {
		return nil, fmt.Errorf("%w %q: client: %w", ErrPlugin, abs, err)
	}
	return &Device{path: abs, plugin: plugin, client: client}, nil
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
	return fmt.Sprintf("plugin %s PJRT %d.%d platform %s %s, %d devices: %s", d.path, major, minor,
		d.client.Platform(), d.client.PlatformVersion(), len(devs), strings.Join(devs, "; "))
}

var _ xla.Runner = (*Device)(nil)

// Devices counts the client's addressable devices.
func (d *Device) Devices() int { return len(d.client.AddressableDevices()) }

// Close destroys the client.
func (d *Device) Close() error { return d.client.Destroy() }

// Executable is a compiled program.
type Executable struct {
	exe      *pjrt.LoadedExecutable
	prog     *xla.Program
	replicas int
}

// Compile compiles p, for p.Replicas > 1 with go-xla's SPMD options
// (num_replicas = R, one partition) and replica r on addressable device r.
// Untested on hardware for R > 1.
func (d *Device) Compile(p *xla.Program) (xla.Executable, error) {
	replicas := max(p.Replicas, 1)
	if replicas > d.Devices() {
		return nil, fmt.Errorf("%w: compile: %d replicas on %d devices", ErrRun, replicas, d.Devices())
	}
	cc := d.client.Compile().WithStableHLO(p.Text)
	if replicas > 1 {
		// go-xla's own SPMD test feeds replica r on the addressable
		// device whose number is the assignment's r-th id: ids and
		// numbers coincide on one host.
		assign := make([]int, replicas)
		for r := range assign {
			assign[r] = r
		}
		cc = cc.WithSPMD(replicas).WithDeviceAssignment(assign)
	}
	exe, err := cc.Done()
	if err != nil {
		return nil, fmt.Errorf("%w: compile: %w", ErrRun, err)
	}
	return &Executable{exe: exe, prog: p, replicas: replicas}, nil
}

// Buffer is a value on the device.
type Buffer struct{ b *pjrt.Buffer }

// Upload copies flat to the addressable device numbered device as a's
// element type: a slice of that type, or []float64, converted.
func (d *Device) Upload(device int, a xla.Arg, flat any) (xla.Buffer, error) {
	var b *pjrt.Buffer
	var err error
	to := d.client.BufferFromHost().ToDeviceNum(device)
	switch a.DType {
	case dtypes.Float64:
		b, err = upload[float64](to, flat, a.Shape)
	case dtypes.Float32:
		b, err = upload[float32](to, flat, a.Shape)
	case dtypes.Int32:
		b, err = upload[int32](to, flat, a.Shape)
	case dtypes.Uint8:
		b, err = upload[uint8](to, flat, a.Shape)
	default:
		err = fmt.Errorf("element type %s", a.DType)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: upload %s: %w", ErrRun, a.Name, err)
	}
	return &Buffer{b: b}, nil
}

func upload[T float64 | float32 | int32 | uint8](to *pjrt.BufferFromHostConfig, flat any, shape []int) (*pjrt.Buffer, error) {
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
	return to.FromFlatDataWithDimensions(v, shape).Done()
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

// Run executes the program on in (one buffer per input, in Inputs order,
// for each replica in turn), donating the inputs whose index is in donate
// on every replica: their buffers are invalid afterwards (the outputs of
// the same name replace them). The outputs come replica by replica too.
func (e *Executable) Run(in []xla.Buffer, donate []int) ([]xla.Buffer, error) {
	n := len(e.prog.Inputs)
	if len(in) != n*e.replicas {
		return nil, fmt.Errorf("%w: %d inputs, program takes %d on each of %d replicas", ErrRun, len(in), n, e.replicas)
	}
	// go-xla indexes donation over the flat list of every replica's
	// inputs (and PJRT ignores indices past one replica's).
	var all []int
	for r := range e.replicas {
		for _, i := range donate {
			all = append(all, r*n+i)
		}
	}
	args := make([]*pjrt.Buffer, len(in))
	for i, b := range in {
		bb, ok := b.(*Buffer)
		if !ok {
			return nil, fmt.Errorf("%w: input %d is a %T, not this device's", ErrRun, i, b)
		}
		args[i] = bb.b
	}
	out, err := e.exe.Execute(args...).Donate(all...).Done()
	if err != nil {
		return nil, fmt.Errorf("%w: execute: %w", ErrRun, err)
	}
	res := make([]xla.Buffer, len(out))
	for i, b := range out {
		res[i] = &Buffer{b: b}
	}
	return res, nil
}
