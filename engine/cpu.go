package engine

import (
	"context"
	"encoding/json"
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
	cfg       Config
	dt        tensor.Dtype
	model     *model.Model
	opt       *optim.SGD
	optimMeta []byte // a checkpoint's supflow.optimizer (optimizerMetaV1)
	steps     int64
	graphs    map[graphKey]*trainGraph
	encode    map[graphKey]*encodeBuf
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
	meta, err := json.Marshal(optimizerMetaV1Of(cfg.Train))
	if err != nil {
		return nil, err
	}
	cfg.Model.setDefaults()
	cfg.Train.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	dt := cfg.Model.dtype()
	if cfg.Train.Method == MethodCE {
		// SupContrast's SupCEResNet: the encoder and one linear layer.
		cfg.Model.Head, cfg.Model.FeatDim = "linear", cfg.Classes
	}
	m, err := model.New(cfg.Model.Config, dt, cfg.Seed)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	opt, err := optim.New(cfg.Train.Optim)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return &CPU{cfg: cfg, dt: dt, model: m, opt: opt, optimMeta: meta,
		graphs: map[graphKey]*trainGraph{}, encode: map[graphKey]*encodeBuf{}}, nil
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
	if t.cfg.Train.Method != MethodCE && b.Size*b.Views < 2 {
		return Stats{}, fmt.Errorf("%w: a contrastive step needs at least 2 views in the batch", ErrBatch)
	}
	perEpoch := b.PerEpoch
	if perEpoch < 1 {
		perEpoch = 1
	}
	lr, err := t.cfg.Train.Schedule.LR(b.Epoch, min(b.Index, perEpoch-1), perEpoch)
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
	if t.cfg.Train.Method == MethodSimCLR {
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
	if t.cfg.Train.Method == MethodCE {
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
