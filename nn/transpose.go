package nn

// transposeSum sets dst (cols x rows) to the transpose of the sum of srcs
// (rows x cols each), a 16x16 tile at a time so that both sides stay in
// cache; float32 tiles go through the AVX-512 transpose where there is one.
// Beyond two sources the rest are first added into the second, so the
// result does not depend on timing.
func transposeSum[T float](dst []T, srcs [][]T, rows, cols int) {
	if len(srcs) > 2 {
		s := srcs[1]
		parallelBalanced(len(s), parts(len(s), len(srcs)), func(_, lo, hi int) {
			for _, o := range srcs[2:] {
				addTo(s[lo:hi], o[lo:hi])
			}
		})
		srcs = srcs[:2]
	}
	const b = 16
	d32, vec := any(dst).([]float32)
	vec = vec && vecLoops32 != nil
	bands := (rows + b - 1) / b
	parallelBalanced(bands, parts(bands, b*cols*len(srcs)), func(_, lo, hi int) {
		for band := lo; band < hi; band++ {
			r0 := band * b
			nr := min(b, rows-r0)
			for c0 := 0; c0 < cols; c0 += b {
				nc := min(b, cols-c0)
				if vec && nr == b && nc == b {
					a := any(srcs[0]).([]float32)[r0*cols+c0:]
					var second []float32
					if len(srcs) > 1 {
						second = any(srcs[1]).([]float32)[r0*cols+c0:]
					}
					transposeTile(d32[c0*rows+r0:], rows, a, second, cols)
					continue
				}
				for c := range nc {
					d := dst[(c0+c)*rows+r0:][:nr]
					for r := range d {
						v := srcs[0][(r0+r)*cols+c0+c]
						if len(srcs) > 1 {
							v += srcs[1][(r0+r)*cols+c0+c]
						}
						d[r] = v
					}
				}
			}
		}
	})
}

// transposeTile sets dst[j*ldd+i] to a[i*lds+j] (+ b[i*lds+j] unless b is
// nil) for i, j < 16. It needs vecLoops32.
func transposeTile(dst []float32, ldd int, a, b []float32, lds int) {
	_, _ = dst[15*ldd+15], a[15*lds+15]
	var bp *float32
	if b != nil {
		_ = b[15*lds+15]
		bp = &b[0]
	}
	vecLoops32.transpose16(&dst[0], ldd, &a[0], bp, lds)
}
