package bus

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/supflow/supflow/messages"
)

// RouterConfig configures a Router; the zero value is usable.
type RouterConfig struct {
	Logger       *slog.Logger          // nil discards
	Registerer   prometheus.Registerer // nil: metrics are kept but not exported
	CloseTimeout time.Duration         // how long Run waits for in-flight work after ctx ends; default 30 s

	// Retries is how many times a transient failure is retried in-process,
	// RetryInterval apart (doubling), before the delivery is nacked; 0: none.
	Retries       int
	RetryInterval time.Duration // default 100 ms

	// NakDelay is the redelivery delay after a first failed delivery,
	// doubling with each further one up to NakDelayMax.
	NakDelay    time.Duration // default 1 s
	NakDelayMax time.Duration // default 30 s
}

func (c *RouterConfig) setDefaults() {
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	c.CloseTimeout = orDefault(c.CloseTimeout, 30*time.Second)
	c.RetryInterval = orDefault(c.RetryInterval, 100*time.Millisecond)
	c.NakDelay = orDefault(c.NakDelay, time.Second)
	c.NakDelayMax = orDefault(c.NakDelayMax, 30*time.Second)
}

// Validate rejects negative settings.
func (c RouterConfig) Validate() error {
	if c.CloseTimeout < 0 || c.Retries < 0 || c.RetryInterval < 0 || c.NakDelay < 0 || c.NakDelayMax < 0 {
		return fmt.Errorf("%w: RouterConfig: negative duration or count", ErrConfig)
	}
	return nil
}

// ErrRoute wraps an invalid route or a route whose consumer is missing.
var ErrRoute = errors.New("bus: route")

// Router runs routes: Handle routes on a watermill router (middleware, from
// outermost: metrics, dead-letter policy, optional retry, panic recovery),
// Sink routes on direct subscriptions. Add routes, then call Run once.
type Router struct {
	bus     *Bus
	cfg     RouterConfig
	metrics *metrics
	dlq     *Publisher

	mu      sync.Mutex
	routes  []Route
	started bool
}

// NewRouter returns a router on b; it registers its metrics on
// cfg.Registerer (sharing series already registered by another router).
func (b *Bus) NewRouter(cfg RouterConfig) (*Router, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, fmt.Errorf("bus: register metrics: %w", err)
	}
	return &Router{bus: b, cfg: cfg, metrics: m, dlq: b.Publisher()}, nil
}

// Add mounts routes; names must be unique and Run must not have started.
func (r *Router) Add(routes ...Route) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.started {
		return fmt.Errorf("%w: Add after Run", ErrRoute)
	}
	for _, rt := range routes {
		if rt.process == nil && rt.sink == nil {
			return fmt.Errorf("%w: zero Route: build it with Handle or Sink", ErrRoute)
		}
		if err := errors.Join(checkName("route", rt.name), checkName("input topic", rt.in)); err != nil {
			return fmt.Errorf("%w: %w", ErrRoute, err)
		}
		if rt.process != nil {
			if err := checkName("output topic", rt.out); err != nil {
				return fmt.Errorf("%w: %s: %w", ErrRoute, rt.name, err)
			}
		}
		if rt.workers < 1 {
			return fmt.Errorf("%w: %s: %d workers", ErrRoute, rt.name, rt.workers)
		}
		for _, have := range r.routes {
			if have.name == rt.name {
				return fmt.Errorf("%w: duplicate route name %q", ErrRoute, rt.name)
			}
		}
		r.routes = append(r.routes, rt)
	}
	return nil
}

// Run consumes until ctx ends, then stops taking messages, waits up to
// CloseTimeout for in-flight ones to be settled, and returns. Handler
// contexts stay live during that drain and are cancelled when Run returns.
// Run fails at once if a route's consumer is missing or misconfigured.
func (r *Router) Run(ctx context.Context) error {
	r.mu.Lock()
	if r.started {
		r.mu.Unlock()
		return fmt.Errorf("%w: Run called twice", ErrRoute)
	}
	r.started = true
	routes := r.routes
	r.mu.Unlock()

	work, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	defer r.dlq.Close()

	wmLogger := watermill.NewSlogLoggerWithLevelMapping(r.cfg.Logger, map[slog.Level]slog.Level{slog.LevelInfo: slog.LevelDebug})
	wm, err := message.NewRouter(message.RouterConfig{CloseTimeout: r.cfg.CloseTimeout}, wmLogger)
	if err != nil {
		return fmt.Errorf("bus: router: %w", err)
	}
	var (
		conns  []*nats.Conn
		pubs   []*Publisher
		sinks  []*sinkRun
		useWM  bool
		runErr error
	)
	defer func() {
		for _, p := range pubs {
			p.Close()
		}
		for _, c := range conns {
			c.Close()
		}
	}()
	for _, rt := range routes {
		cons, err := r.consumer(ctx, rt)
		if err != nil {
			return err
		}
		if rt.sink != nil {
			s, err := r.startSink(work, rt, cons)
			if err != nil {
				stopSinks(sinks, r.cfg.CloseTimeout)
				return err
			}
			sinks = append(sinks, s)
			continue
		}
		conn, err := r.bus.dial(ctx, "supflow-"+rt.name)
		if err != nil {
			stopSinks(sinks, r.cfg.CloseTimeout)
			return err
		}
		conns = append(conns, conn)
		js, err := jetstream.New(conn)
		if err != nil {
			stopSinks(sinks, r.cfg.CloseTimeout)
			return fmt.Errorf("%w: %s: %w", ErrRoute, rt.name, err)
		}
		c, err := pullConsumer(ctx, js, rt)
		if err != nil {
			stopSinks(sinks, r.cfg.CloseTimeout)
			return err
		}
		p := newPuller(js, c, rt.workers, cons.AckWait, backoff{r.cfg.NakDelay, r.cfg.NakDelayMax}, r.cfg.Logger)
		p.recreate = r.bus.recreate
		sub := newPullSubscriber(p, work, r.cfg.CloseTimeout)
		pub := r.bus.Publisher()
		pubs = append(pubs, pub)
		h := wm.AddConsumerHandler(rt.name, rt.in, sub, r.handlerFunc(rt, pub, cons.MaxDeliver))
		h.AddMiddleware(r.measure(rt.name), r.policy(rt, cons.MaxDeliver, conn))
		if r.cfg.Retries > 0 {
			h.AddMiddleware(middleware.Retry{
				MaxRetries:      r.cfg.Retries,
				InitialInterval: r.cfg.RetryInterval,
				MaxInterval:     16 * r.cfg.RetryInterval,
				Multiplier:      2,
				ShouldRetry: func(p middleware.RetryParams) bool {
					return !errors.Is(p.Err, messages.ErrPermanent) && !errors.Is(p.Err, messages.ErrSkip)
				},
			}.Middleware)
		}
		h.AddMiddleware(middleware.Recoverer)
		useWM = true
	}

	wmDone := make(chan error, 1)
	if useWM {
		go func() { wmDone <- wm.Run(work) }()
		select {
		case <-wm.Running():
		case err := <-wmDone:
			stopSinks(sinks, r.cfg.CloseTimeout)
			return fmt.Errorf("%w: start: %w", ErrRoute, err)
		}
	}
	select {
	case <-ctx.Done():
	case err := <-wmDone:
		// Every subscription ended on its own (connection closed).
		runErr = fmt.Errorf("bus: router stopped: %v", err)
		useWM = false
	}
	if useWM {
		if err := wm.Close(); err != nil {
			runErr = fmt.Errorf("bus: drain: %w", err)
		}
	}
	stopSinks(sinks, r.cfg.CloseTimeout)
	cancelWork()
	if useWM {
		<-wmDone
	}
	return runErr
}

// consumerInfo is what a route needs to know of its consumer.
type consumerInfo struct {
	AckWait       time.Duration
	MaxDeliver    int
	MaxAckPending int
}

// consumer checks that rt's durable exists and is a pull consumer, as
// Provision creates it.
func (r *Router) consumer(ctx context.Context, rt Route) (consumerInfo, error) {
	pc, err := pullConsumer(ctx, r.bus.js, rt)
	if err != nil {
		return consumerInfo{}, err
	}
	c := pc.CachedInfo().Config
	maxDeliver := c.MaxDeliver
	if v, ok := c.Metadata[metaMaxDeliver]; ok {
		if maxDeliver, err = strconv.Atoi(v); err != nil || maxDeliver < 1 {
			return consumerInfo{}, fmt.Errorf("%w: %s: consumer metadata %s=%q", ErrRoute, rt.name, metaMaxDeliver, v)
		}
	}
	return consumerInfo{AckWait: c.AckWait, MaxDeliver: maxDeliver, MaxAckPending: c.MaxAckPending}, nil
}

// handlerFunc runs a Handle route and publishes its outputs; the router
// acks the input only when this returns nil.
func (r *Router) handlerFunc(rt Route, pub *Publisher, maxDeliver int) message.NoPublishHandlerFunc {
	return func(msg *message.Message) error {
		n := deliveries(msg)
		ids := func(j, of int) string {
			switch {
			case rt.noOutputID:
				return ""
			case of == 1:
				return derivedID(msg.UUID, rt.name)
			}
			return derivedID(msg.UUID, fmt.Sprintf("%s/%d", rt.name, j))
		}
		// The largest output id header: what an output payload must leave
		// room for.
		room := int(pub.maxPayload) - headerSize(wireHeader(ids(0, 2), nil))
		outs, err := rt.process(msg.Context(), msg.Payload, call{
			n:    n,
			last: maxDeliver > 0 && n >= uint64(maxDeliver),
			reject: func(i int, payload []byte, reason error) error {
				return r.deadLetterSample(msg, rt, n, i, payload, reason)
			},
			room: room,
		})
		if err != nil {
			return err
		}
		// The client copied each payload by the time its publish
		// returned, whatever the outcome.
		defer func() {
			for _, out := range outs {
				rt.buffers.Put(out)
			}
		}()
		for j, out := range outs {
			if err := pub.publish(msg.Context(), rt.out, message.NewMessage(ids(j, len(outs)), out)); err != nil {
				return err
			}
			r.metrics.out.WithLabelValues(rt.name).Inc()
		}
		return nil
	}
}

// deadLetterSample dead-letters sample i of msg, a batch, alone: payload
// under an id derived from msg's and i, with msg's metadata, counted as
// any dead letter.
func (r *Router) deadLetterSample(msg *message.Message, rt Route, n uint64, i int, payload []byte, reason error) error {
	s := message.NewMessage(derivedID(msg.UUID, fmt.Sprintf("%s/sample/%d", rt.name, i)), payload)
	s.Metadata = msg.Metadata
	s.SetContext(msg.Context())
	return r.deadLetter(s, rt, n, reason)
}

func (r *Router) measure(name string) message.HandlerMiddleware {
	return func(h message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			start := time.Now()
			r.metrics.in.WithLabelValues(name).Inc()
			out, err := h(msg)
			outcome := "ack"
			if err != nil {
				outcome = "nak"
			}
			r.metrics.seconds.WithLabelValues(name, outcome).Observe(time.Since(start).Seconds())
			return out, err
		}
	}
}

// policy turns a handler error into an ack (skip, dead-lettered), a nak,
// or a termination: conn carries the +TERM, after which the subscriber's
// ack is a no-op for the server.
func (r *Router) policy(rt Route, maxDeliver int, conn *nats.Conn) message.HandlerMiddleware {
	return func(h message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			out, err := h(msg)
			if err == nil {
				return out, nil
			}
			f, err := r.settle(msg, rt, maxDeliver, err)
			if f != fateTerm {
				return nil, err
			}
			if reply := msg.Metadata.Get(metaReply); reply != "" {
				if terr := conn.Publish(reply, ackTerm); terr != nil {
					return nil, fmt.Errorf("%w (and terminating it failed: %v)", err, terr)
				}
			}
			return nil, nil
		}
	}
}

// ackTerm is the JetStream acknowledgement that ends a message's
// deliveries without processing (as nats.Msg.Term sends).
var ackTerm = []byte("+TERM")

// fate is what becomes of a failed delivery.
type fate int

const (
	fateAck  fate = iota // skipped, or dead-lettered: acknowledge it
	fateNak              // redeliver it later
	fateTerm             // it could not be dead-lettered and must not come back: terminate it
)

// settle decides the fate of a failed delivery; the error says why it
// was not acknowledged.
func (r *Router) settle(msg *message.Message, rt Route, maxDeliver int, err error) (fate, error) {
	n := deliveries(msg)
	var reason error
	switch {
	case errors.Is(err, messages.ErrSkip):
		r.metrics.skipped.WithLabelValues(rt.name).Inc()
		r.cfg.Logger.Debug("message skipped", "handler_name", rt.name, "message_uuid", msg.UUID, "reason", err)
		return fateAck, nil
	case errors.Is(err, messages.ErrPermanent):
		reason = err
	case maxDeliver > 0 && n >= uint64(maxDeliver):
		reason = fmt.Errorf("%w after %d deliveries: %w", errGaveUp, n, err)
	default:
		r.metrics.nacked.WithLabelValues(rt.name).Inc()
		return fateNak, err
	}
	if dlErr := r.deadLetter(msg, rt, n, reason); dlErr != nil {
		err = fmt.Errorf("%w (and dead-lettering failed: %v)", err, dlErr)
		if r.mustTerminate(msg, rt, n, maxDeliver, reason, dlErr) {
			return fateTerm, err
		}
		r.metrics.nacked.WithLabelValues(rt.name).Inc()
		return fateNak, err
	}
	return fateAck, nil
}

// mustTerminate decides whether a delivery that failed to be dead-lettered
// is terminated (true: it is logged at ERROR and counted) rather than
// nacked: when the dead letter can never be published, or the message has
// been delivered maxDeliver times (default 5 when the consumer has none).
// A message that cannot be dead-lettered is so retried a bounded number of
// times and then dropped, never redelivered without end.
func (r *Router) mustTerminate(msg *message.Message, rt Route, n uint64, maxDeliver int, reason, dlErr error) bool {
	if maxDeliver < 1 {
		maxDeliver = defaultMaxDeliver
	}
	if !errors.Is(dlErr, messages.ErrPermanent) && n < uint64(maxDeliver) {
		return false
	}
	r.metrics.terminated.WithLabelValues(rt.name).Inc()
	r.cfg.Logger.Error("message terminated: it cannot be dead-lettered, and is dropped", "handler_name", rt.name,
		"message_uuid", msg.UUID, "deliveries", n, "bytes", len(msg.Payload), "reason", reason, "error", dlErr)
	return true
}

// deadLetter publishes the original payload and metadata with the reason,
// and counts it under the reason's class.
func (r *Router) deadLetter(msg *message.Message, rt Route, n uint64, reason error) error {
	if err := r.publishDeadLetter(msg, rt, n, reason); err != nil {
		return err
	}
	class := reasonClass(reason)
	r.metrics.deadLettered.WithLabelValues(rt.name, class).Inc()
	r.cfg.Logger.Warn("message dead-lettered", "handler_name", rt.name, "message_uuid", msg.UUID,
		"deliveries", n, "class", class, "reason", reason)
	return nil
}

func (r *Router) publishDeadLetter(msg *message.Message, rt Route, n uint64, reason error) error {
	dl, err := deadLetterOf(msg, rt.in, rt.name, n, reason, r.dlq.maxPayload)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(msg.Context(), 30*time.Second)
	defer cancel()
	return r.dlq.publish(ctx, messages.TopicDeadLetter, dl)
}
