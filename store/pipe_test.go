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

// TestEmbeddedReadsInProcess: the process's own Clients of the endpoint
// read objects from its backend (runContract holds them to the protocol's
// answers), those with other credentials or over the socket do not, and
// once the endpoint is closed reads fail as for an endpoint that went away.
func TestEmbeddedReadsInProcess(t *testing.T) {
	e := startEmbedded(t, "")
	ctx := t.Context()
	cfg := e.Config("local")
	cfg.RetryFor = -1
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.EnsureBucket(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Put(ctx, "k", []byte("kept"), PutOptions{}); err != nil {
		t.Fatal(err)
	}
	socket, other := cfg, cfg
	socket.Dialer = nil
	other.SecretKey += "x"
	for _, tc := range []struct {
		name  string
		cfg   Config
		local bool
	}{{"in process", cfg, true}, {"socket", socket, false}, {"other credentials", other, false}} {
		cl, err := New(tc.cfg)
		if err != nil {
			t.Fatal(err)
		}
		if got := cl.local != nil; got != tc.local {
			t.Errorf("%s: reads in process = %t, want %t", tc.name, got, tc.local)
		}
	}
	if got, err := c.Get(ctx, "k"); err != nil || string(got) != "kept" {
		t.Fatalf("Get = %q, %v", got, err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if got, err := c.Get(ctx, "k"); err == nil {
		t.Fatalf("Get after Close = %q, want an error", got)
	}
}
