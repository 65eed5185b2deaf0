package nn

import "math"

// Reductions over one channel's values, summed in float64. A single
// accumulator makes every element wait for the previous addition (four
// cycles of latency), so these loops keep four independent partial sums and
// add them at the end: the batch-norm passes they serve become bound by
// memory instead of by the adder. The order of additions is fixed, so
// results repeat exactly.

// sum returns the sum of x.
func sum[T float](x []T) float64 {
	var s0, s1, s2, s3 float64
	i := 0
	for ; i+4 <= len(x); i += 4 {
		v := x[i : i+4 : i+4]
		s0 += float64(v[0])
		s1 += float64(v[1])
		s2 += float64(v[2])
		s3 += float64(v[3])
	}
	for ; i < len(x); i++ {
		s0 += float64(x[i])
	}
	return (s0 + s1) + (s2 + s3)
}

// shiftedMoments returns the sums of x-k and of (x-k)^2. With k a value of
// the data, the variance sum2/n - (sum1/n)^2 taken from one pass does not
// lose the digits a mean far from zero would cancel.
func shiftedMoments[T float](x []T, k float64) (sum1, sum2 float64) {
	var a0, a1, a2, a3, q0, q1, q2, q3 float64
	i := 0
	for ; i+4 <= len(x); i += 4 {
		v := x[i : i+4 : i+4]
		d0, d1, d2, d3 := float64(v[0])-k, float64(v[1])-k, float64(v[2])-k, float64(v[3])-k
		a0 += d0
		a1 += d1
		a2 += d2
		a3 += d3
		q0 += d0 * d0
		q1 += d1 * d1
		q2 += d2 * d2
		q3 += d3 * d3
	}
	for ; i < len(x); i++ {
		d := float64(x[i]) - k
		a0 += d
		q0 += d * d
	}
	return (a0 + a1) + (a2 + a3), (q0 + q1) + (q2 + q3)
}

// centredDot returns the sums of dy and of dy*(x-mean).
func centredDot[T float](x, dy []T, mean float64) (sumDy, sumDyX float64) {
	dy = dy[:len(x)]
	var a0, a1, a2, a3, p0, p1, p2, p3 float64
	i := 0
	for ; i+4 <= len(x); i += 4 {
		v, g := x[i:i+4:i+4], dy[i:i+4:i+4]
		g0, g1, g2, g3 := float64(g[0]), float64(g[1]), float64(g[2]), float64(g[3])
		a0 += g0
		a1 += g1
		a2 += g2
		a3 += g3
		p0 += g0 * (float64(v[0]) - mean)
		p1 += g1 * (float64(v[1]) - mean)
		p2 += g2 * (float64(v[2]) - mean)
		p3 += g3 * (float64(v[3]) - mean)
	}
	for ; i < len(x); i++ {
		g := float64(dy[i])
		a0 += g
		p0 += g * (float64(x[i]) - mean)
	}
	return (a0 + a1) + (a2 + a3), (p0 + p1) + (p2 + p3)
}

// centredDotReLU is centredDot of x and dy where relu is false or
// affine(x, scale, shift) is positive, and zero elsewhere: the gradient
// through a ReLU that followed the normalisation. It masks dy a
// stack-sized block at a time and sums each block with centredDot.
func centredDotReLU[T float](x, dy []T, mean, scale, shift float64, relu bool) (sumDy, sumDyX float64) {
	if !relu {
		return centredDot(x, dy, mean)
	}
	dy = dy[:len(x)]
	var g [256]T
	for lo := 0; lo < len(x); lo += len(g) {
		n := min(len(g), len(x)-lo)
		for j, v := range x[lo : lo+n] {
			g[j] = T(keepIf(float64(dy[lo+j]), affine(v, scale, shift) > 0))
		}
		a, b := centredDot(x[lo:lo+n], g[:n], mean)
		sumDy += a
		sumDyX += b
	}
	return sumDy, sumDyX
}

// keepIf returns g if keep, else 0, by masking bits: the sign of a
// normalised value is a coin flip, and a branch on it mispredicts half the
// time (see reluGrad32).
func keepIf(g float64, keep bool) float64 {
	var m uint64
	if keep {
		m = ^uint64(0)
	}
	return math.Float64frombits(math.Float64bits(g) & m)
}
