// Package bufpool recycles byte buffers of the data plane's largest
// objects (batch messages, shard runs): a fresh one per object cost page
// faults and clearing on every byte written, and garbage to collect
// (docs/benchmarks.md, "Buffers reused for the largest objects").
package bufpool

import "sync"

// Pool holds buffers free for reuse. The zero value is empty and ready; a
// nil *Pool reuses nothing. It is safe for concurrent use, and an idle
// process gives its buffers back to the runtime within two collections.
type Pool struct{ pool sync.Pool }

// Get returns an empty buffer: a free one's room, or nil.
func (p *Pool) Get() []byte {
	if p == nil {
		return nil
	}
	if b, ok := p.pool.Get().(*[]byte); ok {
		return (*b)[:0]
	}
	return nil
}

// Put keeps b for reuse; whoever had it must not touch it after.
func (p *Pool) Put(b []byte) {
	if p != nil && cap(b) > 0 {
		p.pool.Put(&b)
	}
}
