package nn

import (
	"fmt"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Conv2D returns the 2-D cross-correlation of x [N,C,H,W] with the filters
// w [O,C,kh,kw] (PyTorch's conv2d without bias): zero padding pad on every
// side, the same stride in both directions, output [N,O,Ho,Wo] with
// Ho = (H+2*pad-kh)/stride + 1.
//
// The forward unfolds one image (or, when the output has fewer than 256
// positions per image, a few images side by side) into a workspace borrowed
// for the call and multiplies it with the filters in one GEMM; a 1x1
// stride-1 unpadded convolution on large images is a plain GEMM on the
// input. The backward ops for x (GEMM then fold back) and w work the same
// way.
func Conv2D(x, w *G.Node, stride, pad int) (*G.Node, error) {
	if stride < 1 || pad < 0 {
		return nil, fmt.Errorf("%w: conv2d stride %d, pad %d", ErrArg, stride, pad)
	}
	return apply(&convOp{opBase: newBase("Conv2D(s%d,p%d)", stride, pad), stride: stride, pad: pad}, x, w)
}

// convNanos sums the wall time of convolution ops in this process.
var convNanos atomic.Int64

// ConvTime returns the total wall time this process has spent in
// convolution ops (forward, input gradient and weight gradient), for
// benchmarks that report effective convolution throughput.
func ConvTime() time.Duration { return time.Duration(convNanos.Load()) }

func countConv(start time.Time) { convNanos.Add(int64(time.Since(start))) }

// convGeom is the geometry of one convolution.
type convGeom struct {
	n, c, h, w  int
	o, kh, kw   int
	stride, pad int
	ho, wo      int
}

func newConvGeom(xs, ws tensor.Shape, stride, pad int) (convGeom, error) {
	if xs.Dims() != 4 || ws.Dims() != 4 {
		return convGeom{}, fmt.Errorf("%w: conv2d input %v and weight %v must both be 4-D", ErrShape, xs, ws)
	}
	g := convGeom{
		n: xs[0], c: xs[1], h: xs[2], w: xs[3],
		o: ws[0], kh: ws[2], kw: ws[3],
		stride: stride, pad: pad,
	}
	if ws[1] != g.c {
		return convGeom{}, fmt.Errorf("%w: conv2d input %v has %d channels, weight %v expects %d", ErrShape, xs, g.c, ws, ws[1])
	}
	for _, d := range [...]int{g.n, g.c, g.h, g.w, g.o, g.kh, g.kw} {
		if d < 1 {
			return convGeom{}, fmt.Errorf("%w: conv2d input %v, weight %v: empty dimension", ErrShape, xs, ws)
		}
	}
	if g.h+2*pad < g.kh || g.w+2*pad < g.kw {
		return convGeom{}, fmt.Errorf("%w: conv2d kernel %dx%d larger than padded input %v (pad %d)", ErrShape, g.kh, g.kw, xs, pad)
	}
	g.ho = (g.h+2*pad-g.kh)/stride + 1
	g.wo = (g.w+2*pad-g.kw)/stride + 1
	return g, nil
}

func (g convGeom) xShape() tensor.Shape { return tensor.Shape{g.n, g.c, g.h, g.w} }
func (g convGeom) wShape() tensor.Shape { return tensor.Shape{g.o, g.c, g.kh, g.kw} }
func (g convGeom) yShape() tensor.Shape { return tensor.Shape{g.n, g.o, g.ho, g.wo} }

// direct reports whether the unfolded image is the image itself.
func (g convGeom) direct() bool { return g.kh == 1 && g.kw == 1 && g.stride == 1 && g.pad == 0 }

// colRows is the height of the unfolded image, C*kh*kw.
func (g convGeom) colRows() int { return g.c * g.kh * g.kw }

// span returns the output indices [lo,hi) whose input index i*stride+off
// falls inside [0,size).
func span(off, size, stride, out int) (lo, hi int) {
	if off < 0 {
		lo = (-off + stride - 1) / stride
	}
	if last := size - 1 - off; last >= 0 {
		hi = min(out, last/stride+1)
	}
	return min(lo, hi), hi
}

// spans returns span(k-pad, size, stride, out) for every kernel offset k
// in [0, n): the unfolding loops look them up per channel instead of
// dividing again (the divisions had been 2% of a step).
func (g *convGeom) spans(n, size, out int, buf *[16][2]int) [][2]int {
	s := buf[:0]
	for k := range n {
		lo, hi := span(k-g.pad, size, g.stride, out)
		s = append(s, [2]int{lo, hi})
	}
	return s
}

// gemmCols is the least number of columns a convolution GEMM should have:
// images are unfolded side by side until their output positions reach it,
// so that deep layers with few positions per image still make GEMMs big
// enough for BLAS to run efficiently.
const gemmCols = 256

// chunk returns how many images each GEMM covers: enough for gemmCols
// columns, evened out so that few passes spread equally over the
// goroutines (two passes of 29 and 3 images would idle one core).
func (g convGeom) chunk() int {
	p := g.ho * g.wo
	ch := min(g.n, max(1, (gemmCols+p-1)/p))
	passes := (g.n + ch - 1) / ch
	if w := runtime.GOMAXPROCS(0); passes < 4*w && g.n >= w {
		passes = (passes + w - 1) / w * w
	}
	return (g.n + passes - 1) / passes
}

// im2col unfolds one image x [C,H,W] into the columns [off, off+Ho*Wo) of
// col, a [C*kh*kw, ld] matrix.
func im2col[T float](g *convGeom, x, col []T, ld, off int) {
	hw, howo := g.h*g.w, g.ho*g.wo
	same := g.stride == 1 && g.wo == g.w
	var ub, vb [16][2]int
	us, vs := g.spans(g.kh, g.h, g.ho, &ub), g.spans(g.kw, g.w, g.wo, &vb)
	r := 0
	for c := 0; c < g.c; c++ {
		xc := x[c*hw : (c+1)*hw]
		for u := 0; u < g.kh; u++ {
			ilo, ihi := us[u][0], us[u][1]
			for v := 0; v < g.kw; v++ {
				xoff := v - g.pad
				jlo, jhi := vs[v][0], vs[v][1]
				row := col[r*ld+off : r*ld+off+howo]
				r++
				if jlo == jhi || ilo == ihi {
					clear(row)
					continue
				}
				if same {
					// Row i of the output reads row i+u-pad of x shifted by
					// xoff, a constant offset in the flattened image: one
					// copy for all rows, then zeros where it wrapped round.
					q0, q1 := ilo*g.wo+jlo, (ihi-1)*g.wo+jhi
					d := (u-g.pad)*g.w + xoff
					clear(row[:q0])
					copy(row[q0:q1], xc[q0+d:q1+d])
					clear(row[q1:])
					zeroBorders(row[q0:q1], q0, g.wo, jlo, jhi)
					continue
				}
				clear(row[:ilo*g.wo])
				clear(row[ihi*g.wo:])
				for i := ilo; i < ihi; i++ {
					dst := row[i*g.wo : (i+1)*g.wo]
					src := xc[(i*g.stride+u-g.pad)*g.w:]
					clear(dst[:jlo])
					clear(dst[jhi:])
					if g.stride == 1 {
						copy(dst[jlo:jhi], src[jlo+xoff:jhi+xoff])
						continue
					}
					gather(dst[jlo:jhi], src[jlo*g.stride+xoff:], g.stride)
				}
			}
		}
	}
}

// col2im adds the columns of col, a [C*kh*kw, ld] matrix, that hold the
// output rows [i0, i1) of one image (output position (i, j) in column
// off + (i-i0)*Wo + j) back into the image x [C,H,W]; over all rows it is
// the transpose of im2col. It zeroes the entries of col that fall in the
// padding, as scratch it may overwrite.
func col2im[T float](g *convGeom, col, x []T, ld, off, i0, i1 int) {
	hw, n := g.h*g.w, (i1-i0)*g.wo
	same := g.stride == 1 && g.wo == g.w
	var ub, vb [16][2]int
	us, vs := g.spans(g.kh, g.h, g.ho, &ub), g.spans(g.kw, g.w, g.wo, &vb)
	r := 0
	for c := 0; c < g.c; c++ {
		xc := x[c*hw : (c+1)*hw]
		for u := 0; u < g.kh; u++ {
			ilo, ihi := max(us[u][0], i0), min(us[u][1], i1)
			for v := 0; v < g.kw; v++ {
				xoff := v - g.pad
				jlo, jhi := vs[v][0], vs[v][1]
				row := col[r*ld+off : r*ld+off+n]
				r++
				if jlo == jhi || ilo >= ihi {
					continue
				}
				if same {
					// As in im2col: one addition over the flattened rows,
					// after zeroing the entries that would wrap round.
					q0, q1 := (ilo-i0)*g.wo+jlo, (ihi-1-i0)*g.wo+jhi
					zeroBorders(row[q0:q1], q0, g.wo, jlo, jhi)
					d := i0*g.wo + (u-g.pad)*g.w + xoff
					addTo(xc[q0+d:q1+d], row[q0:q1])
					continue
				}
				for i := ilo; i < ihi; i++ {
					src := row[(i-i0)*g.wo : (i-i0+1)*g.wo]
					dst := xc[(i*g.stride+u-g.pad)*g.w:]
					if g.stride == 1 {
						addTo(dst[jlo+xoff:jhi+xoff], src[jlo:jhi])
						continue
					}
					scatterAdd(dst[jlo*g.stride+xoff:], src[jlo:jhi], g.stride)
				}
			}
		}
	}
}

// gather sets dst[j] to src[j*stride]; scatterAdd adds src[j] into
// dst[j*stride]. Stride 2, the strided convolutions of ResNets, has its own
// loop: a constant stride runs 1.5x faster than a variable one.
func gather[T float](dst, src []T, stride int) {
	if len(dst) == 0 {
		return
	}
	src = src[:(len(dst)-1)*stride+1]
	if stride == 2 {
		for j := range dst {
			dst[j] = src[2*j]
		}
		return
	}
	for j := range dst {
		dst[j] = src[j*stride]
	}
}

func scatterAdd[T float](dst, src []T, stride int) {
	if len(src) == 0 {
		return
	}
	dst = dst[:(len(src)-1)*stride+1]
	if stride == 2 {
		for j, v := range src {
			dst[2*j] += v
		}
		return
	}
	for j, v := range src {
		dst[j*stride] += v
	}
}

// zeroBorders zeroes the entries of s, the flattened rows of width wo from
// flat index q0 on, whose column lies outside [jlo, jhi).
func zeroBorders[T float](s []T, q0, wo, jlo, jhi int) {
	if jlo == 0 && jhi == wo {
		return
	}
	for q := q0 - q0%wo; q < q0+len(s); q += wo {
		for j := max(q, q0); j < min(q+jlo, q0+len(s)); j++ {
			s[j-q0] = 0
		}
		for j := max(q+jhi, q0); j < min(q+wo, q0+len(s)); j++ {
			s[j-q0] = 0
		}
	}
}

// addTo adds src into dst elementwise.
func addTo[T float](dst, src []T) {
	dst = dst[:len(src)]
	for j, s := range src {
		dst[j] += s
	}
}

// convPass is one chunk of nb images starting at image n0, cols columns wide.
type convPass struct {
	n0, nb, cols int
}

// unfold writes the chunk's images side by side into col [K, cols].
func unfold[T float](g *convGeom, x, col []T, p convPass) {
	chw, howo := g.c*g.h*g.w, g.ho*g.wo
	for i := 0; i < p.nb; i++ {
		n := p.n0 + i
		im2col(g, x[n*chw:(n+1)*chw], col, p.cols, i*howo)
	}
}

// toStage copies the chunk's rows of t [N,O,Ho*Wo] into m [O, cols];
// fromStage is its inverse.
func toStage[T float](g *convGeom, t, m []T, p convPass) {
	howo, ohw := g.ho*g.wo, g.o*g.ho*g.wo
	for i := 0; i < p.nb; i++ {
		base := (p.n0 + i) * ohw
		for o := 0; o < g.o; o++ {
			copy(m[o*p.cols+i*howo:o*p.cols+(i+1)*howo], t[base+o*howo:base+(o+1)*howo])
		}
	}
}

func fromStage[T float](g *convGeom, m, t []T, p convPass) {
	howo, ohw := g.ho*g.wo, g.o*g.ho*g.wo
	for i := 0; i < p.nb; i++ {
		base := (p.n0 + i) * ohw
		for o := 0; o < g.o; o++ {
			copy(t[base+o*howo:base+(o+1)*howo], m[o*p.cols+i*howo:o*p.cols+(i+1)*howo])
		}
	}
}

// convPlan is how one call splits its images: ch images per GEMM, count
// passes, np goroutines. Both depend on GOMAXPROCS, so a call plans once.
type convPlan struct{ ch, count, np int }

func (g convGeom) plan() convPlan {
	ch := g.chunk()
	count := (g.n + ch - 1) / ch
	return convPlan{ch: ch, count: count, np: parts(count, g.colRows()*ch*g.ho*g.wo)}
}

// passes calls f for every chunk of images, spreading the chunks over the
// plan's goroutines with split (parallelFor where f sums by part,
// parallelBalanced otherwise); f(part, pass) may use part to pick
// per-goroutine scratch.
func passes(split func(n, p int, f func(part, lo, hi int)), g *convGeom, pl convPlan, f func(part int, p convPass)) {
	howo := g.ho * g.wo
	split(pl.count, pl.np, func(part, lo, hi int) {
		for i := lo; i < hi; i++ {
			n0 := i * pl.ch
			nb := min(pl.ch, g.n-n0)
			f(part, convPass{n0: n0, nb: nb, cols: nb * howo})
		}
	})
}

// scratch lends each part of a parallel loop its own workspaces: per part,
// one slice of each requested size.
type scratch[T float] struct{ bufs [][][]T }

func newScratch[T float](np int, sizes ...int) *scratch[T] {
	s := &scratch[T]{bufs: make([][][]T, np)}
	for i := range s.bufs {
		s.bufs[i] = make([][]T, len(sizes))
		for j, n := range sizes {
			if n > 0 {
				s.bufs[i][j] = getWork[T](n)
			}
		}
	}
	return s
}

func (s *scratch[T]) release() {
	for _, b := range s.bufs {
		for _, w := range b {
			if w != nil {
				putWork(w)
			}
		}
	}
}

// convForward computes y [N,O,Ho,Wo] from x and w: y = W [O,K] times the
// unfolded images [K, cols], one GEMM per chunk.
func convForward[T float](g *convGeom, x, w, y []T) {
	chw, ohw, howo, k := g.c*g.h*g.w, g.o*g.ho*g.wo, g.ho*g.wo, g.colRows()
	pl := g.plan()
	ch := pl.ch
	if g.direct() && ch == 1 {
		parallelBalanced(g.n, parts(g.n, k*howo), func(_, lo, hi int) {
			for n := lo; n < hi; n++ {
				gemm(false, false, g.o, howo, k, 1, w, k, x[n*chw:(n+1)*chw], howo, 0, y[n*ohw:(n+1)*ohw], howo)
			}
		})
		return
	}
	stageSize := 0
	if ch > 1 {
		stageSize = g.o * ch * howo
	}
	sc := newScratch[T](pl.np, k*ch*howo, stageSize)
	defer sc.release()
	passes(parallelBalanced, g, pl, func(part int, p convPass) {
		col, stage := sc.bufs[part][0], sc.bufs[part][1]
		unfold(g, x, col, p)
		if p.nb == 1 {
			gemm(false, false, g.o, p.cols, k, 1, w, k, col, p.cols, 0, y[p.n0*ohw:(p.n0+1)*ohw], p.cols)
			return
		}
		gemm(false, false, g.o, p.cols, k, 1, w, k, col, p.cols, 0, stage, p.cols)
		fromStage(g, stage, y, p)
	})
}

// flipped returns, for a stride-1 convolution with a square kernel and
// pad < kernel, the geometry of the convolution that computes its input
// gradient: dy [N,O,Ho,Wo] convolved with the filters transposed and
// rotated half a turn, padded kernel-1-pad, gives dx [N,C,H,W].
func (g convGeom) flipped() (convGeom, bool) {
	if g.stride != 1 || g.kh != g.kw || g.pad >= g.kh || g.direct() {
		return convGeom{}, false
	}
	return convGeom{n: g.n, c: g.o, h: g.ho, w: g.wo, o: g.c, kh: g.kh, kw: g.kw,
		stride: 1, pad: g.kh - 1 - g.pad, ho: g.h, wo: g.w}, true
}

// flipFilters writes w [O,C,k,k] transposed and rotated into wf [C,O,k,k]:
// wf[c,o,u,v] = w[o,c,k-1-u,k-1-v].
func flipFilters[T float](g *convGeom, w, wf []T) {
	kk := g.kh * g.kw
	parallelBalanced(g.c, parts(g.c, g.o*kk), func(_, lo, hi int) {
		for c := lo; c < hi; c++ {
			for o := 0; o < g.o; o++ {
				src := w[(o*g.c+c)*kk : (o*g.c+c+1)*kk]
				dst := wf[(c*g.o+o)*kk : (c*g.o+o+1)*kk]
				for i, v := range src {
					dst[kk-1-i] = v
				}
			}
		}
	})
}

// flipMinPositions is the least number of output positions in a batch
// (N*Ho*Wo) for which the input gradient goes through flipped filters:
// flipping costs O*C*k*k moves per call whatever the batch, and on fewer
// positions (ResNet-50's last stage at 96 px: 32x3x3) it measured slower
// than folding back.
const flipMinPositions = 1024

// convGradX computes dx [N,C,H,W] from w and dy. Stride-1 convolutions
// run it as the forward convolution of dy with the flipped filters: one GEMM
// of the forward's shape (K = O*k*k) instead of a GEMM k*k times taller
// whose output is then folded back with additions (measured 5-35% faster
// on ResNet-18 and ResNet-50 3x3 layers).
func convGradX[T float](g *convGeom, w, dy, dx []T) {
	if fg, ok := g.flipped(); ok && g.n*g.ho*g.wo >= flipMinPositions {
		wf := getWork[T](len(w))
		defer putWork(wf)
		flipFilters(g, w, wf)
		convForward(&fg, dy, wf, dx)
		return
	}
	convGradXFold(g, w, dy, dx)
}

// convGradXFold computes dx as the unfolded gradient W^T dy, folded back.
func convGradXFold[T float](g *convGeom, w, dy, dx []T) {
	chw, ohw, howo, k := g.c*g.h*g.w, g.o*g.ho*g.wo, g.ho*g.wo, g.colRows()
	pl := g.plan()
	ch := pl.ch
	if g.direct() && ch == 1 {
		parallelBalanced(g.n, parts(g.n, k*howo), func(_, lo, hi int) {
			for n := lo; n < hi; n++ {
				gemm(true, false, k, howo, g.o, 1, w, k, dy[n*ohw:(n+1)*ohw], howo, 0, dx[n*chw:(n+1)*chw], howo)
			}
		})
		return
	}
	stageSize := 0
	if ch > 1 {
		stageSize = g.o * ch * howo
	}
	sc := newScratch[T](pl.np, k*ch*howo, stageSize)
	defer sc.release()
	passes(parallelBalanced, g, pl, func(part int, p convPass) {
		col, stage := sc.bufs[part][0], sc.bufs[part][1]
		dym := dy[p.n0*ohw : (p.n0+1)*ohw]
		if p.nb > 1 {
			toStage(g, dy, stage, p)
			dym = stage
		}
		if p.nb == 1 {
			// One large image: unfold the gradient a block of output rows
			// at a time, so the GEMM's output stays cache-sized (the inner
			// dimension is only O).
			xs := dx[p.n0*chw : (p.n0+1)*chw]
			clear(xs)
			rows := max(1, gemmCols/g.wo)
			for i0 := 0; i0 < g.ho; i0 += rows {
				i1 := min(g.ho, i0+rows)
				n := (i1 - i0) * g.wo
				gemm(true, false, k, n, g.o, 1, w, k, dym[i0*g.wo:], p.cols, 0, col, n)
				col2im(g, col, xs, n, 0, i0, i1)
			}
			return
		}
		gemm(true, false, k, p.cols, g.o, 1, w, k, dym, p.cols, 0, col, p.cols)
		for i := 0; i < p.nb; i++ {
			n := p.n0 + i
			xs := dx[n*chw : (n+1)*chw]
			clear(xs)
			col2im(g, col, xs, p.cols, i*howo, 0, g.ho)
		}
	})
}

// convGradW computes dw [O,C,kh,kw] from x and dy: the sum over chunks of
// dy [O, cols] times the unfolded images transposed. Each goroutine sums its
// run of chunks into its own slice (the first into dw), then the partial
// sums are added in part order, so the result does not depend on timing.
func convGradW[T float](g *convGeom, x, dy, dw []T) {
	chw, ohw, howo, k := g.c*g.h*g.w, g.o*g.ho*g.wo, g.ho*g.wo, g.colRows()
	pl := g.plan()
	ch := pl.ch
	if g.direct() && ch == 1 {
		np := parts(g.n, k*howo)
		sums := newPartials(np, dw, g.o, k)
		parallelFor(g.n, np, func(part, lo, hi int) {
			for n := lo; n < hi; n++ {
				sums.add(part, dy[n*ohw:(n+1)*ohw], x[n*chw:(n+1)*chw], howo, n == lo)
			}
		})
		sums.finish()
		return
	}
	stageSize := 0
	if ch > 1 {
		stageSize = g.o * ch * howo
	}
	np := pl.np
	sc := newScratch[T](np, k*ch*howo, stageSize)
	defer sc.release()
	sums := newPartials(np, dw, g.o, k)
	first := make([]bool, np)
	for i := range first {
		first[i] = true
	}
	passes(parallelFor, g, pl, func(part int, p convPass) {
		col, stage := sc.bufs[part][0], sc.bufs[part][1]
		unfold(g, x, col, p)
		dym := dy[p.n0*ohw : (p.n0+1)*ohw]
		if p.nb > 1 {
			toStage(g, dy, stage, p)
			dym = stage
		}
		sums.add(part, dym, col, p.cols, first[part])
		first[part] = false
	})
	sums.finish()
}

// partials holds one weight-gradient sum per part of a parallel loop. Where
// dw [O,K] is wider than tall the parts sum its transpose, col·dyᵀ, in
// borrowed slices: with the long side as rows sgemm needs no transposed
// product, which it would otherwise compute and transpose for every pass.
// Otherwise part 0 sums into dw itself.
type partials[T float] struct {
	dw         []T
	o, k       int
	transposed bool
	sums       [][]T
}

func newPartials[T float](np int, dw []T, o, k int) *partials[T] {
	p := &partials[T]{dw: dw, o: o, k: k, transposed: k > o, sums: make([][]T, np)}
	for i := range p.sums {
		if i == 0 && !p.transposed {
			p.sums[0] = dw
			continue
		}
		p.sums[i] = getWork[T](len(dw))
	}
	return p
}

// add adds dy [O, cols] times col [K, cols] transposed to part's sum,
// replacing it if first.
func (p *partials[T]) add(part int, dy, col []T, cols int, first bool) {
	if p.transposed {
		gemm(false, true, p.k, p.o, cols, 1, col, cols, dy, cols, beta[T](first), p.sums[part], p.o)
		return
	}
	gemm(false, true, p.o, p.k, cols, 1, dy, cols, col, cols, beta[T](first), p.sums[part], p.k)
}

// finish adds the parts' sums in part order, so the result does not
// depend on timing, leaves it in dw and returns the borrowed slices. The
// transposed sum adds its first two parts as it transposes.
func (p *partials[T]) finish() {
	if !p.transposed {
		addParts(p.sums[0], p.sums[1:])
		for _, s := range p.sums[1:] {
			putWork(s)
		}
		return
	}
	var second []T
	if len(p.sums) > 1 {
		addParts(p.sums[1], p.sums[2:])
		second = p.sums[1]
	}
	transposeSum(p.dw, p.sums[0], second, p.k, p.o)
	for _, s := range p.sums {
		putWork(s)
	}
}

// addParts adds srcs into dst, in order, spread over goroutines.
func addParts[T float](dst []T, srcs [][]T) {
	if len(srcs) == 0 {
		return
	}
	parallelBalanced(len(dst), parts(len(dst), len(srcs)+1), func(_, lo, hi int) {
		for _, s := range srcs {
			addTo(dst[lo:hi], s[lo:hi])
		}
	})
}

// beta is the GEMM accumulation factor: overwrite on the first pass.
func beta[T float](first bool) T {
	if first {
		return 0
	}
	return 1
}

// convOp is the forward convolution: (x, w) -> y.
type convOp struct {
	opBase
	stride, pad int
	out         buffer
}

func (op *convOp) outBuffer() *buffer { return &op.out }

func (op *convOp) Arity() int         { return 2 }
func (op *convOp) Type() hm.Type      { return fnType(4, 4, 4) }
func (op *convOp) DiffWRT(int) []bool { return []bool{true, true} }

func (op *convOp) InferShape(ds ...G.DimSizer) (tensor.Shape, error) {
	s, err := shapes(2, ds)
	if err != nil {
		return nil, err
	}
	g, err := newConvGeom(s[0], s[1], op.stride, op.pad)
	if err != nil {
		return nil, err
	}
	return g.yShape(), nil
}

func (op *convOp) Do(inputs ...G.Value) (G.Value, error) {
	defer countConv(time.Now())
	in, err := denses(op, inputs)
	if err != nil {
		return nil, err
	}
	g, err := newConvGeom(in[0].Shape(), in[1].Shape(), op.stride, op.pad)
	if err != nil {
		return nil, err
	}
	y := op.out.get(in[0].Dtype(), g.yShape())
	if y.Dtype() == tensor.Float64 {
		convForward(&g, data[float64](in[0]), data[float64](in[1]), data[float64](y))
	} else {
		convForward(&g, data[float32](in[0]), data[float32](in[1]), data[float32](y))
	}
	return y, nil
}

func (op *convOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	if len(inputs) != 2 {
		return nil, fmt.Errorf("%w: %v: %d inputs", ErrArg, op, len(inputs))
	}
	x, w := inputs[0], inputs[1]
	g, err := newConvGeom(x.Shape(), w.Shape(), op.stride, op.pad)
	if err != nil {
		return nil, err
	}
	dx, err := apply(&convGradXOp{opBase: newBase("Conv2DGradX(s%d,p%d)", op.stride, op.pad), geom: g}, w, grad)
	if err != nil {
		return nil, err
	}
	dw, err := apply(&convGradWOp{opBase: newBase("Conv2DGradW(s%d,p%d)", op.stride, op.pad), geom: g}, x, grad)
	if err != nil {
		return nil, err
	}
	return G.Nodes{dx, dw}, nil
}

// convGradXOp is (w, dy) -> dx for a fixed geometry.
type convGradXOp struct {
	opBase
	geom convGeom
	out  buffer
}

func (op *convGradXOp) outBuffer() *buffer { return &op.out }

func (op *convGradXOp) Arity() int    { return 2 }
func (op *convGradXOp) Type() hm.Type { return fnType(4, 4, 4) }

func (op *convGradXOp) InferShape(ds ...G.DimSizer) (tensor.Shape, error) {
	s, err := shapes(2, ds)
	if err != nil {
		return nil, err
	}
	if !s[0].Eq(op.geom.wShape()) || !s[1].Eq(op.geom.yShape()) {
		return nil, fmt.Errorf("%w: %v: weight %v and output gradient %v, want %v and %v", ErrShape, op, s[0], s[1], op.geom.wShape(), op.geom.yShape())
	}
	return op.geom.xShape(), nil
}

func (op *convGradXOp) Do(inputs ...G.Value) (G.Value, error) {
	defer countConv(time.Now())
	g := &op.geom
	in, err := denses(op, inputs, g.wShape(), g.yShape())
	if err != nil {
		return nil, err
	}
	dx := op.out.get(in[0].Dtype(), g.xShape())
	if dx.Dtype() == tensor.Float64 {
		convGradX(g, data[float64](in[0]), data[float64](in[1]), data[float64](dx))
	} else {
		convGradX(g, data[float32](in[0]), data[float32](in[1]), data[float32](dx))
	}
	return dx, nil
}

// convGradWOp is (x, dy) -> dw for a fixed geometry.
type convGradWOp struct {
	opBase
	geom convGeom
	out  buffer
}

func (op *convGradWOp) outBuffer() *buffer { return &op.out }

func (op *convGradWOp) Arity() int    { return 2 }
func (op *convGradWOp) Type() hm.Type { return fnType(4, 4, 4) }

func (op *convGradWOp) InferShape(ds ...G.DimSizer) (tensor.Shape, error) {
	s, err := shapes(2, ds)
	if err != nil {
		return nil, err
	}
	if !s[0].Eq(op.geom.xShape()) || !s[1].Eq(op.geom.yShape()) {
		return nil, fmt.Errorf("%w: %v: input %v and output gradient %v, want %v and %v", ErrShape, op, s[0], s[1], op.geom.xShape(), op.geom.yShape())
	}
	return op.geom.wShape(), nil
}

func (op *convGradWOp) Do(inputs ...G.Value) (G.Value, error) {
	defer countConv(time.Now())
	g := &op.geom
	in, err := denses(op, inputs, g.xShape(), g.yShape())
	if err != nil {
		return nil, err
	}
	dw := op.out.get(in[0].Dtype(), g.wShape())
	if dw.Dtype() == tensor.Float64 {
		convGradW(g, data[float64](in[0]), data[float64](in[1]), data[float64](dw))
	} else {
		convGradW(g, data[float32](in[0]), data[float32](in[1]), data[float32](dw))
	}
	return dw, nil
}
