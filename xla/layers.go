package xla

import (
	"math"

	S "github.com/gomlx/go-xla/pkg/stablehlo"
	"github.com/gomlx/go-xla/pkg/types/dtypes"
	"github.com/gomlx/go-xla/pkg/types/shapes"

	"github.com/supflow/supflow/model"
	"github.com/supflow/supflow/nn"
)

// net emits the network's forward pass and records, per op, how to emit
// its backward: a reverse-mode tape over program values.
type net struct {
	*fn
	params   map[string]*S.Value // state_dict name -> program input
	training bool
	// running holds each batch norm's running mean and variance: inputs,
	// replaced by the updated values in training mode.
	running map[string][2]*S.Value
	tape    []step
	grad    map[*S.Value]*S.Value
	noGrad  map[*S.Value]bool // values no gradient is wanted for (the images)
	// bf16 runs convolutions and matmuls (forward and backward) in
	// bfloat16 on bfloat16 copies of their float32 operands; everything
	// else, the parameters and their updates stay float32.
	bf16 bool
	// replicas is the number of data-parallel replicas; with syncBN the
	// batch norms' statistics (and their backward's sums) are all-reduced
	// over them, SyncBatchNorm, instead of per replica as in DDP.
	replicas int
	syncBN   bool
}

// allSum sums v over the replicas.
func (n *net) allSum(v *S.Value) *S.Value {
	dt := v.Shape().DType
	out, err := S.AllReduce([]*S.Value{v}, [][]int{n.group()}, n.binaryClosure(dt, S.Add))
	if err != nil {
		panic(buildError{err})
	}
	return out[0]
}

// batchSum is v summed over the replicas when the batch norms are
// synchronised.
func (n *net) batchSum(v *S.Value) *S.Value {
	if !n.syncBN {
		return v
	}
	return n.allSum(v)
}

// low is v in the precision of convolutions and matmuls.
func (n *net) low(v *S.Value) *S.Value {
	if !n.bf16 {
		return v
	}
	return must(S.Convert(v, dtypes.BFloat16))
}

// high is v back in the model's dtype.
func (n *net) high(v *S.Value) *S.Value {
	if !n.bf16 {
		return v
	}
	return must(S.Convert(v, n.dt))
}

// step is one recorded op: its output and its backward, which reads the
// gradient of out and accumulates into the gradients of the op's inputs.
type step struct {
	out  *S.Value
	back func(dy *S.Value)
}

func (n *net) record(out *S.Value, back func(dy *S.Value)) *S.Value {
	n.tape = append(n.tape, step{out, back})
	return out
}

// accumulate adds g to the gradient of v.
func (n *net) accumulate(v, g *S.Value) {
	if n.noGrad[v] {
		return
	}
	if old, ok := n.grad[v]; ok {
		g = add(old, g)
	}
	n.grad[v] = g
}

// backward seeds the gradient of out with g and runs the tape backwards.
func (n *net) backward(out, g *S.Value) {
	n.grad = map[*S.Value]*S.Value{out: g}
	for i := len(n.tape) - 1; i >= 0; i-- {
		if dy, ok := n.grad[n.tape[i].out]; ok {
			n.tape[i].back(dy)
		}
	}
}

func (n *net) conv(x *S.Value, c model.Conv) *S.Value {
	w := n.params[c.Name+".weight"]
	d := dims(x)
	xl, wl := n.low(x), n.low(w)
	return n.record(n.high(conv(xl, wl, c.Stride, c.Pad)), func(dy *S.Value) {
		dyl := n.low(dy)
		n.accumulate(w, n.high(convWeightGrad(xl, dyl, c.Stride, c.Pad, c.Kernel)))
		if !n.noGrad[x] {
			n.accumulate(x, n.high(convInputGrad(dyl, wl, c.Stride, c.Pad, d[2], d[3])))
		}
	})
}

// batchNorm normalises x [N,C,H,W] per channel: with the batch's mean and
// biased variance in training mode (updating the running statistics as
// nn does: momentum nn.DefaultBNMomentum, the unbiased variance), with the
// running statistics in eval mode; eps nn.DefaultBNEps.
func (n *net) batchNorm(x *S.Value, bn model.BatchNorm) *S.Value {
	gamma, beta := n.params[bn.Name+".weight"], n.params[bn.Name+".bias"]
	run := n.running[bn.Name]
	d := dims(x)
	chans := func(v *S.Value) *S.Value { return bcast(v, d, 1) }
	if !n.training {
		inv := must(S.Rsqrt(add(run[1], n.like(run[1], nn.DefaultBNEps))))
		scale := mul(gamma, inv)
		shift := sub(beta, mul(run[0], scale))
		return add(mul(x, chans(scale)), chans(shift))
	}
	cnt := float64(d[0] * d[2] * d[3])
	if n.syncBN {
		cnt *= float64(n.replicas)
	}
	mean := mul(n.batchSum(n.sum(x, 0, 2, 3)), n.like(gamma, 1/cnt))
	xc := sub(x, chans(mean))
	variance := mul(n.batchSum(n.sum(mul(xc, xc), 0, 2, 3)), n.like(gamma, 1/cnt))
	inv := must(S.Rsqrt(add(variance, n.like(variance, nn.DefaultBNEps))))
	xhat := mul(xc, chans(inv))
	m := nn.DefaultBNMomentum
	n.running[bn.Name] = [2]*S.Value{
		add(mul(run[0], n.like(run[0], 1-m)), mul(mean, n.like(mean, m))),
		add(mul(run[1], n.like(run[1], 1-m)), mul(variance, n.like(variance, m*cnt/(cnt-1)))),
	}
	y := add(mul(xhat, chans(gamma)), chans(beta))
	return n.record(y, func(dy *S.Value) {
		dbeta := n.sum(dy, 0, 2, 3)
		dgamma := n.sum(mul(dy, xhat), 0, 2, 3)
		// The parameters' gradients are this replica's part; dx needs the
		// whole batch's sums.
		n.accumulate(gamma, dgamma)
		n.accumulate(beta, dbeta)
		dbeta, dgamma = n.batchSum(dbeta), n.batchSum(dgamma)
		// dx = gamma*inv/cnt * (cnt*dy - dbeta - xhat*dgamma)
		k := mul(mul(gamma, inv), n.like(gamma, 1/cnt))
		inner := sub(sub(mul(dy, n.like(dy, cnt)), chans(dbeta)), mul(xhat, chans(dgamma)))
		n.accumulate(x, mul(inner, chans(k)))
	})
}

// relu is max(x, 0); its derivative is 0 at 0, as PyTorch's.
func (n *net) relu(x *S.Value) *S.Value {
	zero := n.like(x, 0)
	y := must(S.Maximum(x, zero))
	return n.record(y, func(dy *S.Value) {
		n.accumulate(x, sel(cmp(y, zero, gt), dy, zero))
	})
}

func (n *net) add(x, y *S.Value) *S.Value {
	return n.record(add(x, y), func(dy *S.Value) {
		n.accumulate(x, dy)
		n.accumulate(y, dy)
	})
}

// maxPool is the 3x3 stride-2 max-pool with padding 1 of the ImageNet
// stem; its gradient goes to the first maximum of each window, as
// PyTorch's does.
func (n *net) maxPool(x *S.Value) *S.Value {
	dt := x.Shape().DType
	win, str, pad := []int{1, 1, 3, 3}, []int{1, 1, 2, 2}, [][2]int{{0, 0}, {0, 0}, {1, 1}, {1, 1}}
	y := must(S.ReduceWindow(x, n.scalarOf(dt, math.Inf(-1)), n.binaryClosure(dt, S.Maximum), win, str, nil, nil, pad))
	return n.record(y, func(dy *S.Value) {
		ge := n.f.Closure()
		a := must(ge.NamedInput("a", shapes.Make(dt)))
		b := must(ge.NamedInput("b", shapes.Make(dt)))
		if err := ge.Return(cmp(a, b, geq)); err != nil {
			panic(buildError{err})
		}
		n.accumulate(x, must(S.SelectAndScatter(x, dy, n.scalarOf(dt, 0), ge, n.binaryClosure(dt, S.Add), win, str, pad)))
	})
}

// avgPool is the global average pool [N,C,H,W] -> [N,C].
func (n *net) avgPool(x *S.Value) *S.Value {
	d := dims(x)
	hw := float64(d[2] * d[3])
	y := n.sum(x, 2, 3)
	y = mul(y, n.like(y, 1/hw))
	return n.record(y, func(dy *S.Value) {
		n.accumulate(x, bcast(mul(dy, n.like(dy, 1/hw)), d, 0, 1))
	})
}

// linear is x Wᵀ + b for x [N,in].
func (n *net) linear(x *S.Value, l model.Linear) *S.Value {
	w, b := n.params[l.Name+".weight"], n.params[l.Name+".bias"]
	xl, wl := n.low(x), n.low(w)
	y := n.high(matmul(xl, 1, wl, 1))
	y = add(y, bcast(b, dims(y), 1))
	return n.record(y, func(dy *S.Value) {
		dyl := n.low(dy)
		n.accumulate(w, n.high(matmul(dyl, 0, xl, 0)))
		n.accumulate(b, n.sum(dy, 0))
		n.accumulate(x, n.high(matmul(dyl, 1, wl, 0)))
	})
}

// l2Normalize divides each row of h [N,D] by max(‖row‖, 1e-12), PyTorch's
// F.normalize.
func (n *net) l2Normalize(h *S.Value) *S.Value {
	const eps = 1e-12
	d := dims(h)
	rows := func(v *S.Value) *S.Value { return bcast(v, d, 0) }
	norm := must(S.Sqrt(n.sum(mul(h, h), 1)))
	den := must(S.Maximum(norm, n.like(norm, eps)))
	z := div(h, rows(den))
	return n.record(z, func(dz *S.Value) {
		// Where the norm is clamped the denominator is a constant.
		dot := n.sum(mul(z, dz), 1)
		dot = sel(cmp(norm, n.like(norm, eps), gt), dot, n.like(dot, 0))
		n.accumulate(h, div(sub(dz, mul(z, rows(dot))), rows(den)))
	})
}

// Outputs of a forward pass.
type forward struct {
	encoder, head, features *S.Value
}

// forward emits the network of a on images x [N,C,H,W].
func (n *net) forward(a model.Arch, x *S.Value) forward {
	y := n.relu(n.batchNorm(n.conv(x, a.Stem), a.StemBN))
	if a.MaxPool {
		y = n.maxPool(y)
	}
	for _, b := range a.Blocks {
		r := y
		for i := range b.Convs {
			r = n.batchNorm(n.conv(r, b.Convs[i]), b.BNs[i])
			if i < len(b.Convs)-1 {
				r = n.relu(r)
			}
		}
		sc := y
		if b.Shortcut != nil {
			sc = n.batchNorm(n.conv(y, *b.Shortcut), b.ShortcutBN)
		}
		y = n.relu(n.add(r, sc))
	}
	var out forward
	out.encoder = n.avgPool(y)
	h := out.encoder
	for i, l := range a.Head {
		if i > 0 {
			h = n.relu(h)
		}
		h = n.linear(h, l)
	}
	out.head = h
	out.features = n.l2Normalize(h)
	return out
}

// gather all-gathers each replica's view-major features [V*b,D] into the
// whole batch's, view-major over the replicas' samples (sample r*b+i is
// replica r's sample i).
func (n *net) gather(z *S.Value, views int) *S.Value {
	d := dims(z)
	b := d[0] / views
	all := must(S.AllGather(z, [][]int{n.group()}, 0))
	all = must(S.Reshape(all, shapes.Make(n.dt, n.replicas, views, b, d[1])))
	all = must(S.Transpose(all, 1, 0, 2, 3))
	return must(S.Reshape(all, shapes.Make(n.dt, n.replicas*d[0], d[1])))
}

// gatherLabels all-gathers the replicas' labels in sample order.
func (n *net) gatherLabels(l *S.Value) *S.Value {
	return must(S.AllGather(l, [][]int{n.group()}, 0))
}

// scatter is the inverse of gather for replica's rows: its view-major
// [V*b,D] part of dz [V*R*b,D].
func (n *net) scatter(dz *S.Value, views int, replica *S.Value) *S.Value {
	d := dims(dz)
	b := d[0] / views / n.replicas
	x := must(S.Reshape(dz, shapes.Make(n.dt, views, n.replicas, b, d[1])))
	x = must(S.Transpose(x, 1, 0, 2, 3))
	zero := must(n.f.ConstantFromScalar(int32(0)))
	x = must(S.DynamicSlice(x, []*S.Value{replica, zero, zero, zero}, []int{1, views, b, d[1]}))
	return must(S.Reshape(x, shapes.Make(n.dt, views*b, d[1])))
}

// group is the one replica group: all of them.
func (n *net) group() []int {
	g := make([]int, n.replicas)
	for i := range g {
		g[i] = i
	}
	return g
}
