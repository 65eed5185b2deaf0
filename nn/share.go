package nn

import (
	"fmt"
	"math"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// slot is storage shared by the buffers of ops whose values are never
// live at the same time during a run.
type slot struct {
	dt   tensor.Dtype
	size int // elements: the largest value assigned
	end  int // position after which the current occupant is dead
	f32  []float32
	f64  []float64
}

// backing returns the slot's first n elements, allocating the whole slot
// on first use.
func (s *slot) backing(n int) any {
	if s.dt == tensor.Float64 {
		if s.f64 == nil {
			s.f64 = make([]float64, s.size)
		}
		return s.f64[:n]
	}
	if s.f32 == nil {
		s.f32 = make([]float32, s.size)
	}
	return s.f32[:n]
}

// ShareStats sums what ShareBuffers planned, in bytes.
type ShareStats struct {
	Buffers, Slots int   // op buffers planned and the slots they share
	Before, After  int64 // bytes of op buffers without and with sharing
}

// ShareBuffers plans the output buffers of the package's ops in g so that
// ops whose values are not live at the same time in a run share storage,
// the way a framework frees an activation once its last reader has run.
// A value is live from the op that writes it to its last reader in the
// order gorgonia's tape machine executes (the reverse of gorgonia.Sort);
// it stays live through readers that may return it (ops of other packages,
// in-place ReLU) up to their own readers, and for the whole run if it or
// such an alias is in keep. keep must hold every node read after a run:
// the loss, parameter gradients, outputs. Call it once, after the graph is
// complete (loss and gradients included) and before it first runs.
func ShareBuffers(g *G.ExprGraph, keep ...*G.Node) (ShareStats, error) {
	sorted, err := G.Sort(g)
	if err != nil {
		return ShareStats{}, fmt.Errorf("nn: share buffers: %w", err)
	}
	order := make([]*G.Node, len(sorted))
	pos := make(map[*G.Node]int, len(sorted))
	for i, n := range sorted {
		order[len(sorted)-1-i] = n
	}
	for i, n := range order {
		pos[n] = i
	}
	kept := make(map[*G.Node]bool, len(keep))
	for _, n := range keep {
		if _, ok := pos[n]; !ok {
			return ShareStats{}, fmt.Errorf("%w: share buffers: kept node %v is not in the graph", ErrArg, n)
		}
		kept[n] = true
	}
	// end[i]: position of the last read of order[i]'s value.
	end := make([]int, len(order))
	for i := len(order) - 1; i >= 0; i-- {
		n := order[i]
		e := i
		if kept[n] {
			e = math.MaxInt
		}
		readers := g.To(n.ID())
		for readers.Next() {
			r := readers.Node().(*G.Node)
			j := pos[r]
			e = max(e, j)
			if aliases(r.Op()) {
				e = max(e, end[j])
			}
		}
		end[i] = e
	}
	var st ShareStats
	var slots []*slot
	for i, n := range order {
		o, ok := n.Op().(owner)
		if !ok || aliases(n.Op()) {
			continue
		}
		dt, err := dtypeOf(n)
		if err != nil {
			return ShareStats{}, err
		}
		size := n.Shape().TotalSize()
		s := bestFit(slots, dt, size, i)
		if s == nil {
			s = &slot{dt: dt}
			slots = append(slots, s)
		}
		s.size = max(s.size, size)
		s.end = end[i]
		b := o.outBuffer()
		b.slot, b.t = s, nil
		st.Buffers++
		st.Before += int64(size) * int64(dt.Size())
	}
	st.Slots = len(slots)
	for _, s := range slots {
		st.After += int64(s.size) * int64(s.dt.Size())
	}
	return st, nil
}

// bestFit returns the free slot of dtype dt (its occupant dead before
// position i) that fits size most tightly, else the largest free one (it
// will grow), else nil.
func bestFit(slots []*slot, dt tensor.Dtype, size, i int) *slot {
	var fit, largest *slot
	for _, s := range slots {
		if s.dt != dt || s.end >= i {
			continue
		}
		if s.size >= size && (fit == nil || s.size < fit.size) {
			fit = s
		}
		if largest == nil || s.size > largest.size {
			largest = s
		}
	}
	if fit != nil {
		return fit
	}
	return largest
}

// aliases reports whether op's value may be one of its inputs' storage:
// in-place ReLU returns its input, and ops of other packages may run in
// place (gorgonia adds gradients into one of its operands).
func aliases(op G.Op) bool {
	switch op := op.(type) {
	case *reluOp:
		return op.inPlace
	case owner:
		return false
	case nil:
		return false
	}
	return true
}

// dtypeOf returns the element type of a float tensor node.
func dtypeOf(n *G.Node) (tensor.Dtype, error) {
	dt := n.Dtype()
	if dt != tensor.Float32 && dt != tensor.Float64 {
		return tensor.Dtype{}, fmt.Errorf("%w: share buffers: %v has dtype %v", ErrDtype, n, dt)
	}
	return dt, nil
}
