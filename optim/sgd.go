package optim

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"sync"

	"gorgonia.org/tensor"

	"github.com/supflow/supflow/config/field"
)

// ErrInvalid is returned (wrapped) for an invalid configuration, parameter
// or momentum buffer.
var ErrInvalid = errors.New("optim: invalid argument")

// DefaultTrustCoefficient is the LARS eta used when Config.TrustCoefficient
// is 0 (the value of You et al. and of the common PyTorch ports).
const DefaultTrustCoefficient = 0.001

// Bounds of Config fields.
const (
	maxMomentum    = 0.9999 // momentum 1 never forgets a gradient
	maxWeightDecay = 1
)

// Optimizer names the update rule of a Config.
type Optimizer string

// Optimizers.
const (
	// OptimizerSGD is SGD as torch.optim.SGD computes it.
	OptimizerSGD Optimizer = "sgd"
	// OptimizerLARS is SGD with a layer-wise trust ratio (Config.Optimizer).
	OptimizerLARS Optimizer = "lars"
)

// Config configures [SGD]. Its YAML tags are the keys of pipeline.yaml's
// train section that it declares (momentum, weight_decay, optimizer,
// trust_coefficient); Nesterov is not a key. The zero value is plain SGD
// without momentum or weight decay; SupContrast uses Momentum 0.9 and
// WeightDecay 1e-4.
type Config struct {
	// Momentum is PyTorch's momentum factor, in [0, 0.9999]; 0 is none.
	// Dampening is always 0.
	Momentum float64 `yaml:"momentum"`
	// WeightDecay, in [0, 1], adds WeightDecay*p to each gradient (L2
	// penalty); 0 is none.
	WeightDecay float64 `yaml:"weight_decay"`
	// Optimizer is OptimizerSGD (the default) or OptimizerLARS, which
	// scales each adapted parameter's update by the layer-wise trust ratio
	// TrustCoefficient*||p|| / ||g + WeightDecay*p|| (1 when either norm
	// is 0). As in the SimCLR and Barlow Twins implementations, parameters
	// with fewer than 2 dimensions (biases, BatchNorm weight and bias) are
	// excluded from both the adaptation and the weight decay.
	Optimizer Optimizer `yaml:"optimizer"`
	// Nesterov uses Nesterov momentum; it needs Momentum > 0.
	Nesterov bool `yaml:"-"`
	// TrustCoefficient is LARS's eta (trust_coefficient), in (0, 1]; 0
	// means DefaultTrustCoefficient. SGD does not use it.
	TrustCoefficient float64 `yaml:"trust_coefficient"`
}

// maxTrustCoefficient bounds Config.TrustCoefficient.
const maxTrustCoefficient = 1

// SetDefaults fills the unset fields: Optimizer and the trust coefficient.
func (c *Config) SetDefaults() {
	if c.Optimizer == "" {
		c.Optimizer = OptimizerSGD
	}
	if c.TrustCoefficient == 0 {
		c.TrustCoefficient = DefaultTrustCoefficient
	}
}

func (c Config) lars() bool { return c.Optimizer == OptimizerLARS }

// Validate reports every field of c out of range, each a *field.Error
// (config/field) named by its key and wrapping ErrInvalid. It checks c as
// given: an empty Optimizer or a zero TrustCoefficient is refused (New
// fills them first), whatever the Optimizer.
func (c Config) Validate() error {
	k := field.NewChecker(ErrInvalid)
	k.FloatIn("momentum", c.Momentum, 0, maxMomentum)
	k.FloatIn("weight_decay", c.WeightDecay, 0, maxWeightDecay)
	k.OneOf("optimizer", string(c.Optimizer), string(OptimizerSGD), string(OptimizerLARS))
	if c.Nesterov && c.Momentum == 0 {
		k.Add("nesterov", true, "momentum > 0")
	}
	if !(c.TrustCoefficient > 0 && c.TrustCoefficient <= maxTrustCoefficient) {
		k.Add("trust_coefficient", c.TrustCoefficient, "a number in (0, 1]")
	}
	return k.Err()
}

func finiteNonNeg(x float64) bool { return x >= 0 && !math.IsInf(x, 0) }

// Param is one named parameter and its gradient. Value and Grad must be
// contiguous (not views) float32 or float64 tensors of the same dtype and
// shape; Value is updated in place.
type Param struct {
	Name  string
	Value *tensor.Dense
	Grad  *tensor.Dense
}

// SGD is stochastic gradient descent with PyTorch's torch.optim.SGD
// semantics (dampening 0), per parameter p with gradient g:
//
//	d   = g + weight_decay*p
//	buf = d                  on the parameter's first step
//	buf = momentum*buf + d   afterwards
//	d   = d + momentum*buf   with Nesterov, else d = buf
//	p   = p - lr*d
//
// It is not safe for concurrent use.
type SGD struct {
	cfg Config
	buf map[string]*tensor.Dense
}

// New returns an optimizer with no momentum buffers (every parameter's next
// step is its first).
func New(cfg Config) (*SGD, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &SGD{cfg: cfg, buf: map[string]*tensor.Dense{}}, nil
}

// Config returns the configuration with defaults applied.
func (o *SGD) Config() Config { return o.cfg }

// Step applies one update with learning rate lr to every parameter. All
// parameters are checked before any is changed, so an error leaves the
// parameters and buffers untouched.
func (o *SGD) Step(lr float64, params []Param) error {
	if !finiteNonNeg(lr) {
		return fmt.Errorf("%w: learning rate %v must be finite and non-negative", ErrInvalid, lr)
	}
	seen := make(map[string]bool, len(params))
	for _, p := range params {
		if seen[p.Name] {
			return fmt.Errorf("%w: parameter %q given twice", ErrInvalid, p.Name)
		}
		seen[p.Name] = true
		if err := o.check(p); err != nil {
			return err
		}
	}
	// Parameters are independent: update them on all processors, in
	// groups of about equal size, each element as the serial loop would.
	bufs := make([]*tensor.Dense, len(params))
	for i, p := range params {
		bufs[i] = o.buf[p.Name]
	}
	var wg sync.WaitGroup
	for _, g := range groups(params, runtime.GOMAXPROCS(0)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := g[0]; i < g[1]; i++ {
				p := params[i]
				if p.Value.Dtype() == tensor.Float64 {
					bufs[i] = update(o.cfg, lr, p.Value.Float64s(), p.Grad.Float64s(), bufs[i], p.Value.Shape())
				} else {
					bufs[i] = update(o.cfg, lr, p.Value.Float32s(), p.Grad.Float32s(), bufs[i], p.Value.Shape())
				}
			}
		}()
	}
	wg.Wait()
	for i, p := range params {
		if bufs[i] != nil {
			o.buf[p.Name] = bufs[i]
		}
	}
	return nil
}

// groups splits params into at most n contiguous index ranges [lo,hi) of
// about equal element counts.
func groups(params []Param, n int) [][2]int {
	total := 0
	for _, p := range params {
		total += p.Value.Shape().TotalSize()
	}
	var out [][2]int
	lo, sum := 0, 0
	for i, p := range params {
		sum += p.Value.Shape().TotalSize()
		if sum*n >= total*(len(out)+1) || i == len(params)-1 {
			out = append(out, [2]int{lo, i + 1})
			lo = i + 1
		}
	}
	return out
}

func (o *SGD) check(p Param) error {
	if p.Name == "" {
		return fmt.Errorf("%w: parameter without a name", ErrInvalid)
	}
	if p.Value == nil || p.Grad == nil {
		return fmt.Errorf("%w: parameter %q: nil value or gradient", ErrInvalid, p.Name)
	}
	if err := checkDense(p.Name, p.Value); err != nil {
		return err
	}
	if err := checkDense(p.Name+" gradient", p.Grad); err != nil {
		return err
	}
	if p.Grad.Dtype() != p.Value.Dtype() || !slices.Equal(p.Grad.Shape(), p.Value.Shape()) {
		return fmt.Errorf("%w: parameter %q is %v %v but its gradient is %v %v",
			ErrInvalid, p.Name, p.Value.Dtype(), p.Value.Shape(), p.Grad.Dtype(), p.Grad.Shape())
	}
	if b, ok := o.buf[p.Name]; ok && (b.Dtype() != p.Value.Dtype() || !slices.Equal(b.Shape(), p.Value.Shape())) {
		return fmt.Errorf("%w: parameter %q is %v %v but its momentum buffer is %v %v",
			ErrInvalid, p.Name, p.Value.Dtype(), p.Value.Shape(), b.Dtype(), b.Shape())
	}
	return nil
}

func checkDense(name string, t *tensor.Dense) error {
	if dt := t.Dtype(); dt != tensor.Float64 && dt != tensor.Float32 {
		return fmt.Errorf("%w: %s has dtype %v, want float32 or float64", ErrInvalid, name, dt)
	}
	if t.IsView() || t.RequiresIterator() {
		return fmt.Errorf("%w: %s is a view; pass a contiguous tensor", ErrInvalid, name)
	}
	return nil
}

// update applies one step to p in place and returns the (possibly new)
// momentum buffer, nil without momentum. Arithmetic is in T, in PyTorch's
// order, so results match torch.optim.SGD to rounding.
func update[T float32 | float64](cfg Config, lr float64, p, g []T, buf *tensor.Dense, shape tensor.Shape) *tensor.Dense {
	if cfg.Momentum != 0 && !cfg.Nesterov && !cfg.lars() && buf != nil {
		// The usual step in one pass and no scratch: per element, the
		// same operations in the same order as below.
		wd, m, l := T(cfg.WeightDecay), T(cfg.Momentum), T(lr)
		b := buf.Data().([]T)[:len(p)]
		g = g[:len(p)]
		for i := range p {
			b[i] = m*b[i] + (g[i] + wd*p[i])
			p[i] -= l * b[i]
		}
		return buf
	}
	wd := T(cfg.WeightDecay)
	adapt := cfg.lars() && shape.Dims() >= 2
	if cfg.lars() && !adapt {
		wd = 0
	}
	d := make([]T, len(p))
	for i := range p {
		d[i] = g[i] + wd*p[i]
	}
	if adapt {
		if q := trustRatio(p, d, cfg.TrustCoefficient); q != 1 {
			for i := range d {
				d[i] *= T(q)
			}
		}
	}
	if cfg.Momentum != 0 {
		m := T(cfg.Momentum)
		if buf == nil {
			buf = tensor.New(tensor.WithShape(shape.Clone()...), tensor.WithBacking(slices.Clone(d)))
		} else {
			b := buf.Data().([]T)
			for i := range b {
				b[i] = m*b[i] + d[i]
			}
		}
		b := buf.Data().([]T)
		if cfg.Nesterov {
			for i := range d {
				d[i] += m * b[i]
			}
		} else {
			d = b
		}
	}
	l := T(lr)
	for i := range p {
		p[i] -= l * d[i]
	}
	return buf
}

// trustRatio is LARS's eta*||p||/||d||, or 1 when either norm is 0.
func trustRatio[T float32 | float64](p, d []T, eta float64) float64 {
	var pn, dn float64
	for i := range p {
		pn += float64(p[i]) * float64(p[i])
		dn += float64(d[i]) * float64(d[i])
	}
	if pn == 0 || dn == 0 {
		return 1
	}
	return eta * math.Sqrt(pn) / math.Sqrt(dn)
}

// Buffers returns the momentum buffers by parameter name. The map is a new
// one; the tensors are the optimizer's own, valid until the next Step or
// SetBuffers, and must not be modified (copy them to keep them).
func (o *SGD) Buffers() map[string]*tensor.Dense {
	m := make(map[string]*tensor.Dense, len(o.buf))
	for k, v := range o.buf {
		m[k] = v
	}
	return m
}

// SetBuffers replaces every momentum buffer with a copy of bufs (a restored
// checkpoint). A parameter without a buffer takes its next step as a first
// step. Shapes are checked against the parameters at the next Step.
func (o *SGD) SetBuffers(bufs map[string]*tensor.Dense) error {
	m := make(map[string]*tensor.Dense, len(bufs))
	for name, b := range bufs {
		if b == nil {
			return fmt.Errorf("%w: momentum buffer %q is nil", ErrInvalid, name)
		}
		if err := checkDense("momentum buffer "+name, b); err != nil {
			return err
		}
		m[name] = b.Clone().(*tensor.Dense)
	}
	o.buf = m
	return nil
}
