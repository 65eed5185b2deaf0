package bus

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wmnats "github.com/ThreeDotsLabs/watermill-nats/v2/pkg/nats"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/supflow/supflow/internal/cputime"
)

// BenchmarkConsumer reads messages of bus.batch 32x32x3 samples off a
// work-queue stream with 4 handler slots and acknowledges each, on an
// embedded server: supflow's pull subscriber against the reference, the
// push queue group supflow used before (watermill-nats v2.1.3 bound to a
// durable push consumer with a deliver group, as bus/router.go did). The
// stream is filled before the clock starts, so what is measured is
// delivery and acknowledgement: msgs/s and CPU per message of the whole
// process (server included), and the ratio against the reference.
//
//	go test -run '^$' -bench BenchmarkConsumer -benchtime 4000x ./bus/
func BenchmarkConsumer(b *testing.B) {
	const workers = 4
	for _, batch := range []int{1, 64} {
		var ref float64 // the reference's CPU per message
		for _, mode := range []string{"push", "pull"} {
			b.Run(fmt.Sprintf("batch=%d/%s", batch, mode), func(b *testing.B) {
				cpu := benchConsumer(b, mode, batch, workers)
				b.ReportMetric(cpu*1e3, "cpu_ms/msg")
				b.ReportMetric(cpu*1e3/float64(batch), "cpu_ms/sample")
				if mode == "push" {
					ref = cpu
				} else if ref > 0 {
					b.ReportMetric(cpu/ref, "cpu_vs_push")
				}
			})
		}
	}
}

// benchConsumer returns the CPU seconds per message of reading b.N.
func benchConsumer(b *testing.B, mode string, batch, workers int) float64 {
	srv := startServer(b, EmbeddedConfig{})
	bus := connect(b, srv.URL())
	e := WorkQueue{Topic: "bench", MaxMsgs: int64(b.N) + 16, MaxBytes: 8 << 30,
		Consumer: Consumer{Name: "bench", AckWait: time.Minute, MaxDeliver: 5, MaxAckPending: 64}}
	provision(b, bus, e)
	payload := make([]byte, batch*32*32*3)
	fill(b, bus, e.Topic, payload)

	nc, err := nats.Connect(srv.URL())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(nc.Close)
	var sub message.Subscriber
	switch mode {
	case "push":
		sub = pushReference(b, bus, nc, e, workers)
	default:
		js, err := jetstream.New(nc)
		if err != nil {
			b.Fatal(err)
		}
		c, err := js.Consumer(b.Context(), e.Topic, e.Consumer.Name)
		if err != nil {
			b.Fatal(err)
		}
		sub = newPullSubscriber(newPuller(js, c, workers, e.Consumer.AckWait, backoff{}, slog.New(slog.DiscardHandler)),
			context.Background(), time.Minute)
	}
	defer sub.Close()

	start := cputime.Seconds()
	b.ResetTimer()
	msgs, err := sub.Subscribe(b.Context(), e.Topic)
	if err != nil {
		b.Fatal(err)
	}
	for range b.N {
		// The router hands each message to a goroutine of its own.
		msg := <-msgs
		go msg.Ack()
	}
	// The last acks reach the server.
	if err := nc.Flush(); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	secs := b.Elapsed().Seconds()
	b.ReportMetric(float64(b.N)/secs, "msgs/s")
	b.ReportMetric(float64(b.N*batch)/secs, "samples/s")
	return (cputime.Seconds() - start) / float64(b.N)
}

// fill publishes b.N messages of payload, asynchronously, and waits for
// every acknowledgement.
func fill(b *testing.B, bus *Bus, topic string, payload []byte) {
	js, err := jetstream.New(bus.nc, jetstream.WithPublishAsyncMaxPending(256))
	if err != nil {
		b.Fatal(err)
	}
	for range b.N {
		if _, err := js.PublishAsync(topic, payload, jetstream.WithStallWait(time.Minute)); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(5 * time.Minute):
		b.Fatal("filling the stream took more than 5 min")
	}
}

// pushReference replaces e's pull consumer by the push consumer supflow
// provisioned before (deliver group = name) and returns the subscriber its
// router bound to it.
func pushReference(b *testing.B, bus *Bus, nc *nats.Conn, e WorkQueue, workers int) message.Subscriber {
	ctx := b.Context()
	if err := bus.js.DeleteConsumer(ctx, e.Topic, e.Consumer.Name); err != nil {
		b.Fatal(err)
	}
	deliver := "_supflow_deliver." + e.Topic + "." + e.Consumer.Name
	if _, err := bus.js.CreateOrUpdatePushConsumer(ctx, e.Topic, jetstream.ConsumerConfig{
		Durable: e.Consumer.Name, DeliverSubject: deliver, DeliverGroup: e.Consumer.Name,
		DeliverPolicy: jetstream.DeliverAllPolicy, AckPolicy: jetstream.AckExplicitPolicy,
		AckWait: e.Consumer.AckWait, MaxDeliver: -1, MaxAckPending: e.Consumer.MaxAckPending, FilterSubject: e.Topic,
	}); err != nil {
		b.Fatal(err)
	}
	sub, err := wmnats.NewSubscriberWithNatsConn(nc, wmnats.SubscriberSubscriptionConfig{
		Unmarshaler:      pushUnmarshaler{},
		SubscribersCount: workers,
		AckWaitTimeout:   e.Consumer.AckWait,
		CloseTimeout:     time.Minute,
		QueueGroupPrefix: e.Consumer.Name,
		JetStream: wmnats.JetStreamConfig{
			SubscribeOptions: []nats.SubOpt{nats.Bind(e.Topic, e.Consumer.Name), nats.ManualAck()},
			DurablePrefix:    e.Consumer.Name,
			AckAsync:         true,
		},
	}, watermill.NopLogger{})
	if err != nil {
		b.Fatal(err)
	}
	return sub
}

// pushUnmarshaler does for the reference what toMessage does for pull.
type pushUnmarshaler struct{}

func (pushUnmarshaler) Unmarshal(m *nats.Msg) (*message.Message, error) {
	msg := message.NewMessage(m.Header.Get(nats.MsgIdHdr), m.Data)
	if meta, err := m.Metadata(); err == nil {
		msg.Metadata.Set(metaDelivered, fmt.Sprint(meta.NumDelivered))
	}
	msg.Metadata.Set(metaReply, m.Reply)
	return msg, nil
}
