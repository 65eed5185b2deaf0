package nn

// transposeSum sets dst (cols x rows) to the transpose of a, plus b
// unless b is nil (rows x cols each), a 16x16 tile at a time so that both
// sides stay in cache; float32 tiles go through the AVX-512 transpose
// where there is one.
func transposeSum[T float](dst, a, b []T, rows, cols int) {
	const t = 16
	d32, vec := any(dst).([]float32)
	vec = vec && vecLoops32 != nil
	srcs := 1
	if b != nil {
		srcs = 2
	}
	bands := (rows + t - 1) / t
	parallelBalanced(bands, parts(bands, t*cols*srcs), func(_, lo, hi int) {
		for band := lo; band < hi; band++ {
			r0 := band * t
			nr := min(t, rows-r0)
			for c0 := 0; c0 < cols; c0 += t {
				nc := min(t, cols-c0)
				at := r0*cols + c0
				if vec && nr == t && nc == t {
					var b32 []float32
					if b != nil {
						b32 = any(b).([]float32)[at:]
					}
					transposeTile(d32[c0*rows+r0:], rows, any(a).([]float32)[at:], b32, cols)
					continue
				}
				for c := range nc {
					d := dst[(c0+c)*rows+r0:][:nr]
					for r := range d {
						v := a[at+r*cols+c]
						if b != nil {
							v += b[at+r*cols+c]
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
