package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// fetchWait is how long one pull request waits for messages: an idle
// worker asks again this often.
const fetchWait = time.Second

// puller reads a durable pull consumer for one process. It asks the server
// for at most as many messages as it has free slots, a slot being freed
// when its message is settled, so a worker that stops without closing its
// connection (SIGSTOP, a hung host) holds no more than its slots; the rest
// of the stream goes to the workers that ask. Every message received and
// not yet settled has its AckWait restarted every third of AckWait (keep):
// a live process is never redelivered what it is still working on, and a
// delivery lost with a connection comes back after one AckWait. A consumer
// the server no longer has is created again (restore), with its stream if
// that is a memory edge a NATS restart lost.
type puller struct {
	js jetstream.JetStream // for restore
	// recreate, if set, provisions a memory edge's stream and consumer
	// again (Bus.recreate); nil: a missing stream is waited for.
	recreate func(ctx context.Context, topic string) bool
	cons     jetstream.Consumer
	delay    backoff
	ackWait  time.Duration
	warn     func(string, ...any)

	free    chan struct{} // one token per free slot
	stopped chan struct{} // closed by stop: fetch no more
	done    chan struct{} // closed when run returned
	quit    chan struct{} // closed by close: keep returns
	stopOne sync.Once
	quitOne sync.Once

	// weight, if set, is how many slots a message takes (its samples);
	// nil: one each.
	weight func(payload []byte) int
	per    atomic.Int64 // the last message's weight: sizes each fetch

	mu   sync.Mutex
	held []*ackable // received and possibly unsettled, oldest first
	// debt is the slots that received messages weigh beyond the one each
	// was fetched with and that were not free then: freed slots repay it
	// before the puller fetches again.
	debt int
}

func newPuller(js jetstream.JetStream, cons jetstream.Consumer, slots int, ackWait time.Duration, delay backoff, logger *slog.Logger) *puller {
	p := &puller{js: js, cons: cons, delay: delay, ackWait: ackWait, warn: logger.Warn,
		free: make(chan struct{}, slots), stopped: make(chan struct{}), done: make(chan struct{}), quit: make(chan struct{})}
	for range slots {
		p.free <- struct{}{}
	}
	return p
}

// start runs the fetch loop and the keeper; receive is called from the
// fetch loop with each message, which it owns: it must settle it (the
// keeper sends InProgress until then).
func (p *puller) start(receive func(*ackable)) {
	go p.run(receive)
	go p.keep()
}

// stop ends fetching; done is closed once the request in flight ended.
func (p *puller) stop() { p.stopOne.Do(func() { close(p.stopped) }) }

// close stops fetching and keeping messages alive: what is still unsettled
// comes back after AckWait.
func (p *puller) close() {
	p.stop()
	p.quitOne.Do(func() { close(p.quit) })
}

func (p *puller) isStopped() bool {
	select {
	case <-p.stopped:
		return true
	default:
		return false
	}
}

// take waits for a free slot and takes every free slot; 0 once stopped.
func (p *puller) take() int {
	select {
	case <-p.stopped:
		return 0
	case <-p.free:
	}
	n := 1
	for {
		select {
		case <-p.free:
			n++
		default:
			return n
		}
	}
}

func (p *puller) give(n int) {
	p.mu.Lock()
	repay := min(n, p.debt)
	p.debt -= repay
	p.mu.Unlock()
	for range n - repay {
		p.free <- struct{}{}
	}
}

// charge takes n more slots for a message already received: the free
// ones, the rest as debt. It never waits: the puller just fetches nothing
// until enough is freed.
func (p *puller) charge(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for ; n > 0; n-- {
		select {
		case <-p.free:
		default:
			p.debt += n
			return
		}
	}
}

// run fetches as many messages as there are free slots, each as it
// arrives, until stop or the connection closes. stop cancels the request
// in flight: a message the server sends it after that comes back after
// AckWait, as one pushed to a worker as it unsubscribed did.
func (p *puller) run(receive func(*ackable)) {
	defer close(p.done)
	stopped, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-p.stopped:
			cancel()
		case <-stopped.Done():
		}
	}()
	wait := 50 * time.Millisecond
	for {
		n := p.take()
		if n == 0 {
			return
		}
		// Weighed messages: ask for as many as the free slots hold at the
		// last one's weight (one while none was seen), so that a fetch of
		// heavy messages does not overrun the window before they are
		// weighed.
		if p.weight != nil {
			ask := 1
			if per := int(p.per.Load()); per > 0 {
				ask = max(n/per, 1)
			}
			p.give(n - ask)
			n = ask
		}
		got := 0
		ctx, cancelFetch := context.WithTimeout(stopped, fetchWait)
		batch, err := p.cons.Fetch(n, jetstream.FetchContext(ctx))
		if err == nil {
			for m := range batch.Messages() {
				got++
				receive(p.hold(m))
			}
			err = batch.Error()
		}
		cancelFetch()
		p.give(n - got)
		switch {
		case p.isStopped() || errors.Is(err, nats.ErrConnectionClosed):
			return
		case err == nil || errors.Is(err, context.DeadlineExceeded):
			wait = 50 * time.Millisecond
			continue
		}
		// A NATS restart, or a consumer re-created or deleted under us:
		// ask again.
		p.warn("cannot fetch messages", "consumer", p.cons.CachedInfo().Name, "error", err)
		if consumerGone(err) {
			p.restore(stopped)
		}
		select {
		case <-p.stopped:
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, fetchWait)
	}
}

// consumerGone reports whether a fetch failed for want of its consumer:
// nobody answers its pull requests, or the server deleted it during one.
// A NATS restart or a cluster's leader election looks the same for a
// while, so restore asks the server first.
func consumerGone(err error) bool {
	return errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrConsumerDeleted) ||
		errors.Is(err, jetstream.ErrConsumerNotFound)
}

// restoreWait bounds restore's two requests.
const restoreWait = 5 * time.Second

// restore creates the consumer again, as this worker bound to it, if the
// server says it has no consumer of that name: an operator deleted it, or
// a server lost it with its store. Without it the worker would ask an
// absent consumer for ever. The stream is a work queue, so every message
// not yet acknowledged is still in it and goes to the new consumer; what
// this worker holds from the old one is delivered again. A memory edge
// whose stream is gone too (a NATS restart) is provisioned again whole. A
// consumer that is there, or a server that cannot say, is left alone: the
// fetches go on.
func (p *puller) restore(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, restoreWait)
	defer cancel()
	info := p.cons.CachedInfo()
	_, err := p.js.Consumer(ctx, info.Stream, info.Name)
	if errors.Is(err, jetstream.ErrStreamNotFound) && p.recreate != nil {
		p.recreate(ctx, info.Stream)
		return
	}
	if !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return
	}
	if _, err := p.js.CreateConsumer(ctx, info.Stream, info.Config); err != nil {
		p.warn("consumer missing, and creating it again failed", "stream", info.Stream, "consumer", info.Name, "error", err)
		return
	}
	p.warn("consumer was missing: created it again as this worker bound to it", "stream", info.Stream, "consumer", info.Name)
}

// hold wraps m in an ackable that frees its slots when settled, kept alive
// until then: one slot, or its weight.
func (p *puller) hold(m jetstream.Msg) *ackable {
	var n uint64
	if meta, err := m.Metadata(); err == nil {
		n = meta.NumDelivered
	}
	slots := 1
	if p.weight != nil {
		slots = max(p.weight(m.Data()), 1)
		p.per.Store(int64(slots))
		p.charge(slots - 1)
	}
	a := &ackable{msg: m, delivered: n, nakDelay: p.delay.WaitTime(n), release: func() { p.give(slots) }}
	p.mu.Lock()
	p.held = append(p.held, a)
	p.mu.Unlock()
	return a
}

// keep restarts the AckWait clock of every unsettled message every third
// of AckWait until close, forgetting settled ones as it goes.
func (p *puller) keep() {
	t := time.NewTicker(max(p.ackWait/3, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-p.quit:
			return
		case <-t.C:
		}
		p.mu.Lock()
		live := p.held[:0]
		for _, a := range p.held {
			if !a.isSettled() {
				live = append(live, a)
			}
		}
		clear(p.held[len(live):])
		p.held = live
		batch := append([]*ackable(nil), live...)
		p.mu.Unlock()
		for _, a := range batch {
			// Settled since the snapshot: nothing to keep.
			if err := a.inProgress(); err != nil && !errors.Is(err, ErrSettled) {
				p.warn("cannot extend a held message's ack deadline", "error", err)
				break
			}
		}
	}
}

// pullSubscriber is the watermill message.Subscriber of a Handle route: a
// puller with one slot per worker, so the route handles at most that many
// messages at once and holds no more. It settles each message as the
// router acks or nacks it. Close stops fetching (a message fetched after
// that is nacked for prompt redelivery elsewhere) and waits, up to its
// timeout, until every message handed to the router is settled: watermill's
// router cancels subscriptions as soon as it starts closing, and the
// handlers still running must get their acks through.
type pullSubscriber struct {
	p       *puller
	work    context.Context // outlives the router's drain; each message's context
	timeout time.Duration

	once     sync.Once
	started  atomic.Bool
	inflight sync.WaitGroup
}

func newPullSubscriber(p *puller, work context.Context, timeout time.Duration) *pullSubscriber {
	return &pullSubscriber{p: p, work: work, timeout: timeout}
}

// Subscribe starts fetching; ctx is ignored, since the router cancels it
// before the drain: the subscription ends with Close. Call it once.
func (s *pullSubscriber) Subscribe(_ context.Context, _ string) (<-chan *message.Message, error) {
	if s.started.Swap(true) {
		return nil, fmt.Errorf("%w: subscribed twice", ErrRoute)
	}
	out := make(chan *message.Message)
	s.p.start(func(a *ackable) {
		s.inflight.Add(1)
		msg := toMessage(a.msg)
		msg.SetContext(s.work)
		select {
		case out <- msg:
		case <-s.p.stopped:
			// The router stops reading when it starts closing.
			s.settle(a.nak)
			return
		}
		go func() {
			select {
			case <-msg.Acked():
				s.settle(a.ack)
			case <-msg.Nacked():
				s.settle(a.nak)
			}
		}()
	})
	go func() {
		<-s.p.done
		close(out)
	}()
	return out, nil
}

func (s *pullSubscriber) settle(f func() error) {
	defer s.inflight.Done()
	if err := f(); err != nil && !errors.Is(err, ErrSettled) {
		s.p.warn("cannot settle message", "error", err)
	}
}

// Close stops fetching, waits up to the timeout for the messages in flight
// to be settled, and stops keeping the others alive. It is idempotent.
func (s *pullSubscriber) Close() error {
	s.once.Do(func() {
		s.p.stop()
		if s.started.Load() {
			<-s.p.done
		}
		settled := make(chan struct{})
		go func() { s.inflight.Wait(); close(settled) }()
		select {
		case <-settled:
		case <-time.After(s.timeout):
		}
		s.p.close()
	})
	return nil
}

// pullConsumer returns the pull consumer of rt on js, checking it is one.
func pullConsumer(ctx context.Context, js jetstream.JetStream, rt Route) (jetstream.Consumer, error) {
	c, err := js.Consumer(ctx, rt.in, rt.name)
	if errors.Is(err, jetstream.ErrNotPullConsumer) {
		return nil, fmt.Errorf("%w: %s: consumer %q on stream %q is a push consumer of an older supflow: "+
			"provision the topology again to replace it (docs/operations.md, 'Upgrading from push consumers'): %w",
			ErrRoute, rt.name, rt.name, rt.in, err)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %s: consumer %q on stream %q (provision the topology first): %w",
			ErrRoute, rt.name, rt.name, rt.in, err)
	}
	return c, nil
}
