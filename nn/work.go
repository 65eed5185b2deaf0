package nn

import "sync"

// freeList lends workspace slices. Convolutions borrow their unfolding
// workspace for one call, so a graph needs only as much workspace as its
// largest convolution, and machines running concurrently get separate
// slices. It never holds more slices than were lent at once.
type freeList[T float] struct {
	mu   sync.Mutex
	free [][]T
}

var (
	work32 freeList[float32]
	work64 freeList[float64]
)

func (f *freeList[T]) get(n int) []T {
	f.mu.Lock()
	defer f.mu.Unlock()
	best := -1
	for i, s := range f.free {
		if cap(s) >= n && (best < 0 || cap(s) < cap(f.free[best])) {
			best = i
		}
	}
	if best < 0 {
		// None fits: drop the largest, which the new one replaces.
		if len(f.free) > 0 {
			largest := 0
			for i, s := range f.free {
				if cap(s) > cap(f.free[largest]) {
					largest = i
				}
			}
			f.free = append(f.free[:largest], f.free[largest+1:]...)
		}
		return make([]T, n)
	}
	s := f.free[best]
	f.free = append(f.free[:best], f.free[best+1:]...)
	return s[:n]
}

func (f *freeList[T]) put(s []T) {
	f.mu.Lock()
	f.free = append(f.free, s)
	f.mu.Unlock()
}

// getWork borrows a slice of n elements with unspecified contents.
func getWork[T float](n int) []T {
	switch any(*new(T)).(type) {
	case float32:
		return any(work32.get(n)).([]T)
	default:
		return any(work64.get(n)).([]T)
	}
}

// putWork returns a slice obtained from getWork.
func putWork[T float](s []T) {
	switch s := any(s).(type) {
	case []float32:
		work32.put(s)
	case []float64:
		work64.put(s)
	}
}
