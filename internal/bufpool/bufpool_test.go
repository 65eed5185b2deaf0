package bufpool

import "testing"

func TestPool(t *testing.T) {
	var nilPool *Pool
	nilPool.Put(make([]byte, 8))
	if b := nilPool.Get(); b != nil {
		t.Fatalf("nil Pool gave %d bytes of room", cap(b))
	}
	var p Pool
	p.Put(nil) // no room: not kept
	// sync.Pool may drop what it was given (a collection, the goroutine
	// moving to another P), never every time.
	reused := 0
	for range 100 {
		b := append(p.Get(), "abc"...)
		if cap(b) >= 64 {
			reused++
		}
		if len(b) != 3 {
			t.Fatalf("Get gave a buffer holding %d bytes, want it empty", len(b)-3)
		}
		p.Put(append(b, make([]byte, 61)...))
	}
	if reused == 0 {
		t.Error("no buffer was reused")
	}
}
