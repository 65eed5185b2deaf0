package engine

import (
	"context"
	"fmt"
	"math"
	"slices"
	"time"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/supflow/supflow/config/field"
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

// Config configures a trainer. Model and Train are pipeline.yaml's (the
// model section and the engine's keys of the train section); the other
// fields come from the data set and the run.
type Config struct {
	Model ModelConfig
	Train TrainConfig
	// Classes is the number of classifier outputs for MethodCE.
	Classes int
	// Mean and Std normalize uint8 pixels per channel: (p/255 - mean) / std.
	Mean, Std []float64
	Seed      int64 // parameter initialization
}

// Validate reports every problem of c, each a *field.Error wrapping
// ErrConfig: the model and train settings under their section's name
// ("model.arch", "train.lr"), then classes, mean and std. It checks c as
// given (New fills unset settings first).
func (c *Config) Validate() error {
	k := field.NewChecker(ErrConfig)
	k.Include("model", c.Model.Validate())
	k.Include("train", c.Train.Validate())
	if c.Train.Method == MethodCE && c.Classes < 2 {
		k.Add("classes", c.Classes, "at least 2 for method ce")
	}
	in := c.Model.InChannels
	for _, v := range []struct {
		key string
		v   []float64
		ok  func(float64) bool
	}{{"mean", c.Mean, finite}, {"std", c.Std, func(s float64) bool { return s > 0 && !math.IsInf(s, 0) }}} {
		if len(v.v) != in || slices.ContainsFunc(v.v, func(x float64) bool { return !v.ok(x) }) {
			k.Add(v.key, v.v, fmt.Sprintf("one finite value per input channel (%d), std > 0", in))
		}
	}
	return k.Err()
}

// CPU trains on the CPU with gorgonia and supflow's ops. It is not safe for
// concurrent use: one goroutine drives it.
type CPU struct {
	*Core
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
	c, err := NewCore(cfg)
	if err != nil {
		return nil, err
	}
	if c.cfg.Model.DType == BFloat16 {
		return nil, fmt.Errorf("%w: model.dtype %s: mixed precision runs on train.backend xla only", ErrConfig, BFloat16)
	}
	return &CPU{Core: c, graphs: map[graphKey]*trainGraph{}, encode: map[graphKey]*encodeBuf{}}, nil
}

// Step runs forward, loss, backward and one optimizer step on b. The batch
// norms run in training mode. A non-finite loss is an error and leaves the
// parameters untouched.
func (t *CPU) Step(ctx context.Context, b Batch) (Stats, error) {
	start := time.Now()
	lr, err := t.Prepare(ctx, b)
	if err != nil {
		return Stats{}, err
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
	if err := t.CheckLoss(l); err != nil {
		return Stats{}, err
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
	return t.Record(b, l, lr, start), nil
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
	switch t.cfg.Train.Method {
	case MethodCE:
		gr.tgtT = tensor.New(tensor.Of(tensor.Int), tensor.WithShape(key.rows))
		gr.target = G.NewVector(g.G, tensor.Int, G.WithShape(key.rows), G.WithName("targets"))
		gr.cost, err = loss.CrossEntropyNode(g.Head, gr.target)
	default:
		gr.mask = G.NewMatrix(g.G, t.dt, G.WithShape(b.Size, b.Size), G.WithName("mask"))
		gr.cost, err = loss.SupConNode(g.Output, gr.mask, b.Views, t.cfg.Train.Loss)
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
	if t.cfg.Train.Method == MethodCE {
		tg := gr.tgtT.Data().([]int)
		for r := range tg {
			tg[r] = b.Labels[r%b.Size]
		}
		return G.Let(gr.target, gr.tgtT)
	}
	labels := b.Labels
	if t.cfg.Train.Method == MethodSimCLR {
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
