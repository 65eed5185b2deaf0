package nn

import (
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
	nr = 32      // columns of a C tile: two 16-float vectors of B per k
	kc = 256     // depth of a block: an nr panel of B is 32 KiB
	mc = 16 * mr // rows of a packed block of A (192 KiB)
	nc = 64 * nr // columns of a packed block of B (2 MiB)
)

// kernelFunc adds the product of an mr x k panel of A (packed k-major, mr
// values per k) and a k x nr panel of B (nr values per k) to the mr x nr
// tile at c (row stride ldc). k >= 1.
type kernelFunc func(k int, a, b, c *float32, ldc int)

type sgemmBuf struct {
	a, b []float32
	tile [mr * nr]float32
}

var sgemmBufs = sync.Pool{New: func() any {
	return &sgemmBuf{a: make([]float32, mc*kc), b: make([]float32, kc*nc)}
}}

// sgemmWith computes c = alpha*op(a)*op(b) + beta*c (c m x n, inner
// dimension k) with kern for the tiles. It is single-threaded and safe for
// concurrent use.
func sgemmWith(kern kernelFunc, transA, transB bool, m, n, k int, alpha float32, a []float32, lda int,
	b []float32, ldb int, beta float32, c []float32, ldc int) {
	if m == 0 || n == 0 {
		return
	}
	if beta != 1 {
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
	if k == 0 || alpha == 0 {
		return
	}
	buf := sgemmBufs.Get().(*sgemmBuf)
	defer sgemmBufs.Put(buf)
	for jc := 0; jc < n; jc += nc {
		nb := min(nc, n-jc)
		for pc := 0; pc < k; pc += kc {
			kb := min(kc, k-pc)
			packB(transB, b, ldb, pc, kb, jc, nb, buf.b)
			for ic := 0; ic < m; ic += mc {
				mb := min(mc, m-ic)
				packA(transA, a, lda, ic, mb, pc, kb, alpha, buf.a)
				for jr := 0; jr < nb; jr += nr {
					bp := &buf.b[jr*kb]
					cols := min(nr, nb-jr)
					for ir := 0; ir < mb; ir += mr {
						ap := &buf.a[ir*kb]
						rows := min(mr, mb-ir)
						at := (ic+ir)*ldc + jc + jr
						if rows == mr && cols == nr {
							kern(kb, ap, bp, &c[at], ldc)
							continue
						}
						// An edge tile goes through a scratch tile, so
						// the kernel never writes outside c.
						clear(buf.tile[:])
						kern(kb, ap, bp, &buf.tile[0], nr)
						for r := range rows {
							dst := c[at+r*ldc : at+r*ldc+cols]
							for j, v := range buf.tile[r*nr : r*nr+cols] {
								dst[j] += v
							}
						}
					}
				}
			}
		}
	}
}

// packA copies alpha*op(a)[ic:ic+mb, pc:pc+kb] into mr-row panels, each
// k-major (mr values per k), rows past mb zero.
func packA(trans bool, a []float32, lda, ic, mb, pc, kb int, alpha float32, dst []float32) {
	for p0 := 0; p0 < mb; p0 += mr {
		panel := dst[p0*kb : (p0+mr)*kb]
		rows := min(mr, mb-p0)
		if rows < mr {
			clear(panel)
		}
		if !trans {
			for r := range rows {
				src := a[(ic+p0+r)*lda+pc:][:kb]
				for p, v := range src {
					panel[p*mr+r] = alpha * v
				}
			}
			continue
		}
		for p := range kb {
			src := a[(pc+p)*lda+ic+p0:][:rows]
			out := panel[p*mr : p*mr+rows]
			for r, v := range src {
				out[r] = alpha * v
			}
		}
	}
}

// packB copies op(b)[pc:pc+kb, jc:jc+nb] into nr-column panels, each
// k-major (nr values per k), columns past nb zero.
func packB(trans bool, b []float32, ldb, pc, kb, jc, nb int, dst []float32) {
	for q0 := 0; q0 < nb; q0 += nr {
		panel := dst[q0*kb : (q0+nr)*kb]
		cols := min(nr, nb-q0)
		if cols < nr {
			clear(panel)
		}
		if !trans {
			for p := range kb {
				copy(panel[p*nr:p*nr+cols], b[(pc+p)*ldb+jc+q0:])
			}
			continue
		}
		// Row by row of the panel: 32 sequential read streams, one
		// sequential write (columns first wrote 32 cache lines apart).
		base := (jc+q0)*ldb + pc
		for p := range kb {
			out := panel[p*nr : p*nr+cols]
			for j := range out {
				out[j] = b[base+j*ldb+p]
			}
		}
	}
}

// kernelGo is the portable micro-kernel: the reference the assembly one is
// tested against, and what tests of the driver use on any CPU.
func kernelGo(k int, a, b, c *float32, ldc int) {
	as := unsafe.Slice(a, k*mr)
	bs := unsafe.Slice(b, k*nr)
	cs := unsafe.Slice(c, (mr-1)*ldc+nr)
	for p := range k {
		for i := range mr {
			ai := as[p*mr+i]
			row := cs[i*ldc : i*ldc+nr]
			for j, bv := range bs[p*nr : p*nr+nr] {
				row[j] += ai * bv
			}
		}
	}
}
