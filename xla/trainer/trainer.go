// Package trainer is the XLA backend of the trainer: engine's API (Step,
// Save, Load, Params, Encode, Project, LabelClasses) over the programs of
// package xla, executed by an xla.Runner (a PJRT device, xla/device, or the
// pure-Go evaluator in tests). The stages drive it as they drive
// engine.CPU, without knowing which one they have.
//
// The parameters, momentum buffers and batch-norm statistics live on the
// device from the first Step to the next Save, passed from step to step as
// donated buffers (each step's outputs are the next step's inputs, no host
// round trip); a step uploads only the learning rate, the labels and the
// uint8 views and downloads only the loss. The host copy (engine.Core: the
// model and the optimizer) is what Save writes and Load fills, so that the
// checkpoints are the CPU engine's, name for name, and a run resumes on
// either backend. One Step program is compiled per batch shape (a short
// last batch is one more) and one Encode program per chunk shape.
//
// With WithDevices(R > 1) a step is data parallel (PyTorch DDP): the
// R-replica step program (xla.StepConfig.Replicas) runs on devices 0 to
// R-1, each taking Size/R samples, the gradients all-reduced, so that every
// device holds the same parameters and momentum; its batch-norm running
// statistics are its own (its samples') unless WithSyncBN, and replica 0's
// are the ones Save writes and Encode uses (DDP's broadcast_buffers). A
// batch whose size R does not divide (a short last batch) runs on the
// largest number of replicas that divides it, and the state of replica 0
// is then copied to the devices that sat out.
//
// It must not import messages, bus, store or any stage.
package trainer

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/gomlx/go-xla/pkg/types/dtypes"
	"gorgonia.org/tensor"

	"github.com/supflow/supflow/checkpoint"
	"github.com/supflow/supflow/engine"
	"github.com/supflow/supflow/model"
	"github.com/supflow/supflow/statedict"
	"github.com/supflow/supflow/xla"
)

// ErrFailed reports an engine whose device state was lost: a step that
// failed after the device consumed its state, or a non-finite loss (the
// state was updated with it). Only Load (a checkpoint) recovers it.
var ErrFailed = errors.New("xla/trainer: device state lost")

// ErrDevices reports devices the runner lacks or a training setup that
// cannot be split over them.
var ErrDevices = errors.New("xla/trainer: devices")

// Engine trains and encodes on an xla.Runner. It is not safe for
// concurrent use: one goroutine drives it.
type Engine struct {
	*engine.Core
	r       xla.Runner
	dtype   dtypes.DType
	devices int
	syncBN  bool
	// state holds each device's parameters, momentum and running
	// statistics by program argument name; nil until the first use.
	state []map[string]xla.Buffer
	// tracked is the host's num_batches_tracked when state was uploaded;
	// the device counts none, every step adds one to each.
	tracked map[string]int64
	// stepped is the number of steps since state was uploaded: the host
	// copy is stale when > 0.
	stepped int64
	// shapes is each state argument's shape.
	shapes  map[string][]int
	failed  error
	steps   map[stepKey]*compiled
	encodes map[stepKey]*compiled
}

type stepKey struct{ rows, views, h, w, replicas int }

type compiled struct {
	prog *xla.Program
	exe  xla.Executable
}

// Option configures an Engine.
type Option func(*Engine)

// WithDevices trains on n of the runner's devices (default 1); 0 is all
// of them.
func WithDevices(n int) Option { return func(e *Engine) { e.devices = n } }

// WithSyncBN all-reduces the batch-norm statistics over the devices
// (SyncBatchNorm): a step then equals the one-device step on the whole
// batch.
func WithSyncBN(on bool) Option { return func(e *Engine) { e.syncBN = on } }

// New builds the model as engine.NewCore does (the same initial parameters
// for the same seed) and trains it on r, which stays the caller's: engines
// may share one (one device client per process). More devices than r has,
// or more than one for a batch size they do not divide or for method ce
// (not lowered data parallel), is ErrDevices.
func New(cfg engine.Config, r xla.Runner, opts ...Option) (*Engine, error) {
	c, err := engine.NewCore(cfg)
	if err != nil {
		return nil, err
	}
	dt := dtypes.Float32
	if c.Model().Dtype() == tensor.Float64 {
		dt = dtypes.Float64
	}
	e := &Engine{Core: c, r: r, dtype: dt, devices: 1, steps: map[stepKey]*compiled{}, encodes: map[stepKey]*compiled{}}
	for _, o := range opts {
		o(e)
	}
	if e.devices == 0 {
		e.devices = r.Devices()
	}
	bs := cfg.Train.Schedule.BatchSize
	switch {
	case e.devices < 0 || e.devices > r.Devices():
		return nil, fmt.Errorf("%w: %d devices, the runner has %d", ErrDevices, e.devices, r.Devices())
	case e.devices > 1 && cfg.Train.Method == engine.MethodCE:
		return nil, fmt.Errorf("%w: method %s trains on one device only", ErrDevices, engine.MethodCE)
	case e.devices > 1 && bs%e.devices != 0:
		return nil, fmt.Errorf("%w: batch size %d is not a multiple of the %d devices", ErrDevices, bs, e.devices)
	}
	return e, nil
}

// Devices is the number of devices a full batch is split over.
func (e *Engine) Devices() int { return e.devices }

// Close frees the engine's device state; the runner stays open.
func (e *Engine) Close() error {
	e.freeState()
	return nil
}

// Step runs the compiled step (forward, loss, backward, optimizer, batch
// norm statistics) for b on the device. A non-finite loss is engine.ErrLoss
// and, since the device state has taken that step, leaves the engine
// failed (ErrFailed) until a Load.
func (e *Engine) Step(ctx context.Context, b engine.Batch) (engine.Stats, error) {
	start := time.Now()
	if e.failed != nil {
		return engine.Stats{}, e.failed
	}
	lr, err := e.Prepare(ctx, b)
	if err != nil {
		return engine.Stats{}, err
	}
	c, err := e.stepProgram(b)
	if err != nil {
		return engine.Stats{}, err
	}
	if err := e.upload(); err != nil {
		return engine.Stats{}, err
	}
	cfg := e.Config()
	labels := make([]int32, b.Size)
	for i, l := range b.Labels {
		labels[i] = int32(l)
		if cfg.Train.Method == engine.MethodSimCLR {
			labels[i] = int32(i) // each sample its own class
		}
	}
	lrv := any([]float64{lr})
	if e.dtype == dtypes.Float32 {
		lrv = []float32{float32(lr)}
	}
	out, err := e.run(c, split(b, c.prog.Replicas, lrv, labels), true)
	if err != nil {
		return engine.Stats{}, err
	}
	l, err := e.loss(c, out)
	if err == nil {
		err = e.broadcast(max(c.prog.Replicas, 1))
	}
	if err != nil {
		// The device took a step the host cannot account for.
		e.failed = fmt.Errorf("%w: %w", ErrFailed, err)
		return engine.Stats{}, err
	}
	e.stepped++
	if err := e.CheckLoss(l); err != nil {
		e.failed = fmt.Errorf("%w: %w", ErrFailed, err)
		return engine.Stats{}, err
	}
	return e.Record(b, l, lr, start), nil
}

// split is each of replicas' inputs of a step on b: its Size/replicas
// samples (all their views, view-major) and labels, its index, the
// learning rate.
func split(b engine.Batch, replicas int, lr any, labels []int32) []map[string]any {
	if replicas <= 1 {
		return []map[string]any{{xla.ArgLR: lr, xla.ArgLabels: labels, xla.ArgImages: b.Pixels}}
	}
	n := b.Size / replicas
	plane := b.Channels * b.Height * b.Width
	in := make([]map[string]any, replicas)
	for r := range in {
		var px []uint8
		for v := range b.Views {
			lo := (v*b.Size + r*n) * plane
			px = append(px, b.Pixels[lo:lo+n*plane]...)
		}
		in[r] = map[string]any{xla.ArgLR: lr, xla.ArgLabels: labels[r*n : (r+1)*n], xla.ArgImages: px, xla.ArgReplica: []int32{int32(r)}}
	}
	return in
}

// loss takes the state outputs of a step (one set per replica) into
// e.state, frees the others and returns the loss (replica 0's: every
// replica computes the whole batch's).
func (e *Engine) loss(c *compiled, out []xla.Buffer) (float64, error) {
	var l []float64
	var err error
	n := len(c.prog.Outputs)
	for i, b := range out {
		r, a := i/n, c.prog.Outputs[i%n]
		switch _, state := e.state[r][a.Name]; {
		case state:
			e.state[r][a.Name] = b
		case a.Name == xla.ArgLoss && r == 0:
			l, err = b.Download()
			_ = b.Free()
		default:
			_ = b.Free()
		}
	}
	if err != nil {
		return 0, fmt.Errorf("xla/trainer: loss: %w", err)
	}
	return l[0], nil
}

// broadcast copies replica 0's state to the devices from the first that
// did not take the last step (a short batch on fewer replicas), through
// the host: once an epoch at most.
func (e *Engine) broadcast(from int) error {
	if from >= e.devices {
		return nil
	}
	for name, b := range e.state[0] {
		v, err := b.Download()
		if err != nil {
			return fmt.Errorf("xla/trainer: broadcast %s: %w", name, err)
		}
		a := xla.Arg{Name: name, DType: e.dtype, Shape: e.shapes[name]}
		for r := from; r < e.devices; r++ {
			nb, err := e.r.Upload(r, a, v)
			if err != nil {
				return fmt.Errorf("xla/trainer: broadcast %s: %w", name, err)
			}
			_ = e.state[r][name].Free()
			e.state[r][name] = nb
		}
	}
	return nil
}

// stepProgram returns the compiled step for b's shape, compiling it once.
// A batch runs on the most replicas (at most e.devices) that divide its
// size.
func (e *Engine) stepProgram(b engine.Batch) (*compiled, error) {
	replicas := e.devices
	for b.Size%replicas != 0 {
		replicas--
	}
	key := stepKey{rows: b.Size * b.Views, views: b.Views, h: b.Height, w: b.Width, replicas: replicas}
	if c, ok := e.steps[key]; ok {
		return c, nil
	}
	cfg := e.Config()
	p, err := xla.Step(e.Model(), xla.StepConfig{
		Batch: xla.Batch{Rows: key.rows, Channels: b.Channels, Height: b.Height, Width: b.Width, Mean: cfg.Mean, Std: cfg.Std},
		Views: b.Views, Loss: cfg.Train.Loss, Optim: cfg.Train.Optim, CrossEntropy: cfg.Train.Method == engine.MethodCE,
		BF16: cfg.Model.DType == engine.BFloat16, Replicas: replicas, SyncBN: e.syncBN && replicas > 1,
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", engine.ErrBatch, err)
	}
	c, err := e.compile(p)
	if err != nil {
		return nil, err
	}
	e.steps[key] = c
	return c, nil
}

func (e *Engine) compile(p *xla.Program) (*compiled, error) {
	exe, err := e.r.Compile(p)
	if err != nil {
		return nil, fmt.Errorf("xla/trainer: compile %d-input program: %w", len(p.Inputs), err)
	}
	return &compiled{prog: p, exe: exe}, nil
}

// run executes c on the device state and the per-call values in, one map
// per replica (uploaded to its device, then freed), donating the state when
// step is set.
func (e *Engine) run(c *compiled, in []map[string]any, step bool) ([]xla.Buffer, error) {
	var args, temp []xla.Buffer
	defer func() {
		for _, b := range temp {
			_ = b.Free()
		}
	}()
	for r, vals := range in {
		for _, a := range c.prog.Inputs {
			if b, ok := e.state[r][a.Name]; ok {
				args = append(args, b)
				continue
			}
			v, ok := vals[a.Name]
			if !ok {
				return nil, fmt.Errorf("xla/trainer: no value for the program's input %s", a.Name)
			}
			b, err := e.r.Upload(r, a, v)
			if err != nil {
				return nil, fmt.Errorf("xla/trainer: upload %s: %w", a.Name, err)
			}
			args, temp = append(args, b), append(temp, b)
		}
	}
	var donate []int
	if step {
		donate, _ = xla.Donated(c.prog)
	}
	out, err := c.exe.Run(args, donate)
	if err != nil {
		if len(donate) > 0 {
			// The device may have consumed the state.
			e.failed = fmt.Errorf("%w: %w", ErrFailed, err)
		}
		return nil, fmt.Errorf("xla/trainer: run: %w", err)
	}
	return out, nil
}

// upload copies the host state to the device, unless it is there: the
// parameters, the running statistics and the momentum buffers (zero where
// the optimizer has none yet: PyTorch's first buffer, m·0 + d, is d).
func (e *Engine) upload() error {
	if e.state != nil {
		return nil
	}
	m := e.Model()
	host := m.State()
	flat := map[string]any{}
	e.tracked = map[string]int64{}
	for name, t := range host {
		switch {
		case t.I64 != nil:
			e.tracked[name] = t.I64[0]
		case t.F32 != nil:
			flat[name] = t.F32
		default:
			flat[name] = t.F64
		}
	}
	bufs := e.Optimizer().Buffers()
	momentum := e.Config().Train.Optim.Momentum != 0
	state := make([]map[string]xla.Buffer, e.devices)
	for r := range state {
		state[r] = map[string]xla.Buffer{}
	}
	e.shapes = map[string][]int{}
	put := func(a xla.Arg, v any) error {
		e.shapes[a.Name] = a.Shape
		for r := range state {
			b, err := e.r.Upload(r, a, v)
			if err != nil {
				freeAll(state)
				return fmt.Errorf("xla/trainer: upload %s to device %d: %w", a.Name, r, err)
			}
			state[r][a.Name] = b
		}
		return nil
	}
	for _, in := range m.ParamInfos() {
		if err := put(xla.Arg{Name: xla.PrefixParam + in.Name, DType: e.dtype, Shape: in.Shape}, flat[in.Name]); err != nil {
			return err
		}
		if !momentum {
			continue
		}
		var v any
		if d, ok := bufs[in.Name]; ok {
			v = d.Data()
		} else if e.dtype == dtypes.Float32 {
			v = make([]float32, len(host[in.Name].F32))
		} else {
			v = make([]float64, len(host[in.Name].F64))
		}
		if err := put(xla.Arg{Name: xla.PrefixMomentum + in.Name, DType: e.dtype, Shape: in.Shape}, v); err != nil {
			return err
		}
	}
	for _, in := range m.BufferInfos() {
		if strings.HasSuffix(in.Name, "."+model.NumBatchesTracked) {
			continue
		}
		if err := put(xla.Arg{Name: in.Name, DType: e.dtype, Shape: in.Shape}, flat[in.Name]); err != nil {
			return err
		}
	}
	e.state, e.stepped = state, 0
	return nil
}

// sync copies the device state into the host copy when it is newer.
func (e *Engine) sync() error {
	if e.failed != nil {
		return e.failed
	}
	if e.state == nil || e.stepped == 0 {
		return nil
	}
	m := e.Model()
	host := m.State()
	momentum := map[string]*tensor.Dense{}
	for name, b := range e.state[0] {
		v, err := b.Download()
		if err != nil {
			return fmt.Errorf("xla/trainer: download %s: %w", name, err)
		}
		if p, ok := strings.CutPrefix(name, xla.PrefixMomentum); ok {
			shape := host[p].Shape
			if e.dtype == dtypes.Float32 {
				momentum[p] = tensor.New(tensor.WithShape(shape...), tensor.WithBacking(narrow(v)))
			} else {
				momentum[p] = tensor.New(tensor.WithShape(shape...), tensor.WithBacking(v))
			}
			continue
		}
		name = strings.TrimPrefix(name, xla.PrefixParam)
		t := statedict.Tensor{Shape: host[name].Shape}
		if e.dtype == dtypes.Float32 {
			t.F32 = narrow(v)
		} else {
			t.F64 = v
		}
		host[name] = t
	}
	for name, n := range e.tracked {
		host[name] = statedict.Tensor{Shape: []int{}, I64: []int64{n + e.stepped}}
	}
	if err := m.LoadState(host); err != nil {
		return fmt.Errorf("xla/trainer: host copy: %w", err)
	}
	if len(momentum) > 0 {
		if err := e.Optimizer().SetBuffers(momentum); err != nil {
			return fmt.Errorf("xla/trainer: host copy: %w", err)
		}
	}
	for name := range e.tracked {
		e.tracked[name] += e.stepped
	}
	e.stepped = 0
	return nil
}

func narrow(v []float64) []float32 {
	f := make([]float32, len(v))
	for i, x := range v {
		f[i] = float32(x)
	}
	return f
}

// Save copies the device state to the host and writes the CPU engine's
// checkpoint of it (engine.Core.Save).
func (e *Engine) Save(epoch int, extra map[string]string) ([]byte, error) {
	if err := e.sync(); err != nil {
		return nil, err
	}
	return e.Core.Save(epoch, extra)
}

// Load restores a checkpoint written by either backend into the host copy;
// the next Step or Encode uploads it. It clears a failed state.
func (e *Engine) Load(b []byte) (checkpoint.Meta, error) {
	meta, err := e.Core.Load(b)
	if err != nil {
		return meta, err
	}
	e.freeState()
	e.failed = nil
	return meta, nil
}

func (e *Engine) freeState() {
	freeAll(e.state)
	e.state = nil
}

func freeAll(state []map[string]xla.Buffer) {
	for _, s := range state {
		for _, b := range s {
			_ = b.Free()
		}
	}
}

// Encode returns the encoder features [N, d] of images in eval mode, as
// engine.CPU.Encode.
func (e *Engine) Encode(ctx context.Context, im engine.Images) ([]float32, int, error) {
	f, d, _, _, err := e.forwardFrozen(ctx, im, false)
	return f, d, err
}

// Project is Encode with the projection head's L2-normalised output, as
// engine.CPU.Project.
func (e *Engine) Project(ctx context.Context, im engine.Images) (features []float32, d int, proj []float32, p int, err error) {
	return e.forwardFrozen(ctx, im, true)
}

// forwardFrozen runs the Encode program on the device state,
// engine.EncodeChunk images at a time (the last chunk padded).
func (e *Engine) forwardFrozen(ctx context.Context, im engine.Images, head bool) ([]float32, int, []float32, int, error) {
	if e.failed != nil {
		return nil, 0, nil, 0, e.failed
	}
	if err := e.CheckImages(im); err != nil {
		return nil, 0, nil, 0, err
	}
	chunk := min(engine.EncodeChunk, im.N)
	c, err := e.encodeProgram(stepKey{rows: chunk, h: im.Height, w: im.Width}, im.Channels)
	if err != nil {
		return nil, 0, nil, 0, err
	}
	if err := e.upload(); err != nil {
		return nil, 0, nil, 0, err
	}
	m := e.Model()
	d, p := m.EncoderDim(), 0
	out := make([]float32, im.N*d)
	var proj []float32
	if head {
		p = m.Config().FeatDim
		proj = make([]float32, im.N*p)
	}
	err = im.Chunks(ctx, chunk, func(lo, n int, src []uint8) error {
		res, err := e.run(c, []map[string]any{{xla.ArgImages: src}}, false)
		if err != nil {
			return err
		}
		for i, a := range c.prog.Outputs {
			switch {
			case a.Name == xla.ArgEncoder:
				err = rows(out[lo*d:(lo+n)*d], res[i])
			case a.Name == xla.ArgFeatures && head:
				err = rows(proj[lo*p:(lo+n)*p], res[i])
			}
			_ = res[i].Free()
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, 0, nil, 0, err
	}
	return out, d, proj, p, nil
}

// rows copies the first len(dst) values of b into dst.
func rows(dst []float32, b xla.Buffer) error {
	v, err := b.Download()
	if err != nil {
		return fmt.Errorf("xla/trainer: encode: %w", err)
	}
	for i := range dst {
		dst[i] = float32(v[i])
	}
	return nil
}

func (e *Engine) encodeProgram(key stepKey, channels int) (*compiled, error) {
	if c, ok := e.encodes[key]; ok {
		return c, nil
	}
	cfg := e.Config()
	p, err := xla.Encode(e.Model(), xla.EncodeConfig{Batch: xla.Batch{Rows: key.rows, Channels: channels, Height: key.h, Width: key.w, Mean: cfg.Mean, Std: cfg.Std},
		BF16: cfg.Model.DType == engine.BFloat16})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", engine.ErrBatch, err)
	}
	c, err := e.compile(p)
	if err != nil {
		return nil, err
	}
	e.encodes[key] = c
	return c, nil
}
