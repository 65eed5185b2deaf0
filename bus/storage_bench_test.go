package bus

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/supflow/supflow/internal/cputime"
)

// BenchmarkStorage moves messages of view-sized payloads through one
// work-queue stream on an embedded server, published by the bus's
// Publisher and read by its pull subscriber with 4 handler slots, each
// message acknowledged, with the stream in each JetStream storage: file
// (the reference, what Provision creates) and memory. The cases are what
// bus.batch packs into a message of the default 1 MiB max_payload: 3
// samples of 2 views of 224x224x3 (jpeg224), 64 of 2 views of 32x32x3
// (png32 at the default batch). CPU per sample is the whole process's
// (server included), with the ratio against file storage.
//
//	go test -run '^$' -bench BenchmarkStorage -benchtime 2000x ./bus/
func BenchmarkStorage(b *testing.B) {
	for _, c := range []struct {
		name          string
		samples, side int
	}{{"views224x3", 3, 224}, {"views32x64", 64, 32}} {
		var ref float64 // file storage's CPU per sample
		for _, st := range []jetstream.StorageType{jetstream.FileStorage, jetstream.MemoryStorage} {
			b.Run(fmt.Sprintf("%s/%s", c.name, st), func(b *testing.B) {
				cpu := benchStorage(b, st, make([]byte, c.samples*2*c.side*c.side*3), 4) / float64(c.samples)
				b.ReportMetric(cpu*1e3, "cpu_ms/sample")
				b.ReportMetric(float64(b.N*c.samples)/b.Elapsed().Seconds(), "samples/s")
				if st == jetstream.FileStorage {
					ref = cpu
				} else if ref > 0 {
					b.ReportMetric(cpu/ref, "cpu_vs_file")
				}
			})
		}
	}
}

// benchStorage returns the CPU seconds per message of publishing and
// reading b.N messages of payload, both at once.
func benchStorage(b *testing.B, st jetstream.StorageType, payload []byte, workers int) float64 {
	srv := startServer(b, EmbeddedConfig{})
	bus := connect(b, srv.URL())
	ctx := b.Context()
	e := WorkQueue{Topic: "bench", Consumer: Consumer{Name: "bench", AckWait: time.Minute, MaxDeliver: 5, MaxAckPending: 64}}
	t, err := Topology{Edges: []WorkQueue{e}}.checked()
	if err != nil {
		b.Fatal(err)
	}
	e = t.Edges[0]
	if err := bus.stream(ctx, jetstream.StreamConfig{Name: e.Topic, Subjects: []string{e.Topic},
		Retention: jetstream.WorkQueuePolicy, Storage: st, Discard: jetstream.DiscardNew,
		MaxMsgs: e.MaxMsgs, MaxBytes: e.MaxBytes, Duplicates: e.Duplicates}); err != nil {
		b.Fatal(err)
	}
	if err := bus.consumer(ctx, e); err != nil {
		b.Fatal(err)
	}
	c, err := bus.js.Consumer(ctx, e.Topic, e.Consumer.Name)
	if err != nil {
		b.Fatal(err)
	}
	sub := newPullSubscriber(newPuller(bus.js, c, workers, e.Consumer.AckWait, backoff{}, slog.New(slog.DiscardHandler)),
		context.Background(), time.Minute)
	defer sub.Close()
	msgs, err := sub.Subscribe(ctx, e.Topic)
	if err != nil {
		b.Fatal(err)
	}
	pub := bus.Publisher()
	defer pub.Close()

	start := cputime.Seconds()
	b.ResetTimer()
	sent := make(chan error, 1)
	go func() {
		for range b.N {
			if err := pub.Send(ctx, e.Topic, payload); err != nil {
				sent <- err
				return
			}
		}
		sent <- nil
	}()
	for range b.N {
		// The router hands each message to a goroutine of its own.
		msg := <-msgs
		go msg.Ack()
	}
	if err := <-sent; err != nil {
		b.Fatal(err)
	}
	// The last acks reach the server.
	if err := bus.nc.Flush(); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	return (cputime.Seconds() - start) / float64(b.N)
}
