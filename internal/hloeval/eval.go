package hloeval

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
)

// Tensor is a value: its type and its elements in row-major order, held as
// float64 whatever the element type (integers and booleans exactly).
type Tensor struct {
	Type
	Data []float64
}

// New returns a tensor of dtype and dims holding data (not copied).
func New(dtype string, data []float64, dims ...int) *Tensor {
	return &Tensor{Type: Type{DType: dtype, Dims: append([]int{}, dims...)}, Data: data}
}

// Program is a parsed module.
type Program struct{ main *function }

// Inputs returns the types of main's arguments.
func (p *Program) Inputs() []Type { return p.main.argTypes }

// Run executes main on args, which must match its argument types.
func (p *Program) Run(args ...*Tensor) ([]*Tensor, error) {
	out, err := p.RunReplicas([][]*Tensor{args})
	if err != nil {
		return nil, err
	}
	return out[0], nil
}

// RunReplicas executes main once per replica, args[r] being replica r's
// arguments, in lockstep: collectives (all_reduce, all_gather over one
// group of all replicas) see every replica's operand.
func (p *Program) RunReplicas(args [][]*Tensor) ([][]*Tensor, error) {
	f := p.main
	envs := make([]map[string]*Tensor, len(args))
	for r, a := range args {
		if len(a) != len(f.args) {
			return nil, fmt.Errorf("%w: %d arguments, want %d", ErrProgram, len(a), len(f.args))
		}
		envs[r] = make(map[string]*Tensor, len(f.body)+len(a))
		for i, t := range a {
			if !sameType(t.Type, f.argTypes[i]) || len(t.Data) != t.size() {
				return nil, fmt.Errorf("%w: argument %d is %v with %d values, want %v", ErrProgram, i, t.Type, len(t.Data), f.argTypes[i])
			}
			envs[r][f.args[i]] = t
		}
	}
	for _, s := range f.body {
		in := make([][]*Tensor, len(envs))
		for r, env := range envs {
			in[r] = make([]*Tensor, len(s.operands))
			for i, name := range s.operands {
				v, ok := env[name]
				if !ok {
					return nil, fmt.Errorf("%w: %s reads undefined %%%s", ErrProgram, s.op, name)
				}
				in[r][i] = v
			}
		}
		if s.op == "return" {
			return in, nil
		}
		for r, env := range envs {
			out, err := p.step(&s, in, r)
			if err != nil {
				return nil, fmt.Errorf("%w: %s -> %%%s: %w", ErrProgram, s.op, strings.Join(s.results, ","), err)
			}
			if !sameType(out.Type, s.outTypes[0]) {
				return nil, fmt.Errorf("%w: %s computed %v, declared %v", ErrProgram, s.op, out.Type, s.outTypes[0])
			}
			round(out)
			env[s.results[0]] = out
		}
	}
	return nil, fmt.Errorf("%w: body without return", ErrProgram)
}

// step computes statement s for replica r; in holds every replica's
// operands.
func (p *Program) step(s *stmt, in [][]*Tensor, r int) (*Tensor, error) {
	switch s.op {
	case "all_reduce":
		return allReduce(s, in)
	case "all_gather":
		return allGather(s, in)
	}
	return apply(s, in[r])
}

func sameType(a, b Type) bool {
	if a.DType != b.DType || len(a.Dims) != len(b.Dims) {
		return false
	}
	for i := range a.Dims {
		if a.Dims[i] != b.Dims[i] {
			return false
		}
	}
	return true
}

// round rounds t's elements to its element type.
func round(t *Tensor) {
	switch t.DType {
	case "f32":
		for i, v := range t.Data {
			t.Data[i] = float64(float32(v))
		}
	case "bf16":
		for i, v := range t.Data {
			t.Data[i] = roundBF16(v)
		}
	}
}

// roundBF16 rounds to bfloat16, nearest even (NaN stays NaN).
func roundBF16(v float64) float64 {
	f := float32(v)
	if f != f {
		return v
	}
	b := math.Float32bits(f)
	b += 0x7fff + (b>>16)&1
	return float64(math.Float32frombits(b &^ 0xffff))
}

// strides returns row-major strides of dims.
func strides(dims []int) []int {
	s := make([]int, len(dims))
	n := 1
	for i := len(dims) - 1; i >= 0; i-- {
		s[i] = n
		n *= dims[i]
	}
	return s
}

// next advances a multi-index over dims; false after the last.
func next(idx, dims []int) bool {
	for i := len(idx) - 1; i >= 0; i-- {
		idx[i]++
		if idx[i] < dims[i] {
			return true
		}
		idx[i] = 0
	}
	return false
}

var intRe = regexp.MustCompile(`-?\d+`)

// ints reads every integer of an attribute such as array<i64: 1, 2> or
// dense<[[1, 1]]> : tensor<1x2xi64> or 1 : i64, without the types.
func ints(attr string) []int {
	switch {
	case strings.HasPrefix(attr, "dense<"):
		attr, _, _ = strings.Cut(attr, "> :")
	case strings.HasPrefix(attr, "array<"):
		_, attr, _ = strings.Cut(attr, ":")
	default: // 1 : i64
		attr, _, _ = strings.Cut(attr, " :")
	}
	var out []int
	for _, m := range intRe.FindAllString(attr, -1) {
		n, _ := strconv.Atoi(m)
		out = append(out, n)
	}
	return out
}

func attrInts(s *stmt, key string) ([]int, error) {
	a, ok := s.attrs[key]
	if !ok {
		return nil, fmt.Errorf("attribute %s missing", key)
	}
	return ints(a), nil
}

func newLike(t Type) *Tensor { return &Tensor{Type: t, Data: make([]float64, t.size())} }

func apply(s *stmt, in []*Tensor) (*Tensor, error) {
	out := s.outTypes[0]
	if f, ok := unary[s.op]; ok {
		r := newLike(out)
		for i, v := range in[0].Data {
			r.Data[i] = f(v)
		}
		return r, nil
	}
	if f, ok := binary[s.op]; ok {
		if !sameType(in[0].Type, in[1].Type) {
			return nil, fmt.Errorf("operands %v and %v", in[0].Type, in[1].Type)
		}
		r := newLike(out)
		for i := range r.Data {
			r.Data[i] = f(in[0].Data[i], in[1].Data[i])
		}
		return r, nil
	}
	switch s.op {
	case "constant":
		return constant(s.attrs["value"], out)
	case "convert":
		r := newLike(out)
		copy(r.Data, in[0].Data)
		if out.DType[0] != 'f' && out.DType != "bf16" {
			return nil, fmt.Errorf("convert to %s", out.DType)
		}
		return r, nil
	case "compare":
		return compare(s, in, out)
	case "select":
		r := newLike(out)
		for i := range r.Data {
			p := in[0].Data[0]
			if len(in[0].Data) > 1 {
				p = in[0].Data[i]
			}
			if p != 0 {
				r.Data[i] = in[1].Data[i]
			} else {
				r.Data[i] = in[2].Data[i]
			}
		}
		return r, nil
	case "reshape":
		r := newLike(out)
		copy(r.Data, in[0].Data)
		return r, nil
	case "broadcast_in_dim":
		axes, err := attrInts(s, "broadcast_dimensions")
		if err != nil {
			return nil, err
		}
		return broadcast(in[0], axes, out), nil
	case "transpose":
		perm, err := attrInts(s, "permutation")
		if err != nil {
			return nil, err
		}
		return transpose(in[0], perm, out), nil
	case "iota":
		axis, err := attrInts(s, "iota_dimension")
		if err != nil {
			return nil, err
		}
		r := newLike(out)
		idx := make([]int, len(out.Dims))
		for i := range r.Data {
			r.Data[i] = float64(idx[axis[0]])
			next(idx, out.Dims)
		}
		return r, nil
	case "concatenate":
		return concatenate(s, in, out)
	case "slice":
		return slice(s, in[0], out)
	case "dynamic_slice":
		return dynamicSlice(s, in, out)
	case "reverse":
		axes, err := attrInts(s, "dimensions")
		if err != nil {
			return nil, err
		}
		return reverse(in[0], axes), nil
	case "reduce":
		return reduce(s, in, out)
	case "reduce_window":
		return reduceWindow(s, in, out)
	case "select_and_scatter":
		return selectAndScatter(s, in, out)
	case "dot_general":
		return dotGeneral(s, in, out)
	case "convolution":
		return convolution(s, in, out)
	}
	return nil, fmt.Errorf("op not supported")
}

var unary = map[string]func(float64) float64{
	"negate":      func(x float64) float64 { return -x },
	"exponential": math.Exp,
	"log":         math.Log,
	"sqrt":        math.Sqrt,
	"rsqrt":       func(x float64) float64 { return 1 / math.Sqrt(x) },
	"abs":         math.Abs,
}

var binary = map[string]func(x, y float64) float64{
	"add":      func(x, y float64) float64 { return x + y },
	"subtract": func(x, y float64) float64 { return x - y },
	"multiply": func(x, y float64) float64 { return x * y },
	"divide":   func(x, y float64) float64 { return x / y },
	"maximum":  maximum,
	"minimum":  minimum,
	"and":      func(x, y float64) float64 { return b2f(x != 0 && y != 0) },
	"or":       func(x, y float64) float64 { return b2f(x != 0 || y != 0) },
}

// maximum and minimum propagate NaN, as XLA's do.
func maximum(x, y float64) float64 {
	if x != x || y != y {
		return math.NaN()
	}
	return math.Max(x, y)
}

func minimum(x, y float64) float64 {
	if x != x || y != y {
		return math.NaN()
	}
	return math.Min(x, y)
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// Rounded returns t with its elements rounded to its element type.
func (t *Tensor) Rounded() *Tensor {
	r := &Tensor{Type: t.Type, Data: append([]float64(nil), t.Data...)}
	round(r)
	return r
}
