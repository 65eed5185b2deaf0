package nn

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// minParallel is the least work, in elements touched, that is worth
// splitting across goroutines: below it the hand-off costs more than it
// saves.
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
// reproducible from run to run on one machine, whichever goroutine ran a
// piece.
//
// The other pieces go to the pool's workers. A training step is a chain of
// ops each split this way and each lasting about a millisecond, and on a
// virtual machine waking a parked thread takes 100-250 µs (measured on the
// benchmark machine: a median 133 µs before the second piece started), so
// go statements and a WaitGroup idled a core for a tenth of every op. Workers
// and the waiting caller therefore spin for spinFor before they park.
func parallelFor(n, p int, f func(part, lo, hi int)) {
	run(&job{f: f, n: n, p: p})
}

// parallelBalanced runs f over [0,n) on p goroutines like parallelFor, but
// hands out ranges of about n/(16p) items as goroutines free up, so that one
// slowed core (cache misses, another process) does not hold up the rest;
// part names the goroutine (for its scratch), not the range, so f must not
// combine results by part.
func parallelBalanced(n, p int, f func(part, lo, hi int)) {
	run(&job{f: f, n: n, p: p, grain: max(1, n/(16*p))})
}

func run(j *job) {
	if j.p <= 1 {
		j.f(0, 0, j.n)
		return
	}
	j.done = make(chan struct{}, 1)
	j.left.Store(int32(j.p - 1))
	for i := 1; i < j.p; i++ {
		if !workers.give(j, i) {
			j.run(i)
			j.finish()
		}
	}
	j.run(0)
	j.wait()
}

// spinFor is how long an idle worker, or a caller waiting for its pieces,
// polls before it parks. Ops follow each other within microseconds, so
// workers stay awake through a step and park between steps.
const spinFor = 2 * time.Millisecond

// job is one parallelFor call.
type job struct {
	f       func(part, lo, hi int)
	n, p    int
	grain   int          // 0: static ranges; else the size of each claim
	next    atomic.Int64 // the first item not yet claimed
	left    atomic.Int32 // pieces given away and not yet finished
	waiting atomic.Bool  // the caller has parked on done
	done    chan struct{}
}

func (j *job) run(part int) {
	if j.grain == 0 {
		j.f(part, j.n*part/j.p, j.n*(part+1)/j.p)
		return
	}
	for {
		lo := int(j.next.Add(int64(j.grain))) - j.grain
		if lo >= j.n {
			return
		}
		j.f(part, lo, min(lo+j.grain, j.n))
	}
}

func (j *job) finish() {
	if j.left.Add(-1) == 0 && j.waiting.Swap(false) {
		j.done <- struct{}{}
	}
}

// wait returns once every piece given away has finished.
func (j *job) wait() {
	spin(func() bool { return j.left.Load() == 0 })
	if j.left.Load() == 0 {
		return
	}
	j.waiting.Store(true)
	if j.left.Load() == 0 && j.waiting.Swap(false) {
		return
	}
	<-j.done
}

// spin polls ready for up to spinFor, yielding the processor between polls
// so that spinning never delays runnable goroutines.
func spin(ready func() bool) {
	var start time.Time
	for i := 0; ; i++ {
		if ready() {
			return
		}
		if i&63 == 0 {
			if start.IsZero() {
				start = time.Now()
			} else if time.Since(start) > spinFor {
				return
			}
		}
		runtime.Gosched()
	}
}

// pool is the set of worker goroutines, started on first use, one per
// extra processor a parallelFor has asked for.
type pool struct {
	mu sync.Mutex
	ws []*worker
}

var workers pool

// give hands piece part of j to an idle worker, reporting false if none is
// idle (another parallelFor, possibly an enclosing one, holds them all).
func (p *pool) give(j *job, part int) bool {
	p.mu.Lock()
	for len(p.ws) < min(part, runtime.GOMAXPROCS(0)-1) {
		w := &worker{wake: make(chan struct{}, 1)}
		p.ws = append(p.ws, w)
		go w.loop()
	}
	ws := p.ws
	p.mu.Unlock()
	for _, w := range ws {
		if w.busy.CompareAndSwap(false, true) {
			w.give(piece{j, part})
			return true
		}
	}
	return false
}

type piece struct {
	j    *job
	part int
}

type worker struct {
	busy   atomic.Bool // a piece is given and not yet finished
	next   atomic.Pointer[piece]
	parked atomic.Bool
	wake   chan struct{}
}

func (w *worker) give(pc piece) {
	w.next.Store(&pc)
	if w.parked.Swap(false) {
		w.wake <- struct{}{}
	}
}

func (w *worker) loop() {
	for {
		pc := w.take()
		pc.j.run(pc.part)
		w.busy.Store(false)
		pc.j.finish()
	}
}

// take returns the next piece, spinning for spinFor and then parking.
func (w *worker) take() *piece {
	for {
		var pc *piece
		spin(func() bool { pc = w.next.Swap(nil); return pc != nil })
		if pc != nil {
			return pc
		}
		w.parked.Store(true)
		if pc = w.next.Swap(nil); pc != nil {
			if !w.parked.Swap(false) {
				<-w.wake // give saw us parked and sent a wake-up: drain it
			}
			return pc
		}
		<-w.wake
	}
}
