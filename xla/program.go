package xla

import (
	"fmt"
	"math"
	"strings"

	S "github.com/gomlx/go-xla/pkg/stablehlo"
	"github.com/gomlx/go-xla/pkg/types/dtypes"
	"github.com/gomlx/go-xla/pkg/types/shapes"
	"gorgonia.org/tensor"

	"github.com/supflow/supflow/loss"
	"github.com/supflow/supflow/model"
	"github.com/supflow/supflow/optim"
)

// Arg is one input or output of a program.
type Arg struct {
	// Name is a state_dict name under a prefix (PrefixParam,
	// PrefixMomentum, PrefixGrad) or a buffer's state_dict name, or one of
	// the names below (ArgLR, ...).
	Name  string
	DType dtypes.DType
	Shape []int
}

// ElementType is a's element type as StableHLO spells it (f32, ui8, ...).
func (a Arg) ElementType() string {
	t := shapes.Make(a.DType).ToStableHLO()
	return strings.TrimSuffix(strings.TrimPrefix(t, "tensor<"), ">")
}

// Names of the arguments that are not state_dict entries, and the prefixes
// of those that are.
const (
	ArgLR       = "lr"
	ArgLabels   = "labels"
	ArgImages   = "images"
	ArgReplica  = "replica"
	ArgLoss     = "loss"
	ArgEncoder  = "encoder"
	ArgFeatures = "features"

	PrefixParam    = "param/"
	PrefixMomentum = "momentum/"
	PrefixGrad     = "grad/"
)

// Program is an emitted StableHLO module (function main) and the order of
// its arguments and results.
type Program struct {
	Text            []byte
	Inputs, Outputs []Arg
	// Replicas is the number of devices the program runs on at once
	// (StepConfig.Replicas); 0 or 1 is one.
	Replicas int
}

// Batch is the shape of the images a program takes.
type Batch struct {
	// Rows is the number of images: Views*Size for a step, rows are
	// view-major (row v*Size+i is view v of sample i).
	Rows                    int
	Channels, Height, Width int
	// Mean and Std, one per channel, make the images uint8 [Rows,H,W,C]
	// normalised in the program as the CPU engine normalises them,
	// (x/255 - mean)/std; without them the images are [Rows,C,H,W] in the
	// model's dtype, already normalised.
	Mean, Std []float64
}

// StepConfig is what a training step program computes.
type StepConfig struct {
	Batch
	// Views is the number of views per sample (2 for SupCon).
	Views int
	// Loss is SupCon's settings; SimCLR is SupCon with every label
	// distinct (labels 0..Size-1). Only contrast mode all is lowered.
	Loss loss.SupConConfig
	// CrossEntropy trains a classifier (engine's method ce, whose model has
	// a linear head to the classes) with cross-entropy on the head's
	// logits, every view labelled with its sample's label, instead of
	// SupCon.
	CrossEntropy bool
	// Optim is SGD with momentum, weight decay, Nesterov or LARS, as
	// package optim (PyTorch's semantics); defaults applied.
	Optim optim.Config
	// Replicas > 1 makes a data-parallel program, run once per replica
	// (device) with stablehlo.num_replicas: each replica takes Rows/Replicas
	// images (its Size/Replicas samples, all views, view-major) and
	// Size/Replicas labels, plus its index (ArgReplica, int32). The
	// features are all-gathered so that the loss is the whole batch's, each
	// replica back-propagates its rows of the loss gradient, and the
	// parameter gradients are summed over the replicas: every replica
	// computes the same loss and update. Batch norms use each replica's
	// statistics (PyTorch DDP; each replica returns its own running
	// statistics, DDP keeps replica 0's) unless SyncBN.
	Replicas int
	// SyncBN all-reduces the batch-norm statistics over the replicas
	// (SyncBatchNorm): the step then equals the single-device step on the
	// whole batch.
	SyncBN bool
	// BF16 is mixed precision for a float32 model: convolutions and
	// matmuls in bfloat16; batch norm, the loss, the optimizer and the
	// parameters (master weights) in float32.
	BF16 bool
	// Gradients adds the encoder features, the normalised features and
	// every parameter gradient to the outputs, to check the step.
	Gradients bool
}

// program is a main function being emitted and the names of its inputs
// and outputs.
type program struct {
	b        *S.Builder
	replicas int
	fn       *fn
	m        *model.Model
	inputs   []Arg
	values   []*S.Value // the inputs'
	outputs  []Arg
	results  []*S.Value
}

func newProgram(m *model.Model, name string, replicas int) (*program, error) {
	var dt dtypes.DType
	switch m.Dtype() {
	case tensor.Float32:
		dt = dtypes.Float32
	case tensor.Float64:
		dt = dtypes.Float64
	default:
		return nil, fmt.Errorf("%w: model dtype %v", ErrLower, m.Dtype())
	}
	b := S.New(name)
	if replicas > 1 {
		b.WithNumReplicas(replicas)
	}
	return &program{b: b, replicas: replicas, fn: &fn{f: b.Main(), dt: dt}, m: m}, nil
}

func (p *program) input(name string, dt dtypes.DType, shape ...int) *S.Value {
	p.inputs = append(p.inputs, Arg{Name: name, DType: dt, Shape: shape})
	v := must(p.fn.f.Input(shapes.Make(dt, shape...)))
	p.values = append(p.values, v)
	return v
}

func (p *program) output(name string, v *S.Value) {
	p.outputs = append(p.outputs, Arg{Name: name, DType: v.Shape().DType, Shape: dims(v)})
	p.results = append(p.results, v)
}

// done returns the program. Each input that an output of the same name
// replaces is marked as aliasing it (tf.aliasing_output), so that XLA
// updates a donated state buffer in place.
func (p *program) done() (*Program, error) {
	out := make(map[string]int, len(p.outputs))
	for i, a := range p.outputs {
		out[a.Name] = i
	}
	for i, a := range p.inputs {
		if j, ok := out[a.Name]; ok {
			p.values[i].Attributes = map[string]any{"tf.aliasing_output": int32(j)}
		}
	}
	if err := p.fn.f.Return(p.results...); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrLower, err)
	}
	text, err := p.b.Build()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrLower, err)
	}
	return &Program{Text: text, Inputs: p.inputs, Outputs: p.outputs, Replicas: p.replicas}, nil
}

// state declares the parameters (PrefixParam + name, Params order) and the
// running statistics (BufferInfos order, num_batches_tracked left to the
// host: it only counts steps) as inputs of a new net.
func (p *program) state(training, bf16 bool) *net {
	n := &net{fn: p.fn, params: map[string]*S.Value{}, training: training, running: map[string][2]*S.Value{}, noGrad: map[*S.Value]bool{}, bf16: bf16}
	for _, in := range p.m.ParamInfos() {
		n.params[in.Name] = p.input(PrefixParam+in.Name, p.fn.dt, in.Shape...)
	}
	for _, in := range p.m.BufferInfos() {
		layer, kind, _ := cut(in.Name)
		r := n.running[layer]
		switch kind {
		case model.RunningMean:
			r[0] = p.input(in.Name, p.fn.dt, in.Shape...)
		case model.RunningVar:
			r[1] = p.input(in.Name, p.fn.dt, in.Shape...)
		}
		n.running[layer] = r
	}
	return n
}

// cut splits a buffer name into its layer and kind.
func cut(name string) (layer, kind string, ok bool) {
	i := strings.LastIndexByte(name, '.')
	if i < 0 {
		return name, "", false
	}
	return name[:i], name[i+1:], true
}

// outputRunning appends the running statistics in BufferInfos order.
func (p *program) outputRunning(n *net) {
	for _, in := range p.m.BufferInfos() {
		layer, kind, _ := cut(in.Name)
		switch kind {
		case model.RunningMean:
			p.output(in.Name, n.running[layer][0])
		case model.RunningVar:
			p.output(in.Name, n.running[layer][1])
		}
	}
}

// check reports a batch m cannot take.
func (b Batch) check(m *model.Model) error {
	if c := m.Config().InChannels; b.Rows < 1 || b.Height < 1 || b.Width < 1 || b.Channels != c {
		return fmt.Errorf("%w: %d images of %dx%dx%d for a %d-channel model", ErrLower, b.Rows, b.Channels, b.Height, b.Width, c)
	}
	if len(b.Mean) != len(b.Std) || len(b.Mean) != 0 && len(b.Mean) != b.Channels {
		return fmt.Errorf("%w: %d means and %d deviations for %d channels", ErrLower, len(b.Mean), len(b.Std), b.Channels)
	}
	return nil
}

// images declares the image input (b checked) and returns it as
// [Rows,C,H,W] in the model's dtype, normalised.
func (p *program) images(b Batch, n *net) *S.Value {
	if len(b.Mean) == 0 {
		x := p.input(ArgImages, p.fn.dt, b.Rows, b.Channels, b.Height, b.Width)
		n.noGrad[x] = true
		return x
	}
	px := p.input(ArgImages, dtypes.Uint8, b.Rows, b.Height, b.Width, b.Channels)
	scale, shift := make([]float64, b.Channels), make([]float64, b.Channels)
	for k := range b.Channels {
		scale[k] = 1 / (255 * b.Std[k])
		shift[k] = -b.Mean[k] / b.Std[k]
	}
	x := must(S.Transpose(must(S.Convert(px, p.fn.dt)), 0, 3, 1, 2))
	d := dims(x)
	x = add(mul(x, bcast(p.fn.vector(scale), d, 1)), bcast(p.fn.vector(shift), d, 1))
	n.noGrad[x] = true
	return x
}

// vector is a constant vector in dtype dt.
func (b *fn) vector(v []float64) *S.Value {
	if b.dt == dtypes.Float32 {
		f := make([]float32, len(v))
		for i, x := range v {
			f[i] = float32(x)
		}
		return must(b.f.ConstantFromFlatAndDimensions(f, len(f)))
	}
	return must(b.f.ConstantFromFlatAndDimensions(v, len(v)))
}

// Step lowers one training step of m: train-mode forward, the loss (SupCon
// or cross-entropy), the backward of both, the batch-norm running
// statistics update and the optimizer step. Inputs: parameters, momentum
// buffers (with momentum; zero before the first step: PyTorch's first
// buffer is the first update, which m·0 + d gives), running statistics, the
// learning rate (a scalar), the labels (int32 [Size]), the replica index
// (with Replicas) and the images. Outputs: the loss, then the updated parameters, momentum
// buffers and running statistics in the inputs' order, so that each can
// replace (be donated to) its input; then, with Gradients, the checks.
func Step(m *model.Model, cfg StepConfig) (*Program, error) {
	switch {
	case cfg.Views < 1 || cfg.Rows%cfg.Views != 0 || cfg.Rows < 2:
		return nil, fmt.Errorf("%w: %d rows of %d views", ErrLower, cfg.Rows, cfg.Views)
	case cfg.Loss.ContrastMode != "" && cfg.Loss.ContrastMode != loss.ContrastAll:
		return nil, fmt.Errorf("%w: contrast mode %q (only %q is lowered)", ErrLower, cfg.Loss.ContrastMode, loss.ContrastAll)
	}
	cfg.Optim.SetDefaults()
	if err := cfg.Optim.Validate(); err != nil {
		return nil, err
	}
	cfg.Loss.SetDefaults()
	if err := cfg.Loss.Validate(); err != nil {
		return nil, err
	}
	replicas := max(cfg.Replicas, 1)
	size := cfg.Rows / cfg.Views
	if size%replicas != 0 || cfg.SyncBN && replicas == 1 || cfg.CrossEntropy && replicas > 1 {
		return nil, fmt.Errorf("%w: %d samples over %d replicas (sync BN %v, cross-entropy %v: replicas are lowered for SupCon only)", ErrLower, size, replicas, cfg.SyncBN, cfg.CrossEntropy)
	}
	local := cfg.Batch
	local.Rows /= replicas
	if err := local.check(m); err != nil {
		return nil, err
	}
	if err := checkBF16(m, cfg.BF16); err != nil {
		return nil, err
	}
	p, err := newProgram(m, "train_step", replicas)
	if err != nil {
		return nil, err
	}
	err = emit(func() {
		n := p.state(true, cfg.BF16)
		n.replicas, n.syncBN = replicas, cfg.SyncBN
		infos := m.ParamInfos()
		moms := make([]*S.Value, len(infos))
		if cfg.Optim.Momentum != 0 {
			for i, in := range infos {
				moms[i] = p.input(PrefixMomentum+in.Name, p.fn.dt, in.Shape...)
			}
		}
		lr := p.input(ArgLR, p.fn.dt)
		labels := p.input(ArgLabels, dtypes.Int32, size/replicas)
		var replica *S.Value
		if replicas > 1 {
			replica = p.input(ArgReplica, dtypes.Int32)
		}
		f := n.forward(m.Arch(), p.images(local, n))
		if cfg.CrossEntropy {
			l, dh := p.fn.crossEntropy(f.head, labels, cfg.Views)
			n.backward(f.head, dh)
			p.output(ArgLoss, l)
		} else {
			z := f.features
			if replicas > 1 {
				z, labels = n.gather(z, cfg.Views), n.gatherLabels(labels)
			}
			l, dz := p.fn.supCon(z, p.fn.positives(labels), cfg.Loss)
			if replicas > 1 {
				dz = n.scatter(dz, cfg.Views, replica)
			}
			n.backward(f.features, dz)
			p.output(ArgLoss, l)
		}
		grads := make([]*S.Value, len(infos))
		for i, in := range infos {
			grads[i] = n.grad[n.params[in.Name]]
			if replicas > 1 {
				grads[i] = n.allSum(grads[i])
			}
		}
		newMoms := make([]*S.Value, len(infos))
		for i, in := range infos {
			var np *S.Value
			np, newMoms[i] = p.fn.sgd(cfg.Optim, lr, n.params[in.Name], grads[i], moms[i])
			p.output(PrefixParam+in.Name, np)
		}
		if cfg.Optim.Momentum != 0 {
			for i, in := range infos {
				p.output(PrefixMomentum+in.Name, newMoms[i])
			}
		}
		p.outputRunning(n)
		if cfg.Gradients {
			p.output(ArgEncoder, f.encoder)
			p.output(ArgFeatures, f.features)
			for i, in := range infos {
				p.output(PrefixGrad+in.Name, grads[i])
			}
		}
	})
	if err != nil {
		return nil, err
	}
	return p.done()
}

// checkBF16 refuses mixed precision for a model that is not float32.
func checkBF16(m *model.Model, bf16 bool) error {
	if bf16 && m.Dtype() != tensor.Float32 {
		return fmt.Errorf("%w: bfloat16 mixed precision needs a float32 model, not %v", ErrLower, m.Dtype())
	}
	return nil
}

// EncodeConfig is what an encode program computes.
type EncodeConfig struct {
	Batch
	// BF16: as StepConfig.BF16.
	BF16 bool
}

// Encode lowers m's eval-mode forward: inputs the parameters, the running
// statistics and the images; outputs the encoder features [Rows,d] and the
// normalised features.
func Encode(m *model.Model, cfg EncodeConfig) (*Program, error) {
	if err := cfg.check(m); err != nil {
		return nil, err
	}
	if err := checkBF16(m, cfg.BF16); err != nil {
		return nil, err
	}
	p, err := newProgram(m, "encode", 1)
	if err != nil {
		return nil, err
	}
	err = emit(func() {
		n := p.state(false, cfg.BF16)
		f := n.forward(m.Arch(), p.images(cfg.Batch, n))
		p.output(ArgEncoder, f.encoder)
		p.output(ArgFeatures, f.features)
	})
	if err != nil {
		return nil, err
	}
	return p.done()
}

// sgd is optim's update of p with gradient g and momentum buffer buf (nil
// without momentum), in the same order of operations: d = g + wd·p (wd 0
// for LARS on vectors); for LARS on matrices and convolutions d ·=
// eta·‖p‖/‖d‖ (1 when either norm is 0); buf' = momentum·buf + d; d =
// buf', or d + momentum·buf' with Nesterov; p' = p - lr·d.
func (b *fn) sgd(c optim.Config, lr, p, g, buf *S.Value) (newP, newBuf *S.Value) {
	lars := c.Optimizer == optim.OptimizerLARS
	adapt := lars && len(dims(p)) >= 2
	wd := c.WeightDecay
	if lars && !adapt {
		wd = 0
	}
	d := add(g, mul(b.like(p, wd), p))
	if adapt {
		axes := make([]int, len(dims(p)))
		for i := range axes {
			axes[i] = i
		}
		pn, dn := b.sum(mul(p, p), axes...), b.sum(mul(d, d), axes...)
		one := b.like(pn, 1)
		q := div(mul(b.like(pn, c.TrustCoefficient), must(S.Sqrt(pn))), must(S.Sqrt(dn)))
		q = sel(cmp(pn, b.like(pn, 0), gt), sel(cmp(dn, b.like(dn, 0), gt), q, one), one)
		d = mul(d, bcast(q, dims(d)))
	}
	if buf != nil {
		m := b.like(buf, c.Momentum)
		newBuf = add(mul(m, buf), d)
		if c.Nesterov {
			d = add(d, mul(m, newBuf))
		} else {
			d = newBuf
		}
	}
	return sub(p, mul(bcast(lr, dims(p)), d)), newBuf
}

// crossEntropy is the mean cross-entropy of logits [N,K] against the
// labels [N/views] of each row's sample (row v*bsz+i is sample i), and its
// gradient (softmax - one-hot)/N, as loss.CrossEntropy computes both.
func (b *fn) crossEntropy(logits, labels *S.Value, views int) (l, dlogits *S.Value) {
	d := dims(logits)
	reps := make([]*S.Value, views)
	for i := range reps {
		reps[i] = labels
	}
	lab := must(S.Concatenate(0, reps...))
	class := must(b.f.Iota(shapes.Make(dtypes.Int32, d...), 1))
	onehot := sel(cmp(bcast(lab, d, 0), class, eq), b.like(logits, 1), b.like(logits, 0))
	rows := func(v *S.Value) *S.Value { return bcast(v, d, 0) }
	x := sub(logits, rows(b.reduceMax(logits, 1)))
	e := must(S.Exponential(x))
	sumExp := b.sum(e, 1)
	perRow := sub(must(S.Log(sumExp)), b.sum(mul(onehot, x), 1))
	inv := 1 / float64(d[0])
	l = mul(b.sum(perRow, 0), b.scalarOf(b.dt, inv))
	dlogits = mul(sub(div(e, rows(sumExp)), onehot), b.like(logits, inv))
	return l, dlogits
}

// positives is the [bsz,bsz] positive weight matrix of labels [bsz]: 1
// where two samples share a label.
func (b *fn) positives(labels *S.Value) *S.Value {
	n := dims(labels)[0]
	nn := []int{n, n}
	return sel(cmp(bcast(labels, nn, 0), bcast(labels, nn, 1), eq), b.full(b.dt, 1, nn), b.full(b.dt, 0, nn))
}

// supCon is SupContrast's loss (contrast mode all, cfg with defaults set)
// of the view-major features z [N,D] with positive weights pos [bsz,bsz]
// between samples, and its gradient with respect to z, as package loss
// computes both: logits
// z zᵀ/T without the diagonal, shifted by each row's maximum; per anchor a,
// -T/T_base · (Σ_c w_ac x_ac - W_a lse_a)/W_a with W_a replaced by 1 below
// loss.NoPositive.
func (b *fn) supCon(z, pos *S.Value, cfg loss.SupConConfig) (l, dz *S.Value) {
	n, bsz := dims(z)[0], dims(pos)[0]
	views := n / bsz
	nn := []int{n, n}
	invT := 1 / cfg.Temperature
	scale := cfg.Temperature / cfg.BaseTemperature
	s := matmul(z, 1, z, 1)
	s = mul(s, b.like(s, invT))
	row := must(b.f.Iota(shapes.Make(dtypes.Int32, nn...), 0))
	col := must(b.f.Iota(shapes.Make(dtypes.Int32, nn...), 1))
	other := cmp(row, col, ne)
	zero := b.like(s, 0)
	// Row v*bsz+i is sample i: the sample weights tiled views x views.
	tiled := must(S.Reshape(bcast(pos, []int{views, bsz, views, bsz}, 1, 3), shapes.Make(b.dt, nn...)))
	w := sel(other, tiled, zero)
	rows := func(v *S.Value) *S.Value { return bcast(v, nn, 0) }
	mx := b.reduceMax(sel(other, s, b.like(s, negInf)), 1)
	x := sub(s, rows(mx))
	e := sel(other, must(S.Exponential(x)), zero)
	sumExp := b.sum(e, 1)
	lse := must(S.Log(sumExp))
	wSum := b.sum(w, 1)
	wLogit := b.sum(mul(w, x), 1)
	den := sel(cmp(wSum, b.like(wSum, loss.NoPositive), lt), b.like(wSum, 1), wSum)
	la := div(mul(b.like(wSum, -scale), sub(wLogit, mul(wSum, lse))), den)
	l = mul(b.sum(la, 0), b.scalarOf(b.dt, 1/float64(n)))
	// d loss / d s_ac = -scale/(n W_a) (w_ac - W_a e_ac/Σe_a), 0 on the diagonal.
	coef := div(b.like(den, -scale/float64(n)), den)
	g := mul(rows(coef), sub(w, mul(rows(div(wSum, sumExp)), e)))
	dz = add(matmul(g, 0, z, 0), matmul(g, 1, z, 0))
	return l, mul(dz, b.like(dz, invT))
}

var negInf = math.Inf(-1)
