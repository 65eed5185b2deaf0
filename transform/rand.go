package transform

import "math/bits"

// Key names the random stream of one sample's views. Any worker holding the
// same Key draws the same parameters for view i.
type Key struct {
	Seed     uint64 // the run's seed
	Epoch    uint32
	SampleID uint64
}

// rng is SplitMix64: tiny, fast, and its stream is fixed by this code rather
// than by a library whose algorithms may change between Go releases.
type rng struct{ s uint64 }

const golden = 0x9e3779b97f4a7c15

func mix(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// newRNG seeds a stream by hashing the key and the view index, one field at a
// time so that no two keys collide by simple arithmetic.
func newRNG(k Key, view int) rng {
	h := mix(k.Seed + golden)
	h = mix((h ^ uint64(k.Epoch)) + golden)
	h = mix((h ^ k.SampleID) + golden)
	h = mix((h ^ uint64(view)) + golden)
	return rng{s: h}
}

func (r *rng) uint64() uint64 {
	r.s += golden
	return mix(r.s)
}

// float64 is uniform in [0, 1).
func (r *rng) float64() float64 {
	return float64(r.uint64()>>11) * 0x1p-53
}

// uniform is uniform in [lo, hi).
func (r *rng) uniform(lo, hi float64) float64 {
	return lo + (hi-lo)*r.float64()
}

// intn is uniform in [0, n), n > 0, without modulo bias (Lemire's method).
func (r *rng) intn(n int) int {
	bound := uint64(n)
	hi, lo := bits.Mul64(r.uint64(), bound)
	if lo < bound {
		thresh := -bound % bound
		for lo < thresh {
			hi, lo = bits.Mul64(r.uint64(), bound)
		}
	}
	return int(hi)
}
