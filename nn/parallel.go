package nn

import (
	"runtime"
	"sync"
)

// minParallel is the least work, in elements touched, that is worth
// splitting across goroutines: below it the hand-off (a few microseconds)
// costs more than it saves.
const minParallel = 1 << 15

// parts returns into how many contiguous pieces to split n items when each
// item touches cost elements: one per available processor, but no piece
// smaller than minParallel elements and never more pieces than items.
func parts(n, cost int) int {
	p := runtime.GOMAXPROCS(0)
	if cost > 0 {
		p = min(p, n*cost/minParallel)
	}
	return max(1, min(p, n))
}

// parallelFor splits [0,n) into p contiguous ranges, the same ones for the
// same n and p, and runs f(part, lo, hi) on each concurrently, the first on
// the calling goroutine. Results that combine pieces (sums) are therefore
// reproducible from run to run on one machine.
func parallelFor(n, p int, f func(part, lo, hi int)) {
	if p <= 1 {
		f(0, 0, n)
		return
	}
	var wg sync.WaitGroup
	for i := 1; i < p; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f(i, n*i/p, n*(i+1)/p)
		}()
	}
	f(0, 0, n/p)
	wg.Wait()
}
