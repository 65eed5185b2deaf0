package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/supflow/supflow/internal/miniotest"
)

// proxy forwards TCP connections to target and can go down (listener and
// open connections closed) and up again on the same address.
type proxy struct {
	t      *testing.T
	addr   string
	target string

	mu    sync.Mutex
	ln    net.Listener
	conns []net.Conn
	wg    sync.WaitGroup
}

func newProxy(t *testing.T, target string) *proxy {
	p := &proxy{t: t, addr: "127.0.0.1:0", target: target}
	p.up()
	t.Cleanup(p.down)
	return p
}

func (p *proxy) up() {
	p.mu.Lock()
	defer p.mu.Unlock()
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		p.t.Errorf("proxy listen: %v", err) // may run off the test goroutine: no Fatal
		return
	}
	p.ln, p.addr = ln, ln.Addr().String()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, u)
			p.mu.Unlock()
			p.wg.Add(2)
			go func() { defer p.wg.Done(); io.Copy(u, c); u.Close() }()
			go func() { defer p.wg.Done(); io.Copy(c, u); c.Close() }()
		}
	}()
}

func (p *proxy) down() {
	p.mu.Lock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
	p.mu.Unlock()
	p.wg.Wait()
}

func TestGetSurvivesOutage(t *testing.T) {
	e := startEmbedded(t, "")
	p := newProxy(t, e.Endpoint())
	cfg := e.Config("outage")
	cfg.Endpoint = p.addr
	cfg.Dialer = nil // through the socket, not in memory
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if err := c.EnsureBucket(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Put(ctx, "k", []byte("v"), PutOptions{}); err != nil {
		t.Fatal(err)
	}

	noRetry := cfg
	noRetry.RetryFor = -1
	nc, err := New(noRetry)
	if err != nil {
		t.Fatal(err)
	}

	const outage = 1500 * time.Millisecond
	p.down()
	if _, err := nc.Get(ctx, "k"); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Get without retries during outage = %v, want ErrUnavailable", err)
	}
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	_, err = c.Get(short, "k")
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Get past its deadline = %v, want DeadlineExceeded", err)
	}
	time.AfterFunc(outage, p.up)
	start := time.Now()
	deadline, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	got, err := c.Get(deadline, "k")
	if err != nil || string(got) != "v" {
		t.Fatalf("Get across outage = %q, %v", got, err)
	}
	if d := time.Since(start); d < outage/2 {
		t.Fatalf("Get returned after %s, before the endpoint was back", d)
	}
}

// TestIntegrationGetSurvivesMinIORestart stops a real MinIO for about ten
// seconds while a Get with a deadline is waiting on it.
func TestIntegrationGetSurvivesMinIORestart(t *testing.T) {
	s := miniotest.Start(t)
	ak, sk := s.Credentials()
	c, err := New(Config{Endpoint: s.Endpoint(), Bucket: "restart", AccessKey: ak, SecretKey: sk})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if err := c.EnsureBucket(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Put(ctx, "k", []byte("v"), PutOptions{}); err != nil {
		t.Fatal(err)
	}
	s.Stop()
	type result struct {
		data []byte
		err  error
	}
	res := make(chan result, 1)
	go func() {
		ctx, cancel := context.WithTimeout(ctx, 40*time.Second)
		defer cancel()
		data, err := c.Get(ctx, "k")
		res <- result{data, err}
	}()
	time.Sleep(8 * time.Second)
	s.Start()
	r := <-res
	if r.err != nil || string(r.data) != "v" {
		t.Fatalf("Get across restart = %q, %v", r.data, r.err)
	}
}

// TestWalkResumesAfterOutage cuts the endpoint off between two pages of a
// listing: Walk retries from the last key it delivered, so every key is
// passed to fn once, in order.
func TestWalkResumesAfterOutage(t *testing.T) {
	e := startEmbedded(t, "")
	p := newProxy(t, e.Endpoint())
	cfg := e.Config("walk")
	cfg.Endpoint = p.addr
	cfg.Dialer = nil // through the socket, not in memory
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.listPage = 4
	ctx := t.Context()
	if err := c.EnsureBucket(ctx); err != nil {
		t.Fatal(err)
	}
	var want []string
	for i := range 10 {
		k := fmt.Sprintf("w/%02d", i)
		want = append(want, k)
		if err := c.Put(ctx, k, []byte{byte(i)}, PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	err = c.Walk(ctx, "w/", func(o ObjectInfo) error {
		got = append(got, o.Key)
		if len(got) == 5 { // the second page is being read
			p.down()
			time.AfterFunc(500*time.Millisecond, p.up)
		}
		return nil
	})
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("Walk across an outage = %v, %v; want %v once each", got, err, want)
	}
}

// TestGetCutsAStalledRead: the first connection the client opens is
// accepted and never answered, as a cluster node that went away without a
// reset; the attempt is cut after StallTimeout and the retry, on a new
// connection, gets the object. Without retries the cut is ErrUnavailable.
func TestGetCutsAStalledRead(t *testing.T) {
	e := startEmbedded(t, "")
	direct, err := New(e.Config("stall"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if err := direct.EnsureBucket(ctx); err != nil {
		t.Fatal(err)
	}
	if err := direct.Put(ctx, "k", []byte("v"), PutOptions{}); err != nil {
		t.Fatal(err)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var held []net.Conn
	stall := 1 // connections left to hold unanswered
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range held {
			c.Close()
		}
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c)
			hold := stall > 0
			stall--
			mu.Unlock()
			if hold {
				continue
			}
			u, err := net.Dial("tcp", e.Endpoint())
			if err != nil {
				c.Close()
				continue
			}
			go func() { io.Copy(u, c); u.Close() }()
			go func() { io.Copy(c, u); c.Close() }()
		}
	}()

	cfg := e.Config("stall")
	cfg.Endpoint = ln.Addr().String()
	cfg.Dialer = nil // through the socket, not in memory
	cfg.StallTimeout = 200 * time.Millisecond
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := c.Get(ctx, "k"); err != nil || string(got) != "v" {
		t.Fatalf("Get with its first connection stalled = %q, %v", got, err)
	}

	mu.Lock()
	stall = 1
	mu.Unlock()
	cfg.RetryFor = -1
	nc, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := nc.Get(ctx, "k"); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Get without retries on a stalled connection = %v, want ErrUnavailable", err)
	}
}
