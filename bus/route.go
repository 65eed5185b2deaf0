package bus

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/supflow/supflow/internal/bufpool"
	"github.com/supflow/supflow/messages"
)

// Route is a stage handler ready to mount on a Router: build one with Handle
// or Sink. Its name is also the durable consumer it binds to on its input
// topic (see Consumer.Name).
type Route struct {
	name, in, out string
	workers       int
	noOutputID    bool
	// Exactly one of process (Handle, HandleBatch) and sink (Sink) is set;
	// process returns the output payloads (none: nothing to publish),
	// which go to buffers once published (nil: they are not reused).
	process func(ctx context.Context, payload []byte, c call) ([][]byte, error)
	buffers *bufpool.Pool
	sink    func(ctx context.Context, payload []byte, a *ackable) error
}

// Workers sets how many deliveries of a Handle route this process handles
// concurrently (default 1): the process fetches from the shared pull
// consumer only as many messages as it has workers free, so that is also
// all it holds. A Sink always has one: its function is called serially,
// and it may hold up to the consumer's MaxAckPending.
func (r Route) Workers(n int) Route {
	r.workers = n
	return r
}

// WithoutOutputID publishes a Handle route's outputs without the
// Nats-Msg-Id header that lets the output stream drop a repeat publish after
// a redelivery. Use it where the consumer de-duplicates by itself and the
// header is a noticeable share of a small message: the trainer drops
// repeated (epoch, sample id) views, and the id is 6% of a 28x28 view pair.
func (r Route) WithoutOutputID() Route {
	r.noOutputID = true
	return r
}

// Handle returns a route that decodes each message of inTopic, calls fn and
// publishes the encoded result to outTopic, acknowledging the input only
// after that publish succeeded. A decode failure of the input, an encode
// failure, or an fn error wrapping messages.ErrPermanent dead-letters the
// input; an error wrapping messages.ErrSkip acknowledges it without output;
// any other error redelivers it with backoff until the consumer's MaxDeliver,
// then dead-letters it. fn may run again for the same input (at least once).
// While fn runs, the router restarts the input's AckWait every third of it
// (InProgress): a slow fn is not redelivered elsewhere while its process
// lives; the input of a process that died or froze comes back after one
// AckWait.
func Handle[In, Out any](name, inTopic, outTopic string,
	decode func([]byte) (In, error), encode func(Out) ([]byte, error),
	fn func(context.Context, In) (Out, error),
) Route {
	r := HandleBatch(name, inTopic, outTopic,
		func(b []byte) ([]In, error) {
			in, err := decode(b)
			return []In{in}, err
		},
		func(_ []byte, outs []Out) ([]byte, error) { return encode(outs[0]) },
		nil, // one sample: never dead-lettered alone
		fn)
	r.buffers = nil // encode's buffers are its own
	return r
}

// Sink returns a route without output for a consumer that acknowledges
// later, such as the trainer acking only samples of a completed step. fn is
// called serially with each decoded message and owns its Delivery: it must
// eventually Ack, Nak or DeadLetter it (an unsettled one is redelivered
// after the consumer's AckWait). An error returned for a delivery fn did not settle is
// handled as in Handle; undecodable messages are dead-lettered without
// calling fn. The consumer's MaxAckPending bounds how many samples fn can
// hold at once: a message holds as many of its slots as it carries samples
// (messages.Samples), so a window sized in samples holds a whole batch
// however the samples were packed (Limits.TrainPending).
func Sink[In any](name, inTopic string, decode func([]byte) (In, error),
	fn func(context.Context, *Delivery[In]) error,
) Route {
	return Route{name: name, in: inTopic, workers: 1,
		sink: func(ctx context.Context, payload []byte, a *ackable) error {
			in, err := decode(payload)
			if err != nil {
				return messages.Permanent(fmt.Errorf("bus: %s: %w: %w", name, errDecodeInput, err))
			}
			return fn(ctx, &Delivery[In]{Value: in, a: a})
		},
	}
}

// ErrSettled: a Delivery was already acknowledged or rejected.
var ErrSettled = errors.New("bus: delivery already settled")

// Delivery is one message handed to a Sink function, with the means to
// settle it. Its methods are safe for concurrent use; only the first Ack,
// Nak or DeadLetter counts, later ones return ErrSettled.
type Delivery[T any] struct {
	Value T
	a     *ackable
}

// Ack removes the message from its stream. The ack is sent asynchronously;
// a lost ack means a redelivery, never a loss.
func (d *Delivery[T]) Ack() error { return d.a.ack() }

// Nak asks for a redelivery after the router's backoff for this attempt.
func (d *Delivery[T]) Nak() error { return d.a.nak() }

// DeadLetter gives the message up for good: it is published to the
// dead-letter stream with reason and the same headers and metric as a
// message the router dead-letters, then acknowledged. Use it for a message
// that decoded but can never be used; a Nak would only bring it back. If the
// dead-letter publish fails the message is nacked instead and the error
// returned; at its consumer's MaxDeliver-th delivery, or if the dead letter
// can never be published, it is terminated instead (logged at ERROR and
// counted in supflow_bus_messages_terminated_total), so it cannot loop.
func (d *Delivery[T]) DeadLetter(reason error) error { return d.a.deadLetter(reason) }

// InProgress restarts the AckWait clock. The router already does this for
// every delivery a Sink holds, every third of the consumer's AckWait.
func (d *Delivery[T]) InProgress() error { return d.a.inProgress() }

// Deliveries is how many times the server delivered this message (1 first).
func (d *Delivery[T]) Deliveries() uint64 { return d.a.delivered }

// ackable settles one JetStream message exactly once.
type ackable struct {
	msg       jetstream.Msg
	delivered uint64
	nakDelay  time.Duration
	release   func() // called once, when the message is settled
	// reject publishes the message to the dead-letter stream; when that
	// fails, term says whether the message must be terminated rather than
	// nacked (Router.mustTerminate).
	reject func(reason error) (term bool, err error)
	// rejectPart dead-letters sample i of the message alone, as payload.
	rejectPart func(i int, payload []byte, reason error) error

	// mu orders InProgress before settling: an InProgress sent after a
	// nak would postpone the nak's redelivery to a full AckWait.
	mu      sync.Mutex
	settled bool
}

// claim marks a settled, then calls release; false if it already was.
// release runs after a.mu is unlocked: it takes the puller's lock, under
// which the keeper reads a's state, and called under a.mu it deadlocked
// with the keeper.
func (a *ackable) claim() bool {
	a.mu.Lock()
	already := a.settled
	a.settled = true
	a.mu.Unlock()
	if already {
		return false
	}
	if a.release != nil {
		a.release()
	}
	return true
}

func (a *ackable) isSettled() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.settled
}

// inProgress restarts the AckWait clock of an unsettled message.
func (a *ackable) inProgress() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.settled {
		return ErrSettled
	}
	if err := a.msg.InProgress(); err != nil {
		return fmt.Errorf("bus: in progress: %w", err)
	}
	return nil
}

func (a *ackable) ack() error {
	if !a.claim() {
		return ErrSettled
	}
	if err := a.msg.Ack(); err != nil {
		return fmt.Errorf("bus: ack: %w", err)
	}
	return nil
}

func (a *ackable) nak() error {
	if !a.claim() {
		return ErrSettled
	}
	if err := a.msg.NakWithDelay(a.nakDelay); err != nil {
		return fmt.Errorf("bus: nak: %w", err)
	}
	return nil
}

// term ends the message's deliveries without a dead letter.
func (a *ackable) term() error {
	if !a.claim() {
		return ErrSettled
	}
	if err := a.msg.Term(); err != nil {
		return fmt.Errorf("bus: term: %w", err)
	}
	return nil
}

func (a *ackable) deadLetter(reason error) error {
	if !a.claim() {
		return ErrSettled
	}
	if term, err := a.reject(reason); err != nil {
		if term {
			if termErr := a.msg.Term(); termErr != nil {
				return fmt.Errorf("bus: dead letter: %w (and term: %w)", err, termErr)
			}
			return fmt.Errorf("bus: dead letter: %w (message terminated)", err)
		}
		if nakErr := a.msg.NakWithDelay(a.nakDelay); nakErr != nil {
			return fmt.Errorf("bus: dead letter: %w (and nak: %w)", err, nakErr)
		}
		return fmt.Errorf("bus: dead letter: %w", err)
	}
	if err := a.msg.Ack(); err != nil {
		return fmt.Errorf("bus: ack after dead letter: %w", err)
	}
	return nil
}
