package nn

import (
	"math"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
)

// TestParallelMatchesSerial runs the ops that split their loops over
// goroutines once on one processor and once on four, on shapes large enough
// to be split, and compares: the same values, except the weight gradient,
// whose per-goroutine partial sums may round differently.
func TestParallelMatchesSerial(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	fill := func(n int) []float64 {
		v := make([]float64, n)
		for i := range v {
			v[i] = rng.NormFloat64()
		}
		return v
	}
	type result map[string][]float64
	run := func(procs int, g convGeom, x, w, dy []float64) result {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
		r := result{
			"y":  make([]float64, g.n*g.o*g.ho*g.wo),
			"dx": make([]float64, len(x)),
			"dw": make([]float64, len(w)),
		}
		convForward(&g, x, w, r["y"])
		convGradX(&g, w, dy, r["dx"])
		convGradW(&g, x, dy, r["dw"])
		// Batch norm and elementwise ops on the convolution's output.
		c, hw := g.o, g.ho*g.wo
		st, sv := NewBNState(c), &bnSaved{mean: make([]float64, c), invStd: make([]float64, c), training: true}
		gamma, beta := make([]float64, c), make([]float64, c)
		for i := range gamma {
			gamma[i], beta[i] = 1.5, -0.5
		}
		r["bn"] = make([]float64, len(r["y"]))
		bnForward(st, sv, g.n, c, hw, r["y"], gamma, beta, r["bn"])
		r["running"] = append(append([]float64(nil), st.RunningMean...), st.RunningVar...)
		r["dbeta"], r["dgamma"] = make([]float64, c), make([]float64, c)
		bnGradGamma(sv, g.n, c, hw, r["y"], dy, r["dgamma"])
		copyRounded(r["dbeta"], sv.sumDy)
		r["bndx"] = make([]float64, len(r["y"]))
		bnGradX(sv, g.n, c, hw, r["y"], gamma, dy, r["dgamma"], r["bndx"])
		r["relugrad"] = make([]float64, len(r["y"]))
		split(r["relugrad"], [][]float64{r["bn"], dy}, reluGrad64)
		return r
	}
	for _, tc := range []struct {
		name                string
		n, c, h, o, k, s, p int
	}{
		{"3x3", 16, 16, 16, 16, 3, 1, 1},
		{"3x3 stride 2, chunked", 32, 16, 8, 32, 3, 2, 1},
		{"1x1 direct", 8, 32, 24, 32, 1, 1, 0},
		{"1x1 stride 2", 64, 32, 16, 64, 1, 2, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, err := newConvGeom([]int{tc.n, tc.c, tc.h, tc.h}, []int{tc.o, tc.c, tc.k, tc.k}, tc.s, tc.p)
			if err != nil {
				t.Fatal(err)
			}
			prev := runtime.GOMAXPROCS(4)
			p := g.plan().np
			runtime.GOMAXPROCS(prev)
			if p < 2 && !g.direct() {
				t.Fatalf("the case does not split: %d part", p)
			}
			x, w, dy := fill(tc.n*tc.c*tc.h*tc.h), fill(tc.o*tc.c*tc.k*tc.k), fill(g.n*g.o*g.ho*g.wo)
			serial, par := run(1, g, x, w, dy), run(4, g, x, w, dy)
			for name, want := range serial {
				got := par[name]
				var worst float64
				for i := range want {
					worst = max(worst, math.Abs(got[i]-want[i]))
				}
				tol := 0.0
				if name == "dw" {
					tol = 1e-12 // per-goroutine partial sums
				}
				if worst > tol {
					t.Errorf("%s: parallel differs from serial by %g (tolerance %g)", name, worst, tol)
				}
			}
		})
	}
}

func TestChunkEvensOutPasses(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2))
	for _, tc := range []struct{ n, hw, want int }{
		{32, 3, 16},  // 29 + 3 images would idle a core: 16 + 16
		{256, 4, 16}, // 16 passes of 16 already spread evenly
		{256, 32, 1}, // one image per GEMM
		{5, 8, 3},    // 4 + 1 -> 3 + 2
		{1, 4, 1},    // a single image
		{128, 1, 64}, // 1x1 spatial: two passes of 64
	} {
		g := convGeom{n: tc.n, ho: tc.hw, wo: tc.hw}
		if got := g.chunk(); got != tc.want {
			t.Errorf("n=%d, %dx%d: chunk %d, want %d", tc.n, tc.hw, tc.hw, got, tc.want)
		}
	}
}

// TestParallelCoversOnce checks that both splitters run every item exactly
// once with part < p, also when callers run concurrently and nest (pieces
// that find every worker busy run on the caller), and that parallelFor's
// ranges depend only on n and p.
func TestParallelCoversOnce(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(4))
	check := func(name string, split func(n, p int, f func(part, lo, hi int)), n, p int, nested bool) {
		seen := make([]atomic.Int32, n)
		var bad atomic.Bool
		split(n, p, func(part, lo, hi int) {
			if part < 0 || part >= p || lo < 0 || hi > n || lo > hi {
				bad.Store(true)
			}
			for i := lo; i < hi; i++ {
				seen[i].Add(1)
				if nested {
					parallelFor(8, 2, func(_, _, _ int) {})
				}
			}
		})
		if bad.Load() {
			t.Errorf("%s(%d, %d): a piece out of range", name, n, p)
		}
		for i := range seen {
			if c := seen[i].Load(); c != 1 {
				t.Fatalf("%s(%d, %d): item %d ran %d times", name, n, p, i, c)
			}
		}
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				n, p := 1+(i*7+g)%300, 1+i%4
				check("parallelFor", parallelFor, n, p, i%5 == 0)
				check("parallelBalanced", parallelBalanced, n, p, i%7 == 0)
			}
		}()
	}
	wg.Wait()
	for _, p := range []int{2, 3, 4} {
		got := make([][2]int, p)
		parallelFor(10, p, func(part, lo, hi int) { got[part] = [2]int{lo, hi} })
		for part, r := range got {
			if want := [2]int{10 * part / p, 10 * (part + 1) / p}; r != want {
				t.Errorf("parallelFor(10, %d): piece %d is %v, want %v", p, part, r, want)
			}
		}
	}
}
