package engine

import (
	"context"
	"fmt"
	"math"
	"time"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	_ "github.com/supflow/supflow/internal/blasimpl" // OpenBLAS under cgo
	"github.com/supflow/supflow/loss"
	"github.com/supflow/supflow/model"
	"github.com/supflow/supflow/nn"
	"github.com/supflow/supflow/optim"
)

// Methods of pretraining.
const (
	MethodSupCon = "supcon" // supervised contrastive: positives share a label
	MethodSimCLR = "simclr" // self-supervised: the sample's own views only
	MethodCE     = "ce"     // cross-entropy baseline: encoder + linear classifier
)

// Config configures a trainer.
type Config struct {
	Model    model.Config
	DType    string // float32 or float64
	Method   string // MethodSupCon, MethodSimCLR or MethodCE
	Classes  int    // classifier outputs for MethodCE
	Loss     loss.SupConConfig
	Optim    optim.Config
	Schedule optim.Schedule
	// Mean and Std normalize uint8 pixels per channel: (p/255 - mean) / std.
	Mean, Std []float64
	Seed      int64 // parameter initialization
}

func (c *Config) dtype() (tensor.Dtype, error) {
	switch c.DType {
	case "", "float32":
		return tensor.Float32, nil
	case "float64":
		return tensor.Float64, nil
	}
	return tensor.Dtype{}, fmt.Errorf("%w: dtype %q: want float32 or float64", ErrConfig, c.DType)
}

// Validate checks the parts the trainer owns; the model, loss, optimizer and
// schedule validate their own.
func (c *Config) Validate() error {
	if _, err := c.dtype(); err != nil {
		return err
	}
	switch c.Method {
	case MethodSupCon, MethodSimCLR:
	case MethodCE:
		if c.Classes < 2 {
			return fmt.Errorf("%w: method ce needs classes >= 2, got %d", ErrConfig, c.Classes)
		}
	default:
		return fmt.Errorf("%w: method %q: want supcon, simclr or ce", ErrConfig, c.Method)
	}
	in := c.Model.InChannels
	if in == 0 {
		in = 3
	}
	if len(c.Mean) != in || len(c.Std) != in {
		return fmt.Errorf("%w: mean %v and std %v need one value per input channel (%d)", ErrConfig, c.Mean, c.Std, in)
	}
	for i, s := range c.Std {
		if !(s > 0) || !finite(c.Mean[i]) || math.IsInf(s, 0) {
			return fmt.Errorf("%w: channel %d: mean %v, std %v: want finite values and std > 0", ErrConfig, i, c.Mean[i], s)
		}
	}
	return nil
}

// CPU trains on the CPU with gorgonia and supflow's ops. It is not safe for
// concurrent use: one goroutine drives it.
type CPU struct {
	cfg    Config
	dt     tensor.Dtype
	model  *model.Model
	opt    *optim.SGD
	steps  int64
	graphs map[graphKey]*trainGraph
	encode map[graphKey]*encodeBuf
}

type graphKey struct{ rows, views, h, w int }

// trainGraph is the network, loss and gradients unrolled for one batch shape.
type trainGraph struct {
	g      *model.Graph
	cost   *G.Node
	mask   *G.Node // supcon/simclr: [bsz,bsz] positives
	target *G.Node // ce: [rows] class indices
	grads  G.Nodes
	vm     G.VM
	input  *tensor.Dense
	tgtT   *tensor.Dense
	params []optim.Param
}

type encodeBuf struct{ input *tensor.Dense }

// New builds a trainer with freshly initialized parameters.
func New(cfg Config) (*CPU, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	dt, _ := cfg.dtype()
	if cfg.Method == MethodCE {
		// SupContrast's SupCEResNet: the encoder and one linear layer.
		cfg.Model.Head, cfg.Model.FeatDim = "linear", cfg.Classes
	}
	m, err := model.New(cfg.Model, dt, cfg.Seed)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if _, err := cfg.Schedule.EpochLR(1); err != nil {
		return nil, fmt.Errorf("%w: schedule: %w", ErrConfig, err)
	}
	opt, err := optim.New(cfg.Optim)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return &CPU{cfg: cfg, dt: dt, model: m, opt: opt, graphs: map[graphKey]*trainGraph{}, encode: map[graphKey]*encodeBuf{}}, nil
}

// Model returns the trained network.
func (t *CPU) Model() *model.Model { return t.model }

// Params counts the model's trainable parameters.
func (t *CPU) Params() int64 {
	var n int64
	for _, p := range t.model.ParamInfos() {
		k := int64(1)
		for _, v := range p.Shape {
			k *= int64(v)
		}
		n += k
	}
	return n
}

// Steps returns the number of optimizer steps taken (restored by Load).
func (t *CPU) Steps() int64 { return t.steps }

// Step runs forward, loss, backward and one optimizer step on b. The batch
// norms run in training mode. A non-finite loss is an error and leaves the
// parameters untouched.
func (t *CPU) Step(ctx context.Context, b Batch) (Stats, error) {
	start := time.Now()
	if err := ctx.Err(); err != nil {
		return Stats{}, err
	}
	if err := t.checkBatch(b); err != nil {
		return Stats{}, err
	}
	if t.cfg.Method != MethodCE && b.Size*b.Views < 2 {
		return Stats{}, fmt.Errorf("%w: a contrastive step needs at least 2 views in the batch", ErrBatch)
	}
	perEpoch := b.PerEpoch
	if perEpoch < 1 {
		perEpoch = 1
	}
	lr, err := t.cfg.Schedule.LR(b.Epoch, min(b.Index, perEpoch-1), perEpoch)
	if err != nil {
		return Stats{}, fmt.Errorf("%w: schedule: %w", ErrBatch, err)
	}
	gr, err := t.trainGraph(b)
	if err != nil {
		return Stats{}, err
	}
	if err := t.fill(gr.input, b); err != nil {
		return Stats{}, err
	}
	if err := t.bindTargets(gr, b); err != nil {
		return Stats{}, err
	}
	t.model.SetTraining(true)
	gr.vm.Reset()
	if err := gr.vm.RunAll(); err != nil {
		return Stats{}, fmt.Errorf("engine: step: %w", nn.RunError(err))
	}
	l := scalar(gr.cost.Value())
	if !finite(l) {
		return Stats{}, fmt.Errorf("%w: %v at step %d (lower the learning rate?)", ErrLoss, l, t.steps+1)
	}
	for i := range gr.params {
		g, ok := gr.grads[i].Value().(*tensor.Dense)
		if !ok {
			return Stats{}, fmt.Errorf("engine: gradient of %s is %T", gr.params[i].Name, gr.grads[i].Value())
		}
		gr.params[i].Grad = g
	}
	if err := t.opt.Step(lr, gr.params); err != nil {
		return Stats{}, fmt.Errorf("engine: optimizer: %w", err)
	}
	t.steps++
	return Stats{Step: t.steps, Epoch: b.Epoch, Batch: b.Index, Batches: b.PerEpoch, Loss: l, LR: lr, Samples: b.Size, Duration: time.Since(start)}, nil
}

// LabelClasses is the number of classes a sample's label must lie in,
// [0, LabelClasses()), for the method to train on it: Config.Classes for
// supcon (positives share a label) and ce (the classifier's outputs), 0
// for simclr, which ignores labels. The train stage dead-letters a view
// group labelled outside it instead of stepping it: a ce step refuses the
// whole batch (ErrBatch), and a supcon step would take the label as one
// more class.
func (t *CPU) LabelClasses() int {
	if t.cfg.Method == MethodSimCLR {
		return 0
	}
	return t.cfg.Classes
}

func (t *CPU) checkBatch(b Batch) error {
	if err := b.Validate(); err != nil {
		return err
	}
	if in := t.model.Config().InChannels; b.Channels != in {
		return fmt.Errorf("%w: %d-channel views, the model takes %d", ErrBatch, b.Channels, in)
	}
	if t.cfg.Method == MethodCE {
		for i, l := range b.Labels {
			if l < 0 || l >= t.cfg.Classes {
				return fmt.Errorf("%w: label %d of sample %d outside 0..%d", ErrBatch, l, i, t.cfg.Classes-1)
			}
		}
	}
	return nil
}

// trainGraph returns the cached graph for b's shape, building it once.
func (t *CPU) trainGraph(b Batch) (*trainGraph, error) {
	key := graphKey{rows: b.Size * b.Views, views: b.Views, h: b.Height, w: b.Width}
	if gr, ok := t.graphs[key]; ok {
		return gr, nil
	}
	g, err := t.model.Build(key.rows, b.Height, b.Width)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBatch, err)
	}
	gr := &trainGraph{g: g, input: tensor.New(tensor.Of(t.dt), tensor.WithShape(key.rows, b.Channels, b.Height, b.Width))}
	switch t.cfg.Method {
	case MethodCE:
		gr.tgtT = tensor.New(tensor.Of(tensor.Int), tensor.WithShape(key.rows))
		gr.target = G.NewVector(g.G, tensor.Int, G.WithShape(key.rows), G.WithName("targets"))
		gr.cost, err = loss.CrossEntropyNode(g.Head, gr.target)
	default:
		gr.mask = G.NewMatrix(g.G, t.dt, G.WithShape(b.Size, b.Size), G.WithName("mask"))
		gr.cost, err = loss.SupConNode(g.Output, gr.mask, b.Views, t.cfg.Loss)
	}
	if err != nil {
		return nil, fmt.Errorf("engine: loss: %w", err)
	}
	if gr.grads, err = G.Grad(gr.cost, g.Params...); err != nil {
		return nil, fmt.Errorf("engine: gradients: %w", err)
	}
	// Step reads only the loss and the gradients after a run.
	if gr.vm, err = model.Compile(g.G, append(G.Nodes{gr.cost}, gr.grads...)...); err != nil {
		return nil, fmt.Errorf("engine: %w", err)
	}
	if err := G.Let(g.Input, gr.input); err != nil {
		return nil, err
	}
	for _, p := range t.model.Params() {
		gr.params = append(gr.params, optim.Param{Name: p.Name, Value: p.Value})
	}
	t.graphs[key] = gr
	return gr, nil
}

// bindTargets fills the label inputs of the loss for b.
func (t *CPU) bindTargets(gr *trainGraph, b Batch) error {
	if t.cfg.Method == MethodCE {
		tg := gr.tgtT.Data().([]int)
		for r := range tg {
			tg[r] = b.Labels[r%b.Size]
		}
		return G.Let(gr.target, gr.tgtT)
	}
	labels := b.Labels
	if t.cfg.Method == MethodSimCLR {
		labels = make([]int, b.Size) // each sample its own class: the identity mask
		for i := range labels {
			labels[i] = i
		}
	}
	m, err := loss.LabelMask(labels, t.dt)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBatch, err)
	}
	return G.Let(gr.mask, m)
}

func scalar(v G.Value) float64 {
	switch x := v.Data().(type) {
	case float64:
		return x
	case float32:
		return float64(x)
	}
	return math.NaN()
}
