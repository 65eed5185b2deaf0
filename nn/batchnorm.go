package nn

import (
	"fmt"
	"math"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// BatchNorm defaults, as in PyTorch's BatchNorm2d.
const (
	DefaultBNMomentum = 0.1
	DefaultBNEps      = 1e-5
)

// BNState is the non-learned state of one batch-normalisation layer: its
// mode and running statistics. The BatchNorm ops of every graph built on a
// state read its mode when they run and, in training mode, update its
// running statistics once per run; the statistics survive mode switches.
// A BNState is not safe for concurrent use.
type BNState struct {
	// Training selects batch statistics (true) or running statistics
	// (false) for normalising; only training updates the running statistics.
	Training bool
	// Momentum is the weight of the current batch in the running averages.
	Momentum float64
	// Eps is added to the variance before taking its square root.
	Eps float64
	// RunningMean and RunningVar hold one value per channel; updates are
	// rounded to the dtype of the data normalised (float32 stays exact
	// through a float32 checkpoint).
	RunningMean, RunningVar []float64
	// NumBatchesTracked counts the training-mode runs.
	NumBatchesTracked int64
}

// NewBNState returns the PyTorch initial state for c channels: training
// mode, running mean 0, running variance 1, momentum 0.1, eps 1e-5.
func NewBNState(c int) *BNState {
	s := &BNState{
		Training:    true,
		Momentum:    DefaultBNMomentum,
		Eps:         DefaultBNEps,
		RunningMean: make([]float64, c),
		RunningVar:  make([]float64, c),
	}
	for i := range s.RunningVar {
		s.RunningVar[i] = 1
	}
	return s
}

// Channels returns the number of channels the state normalises.
func (s *BNState) Channels() int { return len(s.RunningMean) }

func (s *BNState) validate() error {
	switch {
	case s == nil:
		return fmt.Errorf("%w: nil batch-norm state", ErrArg)
	case len(s.RunningMean) != len(s.RunningVar) || len(s.RunningMean) == 0:
		return fmt.Errorf("%w: batch-norm running mean has %d channels, running variance %d", ErrArg, len(s.RunningMean), len(s.RunningVar))
	case !(s.Eps > 0) || !(s.Momentum >= 0 && s.Momentum <= 1):
		return fmt.Errorf("%w: batch-norm eps %g, momentum %g", ErrArg, s.Eps, s.Momentum)
	}
	return nil
}

// BatchNorm normalises x per channel and applies the affine gamma, beta [C]:
// y = (x-mean)/sqrt(var+eps)*gamma + beta. x is [N,C,H,W] or [N,C]. In
// training mode mean and var are the batch statistics (biased variance) and
// the running statistics are updated with the unbiased variance; in eval
// mode the running statistics are used and left alone (see BNState).
func BatchNorm(x, gamma, beta *G.Node, state *BNState) (*G.Node, error) {
	return batchNorm(x, gamma, beta, state, false)
}

// BatchNormReLU is ReLU(BatchNorm(x, gamma, beta)) in one op: the ReLU is
// applied as the normalised values are written, and its backward folds
// into batch norm's, which recomputes the sign from x, so the pair reads
// and writes two activations fewer each way than the two ops.
func BatchNormReLU(x, gamma, beta *G.Node, state *BNState) (*G.Node, error) {
	return batchNorm(x, gamma, beta, state, true)
}

func batchNorm(x, gamma, beta *G.Node, state *BNState, relu bool) (*G.Node, error) {
	if err := state.validate(); err != nil {
		return nil, err
	}
	if x == nil || gamma == nil || beta == nil {
		return nil, fmt.Errorf("%w: nil batch-norm input", ErrArg)
	}
	rank := x.Shape().Dims()
	if _, _, _, err := bnShape(x.Shape(), state.Channels()); err != nil {
		return nil, err
	}
	name := "BatchNorm(%d)"
	if relu {
		name = "BatchNormReLU(%d)"
	}
	op := &bnOp{opBase: newBase(name, state.Channels()), rank: rank, state: state, saved: &bnSaved{relu: relu}}
	return apply(op, x, gamma, beta)
}

// bnShape checks x [N,C,...] against c channels and returns N, C and the
// spatial size.
func bnShape(x tensor.Shape, c int) (n, ch, hw int, err error) {
	if d := x.Dims(); d != 2 && d != 4 {
		return 0, 0, 0, fmt.Errorf("%w: batch norm input %v must be 2-D or 4-D", ErrShape, x)
	}
	if x[1] != c {
		return 0, 0, 0, fmt.Errorf("%w: batch norm input %v has %d channels, state has %d", ErrShape, x, x[1], c)
	}
	hw = 1
	for _, d := range x[2:] {
		hw *= d
	}
	return x[0], c, hw, nil
}

// bnSaved passes the statistics a forward run used to its backward ops.
type bnSaved struct {
	training     bool
	relu         bool // the forward applied ReLU to its output
	mean, invStd []float64
	ch           []bnChannel // scale and shift: y = x*scale + shift before the ReLU
	sumDy        []float64   // per channel, from the backward's gamma pass
}

// affine is the normalisation of one value as the forward computes it;
// the backward of BatchNormReLU recomputes the ReLU's mask with it, so the
// two agree to the bit. The conversion keeps the compiler from fusing the
// multiply and add (GOAMD64=v3 would), so the assembly loops, which do
// not fuse them either, agree with it too.
func affine[T float](v T, scale, shift float64) T { return T(float64(float64(v)*scale) + shift) }

// bnChannel is one channel's coefficients and sums for the plane loops
// below; the assembly versions read its fields by offset (vec_amd64.s).
type bnChannel struct {
	center       float64 // moments: the shift k; centredDot: the mean
	scale, shift float64 // the forward's affine map, and the ReLU's mask
	a, b, k      float64 // gradX: dx = a*dy + b*x + k
	sum1, sum2   float64 // sums the reductions add to
}

// momentsPlanes adds the sums of x-center and (x-center)^2 of each plane
// to its channel's sum1 and sum2.
func momentsPlanes[T float](x []T, hw int, p []bnChannel) {
	if x32, v := vec32(x); v != nil {
		v.moments(x32, hw, p)
		return
	}
	for j := range p {
		a, b := shiftedMoments(x[j*hw:(j+1)*hw], p[j].center)
		p[j].sum1 += a
		p[j].sum2 += b
	}
}

// centredDotPlanes adds the sums of dy and dy*(x-center) of each plane to
// its channel's sum1 and sum2, dy cut where relu and the forward's ReLU
// was.
func centredDotPlanes[T float](x, dy []T, hw int, relu bool, p []bnChannel) {
	if x32, v := vec32(x); v != nil {
		v.centredDot(x32, any(dy).([]float32), hw, relu, p)
		return
	}
	for j := range p {
		q := &p[j]
		a, b := centredDotReLU(x[j*hw:(j+1)*hw], dy[j*hw:(j+1)*hw], q.center, q.scale, q.shift, relu)
		q.sum1 += a
		q.sum2 += b
	}
}

// normalizePlanes sets y to affine(x, scale, shift), cut at zero if relu.
func normalizePlanes[T float](y, x []T, hw int, relu bool, p []bnChannel) {
	if x32, v := vec32(x); v != nil {
		v.normalize(any(y).([]float32), x32, hw, relu, p)
		return
	}
	for j := range p {
		ys, xs := y[j*hw:(j+1)*hw], x[j*hw:(j+1)*hw]
		sc, sh := p[j].scale, p[j].shift
		if relu {
			for i, v := range xs {
				ys[i] = max(affine(v, sc, sh), 0)
			}
			continue
		}
		for i, v := range xs {
			ys[i] = affine(v, sc, sh)
		}
	}
}

// gradXPlanes sets dx to a*g + b*x + k, with g = dy where relu is false or
// affine(x, scale, shift) is positive, else 0.
func gradXPlanes[T float](dx, x, dy []T, hw int, relu bool, p []bnChannel) {
	if x32, v := vec32(x); v != nil {
		v.gradX(any(dx).([]float32), x32, any(dy).([]float32), hw, relu, p)
		return
	}
	for j := range p {
		q := &p[j]
		ds, dys := dx[j*hw:(j+1)*hw], dy[j*hw:(j+1)*hw]
		if relu {
			// Where the ReLU cut the output, dy does not reach y.
			for i, v := range x[j*hw : (j+1)*hw] {
				g := keepIf(float64(dys[i]), affine(v, q.scale, q.shift) > 0)
				ds[i] = T(q.a*g + q.b*float64(v) + q.k)
			}
			continue
		}
		for i, v := range x[j*hw : (j+1)*hw] {
			ds[i] = T(q.a*float64(dys[i]) + q.b*float64(v) + q.k)
		}
	}
}

// bnOp is the forward batch norm: (x, gamma, beta) -> y.
type bnOp struct {
	opBase
	rank  int
	state *BNState
	saved *bnSaved
	out   buffer
}

func (op *bnOp) outBuffer() *buffer { return &op.out }

func (op *bnOp) Arity() int         { return 3 }
func (op *bnOp) DiffWRT(int) []bool { return []bool{true, true, true} }

func (op *bnOp) Type() hm.Type { return fnType(op.rank, 1, 1, op.rank) }

func (op *bnOp) InferShape(ds ...G.DimSizer) (tensor.Shape, error) {
	s, err := shapes(3, ds)
	if err != nil {
		return nil, err
	}
	c := op.state.Channels()
	if _, _, _, err := bnShape(s[0], c); err != nil {
		return nil, err
	}
	for i, name := range [...]string{1: "gamma", 2: "beta"} {
		if i > 0 && !s[i].Eq(tensor.Shape{c}) {
			return nil, fmt.Errorf("%w: batch norm %s %v, want [%d]", ErrShape, name, s[i], c)
		}
	}
	return s[0].Clone(), nil
}

func (op *bnOp) Do(inputs ...G.Value) (G.Value, error) {
	c := op.state.Channels()
	in, err := denses(op, inputs, nil, tensor.Shape{c}, tensor.Shape{c})
	if err != nil {
		return nil, err
	}
	n, _, hw, err := bnShape(in[0].Shape(), c)
	if err != nil {
		return nil, err
	}
	st := op.state
	if err := st.validate(); err != nil {
		return nil, err
	}
	if st.Training && n*hw < 2 {
		return nil, fmt.Errorf("%w: batch norm in training mode needs more than one value per channel, got input %v", ErrShape, in[0].Shape())
	}
	sv := op.saved
	sv.training = st.Training
	sv.mean = resize(sv.mean, c)
	sv.invStd = resize(sv.invStd, c)
	y := op.out.get(in[0].Dtype(), in[0].Shape())
	if y.Dtype() == tensor.Float64 {
		bnForward(st, sv, n, c, hw, data[float64](in[0]), data[float64](in[1]), data[float64](in[2]), data[float64](y))
	} else {
		bnForward(st, sv, n, c, hw, data[float32](in[0]), data[float32](in[1]), data[float32](in[2]), data[float32](y))
	}
	return y, nil
}

// resize returns s with length n, reallocated only when its capacity is
// short (so the values it keeps are stale: callers set them).
func resize[E any](s []E, n int) []E {
	if cap(s) < n {
		return make([]E, n)
	}
	return s[:n]
}

// bnForward normalises x into y, recording the statistics used in sv and,
// in training mode, updating the running statistics of st. Sums are kept in
// float64 whatever T is.
func bnForward[T float](st *BNState, sv *bnSaved, n, c, hw int, x, gamma, beta, y []T) {
	sv.ch = resize(sv.ch, c)
	cnt := float64(n * hw)
	channelBlocks(n, c, hw, func(lo, hi int) {
		p := sv.ch[lo:hi]
		if st.Training {
			// One pass, shifted by each channel's first value.
			for j := range p {
				p[j] = bnChannel{center: float64(x[(lo+j)*hw])}
			}
			for i := range n {
				momentsPlanes(planes(x, i, c, hw, lo, hi), hw, p)
			}
		}
		for j := range p {
			q, ch := &p[j], lo+j
			mean, variance := st.RunningMean[ch], st.RunningVar[ch]
			if st.Training {
				d := q.sum1 / cnt
				mean = q.center + d
				variance = max(0, q.sum2/cnt-d*d)
				// The running statistics are rounded to T, as PyTorch keeps
				// them in the layer's dtype.
				m := st.Momentum
				st.RunningMean[ch] = float64(T((1-m)*st.RunningMean[ch] + m*mean))
				st.RunningVar[ch] = float64(T((1-m)*st.RunningVar[ch] + m*variance*cnt/(cnt-1)))
			}
			inv := 1 / math.Sqrt(variance+st.Eps)
			sv.mean[ch], sv.invStd[ch] = mean, inv
			q.scale = float64(gamma[ch]) * inv
			q.shift = float64(beta[ch]) - mean*q.scale
		}
		for i := range n {
			normalizePlanes(planes(y, i, c, hw, lo, hi), planes(x, i, c, hw, lo, hi), hw, sv.relu, p)
		}
	})
	if st.Training {
		st.NumBatchesTracked++
	}
}

func (op *bnOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	if len(inputs) != 3 {
		return nil, fmt.Errorf("%w: %v: %d inputs", ErrArg, op, len(inputs))
	}
	x, gamma := inputs[0], inputs[1]
	c := op.state.Channels()
	// One pass over x and dy sums dy*xhat for dgamma and dy for dbeta; the
	// beta op only hands over the second sum. The gamma op reads output only
	// to run after the forward it takes the statistics from; the x op reads
	// dgamma (and the dy sum) to reuse the sums. The x op is created before
	// the beta op on purpose: gorgonia orders ops by creation among equals,
	// and the other way round the buffer plan of ResNet-18 at batch 32 grew from
	// 468 to 548 MB.
	dgamma, err := apply(&bnGradGammaOp{opBase: newBase("BatchNormGradGamma(%d)", c), rank: op.rank, c: c, saved: op.saved}, x, output, grad)
	if err != nil {
		return nil, err
	}
	dx, err := apply(&bnGradXOp{opBase: newBase("BatchNormGradX(%d)", c), rank: op.rank, c: c, saved: op.saved}, x, gamma, grad, dgamma)
	if err != nil {
		return nil, err
	}
	dbeta, err := apply(&bnGradBetaOp{opBase: newBase("BatchNormGradBeta(%d)", c), c: c, saved: op.saved}, dgamma)
	if err != nil {
		return nil, err
	}
	return G.Nodes{dx, dgamma, dbeta}, nil
}

// bnGradBetaOp is dgamma -> dbeta = sum of dy per channel, summed by the
// gamma op whose result it takes (so that it runs after it).
type bnGradBetaOp struct {
	opBase
	c     int
	saved *bnSaved
	out   buffer
}

func (op *bnGradBetaOp) outBuffer() *buffer { return &op.out }

func (op *bnGradBetaOp) Arity() int { return 1 }

func (op *bnGradBetaOp) Type() hm.Type { return fnType(1, 1) }

func (op *bnGradBetaOp) InferShape(ds ...G.DimSizer) (tensor.Shape, error) {
	s, err := shapes(1, ds)
	if err != nil {
		return nil, err
	}
	if !s[0].Eq(tensor.Shape{op.c}) {
		return nil, fmt.Errorf("%w: %v: dgamma %v, want [%d]", ErrShape, op, s[0], op.c)
	}
	return tensor.Shape{op.c}, nil
}

func (op *bnGradBetaOp) Do(inputs ...G.Value) (G.Value, error) {
	in, err := denses(op, inputs, tensor.Shape{op.c})
	if err != nil {
		return nil, err
	}
	if len(op.saved.sumDy) != op.c {
		return nil, fmt.Errorf("%w: %v ran before its gamma op", ErrArg, op)
	}
	db := op.out.get(in[0].Dtype(), tensor.Shape{op.c})
	if db.Dtype() == tensor.Float64 {
		copyRounded(data[float64](db), op.saved.sumDy)
	} else {
		copyRounded(data[float32](db), op.saved.sumDy)
	}
	return db, nil
}

func copyRounded[T float](dst []T, src []float64) {
	for i, v := range src {
		dst[i] = T(v)
	}
}

// channelBlocks runs f on contiguous ranges of the channels of an
// [N,C,HW] tensor, one range per goroutine; f must touch only its range.
// Within a range the loops go image by image, each reading one contiguous
// run of its channels' planes: channel by channel, a plane of a few KB and
// then a jump of a whole image, the hardware prefetcher never settled and
// the loops read at half the speed.
func channelBlocks(n, c, hw int, f func(lo, hi int)) {
	parallelFor(c, parts(c, n*hw), func(_, lo, hi int) { f(lo, hi) })
}

// planes returns image i's planes of channels [lo, hi) in t [N,C,HW].
func planes[T float](t []T, i, c, hw, lo, hi int) []T {
	o := i * c * hw
	return t[o+lo*hw : o+hi*hw]
}

// bnGradGammaOp is (x, y, dy) -> dgamma = sum of dy*xhat per channel, with
// xhat = (x-mean)*invStd from the forward run; y is only a dependency.
type bnGradGammaOp struct {
	opBase
	rank  int
	c     int
	saved *bnSaved
	out   buffer
}

func (op *bnGradGammaOp) outBuffer() *buffer { return &op.out }

func (op *bnGradGammaOp) Arity() int { return 3 }

func (op *bnGradGammaOp) Type() hm.Type { return fnType(op.rank, op.rank, op.rank, 1) }

func (op *bnGradGammaOp) InferShape(ds ...G.DimSizer) (tensor.Shape, error) {
	s, err := shapes(3, ds)
	if err != nil {
		return nil, err
	}
	if _, _, _, err := bnShape(s[0], op.c); err != nil {
		return nil, err
	}
	if !s[1].Eq(s[0]) || !s[2].Eq(s[0]) {
		return nil, fmt.Errorf("%w: %v: input %v, output %v, gradient %v", ErrShape, op, s[0], s[1], s[2])
	}
	return tensor.Shape{op.c}, nil
}

func (op *bnGradGammaOp) Do(inputs ...G.Value) (G.Value, error) {
	in, err := denses(op, inputs)
	if err != nil {
		return nil, err
	}
	xs := in[0].Shape()
	n, c, hw, err := bnShape(xs, op.c)
	if err != nil {
		return nil, err
	}
	if !in[2].Shape().Eq(xs) {
		return nil, fmt.Errorf("%w: %v: gradient %v, input %v", ErrShape, op, in[2].Shape(), xs)
	}
	if len(op.saved.mean) != c {
		return nil, fmt.Errorf("%w: %v ran before its forward", ErrArg, op)
	}
	dg := op.out.get(in[0].Dtype(), tensor.Shape{c})
	if dg.Dtype() == tensor.Float64 {
		bnGradGamma(op.saved, n, c, hw, data[float64](in[0]), data[float64](in[2]), data[float64](dg))
	} else {
		bnGradGamma(op.saved, n, c, hw, data[float32](in[0]), data[float32](in[2]), data[float32](dg))
	}
	return dg, nil
}

func bnGradGamma[T float](sv *bnSaved, n, c, hw int, x, dy, out []T) {
	sv.sumDy = resize(sv.sumDy, c)
	channelBlocks(n, c, hw, func(lo, hi int) {
		p := sv.ch[lo:hi]
		for j := range p {
			p[j].center, p[j].sum1, p[j].sum2 = sv.mean[lo+j], 0, 0
		}
		for i := range n {
			centredDotPlanes(planes(x, i, c, hw, lo, hi), planes(dy, i, c, hw, lo, hi), hw, sv.relu, p)
		}
		for j, q := range p {
			sv.sumDy[lo+j] = q.sum1
			out[lo+j] = T(q.sum2 * sv.invStd[lo+j])
		}
	})
}

// bnGradXOp is (x, gamma, dy, dgamma) -> dx, with dbeta, the sum of dy,
// from the gamma op's pass. In training mode the batch statistics depend
// on x:
// dx = gamma*invStd/m * (m*dy - dbeta - xhat*dgamma), m = N*H*W;
// in eval mode dx = gamma*invStd*dy.
type bnGradXOp struct {
	opBase
	rank  int
	c     int
	saved *bnSaved
	out   buffer
}

func (op *bnGradXOp) outBuffer() *buffer { return &op.out }

func (op *bnGradXOp) Arity() int { return 4 }

func (op *bnGradXOp) Type() hm.Type { return fnType(op.rank, 1, op.rank, 1, op.rank) }

func (op *bnGradXOp) InferShape(ds ...G.DimSizer) (tensor.Shape, error) {
	s, err := shapes(4, ds)
	if err != nil {
		return nil, err
	}
	if _, _, _, err := bnShape(s[0], op.c); err != nil {
		return nil, err
	}
	if !s[2].Eq(s[0]) {
		return nil, fmt.Errorf("%w: %v: gradient %v, input %v", ErrShape, op, s[2], s[0])
	}
	return s[0].Clone(), nil
}

func (op *bnGradXOp) Do(inputs ...G.Value) (G.Value, error) {
	c := op.c
	vec := tensor.Shape{c}
	in, err := denses(op, inputs, nil, vec, nil, vec)
	if err != nil {
		return nil, err
	}
	xs := in[0].Shape()
	n, _, hw, err := bnShape(xs, c)
	if err != nil {
		return nil, err
	}
	if !in[2].Shape().Eq(xs) {
		return nil, fmt.Errorf("%w: %v: gradient %v, input %v", ErrShape, op, in[2].Shape(), xs)
	}
	if len(op.saved.mean) != c {
		return nil, fmt.Errorf("%w: %v ran before its forward", ErrArg, op)
	}
	dx := op.out.get(in[0].Dtype(), xs)
	if dx.Dtype() == tensor.Float64 {
		bnGradX(op.saved, n, c, hw, data[float64](in[0]), data[float64](in[1]), data[float64](in[2]), data[float64](in[3]), data[float64](dx))
	} else {
		bnGradX(op.saved, n, c, hw, data[float32](in[0]), data[float32](in[1]), data[float32](in[2]), data[float32](in[3]), data[float32](dx))
	}
	return dx, nil
}

func bnGradX[T float](sv *bnSaved, n, c, hw int, x, gamma, dy, dgamma, dx []T) {
	m := float64(n * hw)
	channelBlocks(n, c, hw, func(lo, hi int) {
		p := sv.ch[lo:hi]
		for j := range p {
			q, ch := &p[j], lo+j
			mean, inv := sv.mean[ch], sv.invStd[ch]
			scale := float64(gamma[ch]) * inv
			// dx = a*dy + b*x + k, folding the training-mode terms.
			q.a, q.b, q.k = scale, 0, 0
			if sv.training {
				dg, db := float64(dgamma[ch]), float64(T(sv.sumDy[ch]))
				q.b = -scale * dg * inv / m
				q.k = -scale*db/m - q.b*mean
			}
		}
		for i := range n {
			gradXPlanes(planes(dx, i, c, hw, lo, hi), planes(x, i, c, hw, lo, hi), planes(dy, i, c, hw, lo, hi), hw, sv.relu, p)
		}
	})
}
