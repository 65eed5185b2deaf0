package bus

import (
	"context"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/supflow/supflow/messages"
)

// TestPublishRidesOutAServerRestart publishes while the server is down for
// longer than a JetStream request's timeout: the publish waits for the
// reconnection instead of failing, and the message is stored once.
func TestPublishRidesOutAServerRestart(t *testing.T) {
	srv, restart := restartableServer(t)
	b := connect(t, srv.URL())
	q := edge("restart_tasks", "restart")
	provision(t, b, q)
	pub := b.Publisher()
	srv.Close()
	ctx, cancel := context.WithCancel(context.Background()) // no deadline, as the feeder publishes
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- pub.Send(ctx, q.Topic, []byte("across the restart")) }()
	time.Sleep(8 * time.Second)
	select {
	case err := <-done:
		t.Fatalf("publish returned while the server was down: %v", err)
	default:
	}
	restart()
	if err := <-done; err != nil {
		t.Fatalf("publish across a restart: %v", err)
	}
	if n := streamMsgs(t, b, q.Topic); n != 1 {
		t.Errorf("stream holds %d messages, want 1", n)
	}
}

// TestRoutesResumeAfterAServerRestart restarts the server for down while
// a router is subscribed: messages published after the restart still flow
// through a Handle route into a Sink.
func TestRoutesResumeAfterAServerRestart(t *testing.T) {
	for _, down := range []time.Duration{2 * time.Second, 8 * time.Second} {
		t.Run(down.String(), func(t *testing.T) {
			b, col, srv, restart := boundRoute(t, edge("in", "upper"), edge("out", "check"))
			srv.Close()
			time.Sleep(down)
			restart()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := b.Publisher().Send(ctx, "in", []byte("after")); err != nil {
				t.Fatal(err)
			}
			col.wait(t, 1)
		})
	}
}

// boundRoute starts a restartable server (restartableServer) with in and
// out provisioned, a Handle route from in to out (consumer in's) and a
// collector on out (consumer out's), and returns once a first message,
// "before", went through: the routes are bound.
func boundRoute(t *testing.T, in, out WorkQueue) (b *Bus, col *collector, srv *Embedded, restart func()) {
	t.Helper()
	srv, restart = restartableServer(t)
	b = connect(t, srv.URL())
	provision(t, b, in, out)
	col = newCollector()
	runRouter(t, b, quick,
		Handle(in.Consumer.Name, in.Topic, out.Topic, str, bytesOf, same),
		col.route(out.Consumer.Name, out.Topic))
	sendAll(t, b, in.Topic, "before")
	col.wait(t, 1)
	return b, col, srv, restart
}

// restartableServer starts a server on a file store; restart starts a new
// one on the same port and store after the first was closed.
func restartableServer(t *testing.T) (srv *Embedded, restart func()) {
	t.Helper()
	dir := t.TempDir()
	srv = startServer(t, EmbeddedConfig{StoreDir: dir})
	u, err := url.Parse(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	port, err := strconv.Atoi(u.Port())
	if err != nil {
		t.Fatal(err)
	}
	return srv, func() { startServer(t, EmbeddedConfig{StoreDir: dir, Port: port}) }
}

// TestEventsSubscribeRidesOutAServerRestart subscribes to the events
// stream while the server is down for longer than a JetStream request's
// timeout (the feeder waiting at its epoch barrier during a restart): the
// subscription is made once the server is back.
func TestEventsSubscribeRidesOutAServerRestart(t *testing.T) {
	srv, restart := restartableServer(t)
	b := connect(t, srv.URL())
	provision(t, b, edge("restart_events", "c"))
	srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := b.Events().Subscribe(ctx, "run", messages.EventEpochTrained)
		done <- err
	}()
	time.Sleep(8 * time.Second)
	restart()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("subscribe across a restart: %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("subscribe did not return after the restart")
	}
}

// TestPipelineKeepsEveryStreamAcrossARestart stores a message on every
// stream of the pipeline and restarts the server: each stream and each
// edge's consumer is still there with its message. The pipeline's
// exact-once per epoch under a NATS restart rests on it; a memory stream
// would come back missing, with its consumer and messages (docs/benchmarks.md,
// "Stream storage per edge").
func TestPipelineKeepsEveryStreamAcrossARestart(t *testing.T) {
	srv, restart := restartableServer(t)
	b := connect(t, srv.URL())
	topo := DefaultTopology()
	if err := b.Provision(context.Background(), topo); err != nil {
		t.Fatal(err)
	}
	topics := []string{messages.TopicEvents, messages.TopicDeadLetter}
	for _, e := range topo.Edges {
		topics = append(topics, e.Topic)
	}
	sendAll(t, b, messages.TopicEvents, "event")
	sendAll(t, b, messages.TopicDeadLetter, "dead letter")
	for _, e := range topo.Edges {
		sendAll(t, b, e.Topic, e.Topic)
	}
	srv.Close()
	restart()
	after := connect(t, srv.URL())
	for _, topic := range topics {
		if n := streamMsgs(t, after, topic); n != 1 {
			t.Errorf("stream %s holds %d messages after the restart, want 1", topic, n)
		}
	}
	for _, e := range topo.Edges {
		if _, err := after.js.Consumer(context.Background(), e.Topic, e.Consumer.Name); err != nil {
			t.Errorf("consumer %s on %s after the restart: %v", e.Consumer.Name, e.Topic, err)
		}
	}
}
