package hloeval

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
)

// constant reads dense<v> or dense<[...]> : tensor<...>; one value fills
// the tensor.
func constant(attr string, out Type) (*Tensor, error) {
	body, ok := strings.CutPrefix(attr, "dense<")
	if !ok {
		return nil, fmt.Errorf("constant %q", attr)
	}
	if i := strings.LastIndex(body, "> :"); i >= 0 {
		body = body[:i]
	}
	fields := strings.FieldsFunc(body, func(r rune) bool { return r == '[' || r == ']' || r == ',' || r == ' ' || r == '\n' })
	vals := make([]float64, len(fields))
	for i, f := range fields {
		v, err := literal(f, out.DType)
		if err != nil {
			return nil, err
		}
		vals[i] = v
	}
	r := newLike(out)
	switch len(vals) {
	case 1:
		for i := range r.Data {
			r.Data[i] = vals[0]
		}
	case len(r.Data):
		copy(r.Data, vals)
	default:
		return nil, fmt.Errorf("constant of %d values for %v", len(vals), out)
	}
	return r, nil
}

// literal parses one element: a decimal, true/false, or the hexadecimal
// bits of a float of dtype.
func literal(f, dtype string) (float64, error) {
	switch f {
	case "true":
		return 1, nil
	case "false":
		return 0, nil
	}
	if h, ok := strings.CutPrefix(f, "0x"); ok {
		bits, err := strconv.ParseUint(h, 16, 64)
		if err != nil {
			return 0, err
		}
		switch dtype {
		case "f64":
			return math.Float64frombits(bits), nil
		case "f32":
			return float64(math.Float32frombits(uint32(bits))), nil
		case "bf16":
			return float64(math.Float32frombits(uint32(bits) << 16)), nil
		}
		return float64(bits), nil
	}
	return strconv.ParseFloat(f, 64)
}

var directionRe = regexp.MustCompile(`comparison_direction (\w+)`)

func compare(s *stmt, in []*Tensor, out Type) (*Tensor, error) {
	m := directionRe.FindStringSubmatch(s.attrs["comparison_direction"])
	if m == nil {
		return nil, fmt.Errorf("comparison direction %q", s.attrs["comparison_direction"])
	}
	f, ok := comparisons[m[1]]
	if !ok {
		return nil, fmt.Errorf("comparison %s", m[1])
	}
	r := newLike(out)
	for i := range r.Data {
		r.Data[i] = b2f(f(in[0].Data[i], in[1].Data[i]))
	}
	return r, nil
}

var comparisons = map[string]func(x, y float64) bool{
	"EQ": func(x, y float64) bool { return x == y },
	"NE": func(x, y float64) bool { return x != y },
	"LT": func(x, y float64) bool { return x < y },
	"LE": func(x, y float64) bool { return x <= y },
	"GT": func(x, y float64) bool { return x > y },
	"GE": func(x, y float64) bool { return x >= y },
}

func broadcast(x *Tensor, axes []int, out Type) *Tensor {
	r := newLike(out)
	xs := strides(x.Dims)
	idx := make([]int, len(out.Dims))
	for i := range r.Data {
		off := 0
		for j, a := range axes {
			if x.Dims[j] != 1 {
				off += idx[a] * xs[j]
			}
		}
		r.Data[i] = x.Data[off]
		next(idx, out.Dims)
	}
	return r
}

func transpose(x *Tensor, perm []int, out Type) *Tensor {
	r := newLike(out)
	xs := strides(x.Dims)
	idx := make([]int, len(out.Dims))
	for i := range r.Data {
		off := 0
		for j, p := range perm {
			off += idx[j] * xs[p]
		}
		r.Data[i] = x.Data[off]
		next(idx, out.Dims)
	}
	return r
}

func concatenate(s *stmt, in []*Tensor, out Type) (*Tensor, error) {
	axis, err := attrInts(s, "dimension")
	if err != nil {
		return nil, err
	}
	return concatAt(in, axis[0], out), nil
}

// concatAt concatenates in along axis a.
func concatAt(in []*Tensor, a int, out Type) *Tensor {
	r := newLike(out)
	outer := 1
	for _, d := range out.Dims[:a] {
		outer *= d
	}
	pos := 0
	for o := range outer {
		for _, t := range in {
			chunk := t.size() / outer
			copy(r.Data[pos:pos+chunk], t.Data[o*chunk:(o+1)*chunk])
			pos += chunk
		}
	}
	return r
}

func slice(s *stmt, x *Tensor, out Type) (*Tensor, error) {
	start, err := attrInts(s, "start_indices")
	if err != nil {
		return nil, err
	}
	step, err := attrInts(s, "strides")
	if err != nil {
		return nil, err
	}
	return sliceAt(x, start, step, out), nil
}

// sliceAt reads the block of out's shape starting at start with strides step.
func sliceAt(x *Tensor, start, step []int, out Type) *Tensor {
	r := newLike(out)
	xs := strides(x.Dims)
	idx := make([]int, len(out.Dims))
	for i := range r.Data {
		off := 0
		for j := range idx {
			off += (start[j] + idx[j]*step[j]) * xs[j]
		}
		r.Data[i] = x.Data[off]
		next(idx, out.Dims)
	}
	return r
}

func reverse(x *Tensor, axes []int) *Tensor {
	r := newLike(x.Type)
	xs := strides(x.Dims)
	idx := make([]int, len(x.Dims))
	for i := range r.Data {
		off := 0
		for j := range idx {
			k := idx[j]
			for _, a := range axes {
				if a == j {
					k = x.Dims[j] - 1 - k
				}
			}
			off += k * xs[j]
		}
		r.Data[i] = x.Data[off]
		next(idx, x.Dims)
	}
	return r
}

// reducer returns the binary op a region applies: its body must be one
// elementwise op on its two arguments, then the return.
func reducer(r *function) (func(x, y float64) float64, error) {
	if len(r.body) != 2 || len(r.args) != 2 {
		return nil, fmt.Errorf("reduction region of %d statements", len(r.body))
	}
	f, ok := binary[r.body[0].op]
	if !ok || r.body[0].operands[0] != r.args[0] || r.body[0].operands[1] != r.args[1] {
		return nil, fmt.Errorf("reduction by %s", r.body[0].op)
	}
	return f, nil
}

func reduce(s *stmt, in []*Tensor, out Type) (*Tensor, error) {
	if len(in) != 2 || len(s.regions) != 1 {
		return nil, fmt.Errorf("variadic reduce")
	}
	f, err := reducer(s.regions[0])
	if err != nil {
		return nil, err
	}
	axes, err := attrInts(s, "dimensions")
	if err != nil {
		return nil, err
	}
	x := in[0]
	reduced := make([]bool, len(x.Dims))
	for _, a := range axes {
		reduced[a] = true
	}
	r := newLike(out)
	for i := range r.Data {
		r.Data[i] = in[1].Data[0]
	}
	os := strides(out.Dims)
	idx := make([]int, len(x.Dims))
	for _, v := range x.Data {
		off, k := 0, 0
		for j, ix := range idx {
			if !reduced[j] {
				off += ix * os[k]
				k++
			}
		}
		r.Data[off] = f(r.Data[off], v)
		next(idx, x.Dims)
	}
	return r, nil
}

// window reads the window attributes of reduce_window and
// select_and_scatter; dilations must be 1.
func window(s *stmt, rank int) (dims, str, padLo []int, err error) {
	if dims, err = attrInts(s, "window_dimensions"); err != nil {
		return
	}
	if str, err = attrInts(s, "window_strides"); err != nil {
		return
	}
	pad, err := attrInts(s, "padding")
	if err != nil {
		return
	}
	for _, key := range []string{"base_dilations", "window_dilations"} {
		if a, ok := s.attrs[key]; ok {
			for _, d := range ints(a) {
				if d != 1 {
					return nil, nil, nil, fmt.Errorf("%s %v", key, ints(a))
				}
			}
		}
	}
	if len(dims) != rank || len(str) != rank || len(pad) != 2*rank {
		return nil, nil, nil, fmt.Errorf("window of rank %d for rank %d", len(dims), rank)
	}
	padLo = make([]int, rank)
	for i := range padLo {
		padLo[i] = pad[2*i]
	}
	return dims, str, padLo, nil
}

// windowOffsets visits the operand positions inside the window at output
// index o, in row-major window order, skipping padding.
func windowOffsets(o, wdims, str, padLo, xdims, xs []int, visit func(off int)) {
	w := make([]int, len(wdims))
	for {
		off, ok := 0, true
		for j := range w {
			p := o[j]*str[j] + w[j] - padLo[j]
			if p < 0 || p >= xdims[j] {
				ok = false
				break
			}
			off += p * xs[j]
		}
		if ok {
			visit(off)
		}
		if !next(w, wdims) {
			return
		}
	}
}

func reduceWindow(s *stmt, in []*Tensor, out Type) (*Tensor, error) {
	if len(in) != 2 || len(s.regions) != 1 {
		return nil, fmt.Errorf("variadic reduce_window")
	}
	f, err := reducer(s.regions[0])
	if err != nil {
		return nil, err
	}
	x := in[0]
	wdims, str, padLo, err := window(s, len(x.Dims))
	if err != nil {
		return nil, err
	}
	r := newLike(out)
	xs := strides(x.Dims)
	o := make([]int, len(out.Dims))
	for i := range r.Data {
		acc := in[1].Data[0]
		windowOffsets(o, wdims, str, padLo, x.Dims, xs, func(off int) { acc = f(acc, x.Data[off]) })
		r.Data[i] = acc
		next(o, out.Dims)
	}
	return r, nil
}

// selectAndScatter: per window of the operand (padding never selected), the
// element the select region picks (it keeps the current one while
// select(current, candidate) holds) receives the source value through the
// scatter region; everything else is the initial value.
func selectAndScatter(s *stmt, in []*Tensor, out Type) (*Tensor, error) {
	if len(s.regions) != 2 || len(s.regions[0].body) != 2 || s.regions[0].body[0].op != "compare" {
		return nil, fmt.Errorf("select region")
	}
	m := directionRe.FindStringSubmatch(s.regions[0].body[0].attrs["comparison_direction"])
	if m == nil {
		return nil, fmt.Errorf("select comparison")
	}
	keep := comparisons[m[1]]
	scatter, err := reducer(s.regions[1])
	if err != nil {
		return nil, err
	}
	x, src := in[0], in[1]
	wdims, str, padLo, err := window(s, len(x.Dims))
	if err != nil {
		return nil, err
	}
	r := newLike(out)
	for i := range r.Data {
		r.Data[i] = in[2].Data[0]
	}
	xs := strides(x.Dims)
	o := make([]int, len(src.Dims))
	for _, v := range src.Data {
		chosen := -1
		windowOffsets(o, wdims, str, padLo, x.Dims, xs, func(off int) {
			if chosen < 0 || !keep(x.Data[chosen], x.Data[off]) {
				chosen = off
			}
		})
		if chosen >= 0 {
			r.Data[chosen] = scatter(r.Data[chosen], v)
		}
		next(o, src.Dims)
	}
	return r, nil
}

var dotRe = regexp.MustCompile(`(\w+_dimensions) = \[([\d, ]*)\]`)

func dotGeneral(s *stmt, in []*Tensor, out Type) (*Tensor, error) {
	d := map[string][]int{}
	for _, m := range dotRe.FindAllStringSubmatch(s.attrs["dot_dimension_numbers"], -1) {
		d[m[1]] = ints(m[2])
	}
	lb, rb := d["lhs_batching_dimensions"], d["rhs_batching_dimensions"]
	lc, rc := d["lhs_contracting_dimensions"], d["rhs_contracting_dimensions"]
	x, y := in[0], in[1]
	free := func(rank int, used ...[]int) []int {
		var f []int
		for a := range rank {
			u := false
			for _, l := range used {
				for _, b := range l {
					u = u || a == b
				}
			}
			if !u {
				f = append(f, a)
			}
		}
		return f
	}
	lf, rf := free(len(x.Dims), lb, lc), free(len(y.Dims), rb, rc)
	xs, ys := strides(x.Dims), strides(y.Dims)
	cdims := make([]int, len(lc))
	for i, a := range lc {
		cdims[i] = x.Dims[a]
	}
	r := newLike(out)
	o := make([]int, len(out.Dims))
	c := make([]int, len(lc))
	for i := range r.Data {
		xo, yo := 0, 0
		k := 0
		for j := range lb {
			xo += o[k] * xs[lb[j]]
			yo += o[k] * ys[rb[j]]
			k++
		}
		for _, a := range lf {
			xo += o[k] * xs[a]
			k++
		}
		for _, a := range rf {
			yo += o[k] * ys[a]
			k++
		}
		var acc float64
		for j := range c {
			c[j] = 0
		}
		for {
			xi, yi := xo, yo
			for j := range c {
				xi += c[j] * xs[lc[j]]
				yi += c[j] * ys[rc[j]]
			}
			acc += x.Data[xi] * y.Data[yi]
			if !next(c, cdims) {
				break
			}
		}
		r.Data[i] = acc
		next(o, out.Dims)
	}
	return r, nil
}

var convRe = regexp.MustCompile(`\[([^\]]*)\]x\[([^\]]*)\]->\[([^\]]*)\]`)

// layout maps the labels of one dimension_numbers list to axes.
func layout(list string) map[string]int {
	m := map[string]int{}
	for i, f := range strings.Split(list, ",") {
		m[strings.TrimSpace(f)] = i
	}
	return m
}

// convolution supports two spatial dimensions, any dimension numbers,
// strides, padding (negative too), lhs and rhs dilation; no groups, no
// window reversal.
func convolution(s *stmt, in []*Tensor, out Type) (*Tensor, error) {
	m := convRe.FindStringSubmatch(s.attrs["dimension_numbers"])
	if m == nil {
		return nil, fmt.Errorf("dimension numbers %q", s.attrs["dimension_numbers"])
	}
	li, ki, oi := layout(m[1]), layout(m[2]), layout(m[3])
	for _, key := range []string{"feature_group_count", "batch_group_count"} {
		if v := ints(s.attrs[key]); len(v) != 1 || v[0] != 1 {
			return nil, fmt.Errorf("%s %v", key, s.attrs[key])
		}
	}
	if strings.Contains(s.attrs["window_reversal"], "true") {
		return nil, fmt.Errorf("window reversal")
	}
	str, pad, ld, rd := ints(s.attrs["window_strides"]), ints(s.attrs["padding"]), ints(s.attrs["lhs_dilation"]), ints(s.attrs["rhs_dilation"])
	if len(li) != 4 || len(str) != 2 || len(pad) != 4 || len(ld) != 2 || len(rd) != 2 {
		return nil, fmt.Errorf("only 2-d convolutions")
	}
	x, w := in[0], in[1]
	xs, ws, os := strides(x.Dims), strides(w.Dims), strides(out.Dims)
	// Strides of each role: batch, feature, spatial 0 and 1.
	xb, xf, x0, x1 := xs[li["b"]], xs[li["f"]], xs[li["0"]], xs[li["1"]]
	wo, wi, w0, w1 := ws[ki["o"]], ws[ki["i"]], ws[ki["0"]], ws[ki["1"]]
	ob, of, o0, o1 := os[oi["b"]], os[oi["f"]], os[oi["0"]], os[oi["1"]]
	batch, feat := out.Dims[oi["b"]], out.Dims[oi["f"]]
	cin := x.Dims[li["f"]]
	xh, xw := x.Dims[li["0"]], x.Dims[li["1"]]
	kh, kw := w.Dims[ki["0"]], w.Dims[ki["1"]]
	oh, ow := out.Dims[oi["0"]], out.Dims[oi["1"]]
	r := newLike(out)
	for b := range batch {
		for f := range feat {
			for y0 := range oh {
				for y1 := range ow {
					var acc float64
					for u := range kh {
						p0 := y0*str[0] + u*rd[0] - pad[0]
						if p0 < 0 || p0%ld[0] != 0 || p0/ld[0] >= xh {
							continue
						}
						for v := range kw {
							p1 := y1*str[1] + v*rd[1] - pad[2]
							if p1 < 0 || p1%ld[1] != 0 || p1/ld[1] >= xw {
								continue
							}
							xo := b*xb + (p0/ld[0])*x0 + (p1/ld[1])*x1
							wk := f*wo + u*w0 + v*w1
							for c := range cin {
								acc += x.Data[xo+c*xf] * w.Data[wk+c*wi]
							}
						}
					}
					r.Data[b*ob+f*of+y0*o0+y1*o1] = acc
				}
			}
		}
	}
	return r, nil
}

// oneGroup checks that replica_groups is one group of all n replicas, the
// only grouping the evaluator runs.
func oneGroup(s *stmt, n int) error {
	g := ints(s.attrs["replica_groups"])
	if len(g) != n {
		return fmt.Errorf("replica groups %s for %d replicas", s.attrs["replica_groups"], n)
	}
	for i, r := range g {
		if r != i {
			return fmt.Errorf("replica groups %s", s.attrs["replica_groups"])
		}
	}
	return nil
}

func allReduce(s *stmt, in [][]*Tensor) (*Tensor, error) {
	if len(in[0]) != 1 || len(s.regions) != 1 {
		return nil, fmt.Errorf("variadic all_reduce")
	}
	if err := oneGroup(s, len(in)); err != nil {
		return nil, err
	}
	f, err := reducer(s.regions[0])
	if err != nil {
		return nil, err
	}
	r := newLike(in[0][0].Type)
	copy(r.Data, in[0][0].Data)
	for _, rep := range in[1:] {
		for i, v := range rep[0].Data {
			r.Data[i] = f(r.Data[i], v)
		}
	}
	return r, nil
}

// allGather concatenates every replica's operand along all_gather_dim, in
// replica order.
func allGather(s *stmt, in [][]*Tensor) (*Tensor, error) {
	if err := oneGroup(s, len(in)); err != nil {
		return nil, err
	}
	parts := make([]*Tensor, len(in))
	for r := range in {
		parts[r] = in[r][0]
	}
	t := parts[0].Type
	axis := ints(s.attrs["all_gather_dim"])
	if len(axis) != 1 {
		return nil, fmt.Errorf("all_gather_dim %q", s.attrs["all_gather_dim"])
	}
	out := Type{DType: t.DType, Dims: append([]int{}, t.Dims...)}
	out.Dims[axis[0]] *= len(in)
	return concatAt(parts, axis[0], out), nil
}

// dynamicSlice reads a slice_sizes block starting at the scalar operands
// (clamped into the operand, as StableHLO specifies).
func dynamicSlice(s *stmt, in []*Tensor, out Type) (*Tensor, error) {
	x := in[0]
	start := make([]int, len(x.Dims))
	for i := range start {
		start[i] = min(max(int(in[1+i].Data[0]), 0), x.Dims[i]-out.Dims[i])
	}
	step := make([]int, len(start))
	for i := range step {
		step[i] = 1
	}
	return sliceAt(x, start, step, out), nil
}
