package store

import (
	"context"
	"errors"
	"net"
	"testing"
)

// TestEmbeddedCloseEndsInMemoryDials: once the endpoint is closed, an
// in-memory dial fails at once instead of waiting for an Accept that will
// not come, even when Close came before its server began serving the pipes.
func TestEmbeddedCloseEndsInMemoryDials(t *testing.T) {
	e, err := StartEmbedded(t.Context(), "")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := e.pipes.DialContext(context.Background(), "tcp", e.Endpoint()); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("dial after Close = %v, want net.ErrClosed", err)
	}
}
