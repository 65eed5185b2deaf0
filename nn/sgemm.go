package nn

import (
	"iter"
	"sync"
	"unsafe"
)

// sgemm is supflow's own float32 GEMM (row-major, the semantics of BLAS
// sgemm), for x86-64 CPUs with AVX-512: OpenBLAS picks its kernel from the
// CPU or OPENBLAS_CORETYPE, and where that is an AVX2 kernel (Haswell, or a
// CPU OpenBLAS does not know) it runs at about half of what an AVX-512 core
// can do. The driver is the usual Goto/BLIS blocking: B is packed in
// kc x nc blocks of nr-wide panels (the panel in use stays in L1), A in
// mc x kc blocks of mr-tall panels (in L2), and a micro-kernel adds one
// mr x nr tile of C per panel pair. docs/benchmarks.md has the measurements.
const (
	mr = 12      // rows of a C tile: broadcasts of A per k
	ms = 8       // rows of the short tile, which with mr's covers channel counts (multiples of 8) exactly
	nr = 32      // columns of a C tile: two 16-float vectors of B per k
	kc = 256     // depth of a block: an nr panel of B is 32 KiB
	mc = 16 * mr // rows of a packed block of A (192 KiB)
	nc = 64 * nr // columns of a packed block of B (2 MiB)
)

// kernelFunc stores A*B in one tile of C (mr or ms rows, nr columns; row
// stride ldc), or adds it with add, over k >= 1 steps. A(i, p) is
// a[p*sk + i*si] and B(p, j) is b[p*sb + j], strides in elements: a packed
// panel has sk = its height, si = 1 and sb = nr; a row-major A is read in
// place with sk = 1, si = lda, a transposed one with sk = lda, si = 1, and
// a row-major B with sb = ldb.
type kernelFunc func(k int, a *float32, sk, si int, b *float32, sb int, c *float32, ldc int, add bool)

// kernels are one implementation's micro-kernels, by tile height.
type kernels struct{ tall, short kernelFunc } // mr and ms rows

// panelHeight is the height of the next panel of A when rows rows of the
// block are left: ms for the last 16 (8 + 8) or 8 or fewer, else mr. So
// any multiple of 4 from 8 on splits into full panels (64 = 4x12 + 2x8);
// other row counts end in an edge panel, one taller than the rows left.
func panelHeight(rows int) int {
	if rows == 2*ms || rows <= ms {
		return ms
	}
	return mr
}

// panels yields the first row and the height of each panel of an mb-row
// block of A, in order; the last one may be taller than the rows left.
func panels(mb int) iter.Seq2[int, int] {
	return func(yield func(start, h int) bool) {
		for start := 0; start < mb; {
			h := panelHeight(mb - start)
			if !yield(start, h) {
				return
			}
			start += h
		}
	}
}

type sgemmBuf struct {
	a, b []float32
	tile [mr * nr]float32
}

var sgemmBufs = sync.Pool{New: func() any {
	return &sgemmBuf{a: make([]float32, (mc+mr)*kc), b: make([]float32, kc*nc)}
}}

// sgemmWith computes c = alpha*op(a)*op(b) + beta*c (c m x n, inner
// dimension k) with kern for the tiles. It is single-threaded and safe for
// concurrent use. Full panels of A (alpha 1) and of an untransposed B are
// read in place: nn calls it once per image or column range with the same
// weights, and packing them every time cost about half of the kernel's
// time on ResNet-50's small images. Edge panels, a transposed B, a B
// shared by many rows and a scaled A are packed.
func sgemmWith(ks kernels, transA, transB bool, m, n, k int, alpha float32, a []float32, lda int,
	b []float32, ldb int, beta float32, c []float32, ldc int) {
	if m == 0 || n == 0 {
		return
	}
	noProduct := k == 0 || alpha == 0
	if transB && !transA && m < n && !noProduct {
		sgemmSwapped(ks, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		return
	}
	// With beta 0 the first depth block stores its tiles: c is not read.
	if beta != 1 && (beta != 0 || noProduct) {
		for i := range m {
			row := c[i*ldc : i*ldc+n]
			if beta == 0 {
				clear(row)
				continue
			}
			for j := range row {
				row[j] *= beta
			}
		}
	}
	if noProduct {
		return
	}
	buf := sgemmBufs.Get().(*sgemmBuf)
	defer sgemmBufs.Put(buf)
	// B read in place skips its packing, which matters when few rows of A
	// share it; from 512 rows on, packed panels are faster (1024^3: 177 vs
	// 163 GFLOP/s on one core; m = 64: 107 vs 120).
	directA, directB := alpha == 1, !transB && m < 512
	for jc := 0; jc < n; jc += nc {
		nb := min(nc, n-jc)
		for pc := 0; pc < k; pc += kc {
			kb := min(kc, k-pc)
			add := pc > 0 || beta != 0
			packB(transB, directB, b, ldb, pc, kb, jc, nb, buf.b)
			for ic := 0; ic < m; ic += mc {
				mb := min(mc, m-ic)
				packA(transA, directA, a, lda, ic, mb, pc, kb, alpha, buf.a)
				for jr := 0; jr < nb; jr += nr {
					cols := min(nr, nb-jr)
					bp, sb := &buf.b[jr*kb], nr
					if directB && cols == nr {
						bp, sb = &b[pc*ldb+jc+jr], ldb
					}
					for ir, h := range panels(mb) {
						rows := min(h, mb-ir)
						kern := ks.tall
						if h == ms {
							kern = ks.short
						}
						ap, sk, si := &buf.a[ir*kb], h, 1
						switch {
						case !directA || rows < h:
						case transA:
							ap, sk, si = &a[pc*lda+ic+ir], lda, 1
						default:
							ap, sk, si = &a[(ic+ir)*lda+pc], 1, lda
						}
						at := (ic+ir)*ldc + jc + jr
						if rows == h && cols == nr {
							kern(kb, ap, sk, si, bp, sb, &c[at], ldc, add)
							continue
						}
						// An edge tile goes through a scratch tile, so
						// the kernel never writes outside c.
						kern(kb, ap, sk, si, bp, sb, &buf.tile[0], nr, false)
						for r := range rows {
							dst := c[at+r*ldc : at+r*ldc+cols]
							src := buf.tile[r*nr : r*nr+cols]
							if !add {
								copy(dst, src)
								continue
							}
							for j, v := range src {
								dst[j] += v
							}
						}
					}
				}
			}
		}
	}
}

var swapBufs = sync.Pool{New: func() any { return new([]float32) }}

// sgemmSwapped computes c = alpha*a*bᵀ + beta*c (a m x k, b n x k) as
// cᵀ = b*aᵀ into a scratch matrix, then adds its transpose. A transposed B
// is packed by gathering n*k values, a convolution's weight gradient has
// n = 9 x its input channels and m its output channels, and with few rows
// of A to share that packing it cost more than the product (32x288x8192:
// 22-29 GFLOP/s); the swap gathers the m*k values of a instead.
func sgemmSwapped(ks kernels, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	tp := swapBufs.Get().(*[]float32)
	defer swapBufs.Put(tp)
	if cap(*tp) < m*n {
		*tp = make([]float32, m*n)
	}
	t := (*tp)[:m*n]
	sgemmWith(ks, false, true, n, m, k, alpha, b, ldb, a, lda, 0, t, m)
	for i := range m {
		row := c[i*ldc : i*ldc+n]
		for j := range row {
			v := t[j*m+i]
			if beta != 0 {
				v += beta * row[j]
			}
			row[j] = v
		}
	}
}

// packA copies alpha*op(a)[ic:ic+mb, pc:pc+kb] into panels of
// panelHeight rows, each k-major (h values per k), rows past mb zero. With
// direct only the last, partial panel is packed: the kernel reads full ones
// in place.
func packA(trans, direct bool, a []float32, lda, ic, mb, pc, kb int, alpha float32, dst []float32) {
	for start, h := range panels(mb) {
		rows := min(h, mb-start)
		if direct && rows == h {
			continue
		}
		panel := dst[start*kb : (start+h)*kb]
		if rows < h {
			clear(panel)
		}
		if !trans {
			for r := range rows {
				src := a[(ic+start+r)*lda+pc:][:kb]
				for p, v := range src {
					panel[p*h+r] = alpha * v
				}
			}
			continue
		}
		for p := range kb {
			src := a[(pc+p)*lda+ic+start:][:rows]
			out := panel[p*h : p*h+rows]
			for r, v := range src {
				out[r] = alpha * v
			}
		}
	}
}

// packB copies op(b)[pc:pc+kb, jc:jc+nb] into nr-column panels, each
// k-major (nr values per k), columns past nb zero. With direct only the
// last, partial panel is packed.
func packB(trans, direct bool, b []float32, ldb, pc, kb, jc, nb int, dst []float32) {
	for q0 := 0; q0 < nb; q0 += nr {
		cols := min(nr, nb-q0)
		if direct && cols == nr {
			continue
		}
		panel := dst[q0*kb : (q0+nr)*kb]
		if cols < nr {
			clear(panel)
		}
		if !trans {
			for p := range kb {
				copy(panel[p*nr:p*nr+cols], b[(pc+p)*ldb+jc+q0:])
			}
			continue
		}
		base := (jc+q0)*ldb + pc
		p0 := 0
		if vecLoops32 != nil && cols == nr {
			// 16x16 tiles transposed in registers.
			for ; p0+16 <= kb; p0 += 16 {
				for j0 := 0; j0 < nr; j0 += 16 {
					transposeTile(panel[p0*nr+j0:], nr, b[base+j0*ldb+p0:], nil, ldb)
				}
			}
		}
		// Row by row of the panel: 32 sequential read streams, one
		// sequential write (columns first wrote 32 cache lines apart).
		for p := p0; p < kb; p++ {
			out := panel[p*nr : p*nr+cols]
			for j := range out {
				out[j] = b[base+j*ldb+p]
			}
		}
	}
}

// kernelsGo are the portable micro-kernels: the reference the assembly ones
// are tested against, and what tests of the driver use on any CPU.
var kernelsGo = kernels{
	tall: func(k int, a *float32, sk, si int, b *float32, sb int, c *float32, ldc int, add bool) {
		kernelGo(mr, k, a, sk, si, b, sb, c, ldc, add)
	},
	short: func(k int, a *float32, sk, si int, b *float32, sb int, c *float32, ldc int, add bool) {
		kernelGo(ms, k, a, sk, si, b, sb, c, ldc, add)
	},
}

func kernelGo(h, k int, a *float32, sk, si int, b *float32, sb int, c *float32, ldc int, add bool) {
	as := unsafe.Slice(a, (k-1)*sk+(h-1)*si+1)
	bs := unsafe.Slice(b, (k-1)*sb+nr)
	cs := unsafe.Slice(c, (h-1)*ldc+nr)
	if !add {
		for i := range h {
			clear(cs[i*ldc : i*ldc+nr])
		}
	}
	for p := range k {
		for i := range h {
			ai := as[p*sk+i*si]
			row := cs[i*ldc : i*ldc+nr]
			for j, bv := range bs[p*sb : p*sb+nr] {
				row[j] += ai * bv
			}
		}
	}
}
