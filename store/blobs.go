package store

import "context"

// Blobs reads and writes a Client's objects as plain bytes: what a cache
// of derived data needs (it is decode.Cache, which must not import this
// package). Writes are application/octet-stream; a range is read whole or
// refused (ErrOutOfRange), never more than its length.
type Blobs struct{ C *Client }

// Get returns the whole object (Client.Get).
func (b Blobs) Get(ctx context.Context, key string) ([]byte, error) { return b.C.Get(ctx, key) }

// GetRange returns bytes [off, off+n) of the object (Client.GetRange).
func (b Blobs) GetRange(ctx context.Context, key string, off, n int64) ([]byte, error) {
	return b.C.GetRange(ctx, key, off, n, n)
}

// Put writes the object whole (Client.Put).
func (b Blobs) Put(ctx context.Context, key string, data []byte) error {
	return b.C.Put(ctx, key, data, PutOptions{ContentType: "application/octet-stream"})
}
