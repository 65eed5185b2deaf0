package bus

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/supflow/supflow/internal/bufpool"
	"github.com/supflow/supflow/messages"
)

// call is what a Handle route's process gets from the router besides the
// payload.
type call struct {
	// n is the input's delivery count; last says it is its last delivery
	// (the consumer's MaxDeliver), so a transient failure is final.
	n    uint64
	last bool
	// reject dead-letters sample i of the input alone, as payload.
	reject func(i int, payload []byte, reason error) error
	// room is the most bytes an output payload may have: the server's
	// max_payload less the output's headers.
	room int
}

// HandleBatch is Handle for inputs that carry one or more samples (a
// messages batch type, or the single type): decode gives the samples, fn
// is called for each in order, and encode packs the outputs of one input
// into output messages that fit the server's max_payload: one if they fit,
// else runs of as many as fit at the first output's size (pack). An input
// of one sample behaves exactly as in Handle. encode appends a message to
// its first argument (messages.AppendViewGroups) and the route owns what it
// returns: once published (the client has copied it), the buffer is reused
// for a later message of the route, so a stage does not allocate and fault
// in fresh memory for each of its largest objects.
// In a batch each sample is accounted for alone: one whose fn fails with
// messages.ErrPermanent, or with any error on the input's last delivery,
// is dead-lettered by itself (encodeOne gives its payload: the single
// type, so the dead letter names it) while the others go on; one whose
// fn returns messages.ErrSkip has no output; any other failure redelivers
// the whole input, and fn runs again for every sample of it.
func HandleBatch[In, Out any](name, inTopic, outTopic string,
	decode func([]byte) ([]In, error), encode func(dst []byte, outs []Out) ([]byte, error), encodeOne func(In) ([]byte, error),
	fn func(context.Context, In) (Out, error),
) Route {
	bufs := new(bufpool.Pool)
	return Route{name: name, in: inTopic, out: outTopic, workers: 1, buffers: bufs,
		process: func(ctx context.Context, payload []byte, c call) ([][]byte, error) {
			ins, err := decode(payload)
			if err != nil {
				return nil, messages.Permanent(fmt.Errorf("bus: %s: %w: %w", name, errDecodeInput, err))
			}
			if len(ins) == 1 { // Handle: the router settles the input
				out, err := fn(ctx, ins[0])
				if err != nil {
					return nil, err
				}
				b, err := encode(bufs.Get(), []Out{out})
				if err != nil {
					return nil, messages.Permanent(fmt.Errorf("bus: %s: %w: %w", name, errEncodeOutput, err))
				}
				return [][]byte{b}, nil
			}
			reject := func(i int, reason error) error {
				p, err := encodeOne(ins[i])
				if err != nil {
					return messages.Permanent(fmt.Errorf("bus: %s: %w: sample %d: %w", name, errEncodeOutput, i, err))
				}
				return c.reject(i, p, reason)
			}
			outs := make([]Out, 0, len(ins))
			from := make([]int, 0, len(ins)) // the input sample of each output
			for i, in := range ins {
				out, err := fn(ctx, in)
				switch {
				case err == nil:
					outs, from = append(outs, out), append(from, i)
					continue
				case errors.Is(err, messages.ErrSkip):
					continue
				case errors.Is(err, messages.ErrPermanent):
				case c.last:
					err = fmt.Errorf("%w after %d deliveries: %w", errGaveUp, c.n, err)
				default:
					return nil, err
				}
				if err := reject(i, err); err != nil {
					return nil, err
				}
			}
			return pack(name, outs, from, bufs, encode, c.room, reject)
		},
	}
}

// pack encodes outs into payloads of at most room bytes, in order, each
// output about once: the first output encoded alone prices one (a route's
// outputs are alike: views of one shape, images of similar sizes), runs
// of as many as room holds at that price are encoded together, and a run
// that still does not fit is halved until each part does (halve). Encoding
// all of them first and halving from there copied a batch of 64 224x224
// view pairs six times over (docs/benchmarks.md, "Bus and S3 overhead per
// sample"). from[i] is the input sample of outs[i].
func pack[Out any](name string, outs []Out, from []int, bufs *bufpool.Pool, encode func([]byte, []Out) ([]byte, error), room int,
	reject func(i int, reason error) error,
) ([][]byte, error) {
	run := len(outs)
	if run > 1 {
		one, err := encode(bufs.Get(), outs[:1])
		if err != nil {
			return nil, messages.Permanent(fmt.Errorf("bus: %s: %w: %w", name, errEncodeOutput, err))
		}
		// A single message repeats the head a batch shares, so this
		// price is an upper bound of a sample's share of a batch.
		run = max(room/len(one), 1)
		bufs.Put(one)
	}
	var payloads [][]byte
	for i := 0; i < len(outs); i += run {
		j := min(i+run, len(outs))
		p, err := halve(name, outs[i:j], from[i:j], bufs, encode, room, reject)
		if err != nil {
			return nil, err
		}
		payloads = append(payloads, p...)
	}
	return payloads, nil
}

// halve encodes outs as one payload if it fits room, else halves them
// until each part fits; a single output that does not fit dead-letters its
// sample.
func halve[Out any](name string, outs []Out, from []int, bufs *bufpool.Pool, encode func([]byte, []Out) ([]byte, error), room int,
	reject func(i int, reason error) error,
) ([][]byte, error) {
	if len(outs) == 0 {
		return nil, nil
	}
	b, err := encode(bufs.Get(), outs)
	if err != nil {
		return nil, messages.Permanent(fmt.Errorf("bus: %s: %w: %w", name, errEncodeOutput, err))
	}
	if len(b) <= room {
		return [][]byte{b}, nil
	}
	bufs.Put(b)
	if len(outs) == 1 {
		return nil, reject(from[0], messages.Permanent(fmt.Errorf("bus: %s: %w: %w: %d bytes over the server's max_payload",
			name, errEncodeOutput, ErrTooLarge, len(b))))
	}
	h := len(outs) / 2
	first, err := halve(name, outs[:h], from[:h], bufs, encode, room, reject)
	if err != nil {
		return nil, err
	}
	rest, err := halve(name, outs[h:], from[h:], bufs, encode, room, reject)
	if err != nil {
		return nil, err
	}
	return append(first, rest...), nil
}

// Part is the share of one sample in a Delivery whose message carries
// several (Delivery.Parts). Only its first Ack, Nak or DeadLetter counts;
// later ones return ErrSettled.
type Part struct {
	p       *parts
	i       int
	settled bool // under p.mu
}

// parts settles a message once each of its parts is settled.
type parts struct {
	a       *ackable
	payload func(i int) ([]byte, error)
	single  bool // one part: it settles the message directly

	mu   sync.Mutex
	left int
	nak  bool
}

// Parts splits d, whose message carries n samples, into one Part per
// sample. The message is acknowledged once every part was acknowledged or
// dead-lettered, and nacked (all its samples come back) once every part is
// settled and one was nacked. A part's DeadLetter dead-letters its sample
// alone, as payload(i) (the single message type, so the dead letter names
// that sample); if that publish fails the part counts as nacked. With n = 1
// the part's methods are d's.
func (d *Delivery[T]) Parts(n int, payload func(i int) ([]byte, error)) []*Part {
	p := &parts{a: d.a, payload: payload, single: n == 1, left: n}
	out := make([]*Part, n)
	for i := range out {
		out[i] = &Part{p: p, i: i}
	}
	return out
}

// Ack settles the part: its sample was used.
func (t *Part) Ack() error {
	if t.p.single {
		return t.p.a.ack()
	}
	if !t.claim() {
		return ErrSettled
	}
	return t.done(false)
}

// Nak settles the part; the whole message is redelivered.
func (t *Part) Nak() error {
	if t.p.single {
		return t.p.a.nak()
	}
	if !t.claim() {
		return ErrSettled
	}
	return t.done(true)
}

// DeadLetter gives the part's sample up for good (see Delivery.DeadLetter).
func (t *Part) DeadLetter(reason error) error {
	if t.p.single {
		return t.p.a.deadLetter(reason)
	}
	if !t.claim() {
		return ErrSettled
	}
	b, err := t.p.payload(t.i)
	if err == nil {
		err = t.p.a.rejectPart(t.i, b, reason)
	}
	if err != nil {
		if derr := t.done(true); derr != nil {
			return fmt.Errorf("bus: dead letter of sample %d: %w (and: %w)", t.i, err, derr)
		}
		return fmt.Errorf("bus: dead letter of sample %d: %w (its message will be redelivered)", t.i, err)
	}
	return t.done(false)
}

func (t *Part) claim() bool {
	t.p.mu.Lock()
	defer t.p.mu.Unlock()
	if t.settled {
		return false
	}
	t.settled = true
	return true
}

// done counts a claimed part; the last one settles the message.
func (t *Part) done(nak bool) error {
	p := t.p
	p.mu.Lock()
	p.nak = p.nak || nak
	p.left--
	last, nakAll := p.left == 0, p.nak
	p.mu.Unlock()
	switch {
	case !last:
		return nil
	case nakAll:
		return p.a.nak()
	}
	return p.a.ack()
}
