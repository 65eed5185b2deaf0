package store

import (
	"fmt"
	"testing"

	"github.com/supflow/supflow/internal/cputime"
)

// BenchmarkEmbeddedGet reads objects from the embedded endpoint through
// the Client, over its socket, over the in-memory pipe (Embedded.Config's
// Dialer, "pipe") and from its backend (Embedded.Config's Clients, local),
// with 2 reads at once: a 20 KB range of a shard (a run of about 50 gray
// 28 px PNGs) and a whole 110 KB object (an ImageNet-like JPEG). CPU per
// read is the whole process's, server included, with the ratio to the
// socket. The objects are held in memory, and for "files" in files (as
// `supflow run` keeps them), read in process.
//
//	go test -run '^$' -bench BenchmarkEmbeddedGet -benchtime 5000x ./store/
func BenchmarkEmbeddedGet(b *testing.B) {
	ctx := b.Context()
	serve := func(dir string) *Embedded {
		e := startEmbedded(b, dir)
		setup, err := New(e.Config("bench"))
		if err != nil {
			b.Fatal(err)
		}
		if err := setup.EnsureBucket(ctx); err != nil {
			b.Fatal(err)
		}
		for _, o := range []struct {
			key  string
			size int
		}{{"shard", 1 << 20}, {"photo", 110 << 10}} {
			if err := setup.Put(ctx, o.key, make([]byte, o.size), PutOptions{}); err != nil {
				b.Fatal(err)
			}
		}
		return e
	}
	inMemory, inFiles := serve(""), serve(b.TempDir())
	for _, c := range []struct {
		name string
		get  func(*Client) error
	}{
		{"range20KB", func(c *Client) error { _, err := c.GetRange(ctx, "shard", 300<<10, 20<<10, 20<<10); return err }},
		{"object110KB", func(c *Client) error { _, err := c.Get(ctx, "photo"); return err }},
	} {
		var ref float64 // the socket's CPU per read
		for _, via := range []string{"socket", "pipe", "memory", "files"} {
			b.Run(fmt.Sprintf("%s/%s", c.name, via), func(b *testing.B) {
				cfg := inMemory.Config("bench")
				switch via {
				case "socket":
					cfg.Dialer = nil
				case "files":
					cfg = inFiles.Config("bench")
				}
				cl, err := New(cfg)
				if err != nil {
					b.Fatal(err)
				}
				if via == "pipe" {
					cl.local = nil
				}
				start := cputime.Seconds()
				b.SetParallelism(1) // GOMAXPROCS readers: 2 on the 2-core machine
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if err := c.get(cl); err != nil {
							b.Error(err)
							return
						}
					}
				})
				cpu := (cputime.Seconds() - start) / float64(b.N)
				b.ReportMetric(cpu*1e6, "cpu_us/read")
				if via == "socket" {
					ref = cpu
				} else if ref > 0 {
					b.ReportMetric(cpu/ref, "cpu_vs_socket")
				}
			})
		}
	}
}
